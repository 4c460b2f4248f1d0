/**
 * The CLI as a user runs it: the bundled command (scripts/build-cli.ts, run from a temporary
 * directory) and `node bin/rotation-lambdas.js` in child processes, with the
 * Secrets Manager double served over HTTP (SECRETS_MANAGER_ENDPOINT) and the real PostgreSQL
 * server. Hostile passwords throughout; no value of any secret (passwords, whole secret strings)
 * may appear in stdout or stderr, raw, JSON-escaped, base64 or URL-encoded, in any command or mode.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { DatabaseRotator } from '../../src/db/database-rotator';
import { createHandler } from '../../src/handler';
import { startSecretsManagerServer, type SecretsManagerServer } from '../../src/testing';
import { postgresEngine } from '../../rotators/postgres/engine';
import { buildCli } from '../../scripts/build-cli';
import type { PostgresInfo } from '../support/provided';
import { assertNoLeaksInAll, createRotationHarness, type RotationHarness } from '../support/rotation-harness';
import { assertNoSecretIn, type CliResult, spawnCli } from './support';

const info: PostgresInfo = inject('postgres');
const RUN = Math.random().toString(36).slice(2, 6);
let counter = 0;
const uniq = (base: string) => `${base}_${RUN}_${++counter}`;
/** Quotes, backslash, JSON and URL specials, unicode and an emoji: every encoding differs from the raw form. */
const hostilePassword = (tag: string) => `Cl'i"\\/&=+?#%$$;--Ü😀 ${tag} ${RUN}-Pw9`;

let su: Client;
let h: RotationHarness;
let server: SecretsManagerServer;
/** The bundled CLI (scripts/build-cli.ts), built once into a temporary directory. */
let bundleDir: string;
let bundle: string;
/** Most runs use the bundle (fast to start); the bin script itself is run too, below. */
const run = (args: string[], env = {}) => spawnCli(server.endpoint, args, env, bundle);

async function createRole(name: string, password: string, extra = ''): Promise<void> {
  await su.query(`CREATE ROLE ${su.escapeIdentifier(name)} WITH LOGIN PASSWORD ${su.escapeLiteral(password)} ${extra}`);
}
function dbSecret(username: string, password: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { engine: 'postgres', host: info.host, port: info.port, dbname: info.database, username, password, ssl: false, ...extra };
}
/** Every labelled version's whole value and password, of the given secrets. */
async function allValues(...arns: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const arn of arns) {
    for (const id of Object.keys(h.stages(arn))) {
      const v = await h.version(arn, id).catch(() => undefined);
      if (v?.value) out.push(v.value, String(v.json?.password ?? ''));
    }
  }
  return out.filter(Boolean);
}
function noLeak(r: CliResult, values: string[]): void {
  assertNoSecretIn(r.out, values, 'stdout');
  assertNoSecretIn(r.err, values, 'stderr');
}

beforeAll(async () => {
  su = new Client({ host: info.host, port: info.port, user: info.superuser, password: info.superPassword, database: info.database, ssl: false });
  await su.connect();
  h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(postgresEngine), o), env: { CONNECT_TIMEOUT_MS: '3000' } });
  server = await startSecretsManagerServer(h.sm);
  bundleDir = mkdtempSync(join(tmpdir(), 'rl-cli-test-'));
  bundle = await buildCli(bundleDir);
}, 180_000);
afterAll(async () => {
  if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
  await server?.close();
  await su?.end();
});
afterEach(() => {
  assertNoLeaksInAll();
});

