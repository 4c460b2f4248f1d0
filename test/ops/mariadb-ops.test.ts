/**
 * Preflight, status and repair against the real MariaDB server (global setup): the MySQL-family
 * privilege checks (CREATE USER, GRANT OPTION, every privilege of the current user) with RDS-like
 * admins that lack some of them, and the stuck states a fault leaves.
 */
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { DatabaseRotator } from '../../src/db/database-rotator';
import { createHandler } from '../../src/handler';
import { parseGrantLine } from '../../rotators/mysql/preflight';
import { mysqlEngine } from '../../rotators/mysql/engine';
import type { MariaDbInfo } from '../support/provided';
import { assertNoLeaksInAll, createRotationHarness, type RotationHarness } from '../support/rotation-harness';
import { assertNoSecretIn, configurationTest, runCli } from './support';
import { mariaLogin } from '../support/logins';

const info: MariaDbInfo = inject('mariadb');
const RUN = Math.random().toString(36).slice(2, 6);
let counter = 0;
const uniq = (base: string) => `${base}_${RUN}_${++counter}`;
const hostileName = (base: string) => uniq(`${base} q'"\\%_?ü`);
const hostilePassword = (tag: string) => `Op'q"\\;--%?Ü ${tag} ${RUN}-Pw9`;

let root: Connection;
let adminUser: string;
let adminPassword: string;
let db: string;

async function sql(statement: string, values: unknown[] = []): Promise<RowDataPacket[]> {
  const [rows] = await root.query(statement, values);
  return rows as RowDataPacket[];
}
const q = (name: string) => '`' + name.replace(/`/g, '``') + '`';
async function createUser(name: string, password: string): Promise<void> {
  await sql('CREATE USER ?@? IDENTIFIED BY ?', [name, '%', password]);
}
async function userExists(name: string): Promise<boolean> {
  return (await sql('SELECT 1 FROM mysql.user WHERE User = ?', [name])).length > 0;
}
const tryLogin = (user: string, password: string): Promise<string> => mariaLogin(info, user, password);
function dbSecret(username: string, password: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { engine: 'mariadb', host: info.host, port: info.port, username, password, ssl: false, ...extra };
}
function harness(): RotationHarness {
  const h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(mysqlEngine), o), env: { CONNECT_TIMEOUT_MS: '3000' } });
  h.sensitive(info.rootPassword, adminPassword);
  return h;
}
async function appUser(tag: string): Promise<{ user: string; pw: string }> {
  const user = hostileName(tag);
  const pw = hostilePassword(tag);
  await createUser(user, pw);
  await sql(`GRANT SELECT, INSERT ON ${q(db)}.* TO ?@?`, [user, '%']);
  return { user, pw };
}
async function alternating(h: RotationHarness, user: string, pw: string, admin = { username: adminUser, password: adminPassword }) {
  const adminArn = await h.createSecret({ host: info.host, port: info.port, ssl: false, ...admin });
  return h.createSecret(dbSecret(user, pw, { masterarn: adminArn }));
}
function checksLogged(h: RotationHarness): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of h.records()) if (typeof r.preflightCheck === 'string') out[r.preflightCheck] = String(r.status);
  return out;
}

beforeAll(async () => {
  root = await createConnection({ host: info.host, port: info.port, user: info.rootUser, password: info.rootPassword });
  db = uniq('ops_db');
  await sql(`CREATE DATABASE ${q(db)}`);
  // An RDS-like master user: every privilege with GRANT OPTION, granted explicitly (no SUPER needed).
  adminUser = hostileName('ops admin');
  adminPassword = hostilePassword('admin');
  await createUser(adminUser, adminPassword);
  await sql('GRANT ALL PRIVILEGES ON *.* TO ?@? WITH GRANT OPTION', [adminUser, '%']);
});
afterAll(async () => {
  await root?.end();
});
afterEach(() => {
  assertNoLeaksInAll();
});

