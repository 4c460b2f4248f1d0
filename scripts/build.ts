/**
 * `npm run build`: one self-contained CommonJS bundle per engine, `dist/<engine>/index.js`,
 * exporting `handler` (deploy with Handler `index.handler`).
 *
 * The esbuild options are the ones template.yaml gives `sam build` (BuildMethod esbuild), so a
 * local build is what SAM deploys: bundle, platform node, target node22, format cjs, minify with
 * class and function names kept (Lambda reports `constructor.name` as errorType), main fields
 * `module,main` (packages without `exports`, i.e. the AWS SDK, resolve to their ES module builds,
 * which esbuild tree-shakes: 60-90 KiB less per bundle), and the engine's `external` list.
 * `@aws-sdk/client-secrets-manager` and the SDK core it runs on are always bundled: the SDK
 * inside the Lambda runtime is pinned per Region and may predate PutSecretValue's RotationToken
 * (3.596.0). Only the control-plane clients for service-managed admin secrets (RDS, Redshift,
 * Redshift Serverless; `RUNTIME_SDK` in scripts/engines.ts) are External: they are required on
 * first use only, and the runtime's SDK serves them (see src/db/admin-endpoint.ts). The engine's
 * `alias` map replaces a few never-used dependencies by local stand-ins (scripts/shims/).
 *
 * No source maps by default: `--enable-source-maps` (which Lambda needs to use them) slows every
 * cold start, and every error the framework raises is typed with an actionable message.
 * `npm run build -- --sourcemap` writes external `.map` files for local debugging.
 *
 * Each bundle is then loaded in a fresh `node` process, from a copy in an empty temporary
 * directory (so no node_modules can fill a gap): it must export a `handler` function that
 * rejects an empty event with the framework's EventError (by name: minification must not
 * rename errors).
 *
 * Usage: npm run build [-- [--outdir DIR] [--sourcemap] [engine ...]]
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build, type BuildOptions as EsbuildOptions } from 'esbuild';
import { ENGINES, type EngineSpec, engineByName } from './engines';

export const ROOT = resolve(__dirname, '..');

/** The settings template.yaml passes to SAM's esbuild (Metadata.BuildProperties), minus EntryPoints and External. */
export const BUILD_PROPERTIES = { Target: 'node22', Format: 'cjs', Minify: true, Sourcemap: false, KeepNames: true, MainFields: 'module,main' } as const;

export interface BuildOptions {
  /** Where `<engine>/index.js` goes. Default: `<repo>/dist`. */
  outdir?: string;
  engines?: readonly EngineSpec[];
  sourcemap?: boolean;
}

export interface Bundle {
  engine: EngineSpec;
  file: string;
  bytes: number;
  /** npm packages with code in the bundle (from esbuild's metafile), sorted. */
  packages: string[];
  /** The input files (esbuild's metafile), relative to the repository. */
  inputs: string[];
}

export interface BuildResult {
  bundles: Bundle[];
  /** Engines in the list whose entry point does not exist (yet). */
  missing: EngineSpec[];
}

export function esbuildOptions(engine: EngineSpec, outdir: string, sourcemap = false): EsbuildOptions {
  return {
    absWorkingDir: ROOT,
    entryPoints: [join(ROOT, engine.entry)],
    outdir: join(outdir, engine.name),
    bundle: true,
    platform: 'node',
    target: BUILD_PROPERTIES.Target,
    format: BUILD_PROPERTIES.Format,
    minify: BUILD_PROPERTIES.Minify,
    keepNames: BUILD_PROPERTIES.KeepNames,
    mainFields: BUILD_PROPERTIES.MainFields.split(','),
    sourcemap: sourcemap ? 'external' : false,
    external: [...engine.external],
    alias: { ...engine.alias },
    metafile: true,
    logLevel: 'warning',
  };
}

/** Builds every engine whose entry point exists (in parallel) and returns sizes and contents. */
export async function buildBundles(options: BuildOptions = {}): Promise<BuildResult> {
  const outdir = resolve(options.outdir ?? join(ROOT, 'dist'));
  const engines = options.engines ?? ENGINES;
  const present = engines.filter((e) => existsSync(join(ROOT, e.entry)));
  const missing = engines.filter((e) => !present.includes(e));
  const bundles = await Promise.all(
    present.map(async (engine): Promise<Bundle> => {
      rmSync(join(outdir, engine.name), { recursive: true, force: true });
      const result = await build(esbuildOptions(engine, outdir, options.sourcemap));
      const file = join(outdir, engine.name, 'index.js');
      const inputs = Object.keys(result.metafile!.inputs);
      return { engine, file, bytes: statSync(file).size, packages: packagesOf(inputs), inputs };
    }),
  );
  return { bundles, missing };
}

