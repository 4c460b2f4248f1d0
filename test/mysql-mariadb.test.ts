/**
 * The MySQL-family rotator end to end against a real MariaDB (global setup: Debian mariadb-server,
 * throwaway datadir, password authentication, TLS with a throwaway CA), the real mysql2 driver,
 * and the real AWS SDK client talking to the Secrets Manager double, which drives the four steps
 * as RotateSecret does. Every test ends with the no-leak assertion: no password of any version,
 * nor the admin's or root's, appears in any log line or error.
 *
 * MySQL 8/9 itself is not run here; its statements are checked against a fake in
 * mysql8-fake.test.ts.
 */
import { lookup } from 'node:dns/promises';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect, type AddressInfo, type Server } from 'node:net';
import { hostname, networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { DatabaseRotator } from '../src/db/database-rotator';
import type { DatabaseEngine } from '../src/db/engine';
import type { DbSecret } from '../src/db/secret';
import type { TlsOptions } from '../src/db/tls';
import { createHandler } from '../src/handler';
import { Logger } from '../src/log';
import type { Env } from '../src/password';
import { STEPS } from '../src/rotator';
import { classifyConnectError, createMysqlEngine, type MysqlConnection, mysqlEngine } from '../rotators/mysql/engine';
import { quoteAccount } from '../rotators/mysql/grants';
import { createRdsLikeMaster } from './support/mariadb';
import type { MariaDbInfo } from './support/provided';
import { assertNoLeaksInAll, createRotationHarness, handlerCalls, type RotationHarness } from './support/rotation-harness';

const info: MariaDbInfo = inject('mariadb');
const RUN = Math.random().toString(36).slice(2, 6);
let counter = 0;
/** A user name unique to this run and test. */
const uniq = (base: string) => `${base}_${RUN}_${++counter}`;
/** A user name that breaks naive quoting: quotes, backslash, space, %, _, ?, unicode. */
const hostileName = (base: string) => uniq(`${base} q'"\\%_?ü`);
/** Passwords that break naive quoting: quotes, backslash, semicolon, comment, %, ?, unicode. */
const hostilePassword = (tag: string) => `In'it"\\;--%?Ü ${tag} ${RUN}-Pw9`;

/** root: only for what RDS keeps to itself (rdsadmin's SUPER, the parameter group); everything else runs as the master. */
let root: Connection;
/** The RDS-like master user (test/support/mariadb.ts): the admin secret's user and the tests' default admin. */
let master: Connection;
let adminUser: string;
let adminPassword: string;
let db: string;

async function sql<T = RowDataPacket[]>(statement: string, values: unknown[] = []): Promise<T> {
  const [rows] = await master.query(statement, values);
  return rows as T;
}

/** As root: what the RDS master cannot do (SUPER grants, SET GLOBAL). */
async function asRoot<T = RowDataPacket[]>(statement: string, values: unknown[] = []): Promise<T> {
  const [rows] = await root.query(statement, values);
  return rows as T;
}

/** An account for a statement built inline (object names holding `?` must not meet placeholders). */
const to = (name: string, host = '%') => `${root.escape(name)}@${root.escape(host)}`;

async function createUser(name: string, password: string, host = '%', extra = ''): Promise<void> {
  await sql(`CREATE USER ?@? IDENTIFIED BY ? ${extra}`, [name, host, password]);
}

async function hostsOf(name: string): Promise<string[]> {
  return (await sql('SELECT Host FROM mysql.user WHERE User = ? ORDER BY Host', [name])).map((r) => String(r.Host));
}

/** SHOW GRANTS, sorted, with the grantee and the password hash replaced by placeholders, to compare two accounts. */
async function grantsOf(name: string, host: string): Promise<string[]> {
  const rows = await sql('SHOW GRANTS FOR ?@?', [name, host]);
  return rows
    .map((r) => String(Object.values(r)[0]).split(quoteAccount(name, host)).join('<GRANTEE>').replace(/ IDENTIFIED BY PASSWORD '\*[0-9A-F]+'/, ''))
    .sort();
}

type TlsLogin = false | { ca: string; host?: string; port?: number; verifyIdentity?: boolean };

/** 'ok', or the driver's error code of the failed login. */
async function tryLogin(user: string, password: string, tls: TlsLogin = false, database?: string): Promise<string> {
  try {
    const c = await createConnection({
      host: tls && tls.host ? tls.host : info.host,
      port: tls && tls.port ? tls.port : info.port,
      user,
      password,
      database,
      connectTimeout: 5000,
      ssl: tls ? { ca: tls.ca, verifyIdentity: tls.verifyIdentity ?? true } : undefined,
    });
    await c.query('SELECT 1');
    await c.end();
    return 'ok';
  } catch (err) {
    return String((err as { code?: string }).code ?? (err as Error).message);
  }
}

function dbSecret(username: string, password: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { engine: 'mariadb', host: info.host, port: info.port, username, password, ssl: false, ...extra };
}

function harness(env: Env = {}, engine: DatabaseEngine<MysqlConnection> = mysqlEngine): RotationHarness {
  const h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(engine), o), env });
  h.sensitive(info.rootPassword, adminPassword);
  return h;
}

/** A multi-user secret set: the child secret (naming masterarn) and the admin secret in the same double. */
async function alternatingSecret(h: RotationHarness, username: string, password: string, extra: Record<string, unknown> = {}, admin?: Record<string, unknown>) {
  const child = dbSecret(username, password, extra);
  // The admin secret names the same server and TLS settings itself (it never borrows the child's).
  const adminArn = await h.createSecret({ host: child.host, port: child.port, ssl: child.ssl, sslCa: child.sslCa, ...(admin ?? { username: adminUser, password: adminPassword }) });
  const arn = await h.createSecret({ ...child, masterarn: adminArn });
  return { arn, adminArn };
}

