/**
 * The PostgreSQL rotator end to end: a real PostgreSQL server (global setup), the real `pg`
 * driver, and the real AWS SDK client talking to the Secrets Manager double, which drives the
 * four steps exactly as RotateSecret does. Every test ends with the no-leak assertion: no
 * password of any version, nor the admin's or the superuser's, appears in any log line or error.
 */
import { Client } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { DatabaseRotator } from '../src/db/database-rotator';
import type { DbSecret } from '../src/db/secret';
import { createHandler } from '../src/handler';
import { Logger } from '../src/log';
import type { Env } from '../src/password';
import { STEPS } from '../src/rotator';
import { classifyConnectError, classifyStatementError, createPostgresEngine, type PostgresEngine, postgresEngine, scramSha256Verifier } from '../rotators/postgres/engine';
import { RdsDouble } from '../src/testing';
import { SSL_ONLY_GROUP } from './support/postgres';
import { pgLogin } from './support/logins';
import type { PostgresInfo } from './support/provided';
import { assertNoLeaksInAll, createRotationHarness, handlerCalls, type RotationHarness } from './support/rotation-harness';

const info: PostgresInfo = inject('postgres');
const RUN = Math.random().toString(36).slice(2, 6);
let counter = 0;
/** A role name unique to this run and test. */
const uniq = (base: string) => `${base}_${RUN}_${++counter}`;

/** Passwords that break naive quoting: quotes, backslash, dollar quoting, comment, percent, unicode. */
const hostilePassword = (tag: string) => `In'it"\\$$;--%Ü ${tag} ${RUN}-Pw9`;

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

/** 'ok', or the SQLSTATE / error code of the failed login. */
const tryLogin = (user: string, password: string, tls: false | { ca: string; host: string } = false): Promise<string> => pgLogin(info, user, password, tls);

function dbSecret(username: string, password: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { engine: 'postgres', host: info.host, port: info.port, dbname: info.database, username, password, ssl: false, ...extra };
}

function harness(env: Env = {}, engine: PostgresEngine = postgresEngine): RotationHarness {
  const h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(engine), o), env });
  h.sensitive(info.superPassword, adminPassword);
  return h;
}

/**
 * What a non-superuser admin needs to grant `role` to the alternate user. PostgreSQL 15 and older:
 * nothing (CREATEROLE may grant any non-superuser role). PostgreSQL 16+: ADMIN OPTION on the role,
 * which a CREATEROLE user has on roles it created itself; here the superuser created them.
 */
async function allowAdminToGrant(role: string, admin = adminUser): Promise<void> {
  if (serverVersion >= 160000) {
    await su.query(`GRANT ${ident(role)} TO ${ident(admin)} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`);
  }
}

/** A multi-user secret set: the child secret (naming masterarn) and the admin secret in the same double. */
async function alternatingSecret(h: RotationHarness, username: string, password: string, extra: Record<string, unknown> = {}, admin?: Record<string, unknown>) {
  await allowAdminToGrant(username);
  const child = dbSecret(username, password, extra);
  // The admin secret names the same server and TLS settings itself (it never borrows the child's).
  const adminArn = await h.createSecret({ host: child.host, port: child.port, ssl: child.ssl, sslCa: child.sslCa, ...(admin ?? { username: adminUser, password: adminPassword }) });
  const arn = await h.createSecret({ ...child, masterarn: adminArn });
  return { arn, adminArn };
}

beforeAll(async () => {
  su = new Client({ host: info.host, port: info.port, user: info.superuser, password: info.superPassword, database: info.database, ssl: false });
  await su.connect();
  serverVersion = Number((await su.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0].v);
  // The admin of the alternating strategy is the RDS-like master user: not a superuser, CREATEROLE
  // and CREATEDB, member of rds_superuser (test/support/postgres.ts).
  adminUser = info.master;
  adminPassword = info.masterPassword;
});

afterAll(async () => {
  await su?.end();
});

afterEach(() => {
  assertNoLeaksInAll();
});

