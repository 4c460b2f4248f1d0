/**
 * Runs rotation events through a built bundle in a fresh `node` process, from a copy alone in an
 * empty directory (so no node_modules is in reach unless NODE_PATH is given), the way Lambda runs
 * a warm container: one process, the events in order. Returns each step's error (code, class
 * name, message, remedy), the JSON log lines, and how many modules came from NODE_PATH.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isolatedEnv } from '../../scripts/build';

const CHILD = `
const bundle = require(process.argv[1]);
let input = '';
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', async () => {
  const out = [];
  for (const event of JSON.parse(input)) {
    try { await bundle.handler(event); out.push({ step: event.Step, code: null }); }
    catch (e) { out.push({ step: event.Step, code: (e && e.code) || String(e && e.name), name: e && e.name, message: String(e && e.message), remedy: e && e.remedy }); }
  }
  const runtime = process.env.NODE_PATH;
  const fromRuntime = runtime ? Object.keys(require.cache).filter((f) => f.startsWith(runtime)).length : 0;
  process.stdout.write('RESULT ' + JSON.stringify({ steps: out, fromRuntime }) + '\\n');
  process.exit(0);
});`;

export interface BundleStep {
  step: string;
  code: string | null;
  name?: string;
  message?: string;
  remedy?: string;
}

export interface BundleRun {
  steps: BundleStep[];
  /** Modules loaded from NODE_PATH (0 without it). */
  fromRuntime: number;
  logs: Array<Record<string, unknown>>;
  /** The raw RESULT line and stderr, for the no-leak check. */
  raw: string[];
}

export function runBundle(file: string, events: ReadonlyArray<{ Step: string }>, env: NodeJS.ProcessEnv): Promise<BundleRun> {
  const alone = mkdtempSync(join(tmpdir(), 'rl-bundle-run-'));
  const copy = join(alone, 'index.js');
  copyFileSync(file, copy);
  return new Promise<BundleRun>((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CHILD, copy], { cwd: alone, env: { ...isolatedEnv(), ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      rmSync(alone, { recursive: true, force: true });
      const m = /^RESULT (.+)$/m.exec(out);
      if (code !== 0 || !m) return reject(new Error(`exit ${code}: ${err.slice(0, 800)}`));
      const logs = out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ ...(JSON.parse(m[1]) as Pick<BundleRun, 'steps' | 'fromRuntime'>), logs, raw: [m[1], err] });
    });
    child.stdin.end(JSON.stringify(events));
  });
}