/** A TCP forwarder to the server, listening on another address (for certificate name mismatches). */
async function forwarder(listenHost: string): Promise<{ server: Server; port: number }> {
  const server = createServer((down) => {
    const up = netConnect(info.port, info.host);
    down.pipe(up).pipe(down);
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listenHost, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}

beforeAll(async () => {
  root = await createConnection({ host: info.host, port: info.port, user: info.rootUser, password: info.rootPassword });
  // The admin of the alternating strategy and of the fixtures is not root: an RDS MariaDB master user.
  adminUser = uniq('rl admin "A"');
  adminPassword = hostilePassword('admin');
  await createRdsLikeMaster(root, adminUser, adminPassword);
  master = await createConnection({ host: info.host, port: info.port, user: adminUser, password: adminPassword });
  const [grants] = await master.query<RowDataPacket[]>('SHOW GRANTS');
  expect(grants.map((r) => String(Object.values(r)[0])).join('\n')).not.toMatch(/SUPER|ALL PRIVILEGES|FILE|SHUTDOWN/);
  // A database whose name holds a backtick, a quote and a placeholder character.
  db = `rl\`db'?${RUN}`;
  await sql(`CREATE DATABASE ${master.escapeId(db)}`);
  for (const t of ['t1', 't2', 't3']) await sql(`CREATE TABLE ${master.escapeId(db)}.${t} (a INT, \`c o'l\` INT)`);
});

afterAll(async () => {
  await master?.end();
  await root?.end();
});

afterEach(() => {
  assertNoLeaksInAll();
});

describe('single user', () => {
  it('rotates twice: AWSCURRENT logs in, the replaced password is rejected (1045), at most 15 Secrets Manager calls each', async () => {
    const h = harness();
    const user = hostileName('app');
    const initial = hostilePassword('single');
    await createUser(user, initial);
    const arn = await h.createSecret(dbSecret(user, initial, { extraField: 'carried forward' }));

    let previous = { versionId: (await h.current(arn)).versionId, password: initial };
    for (let i = 1; i <= 2; i++) {
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      expect(r.succeeded).toBe(true);
      expect(r.steps).toEqual(STEPS);
      expect(handlerCalls(r.calls)).toBeLessThanOrEqual(15);

      const cur = await h.current(arn);
      expect(cur.versionId).toBe(r.versionId);
      expect(cur.json).toMatchObject({ engine: 'mariadb', username: user, host: info.host, port: info.port, extraField: 'carried forward' });
      const pw = String(cur.json?.password);
      expect(pw).not.toBe(previous.password);
      expect(await tryLogin(user, pw)).toBe('ok');
      expect(await tryLogin(user, previous.password)).toBe('ER_ACCESS_DENIED_ERROR');
      expect(h.stages(arn)).toEqual({ [r.versionId]: ['AWSCURRENT'], [previous.versionId]: ['AWSPREVIOUS'] });
      previous = { versionId: r.versionId, password: pw };
    }
    expect(await hostsOf(user)).toEqual(['%']);
  });

  it('MariaDB answers OK to ALTER USER CURRENT_USER() and changes nothing: the login check catches an engine that trusts OK', async () => {
    const user = uniq('creator');
    const initial = hostilePassword('noop');
    await createUser(user, initial);
    await sql('GRANT CREATE USER ON *.* TO ?@?', [user, '%']);

    const trusting: DatabaseEngine<MysqlConnection> = {
      ...createMysqlEngine(),
      async setOwnPassword(conn, change) {
        await conn.session.query('ALTER USER CURRENT_USER() IDENTIFIED BY ?', [change.newPassword]);
      },
    };
    const bad = harness({}, trusting);
    const arn = await bad.createSecret(dbSecret(user, initial));
    const before = await bad.current(arn);
    const r = await bad.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^VerificationError: The server accepted the password change .* but the new password does not log in/);
    expect(await bad.current(arn)).toEqual(before);
    expect(await tryLogin(user, initial)).toBe('ok');

    // The real engine (SET PASSWORD = PASSWORD(?)) changes it.
    const good = harness();
    const arn2 = await good.createSecret(dbSecret(user, initial));
    const r2 = await good.rotate(arn2);
    expect(r2.error).toBeUndefined();
    expect(await tryLogin(user, (await good.credentials(arn2)).password)).toBe('ok');
    expect(await tryLogin(user, initial)).toBe('ER_ACCESS_DENIED_ERROR');
  });
});

describe('alternating users', () => {
  it('user -> user_clone -> user -> user_clone: grants (incl. WITH GRANT OPTION, column grants, roles, limits) copied every rotation; grants added later reach the other user', async () => {
    const h = harness();
    const user = hostileName('svc');
    const clone = `${user}_clone`;
    const initial = hostilePassword('alt');
    const role = uniq('rl role');
    const qdb = root.escapeId(db);
    await createUser(user, initial, '%', 'WITH MAX_USER_CONNECTIONS 7');
    await sql(`GRANT SELECT, INSERT ON ${qdb}.* TO ${to(user, '%')} WITH GRANT OPTION`);
    await sql(`GRANT UPDATE (\`c o'l\`) ON ${qdb}.t1 TO ${to(user)}`);
    await sql(`CREATE ROLE ${root.escapeId(role)}`);
    await sql(`GRANT ${root.escapeId(role)} TO ?@? WITH ADMIN OPTION`, [adminUser, '%']);
    await sql(`GRANT ${root.escapeId(role)} TO ?@?`, [user, '%']);
    await sql(`SET DEFAULT ROLE ${root.escapeId(role)} FOR ?@?`, [user, '%']);
    const { arn } = await alternatingSecret(h, user, initial);
    const original = await h.current(arn);

    // Rotation 1: the clone is created with the same host and the same grants.
    const r1 = await h.rotate(arn);
    expect(r1.error).toBeUndefined();
    expect(handlerCalls(r1.calls)).toBeLessThanOrEqual(16);
    const c1 = await h.credentials(arn);
    expect(c1.username).toBe(clone);
    expect(await hostsOf(clone)).toEqual(['%']);
    expect(await grantsOf(clone, '%')).toEqual(await grantsOf(user, '%'));
    expect((await grantsOf(clone, '%')).join('\n')).toMatch(/GRANT SELECT, INSERT ON .* TO <GRANTEE> WITH GRANT OPTION/);
    expect((await grantsOf(clone, '%')).join('\n')).toMatch(/WITH MAX_USER_CONNECTIONS 7/);
    expect(await tryLogin(clone, c1.password, false, db)).toBe('ok');
    expect(await tryLogin(user, initial)).toBe('ok'); // the other user keeps working until its turn
    expect(h.stages(arn)).toEqual({ [r1.versionId]: ['AWSCURRENT'], [original.versionId]: ['AWSPREVIOUS'] });

    // A grant added to the current user (the clone) after rotation 1 reaches the user in rotation 2.
    await sql(`GRANT SELECT ON ${qdb}.t2 TO ${to(clone, '%')}`);
    const r2 = await h.rotate(arn);
    expect(r2.error).toBeUndefined();
    const c2 = await h.credentials(arn);
    expect(c2.username).toBe(user);
    expect(await tryLogin(user, c2.password)).toBe('ok');
    expect(await tryLogin(user, initial)).toBe('ER_ACCESS_DENIED_ERROR');
    expect(await tryLogin(clone, c1.password)).toBe('ok');
    expect(await grantsOf(user, '%')).toEqual(await grantsOf(clone, '%'));
    expect((await grantsOf(user, '%')).join('\n')).toMatch(/GRANT SELECT ON .*`t2` TO <GRANTEE>$/m);

    // ... and one added to the user with GRANT OPTION reaches the clone in rotation 3.
    await sql(`GRANT DELETE ON ${qdb}.t3 TO ${to(user, '%')} WITH GRANT OPTION`);
    const r3 = await h.rotate(arn);
    expect(r3.error).toBeUndefined();
    const c3 = await h.credentials(arn);
    expect(c3.username).toBe(clone);
    expect((await grantsOf(clone, '%')).join('\n')).toMatch(/GRANT DELETE ON .*`t3` TO <GRANTEE> WITH GRANT OPTION/);
    expect(await grantsOf(clone, '%')).toEqual(await grantsOf(user, '%'));

    // The copied privileges work for the clone.
    const conn = await createConnection({ host: info.host, port: info.port, user: clone, password: c3.password, database: db });
    try {
      await conn.query('SELECT * FROM t2');
      await conn.query('DELETE FROM t3');
      await expect(conn.query('DROP TABLE t1')).rejects.toMatchObject({ errno: 1142 });
    } finally {
      await conn.end();
    }
  });

  it('keeps the current user\'s hosts: a 127.0.0.1 account and a % account each get a clone with the same host and grants', async () => {
    const h = harness();
    const user = uniq('hosted');
    const clone = `${user}_clone`;
    const initial = hostilePassword('hosts');
    const qdb = root.escapeId(db);
    await createUser(user, initial, '127.0.0.1');
    await createUser(user, hostilePassword('wildcard'), '%');
    await sql(`GRANT SELECT ON ${qdb}.t1 TO ${to(user, '127.0.0.1')}`);
    await sql(`GRANT INSERT ON ${qdb}.t2 TO ${to(user, '%')}`);
    const { arn } = await alternatingSecret(h, user, initial);

    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(await hostsOf(clone)).toEqual(['%', '127.0.0.1']);
    expect(await grantsOf(clone, '127.0.0.1')).toEqual(await grantsOf(user, '127.0.0.1'));
    expect(await grantsOf(clone, '%')).toEqual(await grantsOf(user, '%'));
    const cur = await h.credentials(arn);
    expect(await tryLogin(clone, cur.password)).toBe('ok');
    const who = await createConnection({ host: info.host, port: info.port, user: clone, password: cur.password });
    try {
      const [rows] = await who.query<RowDataPacket[]>('SELECT CURRENT_USER() AS u');
      expect(rows[0].u).toBe(`${clone}@127.0.0.1`);
    } finally {
      await who.end();
    }
  });

  it('mirrors what SHOW CREATE USER holds (limits, MAX_STATEMENT_TIME, password expiry) and resets stale ones on an existing clone', async () => {
    const h = harness();
    const user = uniq('created');
    const clone = `${user}_clone`;
    const initial = hostilePassword('created');
    await createUser(user, initial, '%', 'WITH MAX_QUERIES_PER_HOUR 500 MAX_USER_CONNECTIONS 9 MAX_STATEMENT_TIME 20 PASSWORD EXPIRE INTERVAL 45 DAY');
    await createUser(clone, hostilePassword('stale'), '%', 'WITH MAX_CONNECTIONS_PER_HOUR 3 PASSWORD EXPIRE NEVER');
    const { arn } = await alternatingSecret(h, user, initial);
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const showCreate = async (name: string) =>
      String(Object.values((await sql('SHOW CREATE USER ?@?', [name, '%']))[0])[0]).replace(/`[^`]*`@/, '<user>@').replace(/ IDENTIFIED BY PASSWORD '\*[0-9A-F]+'/, '');
    expect(await showCreate(clone)).toBe(await showCreate(user));
    expect(await showCreate(user)).toMatch(/MAX_QUERIES_PER_HOUR 500 MAX_USER_CONNECTIONS 9 MAX_STATEMENT_TIME 20\.000000 PASSWORD EXPIRE INTERVAL 45 DAY/);
    expect(await tryLogin(clone, (await h.credentials(arn)).password)).toBe('ok');
  });

  it('a non-% host only: the clone is created for that host alone', async () => {
    const h = harness();
    const user = uniq('local');
    const initial = hostilePassword('local');
    await createUser(user, initial, '127.0.0.1');
    const { arn } = await alternatingSecret(h, user, initial);
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(await hostsOf(`${user}_clone`)).toEqual(['127.0.0.1']);
  });

  it('copies REQUIRE SSL: the clone is refused without TLS and accepted with it', async () => {
    const h = harness();
    const user = uniq('tlsonly');
    const clone = `${user}_clone`;
    const initial = hostilePassword('reqssl');
    await createUser(user, initial, '%', 'REQUIRE SSL');
    const { arn } = await alternatingSecret(h, user, initial, { host: 'localhost', ssl: 'verify-full', sslCa: info.caPem });
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const [row] = await sql('SELECT ssl_type FROM mysql.user WHERE User = ? AND Host = ?', [clone, '%']);
    expect(String(row.ssl_type)).toBe('ANY');
    const cur = await h.credentials(arn);
    expect(await tryLogin(clone, cur.password, { ca: info.caPem, host: 'localhost' })).toBe('ok');
    expect(await tryLogin(clone, cur.password)).toBe('ER_ACCESS_DENIED_ERROR');
  });

  it('mirrors REQUIRE ISSUER/SUBJECT/CIPHER and resets a stale requirement (engine called directly: such accounts need a client certificate to log in)', async () => {
    const user = uniq('x509');
    const clone = `${user}_clone`;
    await createUser(user, hostilePassword('x509'), '%', "REQUIRE ISSUER '/CN=it''s \\\\ CA' AND SUBJECT '/CN=app' AND CIPHER 'ECDHE-RSA-AES256-GCM-SHA384'");
    await createUser(clone, hostilePassword('x509c'), '%', 'REQUIRE X509');
    const log = new Logger(() => undefined);
    const admin = await mysqlEngine.connect(
      { engine: 'mariadb', host: info.host, port: info.port, username: adminUser, password: adminPassword } as DbSecret,
      { tls: { enabled: false, verifyChain: false, verifyHostname: false }, connectTimeoutMs: 5000, statementTimeoutMs: 30_000, log, env: {} },
    );
    const requirement = async (name: string) =>
      (await sql('SELECT ssl_type, ssl_cipher, x509_issuer, x509_subject FROM mysql.user WHERE User = ? AND Host = ?', [name, '%']))
        .map((r) => [r.ssl_type, r.ssl_cipher, r.x509_issuer, r.x509_subject].map(String))[0];
    try {
      const newPassword = hostilePassword('x509new');
      await mysqlEngine.upsertAlternateUser(admin, { currentUser: user, alternateUser: clone, newPassword, current: {} as DbSecret }, { env: {}, log });
      expect(await requirement(clone)).toEqual(await requirement(user));
      expect(await requirement(clone)).toEqual(['SPECIFIED', 'ECDHE-RSA-AES256-GCM-SHA384', "/CN=it's \\ CA", '/CN=app']);

      await sql('ALTER USER ?@? REQUIRE NONE', [user, '%']);
      await mysqlEngine.upsertAlternateUser(admin, { currentUser: user, alternateUser: clone, newPassword, current: {} as DbSecret }, { env: {}, log });
      expect(await requirement(clone)).toEqual(['', '', '', '']);
      expect(await tryLogin(clone, newPassword)).toBe('ok');
    } finally {
      await mysqlEngine.close(admin);
    }
  });

  it('rejects a clone name over the engine\'s limit in createSecret: clear error, nothing created', async () => {
    const h = harness();
    const user = `${'ü'.repeat(70)}${RUN}${String(++counter).padStart(2, '0')}`.slice(0, 76); // 76 + "_clone" = 82 > 80
    const initial = hostilePassword('long');
    await createUser(user, initial);
    const { arn } = await alternatingSecret(h, user, initial);
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.steps).toEqual(['createSecret']);
    expect(r.error).toMatch(/^SecretFormatError: The alternate user ".*_clone" would be 82 characters long; mysql allows 80\./);
    expect(h.sm.countCalls('PutSecretValue')).toBe(0);
    expect(await h.current(arn)).toEqual(before);
    expect(await hostsOf(`${user}_clone`)).toEqual([]);
  });

  it('applies the limit of the secret\'s engine value (mysql: 32) and USERNAME_CHARACTER_LIMIT', async () => {
    const user = uniq('a_twenty_eight_chars');
    expect(user.length + 6).toBeGreaterThan(32);
    const initial = hostilePassword('limit');
    await createUser(user, initial);

    const h = harness();
    const { arn } = await alternatingSecret(h, user, initial, { engine: 'mysql' });
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(new RegExp(`^SecretFormatError: The alternate user ".*_clone" would be ${user.length + 6} characters long; mysql allows 32\\. .*USERNAME_CHARACTER_LIMIT`));
    expect(h.sm.countCalls('PutSecretValue')).toBe(0);

    const h2 = harness({}, createMysqlEngine({ env: { USERNAME_CHARACTER_LIMIT: '64' } }));
    const second = await alternatingSecret(h2, user, initial, { engine: 'mysql' });
    const r2 = await h2.rotate(second.arn);
    expect(r2.error).toBeUndefined();
    expect(await hostsOf(`${user}_clone`)).toEqual(['%']);
  });

  it('checks the server\'s own limit before creating anything (MariaDB 10.11: 128)', async () => {
    const h = harness({}, createMysqlEngine({ env: { USERNAME_CHARACTER_LIMIT: '200' } }));
    const user = `${uniq('x')}${'y'.repeat(128)}`.slice(0, 125);
    const initial = hostilePassword('server-limit');
    await createUser(user, initial);
    const { arn } = await alternatingSecret(h, user, initial);
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^SecretFormatError: The alternate user ".*_clone" is 131 characters long; MariaDB [\d.]+ allows user names of at most 128\./);
    expect(await h.current(arn)).toEqual(before);
    expect(await hostsOf(`${user}_clone`)).toEqual([]);
  });

  it('reports a PrivilegeError with a remedy when the admin user may not create users, creating nothing', async () => {
    const h = harness();
    const weakAdmin = uniq('weak admin');
    const weakPassword = hostilePassword('weak');
    await createUser(weakAdmin, weakPassword);
    await sql('GRANT SELECT ON mysql.* TO ?@?', [weakAdmin, '%']);
    h.sensitive(weakPassword);
    const user = uniq('svc');
    const initial = hostilePassword('weakchild');
    await createUser(user, initial);
    const { arn } = await alternatingSecret(h, user, initial, {}, { username: weakAdmin, password: weakPassword });
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^PrivilegeError: ".*weak admin.*" is not allowed to do this: creating ".*_clone"@"%" failed \(\[ER_SPECIFIC_ACCESS_DENIED_ERROR 1227\].*CREATE USER/);
    expect(r.error).toMatch(/needs CREATE USER, SELECT on the mysql schema and GRANT OPTION/);
    expect(await hostsOf(`${user}_clone`)).toEqual([]);
    expect(await h.current(arn)).toEqual(before);
  });

  it('a grant the RDS master cannot give (FILE, granted by rdsadmin/root) fails naming the grant with a remedy true for RDS; after revoking it the retry converges', async () => {
    const h = harness();
    const user = uniq('filer');
    const initial = hostilePassword('filer');
    await createUser(user, initial);
    await asRoot('GRANT FILE ON *.* TO ?@?', [user, '%']);
    await sql(`GRANT SELECT ON ${master.escapeId(db)}.t1 TO ${to(user)}`);
    const { arn } = await alternatingSecret(h, user, initial);
    const before = await h.current(arn);
    const run = h.begin(arn);
    await h.invoke(run.event('createSecret'));
    const error = await h.invoke(run.event('setSecret')).then(() => undefined, (e: unknown) => `${(e as Error).name}: ${(e as Error).message}`);
    expect(error).toMatch(/^PrivilegeError: ".*" is not allowed to do this: copying "GRANT FILE ON \*\.\* TO \.\.\." of ".*"@"%" to ".*_clone" failed \(\[ER_ACCESS_DENIED_ERROR 1045\]/);
    expect(error).toMatch(/the alternate user's password was not changed\. .*RDS\/Aurora master user has no SUPER, FILE, SHUTDOWN.*revoke such a privilege from the current user if it does not need it/);
    expect(await h.current(arn)).toEqual(before);
    const pending = JSON.parse((await h.version(arn, run.versionId)).value!);
    expect(await tryLogin(pending.username, pending.password)).toBe('ER_ACCESS_DENIED_ERROR');

    // The operator follows the remedy; Secrets Manager retries the step, which converges.
    await asRoot('REVOKE FILE ON *.* FROM ?@?', [user, '%']);
    await h.invoke(run.event('setSecret'));
    await h.invoke(run.event('testSecret'));
    await h.invoke(run.event('finishSecret'));
    run.complete();
    const cur = await h.credentials(arn);
    expect(cur.username).toBe(`${user}_clone`);
    expect(await tryLogin(cur.username, cur.password)).toBe('ok');
    expect(await grantsOf(cur.username, '%')).toEqual(await grantsOf(user, '%'));
  });

});

describe('hostile names and passwords', () => {
  it.each(['single', 'alternating'] as const)('%s: quotes, backslashes, percent and underscore, ?, spaces and unicode in user, password and database names', async (strategy) => {
    const h = harness();
    const user = hostileName(`hostile ${strategy}`);
    const initial = hostilePassword(`hostile-${strategy}`);
    await createUser(user, initial);
    await sql(`GRANT SELECT ON ${root.escapeId(db)}.* TO ${to(user, '%')}`);
    const extra = { dbname: db };
    const arn = strategy === 'single' ? await h.createSecret(dbSecret(user, initial, extra)) : (await alternatingSecret(h, user, initial, extra)).arn;
    for (let i = 0; i < 2; i++) {
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      const cur = await h.credentials(arn);
      expect(await tryLogin(cur.username, cur.password, false, db)).toBe('ok');
    }
    const expected = strategy === 'single' ? [user] : [user, `${user}_clone`];
    for (const name of expected) expect(await hostsOf(name)).toEqual(['%']);
    // No stray account from a mis-escaped name.
    const [{ n }] = await sql(`SELECT COUNT(*) AS n FROM mysql.user WHERE User LIKE ?`, [`hostile ${strategy}%`]);
    expect(Number(n)).toBe(expected.length);
  });

  it('stays correct when the server runs with NO_BACKSLASH_ESCAPES', async () => {
    // On RDS this is the parameter group's business, not the master's: root here.
    const [{ mode }] = await sql('SELECT @@GLOBAL.sql_mode AS mode');
    await asRoot('SET GLOBAL sql_mode = ?', [`${mode},NO_BACKSLASH_ESCAPES`]);
    try {
      for (const strategy of ['single', 'alternating'] as const) {
        const h = harness();
        const user = hostileName(`nbe ${strategy}`);
        const initial = hostilePassword(`nbe-${strategy}`);
        await createUser(user, initial);
        const arn = strategy === 'single' ? await h.createSecret(dbSecret(user, initial)) : (await alternatingSecret(h, user, initial)).arn;
        const r = await h.rotate(arn);
        expect(r.error).toBeUndefined();
        const cur = await h.credentials(arn);
        expect(await tryLogin(cur.username, cur.password)).toBe('ok');
        expect(await hostsOf(cur.username)).toEqual(['%']);
      }
    } finally {
      await asRoot('SET GLOBAL sql_mode = ?', [mode]);
    }
  });
});

describe('replaying steps', () => {
  it.each(['single', 'alternating'] as const)('%s: every step sent twice with the same event has the same effect as once', async (strategy) => {
    const h = harness();
    const user = hostileName(`replay ${strategy}`);
    const initial = hostilePassword(`replay-${strategy}`);
    await createUser(user, initial);
    await sql(`GRANT SELECT ON ${root.escapeId(db)}.t1 TO ${to(user, '%')}`);
    const arn = strategy === 'single' ? await h.createSecret(dbSecret(user, initial)) : (await alternatingSecret(h, user, initial)).arn;
    const original = await h.current(arn);

    const run = h.begin(arn);
    const token = run.versionId;
    const snapshot = async () => ({
      stages: h.stages(arn),
      pending: await h.version(arn, token).then((v) => v.value, () => undefined),
      grants: strategy === 'alternating' ? await grantsOf(`${user}_clone`, '%').catch(() => []) : [],
    });
    for (const step of STEPS) {
      const event = run.event(step);
      await h.invoke(event);
      const first = await snapshot();
      await h.invoke(event);
      const second = await snapshot();
      expect(second, `${step} replayed`).toEqual(first);
      const pending = JSON.parse(first.pending!);
      if (step !== 'createSecret') expect(await tryLogin(pending.username, pending.password)).toBe('ok');
    }
    run.complete();

    expect(h.stages(arn)).toEqual({ [token]: ['AWSCURRENT'], [original.versionId]: ['AWSPREVIOUS'] });
    const msgs = h.records().map((l) => l.message);
    expect(msgs).toContain('AWSPENDING value already exists; nothing to create');
    if (strategy === 'single') {
      expect(msgs).toContain('AWSPENDING already logs in; password was set by an earlier attempt');
    } else {
      // The alternating upsert runs again on a replay (it is idempotent); the clone is created once.
      expect(msgs.filter((m) => m === 'alternate user created or updated by the admin user')).toHaveLength(2);
      expect(msgs.filter((m) => m === 'created the alternate user')).toHaveLength(1);
    }
    expect(msgs).toContain('version is already AWSCURRENT; step is a no-op');
    // Stored once: the replayed createSecret's Put (another generated value) was refused, the first value kept.
    expect(h.sm.calls.filter((c) => c.operation === 'PutSecretValue' && !c.error)).toHaveLength(1);
    if (strategy === 'alternating') expect(await grantsOf(`${user}_clone`, '%')).toEqual(await grantsOf(user, '%'));
    else expect(await tryLogin(user, initial)).toBe('ER_ACCESS_DENIED_ERROR');
  });
});

describe('invalid secrets', () => {
  const cases: Array<[string, (user: string, pw: string) => string | Record<string, unknown>, RegExp]> = [
    ['no host', (u, p) => ({ ...dbSecret(u, p), host: undefined }), /missing the "host" field/],
    ['no username', (u, p) => ({ ...dbSecret(u, p), username: undefined }), /missing the "username" field/],
    ['no password', (u, p) => ({ ...dbSecret(u, p), password: undefined }), /missing the "password" field/],
    ['bad JSON', (u, p) => JSON.stringify(dbSecret(u, p)).slice(0, -3), /not valid JSON/],
    ['wrong engine', (u, p) => dbSecret(u, p, { engine: 'postgres' }), /engine "postgres".*expected one of mysql, aurora-mysql, mariadb/],
    ['bad ssl', (u, p) => dbSecret(u, p, { ssl: 'sometimes' }), /"ssl" field must be/],
  ];
  it.each(cases)('%s: a clear error naming the field, AWSCURRENT untouched', async (_name, make, message) => {
    const h = harness();
    const user = uniq('bad');
    const initial = hostilePassword('bad');
    await createUser(user, initial);
    h.sensitive(initial);
    const arn = await h.createSecret(make(user, initial));
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.steps).toEqual(['createSecret']);
    expect(r.error).toMatch(/^SecretFormatError: /);
    expect(r.error).toMatch(message);
    expect(await h.current(arn)).toEqual(before);
    expect(h.sm.countCalls('PutSecretValue')).toBe(0);
    expect(await tryLogin(user, initial)).toBe('ok');
  });
});

describe('TLS', () => {
  it.each([
    ['single, verify-full by host name', 'localhost', 'single'],
    ['single, verify-full by IP address', '127.0.0.1', 'single'],
    ['alternating, verify-full by host name', 'localhost', 'alternating'],
  ] as const)('%s, CA from sslCa, for a REQUIRE SSL user', async (_label, host, strategy) => {
    const h = harness();
    const user = uniq('tls');
    const initial = hostilePassword('tls');
    await createUser(user, initial, '%', 'REQUIRE SSL');
    const tls = { host, ssl: true, sslCa: info.caPem };
    const arn = strategy === 'single' ? await h.createSecret(dbSecret(user, initial, tls)) : (await alternatingSecret(h, user, initial, tls)).arn;
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const cur = await h.credentials(arn);
    expect(await tryLogin(cur.username, cur.password, { ca: info.caPem, host })).toBe('ok');
    expect(await tryLogin(cur.username, cur.password)).toBe('ER_ACCESS_DENIED_ERROR'); // plaintext refused
  });

  it('reads the CA bundle from the file SSL_CA_BUNDLE names', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rl-mysql-ca-'));
    try {
      const bundle = join(dir, 'bundle.pem');
      writeFileSync(bundle, info.otherCaPem + info.caPem);
      const h = harness({ SSL_CA_BUNDLE: bundle });
      const user = uniq('bundle');
      const initial = hostilePassword('bundle');
      await createUser(user, initial, '%', 'REQUIRE SSL');
      const arn = await h.createSecret(dbSecret(user, initial, { host: 'localhost', ssl: 'verify-full' }));
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      expect(await tryLogin(user, (await h.credentials(arn)).password, { ca: info.caPem, host: 'localhost' })).toBe('ok');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails with a TLS error against the wrong CA and changes nothing', async () => {
    const h = harness();
    const user = uniq('tls');
    const initial = hostilePassword('wrongca');
    await createUser(user, initial);
    const arn = await h.createSecret(dbSecret(user, initial, { host: 'localhost', ssl: 'verify-full', sslCa: info.otherCaPem }));
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/\[TLS\] TLS with localhost:\d+ failed: .*certificate/);
    expect(await h.current(arn)).toEqual(before);
    expect(await tryLogin(user, initial)).toBe('ok');
  });

  it('verifies the IP address: a certificate for 127.0.0.1 and localhost is refused for 127.0.0.2 with verify-full, accepted with verify-ca', async () => {
    const { server, port } = await forwarder('127.0.0.2');
    try {
      const user = uniq('ipcheck');
      const initial = hostilePassword('ipcheck');
      await createUser(user, initial);

      const h = harness();
      const arn = await h.createSecret(dbSecret(user, initial, { host: '127.0.0.2', port, ssl: 'verify-full', sslCa: info.caPem }));
      const before = await h.current(arn);
      const r = await h.rotate(arn);
      expect(r.succeeded).toBe(false);
      expect(r.error).toMatch(/\[TLS\] TLS with 127\.0\.0\.2:\d+ failed: .*IP: 127\.0\.0\.2 is not in the cert's list/);
      expect(await h.current(arn)).toEqual(before);

      const h2 = harness();
      const arn2 = await h2.createSecret(dbSecret(user, initial, { host: '127.0.0.2', port, ssl: 'verify-ca', sslCa: info.caPem }));
      const r2 = await h2.rotate(arn2);
      expect(r2.error).toBeUndefined();
      expect(await tryLogin(user, (await h2.credentials(arn2)).password)).toBe('ok');
    } finally {
      server.close();
    }
  });

  it('verifies the host name: a name that reaches the server but is not in the certificate is refused with verify-full', async (ctx) => {
    // The machine's own host name, when it resolves to a local address (Debian and containers do).
    const name = hostname();
    const local = new Set(['127.0.0.1', '::1', ...Object.values(networkInterfaces()).flat().map((a) => a?.address)]);
    const addr = await lookup(name, { family: 4 }).then((a) => a.address, () => undefined);
    if (name === 'localhost' || !addr || !(local.has(addr) || addr.startsWith('127.'))) {
      ctx.skip(`host name ${name} does not resolve to a local IPv4 address`);
      return;
    }
    const { server, port } = await forwarder('0.0.0.0');
    try {
      const user = uniq('namecheck');
      const initial = hostilePassword('namecheck');
      await createUser(user, initial);
      const h = harness();
      const arn = await h.createSecret(dbSecret(user, initial, { host: name, port, ssl: 'verify-full', sslCa: info.caPem }));
      const r = await h.rotate(arn);
      expect(r.succeeded).toBe(false);
      expect(r.error).toMatch(new RegExp(`\\[TLS\\] TLS with ${name}:\\d+ failed: .*Host: ${name}\\. is not in the cert's altnames`));
      const h2 = harness();
      const arn2 = await h2.createSecret(dbSecret(user, initial, { host: name, port, ssl: 'verify-ca', sslCa: info.caPem }));
      expect((await h2.rotate(arn2)).error).toBeUndefined();
    } finally {
      server.close();
    }
  });
});

