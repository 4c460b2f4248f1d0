/**
 * The npm package as a custom-rotator author gets it: `npm pack` in a copy of the repository
 * (as a fresh clone has it, with our devDependencies for the build), the tarball installed into
 * an empty project with no access to this repository's node_modules, a TypeScript rotator that
 * imports only 'rotation-lambdas' and its subpaths compiled there, and a full rotation of it run
 * against the package's own Secrets Manager double.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allDrivers } from '../scripts/engines';
import { childEnv, copyRepo, REPO, run } from './support/repo-copy';

const repoManifest = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let work: string;
let tarball: string;
let consumer: string;
let published: Record<string, any>;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'rl-pack-'));
  // npm pack in a copy: prepack rewrites package.json there, never in the repository the other
  // test files are reading. The copy borrows our node_modules for the build tools only.
  const clone = copyRepo('rl-pack-src-');
  try {
    symlinkSync(join(REPO, 'node_modules'), join(clone, 'node_modules'), 'dir');
    run(NPM, ['pack', '--pack-destination', work], { cwd: clone, env: childEnv(), timeout: 240_000 });
    expect(readFileSync(join(clone, 'package.json'), 'utf8'), 'postpack restores package.json').toBe(readFileSync(join(REPO, 'package.json'), 'utf8'));
  } finally {
    rmSync(clone, { recursive: true, force: true });
  }
  const tgz = readdirSync(work).filter((f) => f.endsWith('.tgz'));
  expect(tgz).toHaveLength(1);
  tarball = join(work, tgz[0]);
  run('tar', ['xzf', tarball, '-C', work, 'package/package.json'], { timeout: 30_000 });
  published = JSON.parse(readFileSync(join(work, 'package', 'package.json'), 'utf8'));

  consumer = join(work, 'consumer');
  mkdirSync(join(consumer, 'src'), { recursive: true });
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'commonjs' }, null, 2));
  run(
    NPM,
    ['install', '--prefer-offline', '--no-audit', '--no-fund', '--save-exact', tarball, `typescript@${repoManifest.devDependencies.typescript}`, `@types/node@${repoManifest.devDependencies['@types/node']}`],
    { cwd: consumer, env: childEnv(), timeout: 300_000 },
  );
  copyFileSync(join(__dirname, 'package', 'consumer-rotator.ts.txt'), join(consumer, 'src', 'rotator.ts'));
}, 600_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function tsc(config: object): void {
  writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify(config, null, 2));
  run(process.execPath, [join(consumer, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', consumer], { cwd: consumer, env: childEnv(), timeout: 120_000 });
}

const STRICT = { target: 'ES2022', strict: true, outDir: 'out', rootDir: 'src', types: ['node'], skipLibCheck: false };

describe('npm package', () => {
  it('publishes a manifest with exports and the drivers as optional peers only', () => {
    expect(published.private).toBeUndefined();
    expect(published.scripts).toBeUndefined();
    expect(Object.keys(published.exports)).toEqual(expect.arrayContaining(['.', './db', './testing', './postgres', './mysql', './redshift', './sqlserver', './oracle', './mongodb']));
    for (const d of allDrivers()) {
      expect(published.dependencies[d], d).toBeUndefined();
      expect(published.peerDependencies[d], d).toBe(`^${repoManifest.dependencies[d]}`);
      expect(published.peerDependenciesMeta[d], d).toEqual({ optional: true });
    }
    expect(published.dependencies.esbuild).toBeUndefined();
    // The repository itself keeps them as dependencies, for `sam build`'s `npm install --omit=dev`.
    for (const d of [...allDrivers(), 'esbuild']) expect(repoManifest.dependencies[d], d).toBeDefined();
  });

  it('installs without any database driver', () => {
    for (const d of allDrivers()) expect(existsSync(join(consumer, 'node_modules', d)), `${d} installed`).toBe(false);
    expect(existsSync(join(consumer, 'node_modules', 'esbuild'))).toBe(false);
    const lib = join(consumer, 'node_modules', 'rotation-lambdas', 'lib');
    expect(existsSync(join(lib, 'src', 'api.js'))).toBe(true);
    expect(existsSync(join(lib, 'src', 'api.d.ts'))).toBe(true);
  });

  it('compiles a custom rotator importing only the package and rotates it against the packaged double', () => {
    rmSync(join(consumer, 'out'), { recursive: true, force: true });
    tsc({ compilerOptions: { ...STRICT, module: 'node16', moduleResolution: 'node16' }, include: ['src'] });
    const r = run(process.execPath, [join(consumer, 'out', 'rotator.js')], { cwd: consumer, env: childEnv(), timeout: 60_000 });
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(result.outcome).toMatchObject({ succeeded: true, steps: ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] });
    expect(result.accepted).toBe(true);
    expect(result.token).toMatch(/^[A-Za-z0-9]{40}$/);
    const current = Object.entries(result.stages as Record<string, string[]>).find(([, s]) => s.includes('AWSCURRENT'));
    expect(current?.[0]).toBe(result.outcome.versionId);
    const lines = (result.lines as string[]).map((l) => JSON.parse(l));
    expect(lines.length).toBeGreaterThanOrEqual(8);
    for (const l of lines) {
      expect(l).toMatchObject({ level: expect.stringMatching(/^(INFO|WARN|ERROR|DEBUG)$/), message: expect.any(String), function_request_id: 'request-1', function_name: 'token-rotation' });
      expect(new Date(l.timestamp).toISOString()).toBe(l.timestamp);
    }
    expect(lines[0].cold_start).toBe(true);
    expect(lines.at(-1).cold_start).toBe(false);
    for (const l of result.lines as string[]) expect(l).not.toContain(result.token);
  }, 300_000);

  it('maps every subpath for TypeScript\'s older "node" resolution too (typesVersions)', () => {
    const pkg = join(consumer, 'node_modules', 'rotation-lambdas');
    for (const [sub, target] of Object.entries(published.exports as Record<string, { types?: string }>)) {
      if (!target.types) continue;
      expect(existsSync(join(pkg, target.types)), target.types).toBe(true);
      if (sub !== '.') expect(published.typesVersions['*'][sub.slice(2)]).toEqual([target.types.slice(2)]);
    }
    expect(published.types).toBe(published.exports['.'].types);
  });

  it('an engine entry loads without its driver (loaded on the first connection), which then names the missing peer as CONFIG', () => {
    const script = [
      "const m = require('rotation-lambdas/postgres'); console.log('loaded');",
      "const log = { debug() {}, info() {}, warn() {}, error() {} };",
      "m.postgresEngine.connect({ engine: 'postgres', host: '127.0.0.1', port: 1, username: 'u', password: 'Pw-123456789' },",
      "  { tls: { enabled: false }, connectTimeoutMs: 1000, statementTimeoutMs: 1000, log, env: {} })",
      "  .then(() => console.log('connected'), (e) => console.log(e.code + ' ' + e.message));",
    ].join('\n');
    const r = run(process.execPath, ['-e', script], { cwd: consumer, env: childEnv(), timeout: 30_000 });
    expect(r.stdout).toMatch(/^loaded\nCONFIG The database driver "pg" is not installed .*npm install --save-exact pg\)/);
    const root = run(process.execPath, ['-e', "const m = require('rotation-lambdas'); console.log(typeof m.createHandler, typeof m.Rotator, typeof m.DatabaseRotator)"], { cwd: consumer, env: childEnv(), timeout: 30_000 });
    expect(root.stdout.trim()).toBe('function function undefined');
  });
});