describe('single user', () => {
  it('rotates three times: AWSCURRENT logs in, the replaced password is rejected, at most 7 Secrets Manager calls each', async () => {
    const h = harness();
    const user = uniq('app');
    const initial = hostilePassword('single');
    await createRole(user, initial);
    const arn = await h.createSecret(dbSecret(user, initial, { extraField: 'carried forward' }));

    let previous = { versionId: (await h.current(arn)).versionId, password: initial };
    for (let i = 1; i <= 3; i++) {
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      expect(r.succeeded).toBe(true);
      expect(r.steps).toEqual(STEPS);

      const cur = await h.current(arn);
      expect(cur.versionId).toBe(r.versionId);
      expect(cur.json).toMatchObject({ username: user, host: info.host, port: info.port, extraField: 'carried forward' });
      const password = String(cur.json?.password);
      expect(password).not.toBe(previous.password);
      // Default policy: 32 characters, none of :/@"'\ (PostgreSQL's excluded set).
      expect(password).toHaveLength(32);
      expect(password).not.toMatch(/[:/@"'\\]/);

      expect(await tryLogin(user, password)).toBe('ok');
      expect(await tryLogin(user, previous.password)).toBe('28P01');
      expect(h.stages(arn)).toEqual({ [r.versionId]: ['AWSCURRENT'], [previous.versionId]: ['AWSPREVIOUS'] });

      // Recorded: 7 calls (AWS's reference rotators make 14): one DescribeSecret per step, createSecret
      // reads AWSCURRENT and stores AWSPENDING (password generated in the function); the later steps
      // of the warm function reuse both values (their version ids from their own DescribeSecret). 6
      // from the second rotation on: AWSCURRENT is the version the previous rotation stored.
      expect(handlerCalls(r.calls)).toBeGreaterThanOrEqual(6);
      expect(handlerCalls(r.calls)).toBeLessThanOrEqual(7);
      expect(r.calls.filter((c) => c === 'DescribeSecret')).toHaveLength(4);
      expect(r.calls.filter((c) => c === 'PutSecretValue')).toHaveLength(1);
      expect(r.calls.filter((c) => c === 'GetRandomPassword')).toHaveLength(0);
      expect(r.calls.filter((c) => c === 'UpdateSecretVersionStage')).toHaveLength(1);
      previous = { versionId: r.versionId, password };
    }
  });

  it('recovers through AWSPREVIOUS when the password was set back out of band', async () => {
    const h = harness();
    const user = uniq('app');
    const initial = hostilePassword('prev');
    await createRole(user, initial);
    const arn = await h.createSecret(dbSecret(user, initial));
    expect((await h.rotate(arn)).succeeded).toBe(true);

    // Someone restores the old password: AWSCURRENT no longer logs in, AWSPREVIOUS does.
    await su.query(`ALTER ROLE ${ident(user)} WITH PASSWORD ${literal(initial)}`);
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(r.succeeded).toBe(true);
    // The recovery path needs AWSPREVIOUS, which the warm function stored itself in the previous
    // rotation: no read for it. (createSecret reads AWSCURRENT at the same time as its
    // DescribeSecret, before it could know the version is one it holds: 7, not 6.)
    expect(handlerCalls(r.calls)).toBe(7);
    expect(h.records().some((l) => l.message === 'changed own password' && l.loggedInWith === 'AWSPREVIOUS')).toBe(true);

    const cur = await h.credentials(arn);
    expect(await tryLogin(user, cur.password)).toBe('ok');
    expect(await tryLogin(user, initial)).toBe('28P01');
  });

  it('RotateImmediately=false (a configuration test run) tests AWSCURRENT and changes nothing', async () => {
    const h = harness();
    const user = uniq('app');
    const initial = hostilePassword('dry');
    await createRole(user, initial);
    const arn = await h.createSecret(dbSecret(user, initial));
    const before = await h.current(arn);
    const r = await h.sm.rotateAndWait(arn, { lambdaArn: h.lambdaArn, rotateImmediately: false });
    expect(r.error).toBeUndefined();
    expect(r.succeeded).toBe(true);
    expect(r.steps).toEqual(['testSecret']);
    expect(h.stages(arn)).toEqual({ [before.versionId]: ['AWSCURRENT'] });
    expect(await tryLogin(user, initial)).toBe('ok');
    expect(h.records().some((l) => l.message === 'AWSCURRENT logs in and runs the check query')).toBe(true);
  });

  it.each(['local', 'secretsmanager'])('honours the password policy environment variables (PASSWORD_SOURCE=%s)', async (source) => {
    const h = harness({ PASSWORD_LENGTH: '50', EXCLUDE_PUNCTUATION: 'true', PASSWORD_SOURCE: source });
    const user = uniq('app');
    const initial = hostilePassword('policy');
    await createRole(user, initial);
    const arn = await h.createSecret(dbSecret(user, initial));
    expect((await h.rotate(arn)).succeeded).toBe(true);
    const { password } = await h.credentials(arn);
    expect(password).toMatch(/^[A-Za-z0-9]{50}$/);
    expect(await tryLogin(user, password)).toBe('ok');
    expect(h.sm.countCalls('GetRandomPassword')).toBe(source === 'local' ? 0 : 1);
  });

  it('fails with a NETWORK error when the server cannot be reached, and changes nothing', async () => {
    const h = harness({ CONNECT_TIMEOUT_MS: '2000' });
    const user = uniq('app');
    const initial = hostilePassword('net');
    await createRole(user, initial);
    const arn = await h.createSecret(dbSecret(user, initial, { port: 1 }));
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/\[NETWORK\].*ECONNREFUSED/);
    expect(await h.current(arn)).toEqual(before);
  });
});

describe('alternating users', () => {
  it('rotates user -> user_clone -> user; the clone inherits the user\'s privileges; at most 8 calls each', async () => {
    const h = harness();
    const user = uniq('svc');
    const clone = `${user}_clone`;
    const initial = hostilePassword('multi');
    await createRole(user, initial, 'CREATEDB CONNECTION LIMIT 17');
    const table = uniq('orders');
    await su.query(`CREATE TABLE ${ident(table)} (id int); INSERT INTO ${ident(table)} VALUES (1), (2); GRANT SELECT ON ${ident(table)} TO ${ident(user)}`);
    const { arn } = await alternatingSecret(h, user, initial);

    const expectedUsers = [clone, user, clone];
    const passwords = new Map<string, string>([[user, initial]]);
    for (const expected of expectedUsers) {
      const before = await h.credentials(arn);
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      expect(r.succeeded).toBe(true);
      // Recorded: 7-8 calls (AWS's reference: 14-15): the single-user 6-7 plus the admin secret.
      expect(handlerCalls(r.calls)).toBeGreaterThanOrEqual(7);
      expect(handlerCalls(r.calls)).toBeLessThanOrEqual(8);

      const cur = await h.credentials(arn);
      expect(cur.username).toBe(expected);
      passwords.set(expected, cur.password);
      expect(await tryLogin(expected, cur.password)).toBe('ok');
      // Alternating users: the previous user keeps working until the next rotation replaces its password.
      expect(await tryLogin(before.username, before.password)).toBe('ok');

      // Whichever user is current reads the table the original user was granted.
      const c = new Client({ host: info.host, port: info.port, user: expected, password: cur.password, database: info.database, ssl: false });
      await c.connect();
      try {
        expect((await c.query(`SELECT count(*)::int AS n FROM ${ident(table)}`)).rows[0].n).toBe(2);
      } finally {
        await c.end();
      }
    }
    // The clone is a member of the user (never the other way round: no circular membership).
    const links = await su.query(
      `SELECT r.rolname AS role, m.rolname AS member FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
        WHERE r.rolname = ANY($1) AND m.rolname = ANY($1)`,
      [[user, clone]],
    );
    expect(links.rows).toEqual([{ role: user, member: clone }]);
    // Safe role attributes are copied.
    const attrs = await su.query('SELECT rolcreatedb, rolconnlimit, rolsuper, rolcanlogin FROM pg_roles WHERE rolname = $1', [clone]);
    expect(attrs.rows[0]).toEqual({ rolcreatedb: true, rolconnlimit: 17, rolsuper: false, rolcanlogin: true });
    // Stored as a SCRAM verifier computed by the rotator.
    const stored = await su.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [clone]);
    expect(stored.rows[0].rolpassword).toMatch(/^SCRAM-SHA-256\$4096:/);
  });

  it('re-applies the current user\'s role memberships to the alternate user on every rotation', async () => {
    const h = harness();
    const user = uniq('svc');
    const clone = `${user}_clone`;
    const initial = hostilePassword('roles');
    await createRole(user, initial);
    const { arn } = await alternatingSecret(h, user, initial);
    expect((await h.rotate(arn)).succeeded).toBe(true); // current: clone

    // Granted to the current user (the clone) after the first rotation...
    const reader = uniq('Reader Role');
    const table = uniq('ledger');
    await su.query(`CREATE ROLE ${ident(reader)} NOLOGIN`);
    await su.query(`CREATE TABLE ${ident(table)} (id int); GRANT SELECT ON ${ident(table)} TO ${ident(reader)}`);
    await su.query(`GRANT ${ident(reader)} TO ${ident(clone)}`);
    await allowAdminToGrant(reader);
    expect((await h.rotate(arn)).succeeded).toBe(true); // current: user

    // ...the user it alternates with has it after the next rotation, and can use it.
    const direct = (member: string, role: string) =>
      su.query<{ admin_option: boolean }>(
        `SELECT a.admin_option FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
          WHERE r.rolname = $1 AND m.rolname = $2`,
        [role, member],
      );
    expect((await direct(user, reader)).rows).toEqual([{ admin_option: false }]);
    const cur = await h.credentials(arn);
    expect(cur.username).toBe(user);
    const c = new Client({ host: info.host, port: info.port, user, password: cur.password, database: info.database, ssl: false });
    await c.connect();
    await c.query(`SELECT * FROM ${ident(table)}`);
    await c.end();

    // A role held WITH ADMIN OPTION is copied with it.
    const manager = uniq('manager');
    await su.query(`CREATE ROLE ${ident(manager)} NOLOGIN`);
    await su.query(`GRANT ${ident(manager)} TO ${ident(user)} WITH ADMIN OPTION`);
    await allowAdminToGrant(manager);
    expect((await h.rotate(arn)).succeeded).toBe(true); // current: clone
    expect((await direct(clone, manager)).rows).toEqual([{ admin_option: true }]);
    expect(h.records().some((l) => l.message === 'updated the alternate user' && Array.isArray(l.rolesGranted) && l.rolesGranted.includes(manager))).toBe(true);
  });

  it.each([
    ['POSTGRES_CLONE_SET_ROLE=true: the clone\'s sessions act as the user, so what it creates belongs to the user', 'true'],
    ['default: what the clone creates stays its own, and the marked pair still rotates', ''],
  ])('%s', async (_label, setRole) => {
    const h = harness(setRole ? { POSTGRES_CLONE_SET_ROLE: setRole } : {});
    const user = uniq('ddl');
    const clone = `${user}_clone`;
    const initial = hostilePassword('ddl');
    await createRole(user, initial);
    const schema = uniq('ddl schema');
    await su.query(`CREATE SCHEMA ${ident(schema)}; GRANT USAGE, CREATE ON SCHEMA ${ident(schema)} TO ${ident(user)}`);
    const { arn } = await alternatingSecret(h, user, initial);
    expect((await h.rotate(arn)).error).toBeUndefined(); // current: clone
    const cur = await h.credentials(arn);
    const c = new Client({ host: info.host, port: info.port, user: clone, password: cur.password, database: info.database, ssl: false });
    await c.connect();
    const who = (await c.query('SELECT current_user AS cu, session_user AS su')).rows[0];
    await c.query(`CREATE TABLE ${ident(schema)}.made (n int)`);
    await c.end();
    const owner = (await su.query(`SELECT tableowner FROM pg_tables WHERE schemaname = $1 AND tablename = 'made'`, [schema])).rows[0].tableowner;
    expect(who).toEqual({ cu: setRole ? user : clone, su: clone });
    expect(owner).toBe(setRole ? user : clone);

    for (const expected of [user, clone, user]) {
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      const now = await h.credentials(arn);
      expect(now.username).toBe(expected);
      if (setRole && expected === user) {
        // The original user owns what the clone created: it can change it.
        const u = new Client({ host: info.host, port: info.port, user, password: now.password, database: info.database, ssl: false });
        await u.connect();
        await u.query(`ALTER TABLE ${ident(schema)}.made ADD COLUMN ${ident(uniq('col'))} int`);
        await u.end();
      }
    }
    // The option never reaches the original user.
    const settings = await su.query(`SELECT r.rolname, s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = ANY($1)`, [[user, clone]]);
    expect(settings.rows).toEqual(setRole ? [{ rolname: clone, setconfig: [`role=${user}`] }] : []);
    if (!setRole) expect(h.records().some((l) => /owns objects it created while it was the current user/.test(String(l.message)))).toBe(true);
  });

  it('refuses to use the admin secret when AWSCURRENT does not log in (confused deputy), creating or changing nothing', async () => {
    // Clone absent: it must not be created.
    const h = harness();
    const user = uniq('svc');
    await createRole(user, hostilePassword('deputy'));
    const wrong = `Wrong'"\\pw-${RUN}-123`;
    const { arn, adminArn } = await alternatingSecret(h, user, wrong);
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/refusing to use the admin secret/);
    expect(r.error).toMatch(/\[AUTH\]/);
    expect(await roleExists(`${user}_clone`)).toBe(false);
    expect(h.sm.calls.some((c) => c.operation === 'GetSecretValue' && c.secretId === adminArn)).toBe(false);
    expect(await h.current(arn)).toEqual(before);

    // Clone present: its password must not change.
    const h2 = harness();
    const user2 = uniq('svc');
    const clonePassword = hostilePassword('clone');
    await createRole(user2, hostilePassword('deputy2'));
    await createRole(`${user2}_clone`, clonePassword);
    h2.sensitive(clonePassword);
    const second = await alternatingSecret(h2, user2, wrong);
    expect((await h2.rotate(second.arn)).succeeded).toBe(false);
    expect(await tryLogin(`${user2}_clone`, clonePassword)).toBe('ok');
  });

  it('refuses an admin secret for another host', async () => {
    const h = harness();
    const user = uniq('svc');
    const initial = hostilePassword('host');
    await createRole(user, initial);
    const { arn } = await alternatingSecret(h, user, initial, {}, {
      engine: 'postgres',
      host: 'other-db.example.com',
      port: info.port,
      username: adminUser,
      password: adminPassword,
    });
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/admin secret's host "other-db.example.com" \(from the admin secret\) is not the host/);
    expect(await roleExists(`${user}_clone`)).toBe(false);
  });

  it('reports a PrivilegeError with a remedy when the admin user may not create roles', async () => {
    const h = harness();
    const weakAdmin = uniq('weak admin');
    const weakPassword = hostilePassword('weak');
    await createRole(weakAdmin, weakPassword);
    h.sensitive(weakPassword);
    const user = uniq('svc');
    const initial = hostilePassword('weakchild');
    await createRole(user, initial);
    const { arn } = await alternatingSecret(h, user, initial, {}, { username: weakAdmin, password: weakPassword });
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^PrivilegeError: PostgreSQL refused to create role .*permission denied.*CREATEROLE/);
    expect(await roleExists(`${user}_clone`)).toBe(false);
  });

  it.each([
    ['ASCII: 60 characters, clone 66', 'u'.repeat(56)],
    ['unicode: 60 bytes in 32 characters, clone 66 bytes in 38 characters', 'é'.repeat(28)],
  ])('rejects a username whose alternate is too long at createSecret (%s)', async (_label, base) => {
    const h = harness();
    const user = base + String(++counter % 10000).padStart(4, '0');
    const initial = hostilePassword('long');
    await createRole(user, initial);
    const { arn } = await alternatingSecret(h, user, initial);
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.steps).toEqual(['createSecret']);
    expect(r.error).toMatch(/SecretFormatError: .*(would be 66 bytes long|"username" field is 66 bytes)/);
    expect(await h.current(arn)).toEqual(before);
    expect(r.calls).not.toContain('PutSecretValue');
    expect(await roleExists(`${user}_clone`)).toBe(false);
  });
});