describe('connection error classification (engine.connect against the real server)', () => {
  const noTls: TlsOptions = { enabled: false, verifyChain: false, verifyHostname: false };
  const wrongCa: TlsOptions = { enabled: true, verifyChain: true, verifyHostname: true, ca: info.otherCaPem };
  const wrongPassword = `Wrong'"\\${RUN}-pw`;
  type Make = (user: string, password: string) => Partial<DbSecret>;
  const cases: Array<[string, Make, TlsOptions, RegExp]> = [
    ['AUTH', (u) => ({ username: u, password: wrongPassword }), noTls, /Login as ".*"@127\.0\.0\.1:\d+ was refused: \[ER_ACCESS_DENIED_ERROR 1045\] Access denied/],
    // (a user with no privilege on a missing database gets 1044, not 1049: see PRIVILEGE)
    ['CONFIG', (u, p) => ({ username: u, password: p, dbname: `no such db ${RUN}` }), noTls, /database does not exist.*1049/],
    ['PRIVILEGE', (u, p) => ({ username: u, password: p, dbname: 'mysql' }), noTls, /may not use the secret's database.*1044/],
    ['TLS', (u, p) => ({ username: u, password: p, host: 'localhost' }), wrongCa, /TLS with localhost:\d+ failed: .*certificate/],
    ['NETWORK', (u, p) => ({ username: u, password: p, port: 1 }), noTls, /Cannot reach 127\.0\.0\.1:1: \[ECONNREFUSED\]/],
  ];
  it.each(cases)('%s', async (code, make, tls, message) => {
    const h = harness();
    const user = uniq('conn');
    const password = hostilePassword('conn');
    await createUser(user, password);
    if (code === 'CONFIG') await sql(`GRANT SELECT ON ${root.escapeId(`no such db ${RUN}`)}.* TO ${to(user)}`);
    h.sensitive(password, wrongPassword);
    const secret = { engine: 'mariadb', host: info.host, port: info.port, username: user, password, ...make(user, password) } as DbSecret;
    const log = new Logger((line) => h.logs.push(line));
    const err = await mysqlEngine.connect(secret, { tls, connectTimeoutMs: 3000, statementTimeoutMs: 30_000, log, env: {} }).then(
      (c) => mysqlEngine.close(c),
      (e: unknown) => e,
    );
    expect(err).toBeDefined();
    h.recordError(err);
    expect((err as { code: string }).code).toBe(code);
    expect((err as Error).message).toMatch(message);
    // A driver message that quotes the password is blanked.
    const echoed = classifyConnectError(Object.assign(new Error(`bad ${secret.password}`), { code: 'ER_X', errno: 1045 }), secret, info.port);
    h.recordError(echoed);
    expect(echoed.message).not.toContain(secret.password);
  });
});

describe('the alternate user must be this pair\'s (checkAlternateUser, attacks)', () => {
  /**
   * The attacker can create logins (CREATE USER, not more) and write a child secret: it creates
   * `victim_clone` with a password it knows and writes a child secret naming it, with the admin
   * secret's ARN. The alternate of `victim_clone` is `victim`: without the check the admin would
   * reset victim's password and store it where the attacker reads it.
   */
  async function attack(victim: string, victimPassword: string, current: string, currentPassword: string, env: Env = {}) {
    const h = harness(env);
    h.sensitive(victimPassword, currentPassword);
    const { arn } = await alternatingSecret(h, current, currentPassword);
    const before = await h.current(arn);
    const grantsBefore = (await hostsOf(victim)).length ? await grantsOf(victim, (await hostsOf(victim))[0]) : [];
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.steps).toEqual(['createSecret', 'setSecret']);
    // Nothing changed: the victim still logs in with its old password, has the same grants, and
    // AWSCURRENT is untouched. The pending value's password (generated, never set) does not work.
    expect(await tryLogin(victim, victimPassword)).toBe('ok');
    if (grantsBefore.length) expect(await grantsOf(victim, (await hostsOf(victim))[0])).toEqual(grantsBefore);
    expect(await h.current(arn)).toEqual(before);
    const pending = JSON.parse((await h.version(arn, r.versionId)).value!);
    expect(pending.username).toBe(victim);
    expect(await tryLogin(victim, pending.password)).toBe('ER_ACCESS_DENIED_ERROR');
    expect(h.records().some((l) => l.message === 'alternate user created or updated by the admin user')).toBe(false);
    return r;
  }

  it('a superuser-like X (root-created: ALL PRIVILEGES, SUPER) and a child secret naming X_clone: PRIVILEGE, X unchanged', async () => {
    const victim = hostileName('dba');
    const victimPassword = hostilePassword('dba');
    // On RDS, only rdsadmin holds SUPER: root plays it here.
    await asRoot('CREATE USER ?@? IDENTIFIED BY ?', [victim, '%', victimPassword]);
    await asRoot('GRANT ALL PRIVILEGES ON *.* TO ?@? WITH GRANT OPTION', [victim, '%']);
    const attacker = `${victim}_clone`;
    const attackerPassword = hostilePassword('attacker');
    await createUser(attacker, attackerPassword);
    const r = await attack(victim, victimPassword, attacker, attackerPassword);
    expect(r.error).toMatch(/^PrivilegeError: The alternate user ".*dba.*"@"%" holds what the current user ".*_clone"@"%" does not: .*ALL PRIVILEGES ON \*\.\*.*GRANT OPTION ON \*\.\*.*refusing to change its password/);
  });

  it('an unrelated application user X (database grants) and a child secret naming X_clone: PRIVILEGE, X unchanged', async () => {
    const victim = uniq('payroll');
    const victimPassword = hostilePassword('payroll');
    await createUser(victim, victimPassword);
    await sql(`GRANT SELECT, UPDATE ON ${master.escapeId(db)}.* TO ${to(victim)}`);
    const attacker = `${victim}_clone`;
    const attackerPassword = hostilePassword('attacker2');
    await createUser(attacker, attackerPassword);
    await sql(`GRANT SELECT ON ${master.escapeId(db)}.t1 TO ${to(attacker)}`);
    const r = await attack(victim, victimPassword, attacker, attackerPassword);
    expect(r.error).toMatch(/^PrivilegeError: .* does not: SELECT, UPDATE ON `rl``db'\?\w+`\.\*/);
  });

  it('an existing X_clone with privileges X lacks, current X: PRIVILEGE, X_clone unchanged', async () => {
    const user = uniq('shop');
    const userPassword = hostilePassword('shop');
    await createUser(user, userPassword);
    const other = `${user}_clone`;
    const otherPassword = hostilePassword('unrelated');
    await createUser(other, otherPassword);
    await sql(`GRANT DELETE ON ${master.escapeId(db)}.t2 TO ${to(other)} WITH GRANT OPTION`);
    await sql('GRANT CREATE USER ON *.* TO ?@?', [other, '%']);
    const r = await attack(other, otherPassword, user, userPassword);
    expect(r.error).toMatch(/does not: CREATE USER ON \*\.\*; DELETE ON `rl``db'\?\w+`\.`t2`; GRANT OPTION ON `rl``db'\?\w+`\.`t2`/);
  });

  it('X only on another host than the child\'s X_clone: STATE, no X account is created beside it', async () => {
    const victim = uniq('hosted victim');
    const victimPassword = hostilePassword('hosted-victim');
    await createUser(victim, victimPassword, '127.0.0.1');
    await sql(`GRANT SELECT ON ${master.escapeId(db)}.* TO ${to(victim, '127.0.0.1')}`);
    const attacker = `${victim}_clone`;
    const attackerPassword = hostilePassword('attacker4');
    await createUser(attacker, attackerPassword, '%');
    const r = await attack(victim, victimPassword, attacker, attackerPassword);
    expect(r.error).toMatch(/^RotationStateError: The alternate user has the account ".*"@"127\.0\.0\.1" but the current user has no account on host "127\.0\.0\.1" \(it has "%"\)/);
    expect(await hostsOf(victim)).toEqual(['127.0.0.1']);
  });

  it('a role named X_clone: STATE (not a login), nothing created', async () => {
    const user = uniq('svc');
    const userPassword = hostilePassword('svc-role');
    await createUser(user, userPassword);
    await sql(`CREATE ROLE ${master.escapeId(`${user}_clone`)}`);
    const h = harness();
    const { arn } = await alternatingSecret(h, user, userPassword);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^RotationStateError: The alternate user ".*_clone" exists as a role, not a login/);
    expect(await hostsOf(`${user}_clone`)).toEqual(['']);
    expect(await tryLogin(user, userPassword)).toBe('ok');
  });

  it('a locked X (ACCOUNT LOCK, MariaDB\'s NOLOGIN) and a child secret naming X_clone: STATE, X still locked and unchanged', async () => {
    const victim = uniq('locked');
    const victimPassword = hostilePassword('locked');
    await createUser(victim, victimPassword, '%', 'ACCOUNT LOCK');
    const attacker = `${victim}_clone`;
    const attackerPassword = hostilePassword('attacker3');
    await createUser(attacker, attackerPassword);
    const h = harness();
    h.sensitive(victimPassword, attackerPassword);
    const { arn } = await alternatingSecret(h, attacker, attackerPassword);
    const r = await h.rotate(arn);
    expect(r.error).toMatch(/^RotationStateError: The alternate user ".*locked.*"@"%" is locked/);
    const [row] = await sql("SELECT JSON_VALUE(Priv, '$.account_locked') AS l FROM mysql.global_priv WHERE User = ? AND Host = '%'", [victim]);
    expect(['1', 'true']).toContain(String(row.l));
    await sql('ALTER USER ?@? ACCOUNT UNLOCK', [victim, '%']);
    expect(await tryLogin(victim, victimPassword)).toBe('ok');
  });

  it('a normal pair still rotates both ways; an X_clone with fewer privileges is accepted (MariaDB has no marker: capability check only)', async () => {
    const user = uniq('pair');
    const initial = hostilePassword('pair');
    await createUser(user, initial);
    await sql(`GRANT SELECT ON ${master.escapeId(db)}.* TO ${to(user)}`);
    const clone = `${user}_clone`;
    await createUser(clone, hostilePassword('old clone'));
    await sql(`GRANT SELECT ON ${master.escapeId(db)}.t1 TO ${to(clone)}`); // covered by user's db-level SELECT
    const h = harness();
    const { arn } = await alternatingSecret(h, user, initial);
    for (const expected of [clone, user, clone]) {
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      const cur = await h.credentials(arn);
      expect(cur.username).toBe(expected);
      expect(await tryLogin(cur.username, cur.password, false, db)).toBe('ok');
    }
  });
});

