/**
 * Preflight, status and repair against the real PostgreSQL server (global setup) and the Secrets
 * Manager double: the configuration test run (RotateImmediately=false) runs the preflight through
 * the real handler; the CLI's main() runs status/repair against the double over HTTP. Each stuck
 * state is made the way a real fault makes it: a step of a real rotation fails.
 */
import { PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { Client } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { DatabaseRotator } from '../../src/db/database-rotator';
import { createHandler } from '../../src/handler';
import type { Env } from '../../src/password';
import { postgresEngine } from '../../rotators/postgres/engine';
import { RdsDouble } from '../../src/testing';
import type { PostgresInfo } from '../support/provided';
import { assertNoLeaksInAll, createRotationHarness, type RotationHarness } from '../support/rotation-harness';
import { assertNoSecretIn, configurationTest, runCli } from './support';
import { pgLogin } from '../support/logins';

const info: PostgresInfo = inject('postgres');
const RUN = Math.random().toString(36).slice(2, 6);
let counter = 0;
const uniq = (base: string) => `${base}_${RUN}_${++counter}`;
const hostilePassword = (tag: string) => `Op'q"\\$$;--%Ü ${tag} ${RUN}-Pw9`;

let su: Client;
let adminUser: string;
let adminPassword: string;
let serverVersion: number;
const ident = (s: string) => su.escapeIdentifier(s);
const literal = (s: string) => su.escapeLiteral(s);

async function createRole(name: string, password: string, extra = ''): Promise<void> {
  await su.query(`CREATE ROLE ${ident(name)} WITH LOGIN PASSWORD ${literal(password)} ${extra}`);
}
async function roleExists(name: string): Promise<boolean> {
  return (await su.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount === 1;
}
const tryLogin = (user: string, password: string): Promise<string> => pgLogin(info, user, password);
function dbSecret(username: string, password: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { engine: 'postgres', host: info.host, port: info.port, dbname: info.database, username, password, ssl: false, ...extra };
}
function harness(env: Env = {}): RotationHarness {
  const h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(postgresEngine), o), env: { CONNECT_TIMEOUT_MS: '3000', ...env } });
  h.sensitive(info.superPassword, adminPassword);
  return h;
}
async function alternating(h: RotationHarness, user: string, password: string, admin: Record<string, unknown> = { username: adminUser, password: adminPassword }) {
  if (serverVersion >= 160000) await su.query(`GRANT ${ident(user)} TO ${ident(adminUser)} WITH ADMIN OPTION`);
  const adminArn = await h.createSecret({ host: info.host, port: info.port, ssl: false, ...admin });
  const arn = await h.createSecret(dbSecret(user, password, { masterarn: adminArn }));
  return { arn, adminArn };
}
/** The preflight's log lines, by check id. */
function checksLogged(h: RotationHarness): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of h.records()) if (typeof r.preflightCheck === 'string') out[r.preflightCheck] = String(r.status);
  return out;
}
/** Make the rotation fail at `step` (before it runs, or after it succeeded). */
function faultAt(h: RotationHarness, step: string, when: 'before' | 'after'): void {
  h.intercept = async (event, invoke) => {
    if (event.Step === step && when === 'before') throw new Error(`injected fault before ${step}`);
    await invoke(event);
    if (event.Step === step && when === 'after') throw new Error(`injected fault after ${step}`);
  };
}

beforeAll(async () => {
  su = new Client({ host: info.host, port: info.port, user: info.superuser, password: info.superPassword, database: info.database, ssl: false });
  await su.connect();
  serverVersion = Number((await su.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0].v);
  adminUser = uniq('ops admin "A"');
  adminPassword = hostilePassword('admin');
  await createRole(adminUser, adminPassword, 'CREATEROLE CREATEDB');
});
afterAll(async () => {
  await su?.end();
});
afterEach(() => {
  assertNoLeaksInAll();
});