describe('a user who owns its database attacks the admin session', () => {
  // The rotated user owns the database its secret names (CREATE DATABASE app OWNER app is
  // common) and sets that database's search_path to a schema of its own, ahead of pg_catalog.
  // Every unqualified catalog view, function or operator in the admin's queries would then
  // resolve to the attacker's objects and run as the admin (CVE-2018-1058's pattern).
  it.each(['clone', 'precreated'] as const)('%s: nothing of the attacker runs as the admin', async (kind) => {
    const h = harness();
    const user = uniq('owner');
    const initial = hostilePassword('search-path');
    await createRole(user, initial);
    const db = uniq('ownerdb');
    await su.query(`CREATE DATABASE ${ident(db)} OWNER ${ident(user)}`);
    const other = kind === 'precreated' ? uniq('pair') : undefined;
    if (other) {
      await createRole(other, hostilePassword('pair'));
      await allowAdminToGrant(other);
    }
    const c = new Client({ host: info.host, port: info.port, user, password: initial, database: db, ssl: false });
    await c.connect();
    try {
      await c.query(`
        CREATE SCHEMA trap;
        GRANT USAGE ON SCHEMA trap TO PUBLIC;
        CREATE TABLE trap.ran_as (who text);
        GRANT INSERT ON trap.ran_as TO PUBLIC;
        CREATE FUNCTION trap.pwn() RETURNS boolean LANGUAGE plpgsql AS $f$
          BEGIN INSERT INTO trap.ran_as VALUES (current_user); RETURN true; END $f$;
        CREATE VIEW trap.pg_roles AS SELECT * FROM pg_catalog.pg_roles WHERE trap.pwn();
        CREATE VIEW trap.pg_auth_members AS SELECT * FROM pg_catalog.pg_auth_members WHERE trap.pwn();
        CREATE FUNCTION trap.pg_has_role(oid, oid, text) RETURNS boolean LANGUAGE plpgsql AS $f$
          BEGIN PERFORM trap.pwn(); RETURN pg_catalog.pg_has_role($1, $2, $3); END $f$;
        GRANT SELECT ON trap.pg_roles, trap.pg_auth_members TO PUBLIC;
        ALTER DATABASE ${ident(db)} SET search_path = trap, pg_catalog;`);
    } finally {
      await c.end();
    }
    const { arn } = await alternatingSecret(h, user, initial, { dbname: db, ...(other ? { alternateUsername: other } : {}) });
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const check = new Client({ host: info.host, port: info.port, user: info.superuser, password: info.superPassword, database: db, ssl: false });
    await check.connect();
    try {
      const ran = await check.query<{ who: string }>('SELECT who FROM trap.ran_as WHERE who <> $1', [user]);
      expect(ran.rows.map((r) => r.who)).toEqual([]);
    } finally {
      await check.end();
    }
  });
});