describe('single user defined on several hosts', () => {
  it('refuses before changing anything when the user can see its other accounts (mysql.user readable); the alternating strategy handles it', async () => {
    const user = uniq('multi');
    const initial = hostilePassword('multi');
    const other = hostilePassword('multi-other');
    await createUser(user, initial, '127.0.0.1');
    await createUser(user, other, '%');
    await sql('GRANT SELECT ON mysql.* TO ?@?', [user, '127.0.0.1']);
    const h = harness();
    h.sensitive(other);
    const arn = await h.createSecret(dbSecret(user, initial));
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^RotationStateError: The user ".*" has accounts on several hosts \(".*"@"%", ".*"@"127\.0\.0\.1"\); changing its own password changes only ".*"@"127\.0\.0\.1", the account this session matched.*alternating-users strategy/);
    expect(await h.current(arn)).toEqual(before);
    expect(await tryLogin(user, initial)).toBe('ok');

    // The alternating strategy sets the clone's password on both hosts.
    const h2 = harness();
    const { arn: arn2 } = await alternatingSecret(h2, user, initial);
    expect((await h2.rotate(arn2)).error).toBeUndefined();
    expect(await hostsOf(`${user}_clone`)).toEqual(['%', '127.0.0.1']);
  });

  it('a MariaDB role of the same name is not another account of the user', async () => {
    const user = uniq('samename');
    const initial = hostilePassword('samename');
    await createUser(user, initial);
    await sql('GRANT SELECT ON mysql.* TO ?@?', [user, '%']);
    await sql(`CREATE ROLE ${master.escapeId(user)}`);
    const h = harness();
    const arn = await h.createSecret(dbSecret(user, initial));
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(await tryLogin(user, (await h.credentials(arn)).password)).toBe('ok');
  });

  it('cannot see other hosts without read access to mysql.user: rotates the matched account and says so in the log', async () => {
    const user = uniq('multi blind');
    const initial = hostilePassword('blind');
    await createUser(user, initial, '127.0.0.1');
    await createUser(user, hostilePassword('blind-other'), '%');
    const h = harness();
    const arn = await h.createSecret(dbSecret(user, initial));
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(h.records().some((l) => /mysql\.user is not readable by this user/.test(String(l.message)) && l.matchedHost === '127.0.0.1')).toBe(true);
  });
});