describe('preflight on MariaDB', () => {
  it('single user: passes and changes nothing', async () => {
    const h = harness();
    const { user, pw } = await appUser('single');
    const arn = await h.createSecret(dbSecret(user, pw));
    const before = h.stages(arn);
    const r = await configurationTest(h, arn);
    expect(r.error).toBeUndefined();
    expect(h.stages(arn)).toEqual(before);
    expect(await tryLogin(user, pw)).toBe('ok');
    expect(checksLogged(h)).toMatchObject({ 'current.login': 'pass', 'single.writer': 'pass' });
  });

  it('alternating users: the admin may create the clone and copy every grant; the clone is not created', async () => {
    const h = harness();
    const { user, pw } = await appUser('alt');
    const arn = await alternating(h, user, pw);
    const r = await configurationTest(h, arn);
    expect(r.error).toBeUndefined();
    expect(await userExists(`${user}_clone`)).toBe(false);
    expect(checksLogged(h)).toMatchObject({
      'admin.server-version': 'pass',
      'admin.writer': 'pass',
      'admin.name-limit': 'pass',
      'admin.create-user': 'pass',
      'admin.read-accounts': 'pass',
      'admin.copy-grants': 'pass',
    });
  });

  it('an admin that lacks privileges: every missing one is reported together, before anything is created', async () => {
    const h = harness();
    const { user, pw } = await appUser('weak');
    // CREATE USER and SELECT on mysql, GRANT OPTION, SELECT on the database, but not INSERT.
    const weak = hostileName('weak admin');
    const weakPw = hostilePassword('weak');
    h.sensitive(weakPw);
    await createUser(weak, weakPw);
    await sql('GRANT CREATE USER ON *.* TO ?@?', [weak, '%']);
    await sql('GRANT SELECT ON mysql.* TO ?@?', [weak, '%']);
    await sql(`GRANT SELECT ON ${q(db)}.* TO ?@? WITH GRANT OPTION`, [weak, '%']);
    const arn = await alternating(h, user, pw, { username: weak, password: weakPw });
    const r = await configurationTest(h, arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('found 2 problem(s)');
    expect(r.error).toMatch(/\(1\) \[PRIVILEGE\] The admin holds CREATE USER and GRANT OPTION: .* lacks GRANT OPTION \(global\)/);
    expect(r.error).toContain(`(2) [PRIVILEGE] The admin may copy the current user's grants`);
    expect(r.error).toContain(`INSERT on \`${db}\`.*`);
    expect(r.error).not.toContain(`SELECT on \`${db}\`.*`);
    expect(await userExists(`${user}_clone`)).toBe(false);

    // Granting what was missing makes it pass.
    await sql(`GRANT INSERT ON ${q(db)}.* TO ?@? WITH GRANT OPTION`, [weak, '%']);
    await sql('GRANT CREATE USER ON *.* TO ?@? WITH GRANT OPTION', [weak, '%']);
    const again = await configurationTest(h, arn);
    expect(again.error).toBeUndefined();
  });
});

describe('status and repair on MariaDB', () => {
  it('single user, fault after setSecret: repair finishes the rotation; the next rotation works', async () => {
    const h = harness();
    const { user, pw } = await appUser('stuck');
    const arn = await h.createSecret(dbSecret(user, pw));
    h.intercept = async (event, invoke) => {
      await invoke(event);
      if (event.Step === 'setSecret') throw new Error('injected fault after setSecret');
    };
    expect((await h.rotate(arn)).succeeded).toBe(false);
    h.intercept = undefined;
    const pendingId = h.holderOf(arn, 'AWSPENDING')!;
    const s = JSON.parse((await runCli(h, ['status', '--secret-id', arn, '--json'])).out);
    expect(s).toMatchObject({ stalePending: true, current: { result: 'AUTH' }, pending: { result: 'ok' } });
    const fix = await runCli(h, ['repair', '--secret-id', arn, '--yes']);
    expect(fix.code).toBe(0);
    expect(h.holderOf(arn, 'AWSCURRENT')).toBe(pendingId);
    const cur = await h.credentials(arn);
    expect(await tryLogin(user, cur.password)).toBe('ok');
    expect((await h.rotate(arn)).succeeded).toBe(true);
    assertNoSecretIn(fix.out + fix.err, [pw, cur.password, info.rootPassword]);
  });

  it('alternating users, fault after setSecret: AWSCURRENT still works, repair removes the stale label', async () => {
    const h = harness();
    const { user, pw } = await appUser('altstuck');
    const arn = await alternating(h, user, pw);
    h.intercept = async (event, invoke) => {
      await invoke(event);
      if (event.Step === 'setSecret') throw new Error('injected fault after setSecret');
    };
    expect((await h.rotate(arn)).succeeded).toBe(false);
    h.intercept = undefined;
    const fix = await runCli(h, ['repair', '--secret-id', arn, '--yes']);
    expect(fix.code).toBe(0);
    expect(fix.out).toContain('AWSCURRENT logs in');
    expect(h.holderOf(arn, 'AWSPENDING')).toBeUndefined();
    expect((await h.rotate(arn)).succeeded).toBe(true);
  });

  it('reads SHOW GRANTS rows of MariaDB as printed by this server', async () => {
    const { user } = await appUser('parse');
    const rows = await sql('SHOW GRANTS FOR ?@?', [user, '%']);
    const parsed = rows.map((r) => parseGrantLine(String(Object.values(r)[0])));
    expect(parsed).toContainEqual({ kind: 'privileges', grant: { privileges: ['SELECT', 'INSERT'], db, obj: '*', objectType: '', grantOption: false } });
  });
});