describe('hostile usernames and passwords', () => {
  const hostileUser = () => uniq(`Ünï "Q" ;--'\\ %x`);

  it.each(['single', 'alternating'] as const)('%s: quotes, backslash, semicolon, spaces, percent, upper case and unicode survive', async (strategy) => {
    // EXCLUDE_CHARACTERS="" lets GetRandomPassword use all 32 punctuation characters.
    const h = harness({ EXCLUDE_CHARACTERS: '', PASSWORD_LENGTH: '64' });
    const user = hostileUser();
    const initial = hostilePassword(strategy);
    await createRole(user, initial);
    const arn =
      strategy === 'single' ? await h.createSecret(dbSecret(user, initial)) : (await alternatingSecret(h, user, initial)).arn;

    for (let i = 0; i < 2; i++) {
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      expect(r.succeeded).toBe(true);
      const cur = await h.credentials(arn);
      expect(cur.password).toHaveLength(64);
      expect(cur.password).toMatch(/[^A-Za-z0-9]/);
      expect(cur.username).toBe(strategy === 'single' || i === 1 ? user : `${user}_clone`);
      expect(await tryLogin(cur.username, cur.password)).toBe('ok');
    }
    if (strategy === 'alternating') expect(await roleExists(`${user}_clone`)).toBe(true);
    else expect(await tryLogin(user, initial)).toBe('28P01');
  });
});