describe('statement timeout and concurrency', () => {
  /** A proxy to the server that stops forwarding (both ways) once the client sends bytes matching `stallOn`. */
  async function stallingProxy(stallOn: (chunk: Buffer) => boolean): Promise<{ server: Server; port: number; stalled: () => boolean; sockets: Set<import('node:net').Socket> }> {
    let stalled = false;
    const sockets = new Set<import('node:net').Socket>();
    const server = createServer((down) => {
      const up = netConnect(info.port, info.host);
      sockets.add(down).add(up);
      down.on('data', (chunk) => {
        if (stalled || stallOn(chunk)) {
          stalled = true;
          return;
        }
        up.write(chunk);
      });
      up.on('data', (chunk) => {
        if (!stalled) down.write(chunk);
      });
      down.on('error', () => up.destroy());
      up.on('error', () => down.destroy());
      down.on('close', () => up.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return { server, port: (server.address() as AddressInfo).port, stalled: () => stalled, sockets };
  }

  it('a server that accepts the login and then never answers: NETWORK naming STATEMENT_TIMEOUT_MS, well before the test timeout; nothing changed', async () => {
    const proxy = await stallingProxy((chunk) => chunk.includes('SET PASSWORD'));
    try {
      const user = uniq('stall');
      const initial = hostilePassword('stall');
      await createUser(user, initial);
      const h = harness({ STATEMENT_TIMEOUT_MS: '700' });
      const arn = await h.createSecret(dbSecret(user, initial, { port: proxy.port }));
      const before = await h.current(arn);
      const started = Date.now();
      const r = await h.rotate(arn);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(proxy.stalled()).toBe(true);
      expect(r.succeeded).toBe(false);
      expect(r.error).toMatch(/^ConnectError: changing the password of ".*" failed: the statement timed out after 700 ms \(STATEMENT_TIMEOUT_MS\)/);
      expect(await h.current(arn)).toEqual(before);
      expect(await tryLogin(user, initial)).toBe('ok');
    } finally {
      for (const s of proxy.sockets) s.destroy();
      proxy.server.close();
    }
  });

  it('engine: a statement after the handshake that gets no answer fails with NETWORK in about STATEMENT_TIMEOUT_MS and close() does not hang', async () => {
    let armed = false;
    const proxy = await stallingProxy((chunk) => armed && chunk.includes('SELECT 1'));
    try {
      const user = uniq('stall2');
      const password = hostilePassword('stall2');
      await createUser(user, password);
      const log = new Logger(() => undefined);
      const conn = await mysqlEngine.connect({ engine: 'mariadb', host: info.host, port: proxy.port, username: user, password } as DbSecret,
        { tls: { enabled: false, verifyChain: false, verifyHostname: false }, connectTimeoutMs: 3000, statementTimeoutMs: 500, log, env: {} });
      armed = true;
      const started = Date.now();
      const err = await mysqlEngine.check(conn, { env: {}, log: new Logger(() => undefined) }).then(() => undefined, (e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(err).toMatchObject({ code: 'NETWORK' });
      expect((err as Error).message).toMatch(/running the check query failed: the statement timed out after 500 ms \(STATEMENT_TIMEOUT_MS\) on MariaDB/);
      const closing = Date.now();
      await mysqlEngine.close(conn);
      expect(Date.now() - closing).toBeLessThan(1500);
    } finally {
      for (const s of proxy.sockets) s.destroy();
      proxy.server.close();
    }
  });

  it('the server side also bounds statements (max_statement_time from STATEMENT_TIMEOUT_MS)', async () => {
    const user = uniq('srvtimeout');
    const password = hostilePassword('srvtimeout');
    await createUser(user, password);
    const log = new Logger(() => undefined);
    const conn = await mysqlEngine.connect({ engine: 'mariadb', host: info.host, port: info.port, username: user, password } as DbSecret,
      { tls: { enabled: false, verifyChain: false, verifyHostname: false }, connectTimeoutMs: 3000, statementTimeoutMs: 1500, log, env: {} });
    try {
      const [rows] = await conn.session.query('SELECT @@SESSION.max_statement_time AS m, @@SESSION.lock_wait_timeout AS l');
      expect(rows).toEqual([{ m: 1.5, l: 2 }]);
    } finally {
      await mysqlEngine.close(conn);
    }
  });

  it('two concurrent duplicate setSecret invocations of the same alternating rotation both converge', async () => {
    const h = harness();
    const user = uniq('dup');
    const initial = hostilePassword('dup');
    await createUser(user, initial);
    await sql(`GRANT SELECT, INSERT ON ${master.escapeId(db)}.* TO ${to(user)}`);
    const { arn } = await alternatingSecret(h, user, initial);
    const run = h.begin(arn);
    await h.invoke(run.event('createSecret'));
    await Promise.all([h.invoke(run.event('setSecret')), h.invoke(run.event('setSecret'))]);
    await h.invoke(run.event('testSecret'));
    await h.invoke(run.event('finishSecret'));
    run.complete();
    const cur = await h.credentials(arn);
    expect(cur.username).toBe(`${user}_clone`);
    expect(await tryLogin(cur.username, cur.password, false, db)).toBe('ok');
    expect(await grantsOf(cur.username, '%')).toEqual(await grantsOf(user, '%'));
  });

  it.each([
    ['ADOPT_UNMARKED_ALTERNATE', 'maybe'],
    ['USERNAME_CHARACTER_LIMIT', '0'],
  ])('an invalid %s fails createSecret before AWSPENDING is written', async (name, value) => {
    const h = harness({ [name]: value });
    const user = uniq('envcheck');
    const initial = hostilePassword('envcheck');
    await createUser(user, initial);
    const arn = await h.createSecret(dbSecret(user, initial));
    const r = await h.rotate(arn);
    expect(r.steps).toEqual(['createSecret']);
    expect(r.error).toMatch(new RegExp(`^ConfigError: ${name} must be`));
    expect(h.sm.countCalls('PutSecretValue')).toBe(0);
  });
});
