/**
 * The control-plane clients of service-managed admin secrets (`@aws-sdk/client-rds`,
 * `@aws-sdk/client-redshift`, `@aws-sdk/client-redshift-serverless`) are External in the Lambda
 * bundles: the Lambda runtime's own AWS SDK (/var/runtime/node_modules, on NODE_PATH) serves them.
 *
 * Each built bundle, copied alone into an empty directory, rotates an alternating-users secret
 * on the real PostgreSQL (Redshift's stand-in too) whose admin secret holds only credentials and
 * the service's tag, all four steps in one fresh process (a warm container):
 * - with NODE_PATH pointing at a directory that holds only that client and its dependencies
 *   (copied from node_modules: no Secrets Manager client, nothing else; as the Lambda runtime's
 *   /var/runtime/node_modules is on NODE_PATH), the bundle requires the client from there, asks the
 *   RDS (or Redshift) double over HTTP for the admin's endpoint, and the rotation succeeds there;
 * - without it, setSecret fails with CONFIG naming the package and the remedy, after the
 *   AWSCURRENT guard and before anything is asked of the service or changed.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createHandler } from '../src';
import { RdsDouble, RedshiftDouble, type SecretsManagerServer, startSecretsManagerServer } from '../src/testing';
import type { JsonResponse } from '../src/testing/wire';
import { type BuildResult, buildBundles } from '../scripts/build';
import { engineByName, RUNTIME_SDK } from '../scripts/engines';
import { type BundleRun, runBundle } from './support/bundle-run';
import { pgLogin } from './support/logins';
import { assertNoLeaksInAll, createRotationHarness } from './support/rotation-harness';

const ROOT = join(__dirname, '..');
const pg = inject('postgres');
const ID = Math.random().toString(36).slice(2, 8);
const APP_PASSWORD = `App'pw;"\\--$$ ${ID}`;
const MODULES = join(ROOT, 'node_modules');

/** The directory of package `name` as Node would find it from `fromDir` (walking up node_modules). */
function packageDir(name: string, fromDir: string): string {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = dir.endsWith(`${sep}node_modules`) ? join(dir, name) : join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) throw new Error(`${name} not found from ${fromDir}`);
  }
}

/**
 * Copies `roots` and their dependency closure (dependencies and installed optionalDependencies)
 * from this repository's node_modules into `dest`, at the same relative paths (nested copies
 * stay nested), so Node resolves among them exactly as it does here, and finds nothing else.
 */
function copyClosure(roots: readonly string[], dest: string): string[] {
  const done = new Set<string>();
  const queue = roots.map((name) => packageDir(name, ROOT));
  while (queue.length) {
    const dir = queue.shift()!;
    if (done.has(dir)) continue;
    done.add(dir);
    const rel = relative(MODULES, dir);
    if (rel.startsWith('..')) throw new Error(`${dir} is outside node_modules`);
    cpSync(dir, join(dest, rel), { recursive: true, filter: (src) => !relative(dir, src).split(sep).includes('node_modules') });
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { dependencies?: object; optionalDependencies?: object };
    for (const dep of Object.keys(pkg.dependencies ?? {})) queue.push(packageDir(dep, dir));
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) {
      try {
        queue.push(packageDir(dep, dir));
      } catch {
        // not installed here: not installed in the runtime either
      }
    }
  }
  return [...done].map((d) => relative(MODULES, d)).sort();
}

