/**
 * Builds the `rotation-lambdas` command (src/ops/bin.ts) into one self-contained CommonJS file,
 * `dist/cli/index.js`, which bin/rotation-lambdas.js runs when it exists; then runs it from a copy
 * in an empty temporary directory with `--help` (so no node_modules can fill a gap).
 *
 * Usage: npx tsx scripts/build-cli.ts [--outdir DIR]
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { isolatedEnv, ROOT } from './build';
import { ENGINES, RUNTIME_SDK } from './engines';

const RUNTIME_SDK_PACKAGES: readonly string[] = [...RUNTIME_SDK.rds, ...RUNTIME_SDK.redshift];

export async function buildCli(outdir = join(ROOT, 'dist')): Promise<string> {
  const file = join(resolve(outdir), 'cli', 'index.js');
  await build({
    absWorkingDir: ROOT,
    entryPoints: [join(ROOT, 'src', 'ops', 'bin.ts')],
    outfile: file,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    // The drivers' optional add-ons, as the function bundles leave them out; but not the
    // control-plane clients the functions leave to the Lambda runtime's SDK: the CLI runs on an
    // operator's machine, where no runtime provides them.
    external: [...new Set(ENGINES.flatMap((e) => e.external))].filter((x) => !RUNTIME_SDK_PACKAGES.includes(x)),
    logLevel: 'warning',
  });
  const dir = mkdtempSync(join(tmpdir(), 'rl-cli-'));
  try {
    copyFileSync(file, join(dir, 'index.js'));
    const r = spawnSync(process.execPath, [join(dir, 'index.js'), '--help'], { cwd: dir, encoding: 'utf8', timeout: 60_000, env: isolatedEnv() });
    if (r.status !== 0 || !r.stdout.includes('Usage: rotation-lambdas')) {
      throw new Error(`The built CLI does not run: ${(r.stderr || r.stdout || `exit ${r.status}`).trim().slice(0, 800)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return file;
}

if (require.main === module) {
  const i = process.argv.indexOf('--outdir');
  buildCli(i >= 0 ? process.argv[i + 1] : undefined).then(
    (file) => process.stdout.write(`built ${file} (${statSync(file).size} bytes)\n`),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