describe('rotation-lambdas, spawned', () => {
  it('bundles the control-plane clients the Lambda bundles leave to the runtime (an operator machine has no runtime SDK)', () => {
    const text = readFileSync(bundle, 'utf8');
    for (const pkg of ['@aws-sdk/client-rds', '@aws-sdk/client-redshift', '@aws-sdk/client-redshift-serverless']) expect(text, pkg).not.toContain(`require("${pkg}")`);
    expect(text).toContain('DescribeDBInstances');
  });

  it('status, repair (dry run, then --yes) and preflight on a stuck single-user rotation: readable, right exit codes, no secret printed', { timeout: 180_000 }, async () => {
    const user = uniq('cli app');
    const pw = hostilePassword('single');
    await createRole(user, pw);
    const arn = await h.createSecret(dbSecret(user, pw));
    h.intercept = async (event, invoke) => {
      await invoke(event);
      if (event.Step === 'testSecret') throw new Error('injected fault after testSecret');
    };
    expect((await h.rotate(arn)).succeeded).toBe(false);
    h.intercept = undefined;
    const pendingId = h.holderOf(arn, 'AWSPENDING')!;
    const values = [...(await allValues(arn)), pw, info.superPassword];

    const status = await run(['status', '--secret-id', arn]);
    expect(status.code, status.err).toBe(1);
    expect(status.out).toContain(`AWSPENDING is on version ${pendingId}, not on AWSCURRENT`);
    expect(status.out).toContain('AWSCURRENT (version');
    expect(status.out).toContain('does NOT log in: [AUTH]');
    expect(status.out).toContain('Result: PROBLEM');
    noLeak(status, values);

    const json = await run(['status', '--secret-id', arn, '--json', '--verbose']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.out)).toMatchObject({ stalePending: true, pending: { result: 'ok' }, current: { result: 'AUTH' } });
    noLeak(json, values);

    const preflight = await run(['preflight', '--secret-id', arn, '--verbose']);
    expect(preflight.code).toBe(1);
    expect(preflight.out).toContain('[FAIL] AWSCURRENT logs in and runs the check query (AUTH)');
    expect(preflight.out).toContain('run `rotation-lambdas status` and `repair`');
    noLeak(preflight, values);

    const dry = await run(['repair', '--secret-id', arn]);
    expect(dry.code).toBe(1);
    expect(dry.out).toContain('Dry run: nothing was changed. Run again with --yes to apply.');
    expect(h.holderOf(arn, 'AWSPENDING')).toBe(pendingId);
    noLeak(dry, values);

    const fix = await run(['repair', '--secret-id', arn, '--yes', '--verbose']);
    expect(fix.code, fix.out + fix.err).toBe(0);
    expect(fix.out).toContain(`done: Moved AWSCURRENT`);
    expect(h.holderOf(arn, 'AWSCURRENT')).toBe(pendingId);
    noLeak(fix, values);

    const after = await run(['status', '--secret-id', arn]);
    expect(after.code).toBe(0);
    expect(after.out).toContain('Result: OK');
    noLeak(after, values);
  });

  it('preflight of an alternating-users secret with --json --verbose: exit 0, the admin password never printed', { timeout: 120_000 }, async () => {
    const admin = uniq('cli admin');
    const adminPw = hostilePassword('admin');
    await createRole(admin, adminPw, 'CREATEROLE');
    const user = uniq('cli alt');
    const pw = hostilePassword('alt');
    await createRole(user, pw);
    const adminArn = await h.createSecret({ host: info.host, port: info.port, ssl: false, username: admin, password: adminPw });
    const arn = await h.createSecret(dbSecret(user, pw, { masterarn: adminArn }));
    const r = await run(['preflight', '--secret-id', arn, '--json', '--verbose']);
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.ok).toBe(true);
    expect(report.checks.map((c: { id: string }) => c.id)).toEqual(expect.arrayContaining(['admin.login', 'admin.create-role', 'admin.grant-roles']));
    noLeak(r, [...(await allValues(arn, adminArn)), adminPw, pw]);
  });

  it('bin/rotation-lambdas.js itself (the package\'s bin entry) reads the status of a secret', { timeout: 120_000 }, async () => {
    const user = uniq('cli bin');
    const pw = hostilePassword('bin');
    await createRole(user, pw);
    const arn = await h.createSecret(dbSecret(user, pw));
    const r = await spawnCli(server.endpoint, ['status', '--secret-id', arn]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('AWSCURRENT (version');
    expect(r.out).toContain(') logs in.');
    noLeak(r, [...(await allValues(arn)), pw]);
  });

  it('usage errors exit 2 with the usage text; --help exits 0', { timeout: 120_000 }, async () => {
    const bad = await run(['status']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--secret-id is required');
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('Usage: rotation-lambdas <command>');
  });
});