/** Serves a double's wire handler over HTTP (the SDK reaches it through AWS_ENDPOINT_URL_<SERVICE>). */
async function serve(handle: (target: string | undefined, body: string) => JsonResponse): Promise<{ server: Server; url: string }> {
  const server = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const target = req.headers['x-amz-target'];
      const r = handle(typeof target === 'string' ? target : undefined, body);
      res.writeHead(r.status, r.headers);
      res.end(r.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

const rds = new RdsDouble();
const redshift = new RedshiftDouble();
const h = createRotationHarness({ handler: (opts) => createHandler({ name: 'unused' } as never, opts) });
let sm: SecretsManagerServer;
let rdsUrl: string;
let redshiftUrl: string;
let serverlessUrl: string;
let servers: Server[] = [];
let work: string;
let su: Client;
let built: BuildResult;
/** NODE_PATH directories: per engine, the runtime SDK clients it leaves External, and their dependencies. */
const runtimeDirs = new Map<string, { dir: string; packages: string[] }>();

beforeAll(async () => {
  sm = await startSecretsManagerServer(h.sm);
  su = new Client({ host: pg.host, port: pg.port, user: pg.superuser, password: pg.superPassword, database: pg.database, ssl: false });
  await su.connect();
  h.sensitive(pg.superPassword, pg.masterPassword, APP_PASSWORD);
  const a = await serve((_t, body) => rds.handle(rds.region, body));
  // Private wire handlers of the double, served over HTTP here (the double's own clients are in-process).
  const b = await serve((_t, body) => (redshift as unknown as { handleQuery(b: string): JsonResponse }).handleQuery(body));
  const c = await serve((t, body) => (redshift as unknown as { handleJson(t: string | undefined, b: string): JsonResponse }).handleJson(t, body));
  servers = [a.server, b.server, c.server];
  [rdsUrl, redshiftUrl, serverlessUrl] = [a.url, b.url, c.url];
  work = mkdtempSync(join(tmpdir(), 'rl-runtime-sdk-'));
  built = await buildBundles({ outdir: join(work, 'dist'), engines: [engineByName('postgres'), engineByName('redshift')] });
  for (const [name, clients] of [
    ['postgres', RUNTIME_SDK.rds],
    ['redshift', RUNTIME_SDK.redshift],
  ] as const) {
    const dir = join(work, `runtime-${name}`, 'node_modules');
    mkdirSync(dir, { recursive: true });
    runtimeDirs.set(name, { dir, packages: copyClosure(clients, dir) });
  }
}, 240_000);

afterAll(async () => {
  await sm?.close();
  await su?.end();
  for (const s of servers) await new Promise<void>((resolve) => s.close(() => resolve()));
  if (work) rmSync(work, { recursive: true, force: true });
  assertNoLeaksInAll();
});

async function runEngineBundle(name: string, events: ReadonlyArray<{ Step: string }>, nodePath: string | undefined): Promise<BundleRun> {
  const env: NodeJS.ProcessEnv = {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'secret-key-example',
    SECRETS_MANAGER_ENDPOINT: sm.endpoint,
    AWS_ENDPOINT_URL_RDS: rdsUrl,
    AWS_ENDPOINT_URL_REDSHIFT: redshiftUrl,
    AWS_ENDPOINT_URL_REDSHIFT_SERVERLESS: serverlessUrl,
    CONNECT_TIMEOUT_MS: '5000',
    // The managed admin secrets carry no CA: the deployment's bundle verifies the admin's server.
    SSL_CA_BUNDLE: pg.caFile,
    LOG_LEVEL: 'info',
  };
  if (nodePath) env.NODE_PATH = nodePath;
  const r = await runBundle(built.bundles.find((x) => x.engine.name === name)!.file, events, env);
  // The no-leak check covers the child's log lines, its errors and its stderr.
  h.logs.push(...r.logs.map((l) => JSON.stringify(l)));
  h.errors.push(...r.raw);
  return r;
}

/**
 * An alternating-users child secret for a new user of the real server, whose admin secret holds
 * only the credentials of `admin` and `tag`; the four events of one rotation.
 */
async function managedPair(engine: string, admin: { username: string; password: string }, tag: { Key: string; Value: string }) {
  const user = `rt_${engine}_${ID}_${Math.random().toString(36).slice(2, 6)}`;
  await su.query(`CREATE ROLE ${su.escapeIdentifier(user)} LOGIN PASSWORD ${su.escapeLiteral(APP_PASSWORD)}`);
  if (pg.versionNum >= 160000) await su.query(`GRANT ${su.escapeIdentifier(user)} TO ${su.escapeIdentifier(admin.username)} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`);
  const adminArn = await h.createSecret(admin);
  h.sm.tagSecret(adminArn, [tag]);
  const arn = await h.createSecret({ engine, host: 'localhost', port: pg.port, username: user, password: APP_PASSWORD, dbname: pg.database, ssl: false, masterarn: adminArn });
  const run = h.begin(arn);
  const steps = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;
  return { arn, run, user, events: steps.map((step) => run.event(step)) };
}

/** After a successful rotation: AWSCURRENT is the clone with a new password that logs in; the original user still logs in with its old one. */
async function expectRotatedToClone(arn: string, user: string): Promise<void> {
  const cur = await h.credentials(arn);
  h.sensitive(cur.password);
  expect(cur.username).toBe(`${user}_clone`);
  expect(await pgLogin(pg, cur.username, cur.password)).toBe('ok');
  expect(await pgLogin(pg, user, APP_PASSWORD)).toBe('ok');
}

/** A rotation refused in setSecret changed nothing: no clone, AWSCURRENT unchanged and logging in. */
async function expectUnchanged(arn: string, user: string): Promise<void> {
  expect((await su.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [`${user}_clone`])).rowCount).toBe(0);
  const cur = await h.credentials(arn);
  expect([cur.username, cur.password]).toEqual([user, APP_PASSWORD]);
  expect(await pgLogin(pg, user, APP_PASSWORD)).toBe('ok');
}

const MASTER = () => ({ username: pg.master, password: pg.masterPassword });

describe('the runtime directory (NODE_PATH) of the test', () => {
  it('holds the clients left External and their dependencies, and no Secrets Manager client', () => {
    const pg = runtimeDirs.get('postgres')!;
    expect(pg.packages).toContain('@aws-sdk/client-rds');
    expect(pg.packages).not.toContain('@aws-sdk/client-secrets-manager');
    expect(pg.packages).not.toContain('@aws-sdk/client-redshift');
    expect(existsSync(join(pg.dir, '@aws-sdk', 'client-secrets-manager'))).toBe(false);
    expect(readdirSync(join(pg.dir, '@aws-sdk'))).toContain('client-rds');
    const rs = runtimeDirs.get('redshift')!;
    expect(rs.packages).toEqual(expect.arrayContaining(['@aws-sdk/client-redshift', '@aws-sdk/client-redshift-serverless']));
    expect(rs.packages).not.toContain('@aws-sdk/client-rds');
  });
});

describe('postgres bundle, RDS-managed admin secret', () => {
  it("with the runtime's SDK on NODE_PATH: requires client-rds from there, finds the admin's endpoint in the RDS API, and rotates", async () => {
    const dbArn = rds.addInstance({ id: `bundle-pg-${ID}`, engine: 'postgres', address: 'localhost', port: pg.port });
    const { arn, run, user, events } = await managedPair('postgres', MASTER(), { Key: 'aws:rds:primaryDBInstanceArn', Value: dbArn });
    const before = rds.calls.length;
    const r = await runEngineBundle('postgres', events, runtimeDirs.get('postgres')!.dir);
    expect(r.steps.map((s) => [s.step, s.code, s.message])).toEqual(events.map((e) => [e.Step, null, undefined]));
    run.complete();
    expect(rds.calls.slice(before).map((c) => [c.action, c.params.DBInstanceIdentifier])).toEqual([['DescribeDBInstances', dbArn]]);
    expect(r.logs.find((l) => l.message === 'admin secret endpoint')).toMatchObject({ host: 'localhost', port: pg.port, endpointFrom: `RDS instance ${dbArn}` });
    expect(r.fromRuntime).toBeGreaterThan(0);
    await expectRotatedToClone(arn, user);
  }, 120_000);

  it('without it: setSecret fails with CONFIG naming @aws-sdk/client-rds and the remedy; RDS is not asked, nothing changes', async () => {
    const dbArn = rds.addInstance({ id: `bundle-pg2-${ID}`, engine: 'postgres', address: 'localhost', port: pg.port });
    const { arn, user, events } = await managedPair('postgres', MASTER(), { Key: 'aws:rds:primaryDBInstanceArn', Value: dbArn });
    const before = rds.calls.length;
    const r = await runEngineBundle('postgres', events.slice(0, 2), undefined);
    expect(r.steps[0]).toEqual({ step: 'createSecret', code: null });
    expect(r.steps[1]).toMatchObject({ step: 'setSecret', code: 'CONFIG', name: 'ConfigError' });
    expect(r.steps[1].message).toContain('"@aws-sdk/client-rds" cannot be loaded');
    expect(r.steps[1].remedy).toMatch(/Add "host" and "port" to the admin secret, or run where @aws-sdk\/client-rds is present/);
    expect(rds.calls.length).toBe(before);
    expect(r.fromRuntime).toBe(0);
    await expectUnchanged(arn, user);
  }, 120_000);
});

describe('redshift bundle, Redshift-managed admin secrets (PostgreSQL standing in for Redshift)', () => {
  let admin: { username: string; password: string };
  beforeAll(async () => {
    admin = { username: `rt_rs_admin_${ID}`, password: `Rs-Admin-${ID}-Password` };
    h.sensitive(admin.password);
    await su.query(`CREATE USER ${su.escapeIdentifier(admin.username)} SUPERUSER PASSWORD ${su.escapeLiteral(admin.password)}`);
  });

  it("with the runtime's SDK on NODE_PATH: a provisioned cluster's and a Serverless namespace's endpoints come from the Redshift APIs", async () => {
    const clusterArn = redshift.addCluster(`bundle-rs-${ID}`, 'localhost', pg.port);
    const nsArn = redshift.addNamespace(`bundle-ns-${ID}`);
    redshift.addWorkgroup(`bundle-wg-${ID}`, `bundle-ns-${ID}`, 'localhost', pg.port);
    for (const [tag, from] of [
      [{ Key: 'aws:redshift:primaryClusterArn', Value: clusterArn }, `Redshift cluster ${clusterArn}`],
      [{ Key: 'aws:redshift-serverless:namespaceArn', Value: nsArn }, `Redshift Serverless workgroup bundle-wg-${ID} of namespace bundle-ns-${ID}`],
    ] as const) {
      const { arn, run, user, events } = await managedPair('redshift', admin, tag);
      const r = await runEngineBundle('redshift', events, runtimeDirs.get('redshift')!.dir);
      expect(r.steps.map((s) => [s.step, s.code, s.message])).toEqual(events.map((e) => [e.Step, null, undefined]));
      run.complete();
      expect(r.logs.find((l) => l.message === 'admin secret endpoint')).toMatchObject({ host: 'localhost', port: pg.port, endpointFrom: from });
      expect(r.fromRuntime).toBeGreaterThan(0);
      await expectRotatedToClone(arn, user);
    }
  }, 120_000);

  it.each([
    ['aws:redshift:primaryClusterArn', '@aws-sdk/client-redshift'],
    ['aws:redshift-serverless:namespaceArn', '@aws-sdk/client-redshift-serverless'],
  ])('without it (%s): setSecret fails with CONFIG naming %s; nothing changes', async (key, pkg) => {
    const value = key.includes('serverless') ? redshift.addNamespace(`bundle-ns2-${ID}`) : redshift.addCluster(`bundle-rs2-${ID}`, 'localhost', pg.port);
    const { arn, user, events } = await managedPair('redshift', admin, { Key: key, Value: value });
    const before = redshift.calls.length;
    const r = await runEngineBundle('redshift', events.slice(0, 2), undefined);
    expect(r.steps[1]).toMatchObject({ step: 'setSecret', code: 'CONFIG', name: 'ConfigError' });
    expect(r.steps[1].message).toContain(`"${pkg}" cannot be loaded`);
    expect(r.steps[1].remedy).toContain(`Add "host" and "port" to the admin secret, or run where ${pkg} is present`);
    expect(redshift.calls.length).toBe(before);
    await expectUnchanged(arn, user);
  }, 120_000);
});