describe('replaying steps', () => {
  it.each(['single', 'alternating'] as const)('%s: every step sent twice with the same event has the same effect as once', async (strategy) => {
    const h = harness();
    const user = uniq('replay');
    const initial = hostilePassword(`replay-${strategy}`);
    await createRole(user, initial);
    const arn =
      strategy === 'single' ? await h.createSecret(dbSecret(user, initial)) : (await alternatingSecret(h, user, initial)).arn;
    const original = await h.current(arn);

    const run = h.begin(arn);
    const token = run.versionId;
    const snapshot = async () => ({
      stages: h.stages(arn),
      pending: await h.version(arn, token).then((v) => v.value, () => undefined),
    });
    for (const step of STEPS) {
      const event = run.event(step);
      await h.invoke(event);
      const first = await snapshot();
      await h.invoke(event);
      const second = await snapshot();
      expect(second, `${step} replayed`).toEqual(first);
      expect(first.pending, `${step} left a pending value`).toBeDefined();
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
      // Alternating users: the idempotent upsert runs again, so a half-finished privilege copy is completed.
      expect(msgs.filter((m) => m === 'alternate user created or updated by the admin user')).toHaveLength(2);
    }
    expect(msgs).toContain('version is already AWSCURRENT; step is a no-op');
    // PutSecretValue stored once: the replayed createSecret's Put was refused and the first value kept.
    expect(h.sm.calls.filter((c) => c.operation === 'PutSecretValue').map((c) => c.error)).toEqual([undefined, 'ResourceExistsException']);
    expect(h.sm.countCalls('GetRandomPassword')).toBe(0);
  });
});