/** npm package names from metafile input paths (`node_modules/@scope/pkg/...`, nested too). */
export function packagesOf(inputs: string[]): string[] {
  const names = new Set<string>();
  for (const input of inputs) {
    const m = /.*node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input.replace(/\\/g, '/'));
    if (m) names.add(m[1]);
  }
  return [...names].sort();
}

export interface LoadCheck {
  ok: boolean;
  /** Why it failed (child's stderr, trimmed). */
  error?: string;
}

// Loads the bundle, checks it exports a handler function, and sends it an empty event: it must
// fail with the framework's EventError by name (names must survive minification: Lambda reports
// them as errorType).
const LOAD_CHECK = `
const m = require(process.argv[1]);
if (typeof m.handler !== 'function') { console.error('handler is ' + typeof m.handler); process.exit(1); }
Promise.resolve(m.handler({})).then(
  () => { console.error('the handler accepted an empty event'); process.exit(1); },
  (e) => {
    // constructor.name is what Lambda reports as errorType: minification must keep it.
    if (e && e.name === 'EventError' && e.code === 'EVENT' && e.constructor.name === 'EventError') process.exit(0);
    console.error('an empty event failed with ' + (e && e.name) + ' (class ' + (e && e.constructor && e.constructor.name) + ') instead of EventError');
    process.exit(1);
  });
`;

/**
 * Loads a bundle in a fresh node process from a copy in an empty temporary directory, so a
 * module the bundle failed to include cannot be found in the repository's node_modules. The
 * bundle must export a `handler` function that rejects an empty event with an EventError.
 */
export function verifyBundle(file: string): LoadCheck {
  const dir = mkdtempSync(join(tmpdir(), 'rl-bundle-'));
  try {
    const copy = join(dir, 'index.js');
    copyFileSync(file, copy);
    const r = spawnSync(process.execPath, ['-e', LOAD_CHECK, copy], { cwd: dir, encoding: 'utf8', timeout: 30_000, env: isolatedEnv() });
    if (r.status === 0) return { ok: true };
    const error = (r.stderr || r.stdout || `exit ${r.status ?? r.signal}`).trim().split('\n').slice(0, 8).join('\n');
    return { ok: false, error };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The parent's environment without NODE_OPTIONS/NODE_PATH (tsx or vitest hooks must not leak in). */
export function isolatedEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_PATH;
  return env;
}

export function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

async function main(argv: string[]): Promise<void> {
  let outdir: string | undefined;
  let sourcemap = false;
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--outdir') {
      outdir = argv[++i];
      if (!outdir || outdir.startsWith('-')) throw new Error('--outdir needs a directory. Usage: npm run build -- [--outdir DIR] [--sourcemap] [engine ...]');
    } else if (a === '--sourcemap') sourcemap = true;
    else if (a.startsWith('-')) throw new Error(`Unknown option ${a}. Usage: npm run build -- [--outdir DIR] [--sourcemap] [engine ...]`);
    else names.push(a);
  }
  const engines = names.length ? names.map(engineByName) : ENGINES;
  const started = Date.now();
  const { bundles, missing } = await buildBundles({ outdir, engines, sourcemap });
  let failed = missing.length > 0;
  for (const m of missing) process.stderr.write(`build: ${m.name}: entry point ${m.entry} not found\n`);
  for (const b of bundles) {
    const check = verifyBundle(b.file);
    if (!check.ok) failed = true;
    process.stdout.write(
      `${b.engine.name.padEnd(10)} ${formatBytes(b.bytes).padStart(10)}  ${b.file}  ${check.ok ? 'loads; handler rejects a bad event with EventError' : `DOES NOT LOAD:\n${check.error}`}\n`,
    );
  }
  process.stdout.write(`built ${bundles.length} bundle(s) in ${Date.now() - started} ms\n`);
  if (failed) process.exitCode = 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`build failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
