/**
 * `sam build`, replayed step by step as aws-lambda-builders' NodejsNpmEsbuildBuilder does it
 * (the SAM CLI cannot be installed here), for every function in template.yaml:
 *
 * 1. copy CodeUri without node_modules, .git and .aws-sam;
 * 2. `npm install -q --no-audit --no-save --unsafe-perm --omit=dev` there (production
 *    dependencies only; once, shared by every function, as all share CodeUri `.`);
 * 3. find `esbuild` in that install's `node_modules/.bin` (`npm root` + .bin) — never this
 *    repository's node_modules, which is also removed from PATH;
 * 4. run it as the builder does: the entry point, `--bundle --platform=node --outdir=<artifacts>`,
 *    then each BuildProperties key (SAM turns PascalCase into snake_case, the builder into
 *    kebab-case): `true` → `--key`, a string → `--key=value`, a list → `--key:item` each;
 * 5. load `index.handler` from the artifacts copied into an empty directory.
 *
 * The bundles must be byte-identical to `npm run build`'s.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuildResult, buildBundles, verifyBundle } from '../scripts/build';
import { ENGINES } from '../scripts/engines';
import { loadTemplate } from './support/cfn-template';
import { childEnv, copyRepo, REPO, run, SAM_EXCLUDED } from './support/repo-copy';

const template = loadTemplate(join(REPO, 'template.yaml'));
const functions = Object.entries(template.Resources as Record<string, any>).filter(([, r]) => r.Type === 'AWS::Serverless::Function');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** PascalCase (SAM) → snake_case (SAM's normalizer) → kebab-case (the builder's flag). */
export function flagName(pascal: string): string {
  const snake = pascal.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z])([A-Z][a-z])/g, '$1_$2').toLowerCase();
  return snake.replace(/_/g, '-');
}

/** The esbuild command line aws-lambda-builders makes from a function's BuildProperties. */
export function esbuildArgs(props: Record<string, unknown>, artifactsDir: string): string[] {
  const snake = (k: string) => flagName(k).replace(/-/g, '_');
  const config = new Map(Object.entries(props).map(([k, v]) => [snake(k), v]));
  const entries = config.get('entry_points');
  if (!Array.isArray(entries) || entries.length === 0) throw new Error('EntryPoints must be a non-empty list');
  const args: string[] = [...entries.map(String), '--bundle', '--platform=node', `--outdir=${artifactsDir}`];
  if (!config.has('target')) args.push('--target=es2020');
  if (!config.has('format')) args.push('--format=cjs');
  if (!config.has('minify')) args.push('--minify');
  for (const [key, value] of config) {
    if (['bundle', 'platform', 'outdir', 'use_npm_ci', 'entry_points'].includes(key)) continue;
    const flag = key.replace(/_/g, '-');
    if (typeof value === 'boolean') {
      if (value) args.push(`--${flag}`);
    } else if (typeof value === 'string') args.push(`--${flag}=${value}`);
    else if (Array.isArray(value)) for (const item of value) args.push(`--${flag}:${item}`);
    else throw new Error(`BuildProperties ${key}: unsupported value ${JSON.stringify(value)}`);
  }
  return args;
}

let scratch: string;
let out: string;
let esbuild: string;
let local: BuildResult;
const env = () => {
  const e = childEnv();
  // `npm test` puts this repository's node_modules/.bin on PATH; SAM's build has no such thing.
  e.PATH = (e.PATH ?? '').split(delimiter).filter((p) => !p.includes('node_modules/.bin')).join(delimiter);
  return e;
};

beforeAll(async () => {
  scratch = copyRepo('rl-sam-scratch-', SAM_EXCLUDED);
  out = mkdtempSync(join(tmpdir(), 'rl-sam-out-'));
  run(NPM, ['install', '-q', '--no-audit', '--no-save', '--unsafe-perm', '--omit=dev', '--prefer-offline', '--no-fund'], { cwd: scratch, env: env(), timeout: 300_000 });
  const root = run(NPM, ['root'], { cwd: scratch, env: env(), timeout: 60_000 }).stdout.trim();
  esbuild = join(root, '.bin', 'esbuild');
  local = await buildBundles({ outdir: join(out, 'npm-run-build') });
}, 420_000);

afterAll(() => {
  for (const d of [scratch, out]) if (d) rmSync(d, { recursive: true, force: true });
});

describe('sam build (replayed)', () => {
  it('finds esbuild in the production install of package.json, not on PATH or in a dev install', () => {
    expect(existsSync(esbuild), `${esbuild} (esbuild must be a dependency, not a devDependency)`).toBe(true);
    expect(existsSync(join(scratch, 'node_modules', 'vitest')), 'devDependencies are not installed').toBe(false);
  });

  it('covers every engine function of the template', () => {
    expect(functions.map(([id]) => id).sort()).toEqual(ENGINES.map((e) => `${e.id}Function`).sort());
  });

  describe.each(functions)('%s', (id, fn) => {
    it("builds with the function's BuildProperties, loads from an empty directory and equals npm run build's bundle", () => {
      expect(fn.Metadata?.BuildMethod).toBe('esbuild');
      const codeUri = fn.Properties.CodeUri ?? template.Globals.Function.CodeUri;
      expect(codeUri).toBe('.');
      const handler = fn.Properties.Handler ?? template.Globals.Function.Handler;
      expect(handler).toBe('index.handler');
      const artifacts = join(out, 'sam', id);
      mkdirSync(artifacts, { recursive: true });
      const args = esbuildArgs(fn.Metadata.BuildProperties, artifacts);
      expect(args).toContain('--keep-names');
      run(esbuild, args, { cwd: scratch, env: env(), timeout: 120_000 });
      const file = join(artifacts, 'index.js');
      const check = verifyBundle(file);
      expect(check.error).toBeUndefined();
      expect(check.ok).toBe(true);
      const engine = ENGINES.find((e) => `${e.id}Function` === id)!;
      const mine = local.bundles.find((b) => b.engine.name === engine.name)!;
      expect(readFileSync(file).equals(readFileSync(mine.file)), `${id}: SAM's bundle differs from npm run build's`).toBe(true);
    });
  });

  it('maps PascalCase build properties the way SAM and aws-lambda-builders do', () => {
    expect(esbuildArgs({ EntryPoints: ['a.ts'], KeepNames: true, Sourcemap: false, MainFields: 'module,main', External: ['x', 'y'], Banner: ['js=//b'], Alias: ['@s/p=./shim.ts'] }, '/o')).toEqual([
      'a.ts', '--bundle', '--platform=node', '--outdir=/o', '--target=es2020', '--format=cjs', '--minify',
      '--keep-names', '--main-fields=module,main', '--external:x', '--external:y', '--banner:js=//b', '--alias:@s/p=./shim.ts',
    ]);
  });
});