describe('invalid secrets', () => {
  const cases: Array<[string, (user: string, pw: string) => string | Record<string, unknown>, RegExp]> = [
    ['no host', (u, p) => ({ ...dbSecret(u, p), host: undefined }), /missing the "host" field/],
    ['no username', (u, p) => ({ ...dbSecret(u, p), username: undefined }), /missing the "username" field/],
    ['bad JSON', (u, p) => JSON.stringify(dbSecret(u, p)).slice(0, -3), /not valid JSON/],
    ['wrong engine', (u, p) => dbSecret(u, p, { engine: 'mysql' }), /engine "mysql".*expected one of postgres, aurora-postgresql/],
    ['bad port', (u, p) => dbSecret(u, p, { port: 'fifty' }), /"port" field must be a port number/],
    ['bad ssl', (u, p) => dbSecret(u, p, { ssl: 'sometimes' }), /"ssl" field must be/],
  ];
  it.each(cases)('%s: a clear error naming the field, AWSCURRENT untouched', async (_name, make, message) => {
    const h = harness();
    const user = uniq('bad');
    const initial = hostilePassword('bad');
    await createRole(user, initial);
    h.sensitive(initial);
    const arn = await h.createSecret(make(user, initial));
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.steps).toEqual(['createSecret']);
    expect(r.error).toMatch(/^SecretFormatError: /);
    expect(r.error).toMatch(message);
    expect(await h.current(arn)).toEqual(before);
    expect(await tryLogin(user, initial)).toBe('ok');
  });
});

describe('TLS', () => {
  it.each([
    ['single, verify-full by host name', 'localhost', 'single'],
    ['single, verify-full by IP address', '127.0.0.1', 'single'],
    ['alternating, verify-full by host name', 'localhost', 'alternating'],
  ] as const)('%s, with the CA from sslCa, for a user the server only accepts over TLS', async (_label, host, strategy) => {
    const h = harness();
    const user = uniq('tls');
    const initial = hostilePassword('tls');
    await createRole(user, initial, `IN ROLE ${ident(SSL_ONLY_GROUP)}`);
    const tls = { host, ssl: true, sslCa: info.caPem };
    const arn =
      strategy === 'single' ? await h.createSecret(dbSecret(user, initial, tls)) : (await alternatingSecret(h, user, initial, tls)).arn;
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(r.succeeded).toBe(true);
    const cur = await h.credentials(arn);
    expect(await tryLogin(cur.username, cur.password, { ca: info.caPem, host })).toBe('ok');
    if (strategy === 'single') expect(await tryLogin(user, cur.password)).toBe('28000'); // plaintext refused
  });

  it('alternating with an RDS-managed admin secret (credentials only): endpoint from the RDS API, admin login over verified TLS', async () => {
    const rds = new RdsDouble();
    const h = createRotationHarness({
      handler: (o) => createHandler(new DatabaseRotator(postgresEngine, { rdsClient: (region) => rds.client(region) }), o),
      // The managed secret has no sslCa: the deployment's CA bundle verifies the admin's server.
      env: { SSL_CA_BUNDLE: info.caFile },
    });
    // An admin the server accepts over TLS only: the rotation succeeds only if its login used TLS.
    const admin = uniq('rds admin');
    const adminPw = hostilePassword('rdsadmin');
    await createRole(admin, adminPw, `CREATEROLE IN ROLE ${ident(SSL_ONLY_GROUP)}`);
    h.sensitive(info.superPassword, adminPw);
    const user = uniq('managed');
    const initial = hostilePassword('managed');
    await createRole(user, initial);
    await allowAdminToGrant(user, admin);
    const dbArn = rds.addInstance({ id: 'orders-pg', engine: 'postgres', address: 'localhost', port: info.port });
    const adminArn = await h.createSecret({ username: admin, password: adminPw });
    h.sm.tagSecret(adminArn, [{ Key: 'aws:rds:primaryDBInstanceArn', Value: dbArn }]);
    // The child itself connects without TLS: that must not weaken the admin's login.
    const arn = await h.createSecret(dbSecret(user, initial, { host: 'localhost', masterarn: adminArn }));
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const cur = await h.credentials(arn);
    expect(cur.username).toBe(`${user}_clone`);
    expect(await tryLogin(cur.username, cur.password)).toBe('ok');
    expect(rds.calls.map((c) => [c.action, c.params.DBInstanceIdentifier])).toEqual([['DescribeDBInstances', dbArn]]);
    expect(h.records().find((l) => l.message === 'admin secret endpoint')).toMatchObject({ host: 'localhost', port: info.port, endpointFrom: `RDS instance ${dbArn}` });
    // The same admin with "ssl": false in its own secret is refused by the server: TLS was what let it in.
    expect(await tryLogin(admin, adminPw)).toBe('28000');
  });

  it('fails with a TLS error against the wrong CA and changes nothing', async () => {
    const h = harness();
    const user = uniq('tls');
    const initial = hostilePassword('wrongca');
    await createRole(user, initial);
    const arn = await h.createSecret(dbSecret(user, initial, { host: 'localhost', ssl: 'verify-full', sslCa: info.otherCaPem }));
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/\[TLS\] TLS with PostgreSQL at localhost:\d+ failed: .*certificate/);
    expect(await h.current(arn)).toEqual(before);
    expect(await tryLogin(user, initial)).toBe('ok');
  });

  it('fails with a TLS error when ssl is false for a user the server only accepts over TLS', async () => {
    const h = harness();
    const user = uniq('tls');
    const initial = hostilePassword('nossl');
    await createRole(user, initial, `IN ROLE ${ident(SSL_ONLY_GROUP)}`);
    const arn = await h.createSecret(dbSecret(user, initial, { ssl: false }));
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/\[TLS\] PostgreSQL requires TLS for/);
  });

  it('"prefer" falls back to plaintext with a warning when TLS verification fails', async () => {
    const h = harness();
    const user = uniq('tls');
    const initial = hostilePassword('prefer');
    await createRole(user, initial);
    const arn = await h.createSecret(dbSecret(user, initial, { host: 'localhost', ssl: 'prefer', sslCa: info.otherCaPem }));
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(r.succeeded).toBe(true);
    const warnings = h.records().filter((l) => l.level === 'WARN' && /WITHOUT TLS/.test(String(l.message)));
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings[0]).toMatchObject({ username: user });
    expect(await tryLogin(user, (await h.credentials(arn)).password)).toBe('ok');
  });
});

