/**
 * Copies of the repository as a fresh clone (or SAM's build step) sees it: every file except
 * node_modules, .git and build output. Used by the SAM replay and the npm pack tests, which
 * must not see this repository's installed node_modules.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

export const REPO = resolve(__dirname, '..', '..');

/** What aws-lambda-builders leaves out when it copies CodeUri (EXCLUDED_FILES). */
export const SAM_EXCLUDED = ['node_modules', '.git', '.aws-sam'];
/** A fresh clone: no installed or built files. */
export const CLONE_EXCLUDED = [...SAM_EXCLUDED, 'dist', 'lib', '.tmp'];

/** Copies the repository, less the excluded names at any depth, into a new temporary directory. */
export function copyRepo(prefix: string, excluded: readonly string[] = CLONE_EXCLUDED): string {
  const EXCLUDED = new Set(excluded);
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cpSync(REPO, dir, {
    recursive: true,
    filter: (src) => {
      const rel = relative(REPO, src);
      return rel === '' || !rel.split(/[\\/]/).some((part) => EXCLUDED.has(part));
    },
  });
  return dir;
}

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command, throwing with its output when it fails. */
export function run(cmd: string, args: string[], options: SpawnSyncOptions & { timeout: number }): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...options });
  const out: Run = { status: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  if (r.error || r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}):\n${out.stderr.slice(-3000)}\n${out.stdout.slice(-2000)}`);
  }
  return out;
}

/**
 * The environment for npm and node children: no vitest/tsx hooks, npm's own settings from this
 * process (cache, registry) kept, and no npm_* variables of the running `npm test` (they would
 * point a child npm at this repository's package.json).
 */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k === 'NODE_PATH' || k === 'VITEST' || k.startsWith('VITEST_')) continue;
    if (/^npm_/i.test(k) && !/^npm_config_(cache|registry|userconfig)$/i.test(k)) continue;
    env[k] = v;
  }
  return { ...env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', ...extra };
}