describe('preflight (RotateSecret with RotateImmediately=false)', () => {
  it('single user: every check passes, nothing changes', async () => {
    const h = harness();
    const user = uniq('app');
    const pw = hostilePassword('single');
    await createRole(user, pw);
    const arn = await h.createSecret(dbSecret(user, pw));
    const before = h.stages(arn);
    const r = await configurationTest(h, arn);
    expect(r.error).toBeUndefined();
    expect(r.steps).toEqual(['testSecret']);
    expect(h.stages(arn)).toEqual(before);
    expect(await tryLogin(user, pw)).toBe('ok');
    expect(checksLogged(h)).toMatchObject({ 'secret.shape': 'pass', 'secret.tls': 'warn', 'current.login': 'pass', 'single.writer': 'pass', 'single.rds-password': 'pass' });
  });

  it('single user on an RDS-like server with rds.restrict_password_commands on: fails with PRIVILEGE until the user is in rds_password', async () => {
    await su.query(`DO $$ BEGIN CREATE ROLE rds_password NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
    const h = harness();
    const user = uniq('app');
    const pw = hostilePassword('rdspw');
    await createRole(user, pw);
    // The parameter as RDS shows it to the session (here set for this role only).
    await su.query(`ALTER ROLE ${ident(user)} SET rds.restrict_password_commands = 'on'`);
    const arn = await h.createSecret(dbSecret(user, pw));
    const r = await configurationTest(h, arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/PreflightError|\[PRIVILEGE\]/);
    expect(r.error).toContain('found 1 problem(s)');
    expect(r.error).toContain('rds.restrict_password_commands is on');
    expect(r.error).toContain(`GRANT rds_password TO "${user}"`);
    expect(checksLogged(h)['single.rds-password']).toBe('fail');
    expect(await tryLogin(user, pw)).toBe('ok');

    await su.query(`GRANT rds_password TO ${ident(user)}`);
    const again = await configurationTest(h, arn);
    expect(again.error).toBeUndefined();
  });

  it('alternating users: admin secret, endpoint, admin login and privileges all pass; the clone is not created', async () => {
    const h = harness();
    const user = uniq('app');
    const pw = hostilePassword('alt');
    await createRole(user, pw);
    const { arn } = await alternating(h, user, pw);
    const r = await configurationTest(h, arn);
    expect(r.error).toBeUndefined();
    expect(await roleExists(`${user}_clone`)).toBe(false);
    expect(checksLogged(h)).toMatchObject({
      'alternate.name': 'pass',
      'admin.secret': 'pass',
      'admin.distinct': 'pass',
      'admin.endpoint': 'pass',
      'admin.login': 'pass',
      'admin.writer': 'pass',
      'admin.create-role': 'pass',
      'admin.grant-roles': 'pass',
    });
  });

  it('reports every failure together: a bad password policy, a too-long alternate name AND an admin without CREATEROLE; nothing is created', async () => {
    const h = harness({ PASSWORD_LENGTH: '3' });
    const user = `${uniq('app')}_${'x'.repeat(60)}`.slice(0, 60);
    const pw = hostilePassword('many');
    await createRole(user, pw);
    const weak = uniq('weak admin');
    const weakPw = hostilePassword('weak');
    await createRole(weak, weakPw);
    h.sensitive(weakPw);
    const { arn } = await alternating(h, user, pw, { username: weak, password: weakPw });
    const r = await configurationTest(h, arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('found 3 problem(s)');
    expect(r.error).toMatch(/\(1\) \[CONFIG\] The password policy works with GetRandomPassword: PASSWORD_LENGTH must be between 4 and 4096/);
    expect(r.error).toMatch(/\(2\) \[SECRET_FORMAT\] The alternate user name fits the limit/);
    expect(r.error).toMatch(/\(3\) \[PRIVILEGE\] The admin may create .*neither SUPERUSER nor CREATEROLE/);
    expect(await roleExists(`${user}_clone`)).toBe(false);
  });

  it('AWSCURRENT refused: the admin logs in but the admin-side checks are not run for a secret whose own credentials fail', async () => {
    const h = harness();
    const user = uniq('app');
    await createRole(user, hostilePassword('real'));
    const { arn } = await alternating(h, user, hostilePassword('wrong'));
    const r = await configurationTest(h, arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/\(1\) \[AUTH\] AWSCURRENT logs in/);
    const logged = checksLogged(h);
    expect(logged['admin.login']).toBe('pass');
    expect(logged['admin.rest']).toBe('skip');
    expect(logged['admin.create-role']).toBeUndefined();
  });

  it('attack: a child secret pointing at a rogue listener never receives the admin credentials (admin secret without host, no RDS tag)', async () => {
    const received: Buffer[] = [];
    const rogue: Server = createServer((s) => {
      s.on('data', (d: Buffer) => received.push(d));
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => rogue.listen(0, '127.0.0.1', r));
    const port = (rogue.address() as { port: number }).port;
    try {
      const h = harness({ CONNECT_TIMEOUT_MS: '1000' });
      const user = uniq('victim');
      const adminArn = await h.createSecret({ username: adminUser, password: adminPassword });
      const arn = await h.createSecret(dbSecret(user, hostilePassword('c'), { port, masterarn: adminArn }));
      const r = await configurationTest(h, arn);
      expect(r.succeeded).toBe(false);
      expect(r.error).toMatch(/\[CONFIG\] The admin secret resolves to this database: The admin secret .* has no "host" field/);
      const bytes = Buffer.concat(received);
      expect(bytes.includes(Buffer.from(adminUser))).toBe(false);
      expect(bytes.includes(Buffer.from(adminPassword))).toBe(false);
    } finally {
      await new Promise<void>((r) => rogue.close(() => r()));
    }
  });

  it('an RDS-managed admin secret (credentials only): the endpoint comes from the RDS API over verified TLS; an unknown database fails the check', async () => {
    const rds = new RdsDouble();
    const h = createRotationHarness({
      handler: (o) => createHandler(new DatabaseRotator(postgresEngine, { rdsClient: (region) => rds.client(region) }), o),
      env: { SSL_CA_BUNDLE: info.caFile, CONNECT_TIMEOUT_MS: '3000' },
    });
    h.sensitive(info.superPassword, adminPassword);
    const user = uniq('managed');
    const pw = hostilePassword('managed');
    await createRole(user, pw);
    if (serverVersion >= 160000) await su.query(`GRANT ${ident(user)} TO ${ident(adminUser)} WITH ADMIN OPTION`);
    const dbArn = rds.addInstance({ id: uniq('orders-pg').replace(/_/g, '-'), engine: 'postgres', address: 'localhost', port: info.port });
    const adminArn = await h.createSecret({ username: adminUser, password: adminPassword });
    h.sm.tagSecret(adminArn, [{ Key: 'aws:rds:primaryDBInstanceArn', Value: dbArn }]);
    const arn = await h.createSecret(dbSecret(user, pw, { host: 'localhost', masterarn: adminArn }));
    const r = await configurationTest(h, arn);
    expect(r.error).toBeUndefined();
    expect(checksLogged(h)).toMatchObject({ 'admin.endpoint': 'pass', 'admin.tls': 'pass', 'admin.login': 'pass' });
    expect(rds.calls.map((c) => c.action)).toEqual(['DescribeDBInstances']);

    // The tag names a database RDS does not know: the check fails with what to do, nothing else breaks.
    h.sm.tagSecret(adminArn, [{ Key: 'aws:rds:primaryDBInstanceArn', Value: `${dbArn}-gone` }]);
    const gone = await configurationTest(h, arn);
    expect(gone.succeeded).toBe(false);
    expect(gone.error).toMatch(/\[STATE\] The admin secret resolves to this database: The admin secret is tagged with the RDS instance .*-gone, which RDS does not know/);
  });

  it('an admin secret for another host fails the endpoint check (STATE); ADMIN_HOST_FROM_CHILD=true lets a host-less admin secret pass', async () => {
    const h = harness();
    const user = uniq('app');
    const pw = hostilePassword('host');
    await createRole(user, pw);
    const { arn } = await alternating(h, user, pw, { host: 'db.elsewhere.example', username: adminUser, password: adminPassword });
    const r = await configurationTest(h, arn);
    expect(r.error).toMatch(/\[STATE\] The admin secret resolves to this database: The admin secret's host "db.elsewhere.example"/);

    const h2 = harness({ ADMIN_HOST_FROM_CHILD: 'true' });
    const adminArn = await h2.createSecret({ username: adminUser, password: adminPassword, ssl: false });
    const arn2 = await h2.createSecret(dbSecret(user, pw, { masterarn: adminArn }));
    const ok = await configurationTest(h2, arn2);
    expect(ok.error).toBeUndefined();
    expect(checksLogged(h2)['admin.endpoint']).toBe('pass');
  });
});

describe('status and repair of each stuck state', () => {
  for (const [step, when] of [['setSecret', 'after'], ['testSecret', 'before'], ['testSecret', 'after'], ['finishSecret', 'before']] as const) {
    it(`single user, fault ${when} ${step} (password already changed): repair finishes the rotation`, async () => {
      const h = harness();
      const user = uniq('app');
      const pw = hostilePassword('s1');
      await createRole(user, pw);
      const arn = await h.createSecret(dbSecret(user, pw));
      faultAt(h, step, when);
      const failed = await h.rotate(arn);
      expect(failed.succeeded).toBe(false);
      h.intercept = undefined;
      const pendingId = h.holderOf(arn, 'AWSPENDING')!;
      const currentId = h.holderOf(arn, 'AWSCURRENT')!;
      expect(pendingId).not.toBe(currentId);
      expect(await tryLogin(user, pw)).toBe('28P01');

      const status = await runCli(h, ['status', '--secret-id', arn, '--json']);
      expect(status.code).toBe(1);
      const s = JSON.parse(status.out);
      expect(s).toMatchObject({ stalePending: true, pendingHasValue: true, current: { result: 'AUTH' }, pending: { result: 'ok' }, ok: false });
      expect(s.versions.map((v: { versionId: string }) => v.versionId).sort()).toEqual([currentId, pendingId].sort());

      const dry = await runCli(h, ['repair', '--secret-id', arn]);
      expect(dry.code).toBe(1);
      expect(dry.out).toContain('Dry run: nothing was changed');
      expect(dry.out).toContain(`moving AWSCURRENT from version ${currentId} to ${pendingId}`);
      expect(h.holderOf(arn, 'AWSPENDING')).toBe(pendingId);

      const fix = await runCli(h, ['repair', '--secret-id', arn, '--yes']);
      expect(fix.code).toBe(0);
      expect(fix.out).toContain('Repaired.');
      expect(h.stages(arn)).toEqual({ [pendingId]: ['AWSCURRENT'], [currentId]: ['AWSPREVIOUS'] });
      const cur = await h.credentials(arn);
      expect(await tryLogin(user, cur.password)).toBe('ok');
      expect((await runCli(h, ['status', '--secret-id', arn])).code).toBe(0);
      // The next rotation is no longer blocked by "A previous rotation isn't complete".
      expect((await h.rotate(arn)).succeeded).toBe(true);
      assertNoSecretIn(status.out + dry.out + fix.out + status.err + dry.err + fix.err, [pw, cur.password, info.superPassword]);
    });
  }

  it('faults during repair itself: a failed first label move changes nothing; a failed second one leaves a healthy state; a rerun finishes', async () => {
    const h = harness();
    const user = uniq('app');
    const pw = hostilePassword('rf');
    await createRole(user, pw);
    const arn = await h.createSecret(dbSecret(user, pw));
    faultAt(h, 'testSecret', 'before');
    expect((await h.rotate(arn)).succeeded).toBe(false);
    h.intercept = undefined;
    const pendingId = h.holderOf(arn, 'AWSPENDING')!;
    const before = h.stages(arn);

    h.sm.failNext('UpdateSecretVersionStage', 'AccessDeniedException');
    const first = await runCli(h, ['repair', '--secret-id', arn, '--yes']);
    expect(first.code).toBe(2);
    expect(first.err).toContain('AccessDeniedException');
    expect(h.stages(arn)).toEqual(before);

    // The AWSCURRENT move succeeds, the AWSPENDING removal fails: both labels sit on one version.
    const moves = h.sm.countCalls('UpdateSecretVersionStage');
    const orig = h.sm.invoke.bind(h.sm);
    let n = 0;
    h.sm.invoke = (op, input) => {
      if (op === 'UpdateSecretVersionStage' && ++n === 2) h.sm.failNext('UpdateSecretVersionStage', 'AccessDeniedException');
      return orig(op, input);
    };
    const second = await runCli(h, ['repair', '--secret-id', arn, '--yes']);
    h.sm.invoke = orig;
    expect(second.code).toBe(2);
    expect(h.sm.countCalls('UpdateSecretVersionStage')).toBe(moves + 2);
    expect(h.stages(arn)[pendingId]).toEqual(expect.arrayContaining(['AWSCURRENT', 'AWSPENDING']));
    // Not stale (AWSPENDING is on AWSCURRENT's version): healthy, and the next rotation may start.
    expect((await runCli(h, ['status', '--secret-id', arn])).code).toBe(0);
    expect((await runCli(h, ['repair', '--secret-id', arn, '--yes'])).code).toBe(0);
    expect((await h.rotate(arn)).succeeded).toBe(true);
  });

  it('single user, fault before setSecret: the pending value does not log in, AWSCURRENT does: repair removes the stale label', async () => {
    const h = harness();
    const user = uniq('app');
    const pw = hostilePassword('s3');
    await createRole(user, pw);
    const arn = await h.createSecret(dbSecret(user, pw));
    faultAt(h, 'setSecret', 'before');
    expect((await h.rotate(arn)).succeeded).toBe(false);
    h.intercept = undefined;
    const pendingId = h.holderOf(arn, 'AWSPENDING')!;
    const s = JSON.parse((await runCli(h, ['status', '--secret-id', arn, '--json'])).out);
    expect(s).toMatchObject({ stalePending: true, pendingHasValue: true, current: { result: 'ok' }, pending: { result: 'AUTH' } });
    const fix = await runCli(h, ['repair', '--secret-id', arn, '--yes']);
    expect(fix.code).toBe(0);
    expect(fix.out).toContain(`AWSPENDING label is removed from version ${pendingId}`);
    expect(h.holderOf(arn, 'AWSPENDING')).toBeUndefined();
    expect(await tryLogin(user, pw)).toBe('ok');
    expect((await h.rotate(arn)).succeeded).toBe(true);
  });

  it('value-less AWSPENDING (createSecret never stored a value): repair removes the placeholder label', async () => {
    const h = harness();
    const user = uniq('app');
    const pw = hostilePassword('s4');
    await createRole(user, pw);
    const arn = await h.createSecret(dbSecret(user, pw));
    h.sm.failNext('PutSecretValue', 'InternalServiceError');
    expect((await h.rotate(arn)).succeeded).toBe(false);
    const s = JSON.parse((await runCli(h, ['status', '--secret-id', arn, '--json'])).out);
    expect(s).toMatchObject({ stalePending: true, pendingHasValue: false, current: { result: 'ok' } });
    expect(s.diagnosis.join(' ')).toContain('has no value');
    expect((await runCli(h, ['repair', '--secret-id', arn, '--yes'])).code).toBe(0);
    expect(h.holderOf(arn, 'AWSPENDING')).toBeUndefined();
    expect((await h.rotate(arn)).succeeded).toBe(true);
  });

  it('neither AWSCURRENT nor AWSPENDING logs in: repair changes nothing and says so', async () => {
    const h = harness();
    const user = uniq('app');
    const pw = hostilePassword('s5');
    await createRole(user, pw);
    const arn = await h.createSecret(dbSecret(user, pw));
    faultAt(h, 'testSecret', 'before');
    expect((await h.rotate(arn)).succeeded).toBe(false);
    h.intercept = undefined;
    const other = hostilePassword('dba-reset');
    h.sensitive(other);
    await su.query(`ALTER ROLE ${ident(user)} PASSWORD ${literal(other)}`);
    const before = h.stages(arn);
    const fix = await runCli(h, ['repair', '--secret-id', arn, '--yes']);
    expect(fix.code).toBe(1);
    expect(fix.out).toContain('neither credential works, so repair changes nothing');
    expect(fix.out).toContain('Nothing was changed.');
    expect(h.stages(arn)).toEqual(before);
    assertNoSecretIn(fix.out + fix.err, [pw, other]);
  });

  it('attack: a hand-written AWSPENDING naming another host is never promoted, even though it logs in', async () => {
    const h = harness();
    const user = uniq('app');
    const pw = hostilePassword('s6');
    await createRole(user, pw);
    const arn = await h.createSecret(dbSecret(user, pw));
    const run = h.begin(arn);
    const newPw = hostilePassword('forged');
    h.sensitive(newPw);
    // "localhost" reaches the same server, so this value would log in; it is not what createSecret makes.
    await h.client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: run.versionId, SecretString: JSON.stringify(dbSecret(user, newPw, { host: 'localhost' })), VersionStages: ['AWSPENDING'] }));
    await su.query(`ALTER ROLE ${ident(user)} PASSWORD ${literal(newPw)}`);
    const before = h.stages(arn);
    const fix = await runCli(h, ['repair', '--secret-id', arn, '--yes']);
    expect(fix.code).toBe(1);
    expect(fix.out).toContain('may not be promoted');
    expect(fix.out).toContain('"host" differs from AWSCURRENT');
    expect(h.stages(arn)).toEqual(before);
  });

  it('AWSCURRENT unreachable (NETWORK): repair cannot tell and changes nothing', async () => {
    const h = harness({ CONNECT_TIMEOUT_MS: '1000' });
    const arn = await h.createSecret(dbSecret(uniq('app'), hostilePassword('net'), { port: 1 }));
    const run = h.begin(arn);
    await h.client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: run.versionId, SecretString: JSON.stringify(dbSecret('x', hostilePassword('n2'), { port: 1 })), VersionStages: ['AWSPENDING'] }));
    const before = h.stages(arn);
    const fix = await runCli(h, ['repair', '--secret-id', arn, '--yes']);
    expect(fix.code).toBe(1);
    expect(fix.out).toContain('could not be tested ([NETWORK]');
    expect(h.stages(arn)).toEqual(before);
  });

  it('alternating users, fault after setSecret: AWSCURRENT still logs in, repair removes the stale label and the next rotation works', async () => {
    const h = harness();
    const user = uniq('app');
    const pw = hostilePassword('alt');
    await createRole(user, pw);
    const { arn } = await alternating(h, user, pw);
    faultAt(h, 'setSecret', 'after');
    expect((await h.rotate(arn)).succeeded).toBe(false);
    h.intercept = undefined;
    const s = JSON.parse((await runCli(h, ['status', '--secret-id', arn, '--json'])).out);
    expect(s).toMatchObject({ strategy: 'alternating', stalePending: true, current: { result: 'ok' }, pending: { result: 'ok' } });
    const fix = await runCli(h, ['repair', '--secret-id', arn, '--yes']);
    expect(fix.code).toBe(0);
    expect(h.holderOf(arn, 'AWSPENDING')).toBeUndefined();
    expect((await h.rotate(arn)).succeeded).toBe(true);
    const cur = await h.credentials(arn);
    expect(cur.username).toBe(`${user}_clone`);
    expect(await tryLogin(cur.username, cur.password)).toBe('ok');
  });

  it('AWSCURRENT refused after a restore from backup, no rotation pending: status says AWSPREVIOUS still logs in; repair moves nothing back', async () => {
    const h = harness();
    const user = uniq('app');
    const pw = hostilePassword('restore');
    await createRole(user, pw);
    const arn = await h.createSecret(dbSecret(user, pw));
    const first = h.holderOf(arn, 'AWSCURRENT')!;
    expect((await h.rotate(arn)).succeeded).toBe(true);
    await su.query(`ALTER ROLE ${ident(user)} PASSWORD ${literal(pw)}`); // the database restored from a backup
    const st = await runCli(h, ['status', '--secret-id', arn]);
    expect(st.code).toBe(1);
    expect(st.out).toContain(`AWSPREVIOUS (version ${first}) still logs in`);
    const before = h.stages(arn);
    const fix = await runCli(h, ['repair', '--secret-id', arn, '--yes']);
    expect(fix.code).toBe(1);
    expect(fix.out).toContain('Nothing was changed.');
    expect(h.stages(arn)).toEqual(before);
    assertNoSecretIn(st.out + fix.out, [pw, (await h.credentials(arn)).password]);
  });

  it('a secret no built-in rotator serves: status still lists versions and labels, preflight fails, nothing is tried', async () => {
    const h = harness();
    const arn = await h.createSecret({ engine: 'db2', host: info.host, username: 'x', password: hostilePassword('db2') });
    const st = await runCli(h, ['status', '--secret-id', arn, '--json']);
    expect(st.code).toBe(1);
    const s = JSON.parse(st.out);
    expect(s.versions).toHaveLength(1);
    expect(s.current).toMatchObject({ result: 'SECRET_FORMAT' });
    expect(s.current.detail).toContain('no built-in rotator serves');
    const pre = await runCli(h, ['preflight', '--secret-id', arn]);
    expect(pre.code).toBe(1);
    expect(pre.out).toContain('[FAIL] AWSCURRENT is a valid secret for a built-in rotator (SECRET_FORMAT)');
  });

  it('status shows the rotation configuration; preflight from the CLI exits 0 on a healthy secret; a missing secret exits 2', async () => {
    const h = harness();
    const user = uniq('app');
    const pw = hostilePassword('cfg');
    await createRole(user, pw);
    const arn = await h.createSecret(dbSecret(user, pw));
    await h.sm.rotateAndWait(arn, { lambdaArn: h.lambdaArn, rotationRules: { ScheduleExpression: 'rate(10 days)', Duration: '3h' } });
    const st = await runCli(h, ['status', '--secret-id', arn]);
    expect(st.code, st.err).toBe(0);
    expect(st.out).toContain(`function:       ${h.lambdaArn}`);
    expect(st.out).toContain('schedule:       rate(10 days), window 3h');
    expect(st.out).toMatch(/last rotated:   \d{4}-\d\d-\d\dT/);
    expect(st.out).toMatch(/next rotation:  \d{4}-/);
    expect(st.out).toMatch(/AWSCURRENT\s+created \d{4}-/);
    expect(st.out).toMatch(/AWSPREVIOUS\s+created \d{4}-/);
    const pre = await runCli(h, ['preflight', '--secret-id', arn]);
    expect(pre.code).toBe(0);
    expect(pre.out).toContain('[PASS] AWSCURRENT logs in and runs the check query');
    const missing = await runCli(h, ['status', '--secret-id', `missing-${randomUUID()}`]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('ResourceNotFoundException');
  });
});