describe('password hashing', () => {
  it('computes the same SCRAM-SHA-256 verifier as the server for the same salt and iterations', async () => {
    const user = uniq('scram');
    const password = hostilePassword('scram');
    await createRole(user, password);
    const { rows } = await su.query<{ rolpassword: string }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [user]);
    const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(rows[0].rolpassword);
    expect(m).not.toBeNull();
    expect(scramSha256Verifier(password, { iterations: Number(m![1]), salt: Buffer.from(m![2], 'base64') })).toBe(rows[0].rolpassword);
  });

  it.each([
    ['scram-sha-256', 'never appears', false],
    ['plaintext', 'appears', true],
  ] as const)('PASSWORD_ENCRYPTION=%s: the new password %s in the server log (log_statement=all)', async (mode, _label, visible) => {
    const h = harness({}, createPostgresEngine({ env: { PASSWORD_ENCRYPTION: mode } }));
    const user = uniq('logged');
    const initial = hostilePassword('log');
    await createRole(user, initial);
    await su.query(`ALTER ROLE ${ident(user)} SET log_statement = 'all'`);
    const arn = await h.createSecret(dbSecret(user, initial));
    expect((await h.rotate(arn)).succeeded).toBe(true);
    const { password } = await h.credentials(arn);
    expect(await tryLogin(user, password)).toBe('ok');

    const log = (await su.query<{ text: string }>('SELECT pg_read_file(pg_current_logfile()) AS text')).rows[0].text;
    const statement = log.split('\n').filter((l) => l.includes(`ALTER ROLE ${ident(user)} WITH PASSWORD`));
    expect(statement).toHaveLength(1);
    // The default policy excludes ' and \, so a plaintext password appears in the statement verbatim.
    expect(statement[0].includes(password)).toBe(visible);
    if (!visible) expect(statement[0]).toContain("PASSWORD 'SCRAM-SHA-256$4096:");
    const stored = await su.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [user]);
    expect(stored.rows[0].rolpassword).toMatch(/^SCRAM-SHA-256\$/);
  });

  it('rejects an unknown PASSWORD_ENCRYPTION value with a configuration error in createSecret, before AWSPENDING is written', async () => {
    const h = harness({}, createPostgresEngine({ env: { PASSWORD_ENCRYPTION: 'sha1' } }));
    const user = uniq('cfg');
    const initial = hostilePassword('cfg');
    await createRole(user, initial);
    const arn = await h.createSecret(dbSecret(user, initial));
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/ConfigError: PASSWORD_ENCRYPTION must be "auto".*got "sha1"/);
    expect(r.steps).toEqual(['createSecret']);
    expect(r.calls).not.toContain('PutSecretValue');
    expect(r.calls).not.toContain('GetRandomPassword');
    expect(await tryLogin(user, initial)).toBe('ok');
  });

  it('reads PASSWORD_ENCRYPTION from the handler\'s env, never from process.env, in both strategies', async () => {
    const saved = process.env.PASSWORD_ENCRYPTION;
    process.env.PASSWORD_ENCRYPTION = 'not-a-mode'; // would fail every rotation if it were read
    try {
      // Single user, handler env plaintext: the packaged engine sends the password itself.
      const h = harness({ PASSWORD_ENCRYPTION: 'plaintext' });
      const user = uniq('envpw');
      await createRole(user, hostilePassword('envpw'));
      await su.query(`ALTER ROLE ${ident(user)} SET log_statement = 'all'`);
      const arn = await h.createSecret(dbSecret(user, hostilePassword('envpw')));
      expect((await h.rotate(arn)).succeeded).toBe(true);
      const { password } = await h.credentials(arn);
      const log = (await su.query<{ text: string }>('SELECT pg_read_file(pg_current_logfile()) AS text')).rows[0].text;
      const statement = log.split('\n').filter((l) => l.includes(`ALTER ROLE ${ident(user)} WITH PASSWORD`));
      expect(statement).toHaveLength(1);
      expect(statement[0].includes(password)).toBe(true);

      // Alternating users, handler env with an unknown mode: refused in createSecret.
      const h2 = harness({ PASSWORD_ENCRYPTION: 'sha1' });
      const user2 = uniq('envalt');
      await createRole(user2, hostilePassword('envalt'));
      const { arn: arn2 } = await alternatingSecret(h2, user2, hostilePassword('envalt'));
      const r2 = await h2.rotate(arn2);
      expect(r2.error).toMatch(/ConfigError: PASSWORD_ENCRYPTION must be "auto" \(the default: keep the verifier type the user has\), "scram-sha-256", "md5" or "plaintext", got "sha1"/);
      expect(r2.steps).toEqual(['createSecret']);
      expect(await roleExists(`${user2}_clone`)).toBe(false);

      // No PASSWORD_ENCRYPTION in the handler env: the default (SCRAM), whatever process.env says.
      const h3 = harness({});
      const { arn: arn3 } = await alternatingSecret(h3, user2, hostilePassword('envalt'));
      expect((await h3.rotate(arn3)).succeeded).toBe(true);
      const stored = await su.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [`${user2}_clone`]);
      expect(stored.rows[0].rolpassword).toMatch(/^SCRAM-SHA-256\$/);
    } finally {
      if (saved === undefined) delete process.env.PASSWORD_ENCRYPTION;
      else process.env.PASSWORD_ENCRYPTION = saved;
    }
  });
});

describe('connection error classification (engine.connect against the real server)', () => {
  const noTls = { enabled: false, verifyChain: false, verifyHostname: false };
  const wrongCa = { enabled: true, verifyChain: true, verifyHostname: true, ca: info.otherCaPem };
  const wrongPassword = `Wrong'"\\${RUN}-pw`;
  type Make = (user: string, password: string) => Partial<DbSecret>;
  const cases: Array<[string, Make, typeof noTls, RegExp]> = [
    ['AUTH', (u) => ({ username: u, password: wrongPassword }), noTls, /rejected the password.*28P01/],
    ['CONFIG', (u, p) => ({ username: u, password: p, dbname: 'no such db' }), noTls, /database "no such db" does not exist/],
    ['TLS', (u, p) => ({ username: u, password: p, host: 'localhost' }), wrongCa, /TLS with PostgreSQL at localhost.*certificate/],
    ['NETWORK', (u, p) => ({ username: u, password: p, port: 1 }), noTls, /Cannot reach PostgreSQL.*ECONNREFUSED/],
  ];
  it.each(cases)('%s', async (code, make, tls, message) => {
    const h = harness();
    const user = uniq('conn');
    const password = hostilePassword('conn');
    await createRole(user, password);
    h.sensitive(password, wrongPassword);
    const secret = { engine: 'postgres', host: info.host, port: info.port, username: user, password, ...make(user, password) } as DbSecret;
    const log = new Logger((line) => h.logs.push(line));
    const err = await postgresEngine.connect(secret, { tls, connectTimeoutMs: 3000, statementTimeoutMs: 30_000, log, env: {} }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeDefined();
    h.recordError(err);
    expect((err as { code: string }).code).toBe(code);
    expect((err as Error).message).toMatch(message);
    // A classified error made from a driver message that quotes the password still hides it.
    const echoed = classifyConnectError(Object.assign(new Error(`bad password ${secret.password}`), { code: '28P01' }), secret, info.port);
    h.recordError(echoed);
    expect(echoed.message).not.toContain(secret.password);
  });
});

describe('statement error classification', () => {
  it('PostgreSQL 16+ "no possible grantors" (XX000) is PRIVILEGE with the ADMIN OPTION remedy; DETAIL and HINT are kept, scrubbed', () => {
    const secret = `Sc'rub-${RUN}-me`;
    const grantors = Object.assign(new Error('no possible grantors'), { code: 'XX000', severity: 'ERROR' });
    const e1 = classifyStatementError(grantors, {} as Client, 'grant role "app" to "app_clone"');
    expect(e1).toMatchObject({ name: 'PrivilegeError', code: 'PRIVILEGE' });
    expect(e1.message).toMatch(/no possible grantors \(SQLSTATE XX000\).*ADMIN OPTION/);
    const detailed = Object.assign(new Error('permission denied to alter role'), {
      code: '42501',
      detail: `Only roles with the CREATEROLE attribute and the ADMIN option on role "app" may alter this role (${secret}).`,
      hint: `Ask ${secret}.`,
    });
    const e2 = classifyStatementError(detailed, {} as Client, 'set the password of "app"', [secret], { privilegeRemedy: 'Fix it.' });
    expect(e2.message).toMatch(/DETAIL: Only roles with the CREATEROLE attribute and the ADMIN option on role "app" may alter this role \(\*\*\*\)\. HINT: Ask \*\*\*\..*Fix it\./);
    expect(e2.message).not.toContain(secret);
    const timeout = classifyStatementError(new Error('Query read timeout'), {} as Client, 'run the check query');
    expect(timeout).toMatchObject({ code: 'NETWORK' });
    expect(timeout.message).toMatch(/STATEMENT_TIMEOUT_MS/);
  });
});

describe('the no-leak assertion itself', () => {
  it('detects a registered password in a log line (raw or JSON-escaped) and in an error message', () => {
    const h = harness();
    const pw = `Leak'"\\ed-${RUN}-Pw`;
    h.sensitive(pw);
    h.logs.push(JSON.stringify({ message: 'oops', value: pw }));
    expect(() => h.assertNoLeaks()).toThrow(/Sensitive value #\d+ \(length \d+\) appears in log line 1/);
    h.logs.length = 0;
    h.recordError(new Error(`driver said ${pw}`));
    expect(() => h.assertNoLeaks()).toThrow(/appears in error 1/);
    // The assertion's own message never repeats the value.
    try {
      h.assertNoLeaks();
    } catch (err) {
      expect((err as Error).message).not.toContain(pw);
    }
    h.errors.length = 0;
    expect(() => h.assertNoLeaks()).not.toThrow();
  });
});
