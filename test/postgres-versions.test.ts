/**
 * The PostgreSQL rotator's core scenarios on every server version of the run: Debian's 15 (the
 * full suite is test/postgres.test.ts) and the oldest and newest majors RDS supports, 13 (with
 * password_encryption=md5 and the md5 pg_hba method, as RDS defaults to through 13) and 18, both
 * real binaries from npm. The admin is always the RDS-like master user (no superuser: CREATEROLE,
 * CREATEDB, member of rds_superuser). The superuser only sets the scene and inspects.
 *
 * Per version: single user (the verifier type kept), the alternating pair in both directions
 * with per-role settings, the attacks on the alternate-user check (an existing superuser, an
 * unrelated application user, a NOLOGIN role, an unrelated unmarked clone), adopting an unmarked
 * pair, and a concurrent duplicate of the upsert. Plus, once, a server that stalls after the
 * login (STATEMENT_TIMEOUT_MS).
 */
import { Client } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { DatabaseRotator } from '../src/db/database-rotator';
import type { DbSecret } from '../src/db/secret';
import { createHandler } from '../src/handler';
import { Logger } from '../src/log';
import type { Env } from '../src/password';
import { alternateMarker, postgresEngine } from '../rotators/postgres/engine';
import type { PostgresInfo } from './support/provided';
import { assertNoLeaksInAll, createRotationHarness, type RotationHarness } from './support/rotation-harness';
import { startStallProxy } from './support/stall-proxy';
import { pgLogin } from './support/logins';

const RUN = Math.random().toString(36).slice(2, 6);
let counter = 0;
const uniq = (base: string) => `${base}_${RUN}_${++counter}`;
const hostilePassword = (tag: string) => `Ve'r"s\\$$;--%Ü ${tag} ${RUN}-Pw9`;

afterEach(() => assertNoLeaksInAll());

const servers: PostgresInfo[] = [inject('postgres'), ...inject('postgresVersions')];

function major(info: PostgresInfo): number {
  return Math.floor(info.versionNum / 10000);
}

describe.each(servers.map((info) => [`PostgreSQL ${Math.floor(info.versionNum / 10000)} (${info.passwordEncryption})`, info] as const))('%s', (_name, info) => {
  let su: Client;
  const ident = (s: string) => su.escapeIdentifier(s);
  const literal = (s: string) => su.escapeLiteral(s);

  beforeAll(async () => {
    su = new Client({ host: info.host, port: info.port, user: info.superuser, password: info.superPassword, database: info.database, ssl: false });
    await su.connect();
  });
  afterAll(async () => {
    await su?.end();
  });

  async function createRole(name: string, password: string | null, extra = ''): Promise<void> {
    await su.query(`CREATE ROLE ${ident(name)} WITH ${password === null ? 'NOLOGIN' : `LOGIN PASSWORD ${literal(password)}`} ${extra}`);
  }

  /** On 16+, what RDS's master gets through rds_superuser: the right to administer a role the superuser created. */
  async function adminMayAdminister(role: string): Promise<void> {
    if (info.versionNum >= 160000) await su.query(`GRANT ${ident(role)} TO ${ident(info.master)} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`);
  }

  const tryLogin = (user: string, password: string): Promise<string> => pgLogin(info, user, password);

  /** Everything the server stores about a role that an attack could change. */
  async function roleState(name: string) {
    const { rows } = await su.query(
      `SELECT a.rolpassword, a.rolcanlogin, a.rolsuper, a.rolcreaterole, a.rolcreatedb, shobj_description(a.oid, 'pg_authid') AS comment,
              (SELECT array_agg(r.rolname::text ORDER BY r.rolname) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid WHERE m.member = a.oid) AS member_of
         FROM pg_authid a WHERE a.rolname = $1`,
      [name],
    );
    return rows[0];
  }

  function harness(env: Env = {}): RotationHarness {
    const h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(postgresEngine), o), env });
    h.sensitive(info.superPassword, info.masterPassword);
    return h;
  }

  function dbSecret(username: string, password: string, extra: Record<string, unknown> = {}) {
    return { engine: 'postgres', host: info.host, port: info.port, dbname: info.database, username, password, ssl: false, ...extra };
  }

  async function alternatingSecret(h: RotationHarness, username: string, password: string) {
    const adminArn = await h.createSecret({ host: info.host, port: info.port, ssl: false, username: info.master, password: info.masterPassword });
    return h.createSecret({ ...dbSecret(username, password), masterarn: adminArn });
  }

  /** No version of the secret holds a password that logs `victim` in. */
  async function noCredentialOf(h: RotationHarness, arn: string, victim: string): Promise<void> {
    for (const versionId of Object.keys(h.sm.versionStages(arn))) {
      const v = await h.version(arn, versionId);
      if (!v.json) continue;
      expect(v.json.username === victim && (await tryLogin(victim, String(v.json.password))) === 'ok', `version ${versionId}`).toBe(false);
    }
  }

  const verifierPattern = info.passwordEncryption === 'md5' ? /^md5[0-9a-f]{32}$/ : /^SCRAM-SHA-256\$4096:/;

  it('single user: rotates twice and keeps the verifier type the user has', async () => {
    const h = harness();
    const user = uniq('single');
    const initial = hostilePassword('single');
    await createRole(user, initial);
    expect((await roleState(user)).rolpassword).toMatch(verifierPattern);
    const arn = await h.createSecret(dbSecret(user, initial));
    for (let i = 0; i < 2; i++) {
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      const cur = await h.credentials(arn);
      expect(await tryLogin(user, cur.password)).toBe('ok');
      expect((await roleState(user)).rolpassword).toMatch(verifierPattern);
    }
    const logged = h.records().filter((l) => l.message === 'ALTER ROLE ... PASSWORD executed');
    expect(logged).toHaveLength(2);
    expect(logged[0]).toMatchObject({ passwordEncryption: info.passwordEncryption, passwordEncryptionFrom: `the user's login (${info.passwordEncryption})` });
  });

  it('alternating: user -> clone -> user -> clone with the RDS-like master; marker, memberships and per-role settings reach the clone', async () => {
    const h = harness();
    const user = uniq('Pair "P"');
    const clone = `${user}_clone`;
    const initial = hostilePassword('pair');
    await createRole(user, initial);
    await adminMayAdminister(user);
    const schema = uniq('App Schema');
    await su.query(`CREATE SCHEMA ${ident(schema)}; CREATE TABLE ${ident(schema)}.items (id int); INSERT INTO ${ident(schema)}.items VALUES (1)`);
    await su.query(`GRANT USAGE ON SCHEMA ${ident(schema)} TO ${ident(user)}; GRANT SELECT ON ${ident(schema)}.items TO ${ident(user)}`);
    // Unqualified names resolve through the user's own search_path (a quoted schema name), and
    // a per-database setting.
    await su.query(`ALTER ROLE ${ident(user)} SET search_path = ${literal(schema)}, public`);
    await su.query(`ALTER ROLE ${ident(user)} IN DATABASE ${ident(info.database)} SET statement_timeout = '12345'`);
    const arn = await alternatingSecret(h, user, initial);

    for (const expected of [clone, user, clone, user]) {
      const before = await h.credentials(arn);
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      const cur = await h.credentials(arn);
      expect(cur.username).toBe(expected);
      expect(await tryLogin(before.username, before.password)).toBe('ok');
      const c = new Client({ host: info.host, port: info.port, user: expected, password: cur.password, database: info.database, ssl: false });
      await c.connect();
      try {
        expect((await c.query('SELECT count(*)::int AS n FROM items')).rows[0].n).toBe(1);
        expect((await c.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('12345ms');
      } finally {
        await c.end();
      }
    }
    const state = await roleState(clone);
    expect(state.comment).toBe(alternateMarker(user));
    expect(state.member_of).toEqual([user]);
    expect(state.rolpassword).toMatch(verifierPattern);
    expect(h.records().find((l) => l.message === 'created the alternate user')).toMatchObject({
      markerSet: true,
      settingsCopied: ['search_path', `statement_timeout (database ${info.database})`],
    });
  });

  it('POSTGRES_CLONE_SET_ROLE=true: the clone\'s sessions act as the user (membership with SET on 16+)', async () => {
    const h = harness({ POSTGRES_CLONE_SET_ROLE: 'true' });
    const user = uniq('setrole');
    const initial = hostilePassword('setrole');
    await createRole(user, initial);
    await adminMayAdminister(user);
    const arn = await alternatingSecret(h, user, initial);
    for (const expected of [`${user}_clone`, user, `${user}_clone`]) {
      expect((await h.rotate(arn)).error).toBeUndefined();
      const cur = await h.credentials(arn);
      expect(cur.username).toBe(expected);
      const c = new Client({ host: info.host, port: info.port, user: expected, password: cur.password, database: info.database, ssl: false });
      await c.connect();
      try {
        expect((await c.query('SELECT current_user AS cu, session_user AS su')).rows[0]).toEqual({ cu: user, su: expected });
      } finally {
        await c.end();
      }
    }
  });

  it('attack: a child secret naming X_clone for an existing superuser X fails PRIVILEGE; X keeps its password and attributes', async () => {
    const h = harness();
    const victim = uniq('dba');
    const victimPassword = hostilePassword('victim-su');
    await createRole(victim, victimPassword, 'SUPERUSER');
    await adminMayAdminister(victim);
    h.sensitive(victimPassword);
    // The attacker created `<victim>_clone` (any login will do) and even forged the marker.
    const attacker = `${victim}_clone`;
    const attackerPassword = hostilePassword('attacker');
    await createRole(attacker, attackerPassword);
    await su.query(`COMMENT ON ROLE ${ident(attacker)} IS ${literal(alternateMarker(victim))}`);
    const before = await roleState(victim);
    const arn = await alternatingSecret(h, attacker, attackerPassword);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^PrivilegeError: Refusing to change the existing role ".*": it holds what ".*_clone" does not: SUPERUSER/);
    expect(await roleState(victim)).toEqual(before);
    expect(await tryLogin(victim, victimPassword)).toBe('ok');
    await noCredentialOf(h, arn, victim);
  });

  it('attack: an unrelated application user X (owns a table, holds a role) behind X_clone fails PRIVILEGE, even with ADOPT_UNMARKED_ALTERNATE', async () => {
    const h = harness({ ADOPT_UNMARKED_ALTERNATE: 'true' });
    const victim = uniq('billing');
    const victimPassword = hostilePassword('victim-app');
    const group = uniq('payments');
    await createRole(group, null);
    await createRole(victim, victimPassword, `IN ROLE ${ident(group)}`);
    await adminMayAdminister(victim);
    const table = uniq('invoices');
    await su.query(`CREATE TABLE ${ident(table)} (id int); ALTER TABLE ${ident(table)} OWNER TO ${ident(victim)}`);
    h.sensitive(victimPassword);
    const attacker = `${victim}_clone`;
    const attackerPassword = hostilePassword('attacker2');
    await createRole(attacker, attackerPassword);
    const before = await roleState(victim);
    const arn = await alternatingSecret(h, attacker, attackerPassword);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^PrivilegeError: Refusing to change the existing role/);
    expect(r.error).toContain(`membership of role "${group}"`);
    expect(r.error).toMatch(/owns 1 object/);
    expect(await roleState(victim)).toEqual(before);
    expect(await tryLogin(victim, victimPassword)).toBe('ok');
    await noCredentialOf(h, arn, victim);
  });

  it('attack: a NOLOGIN group role X behind X_clone fails STATE and stays NOLOGIN', async () => {
    const h = harness({ ADOPT_UNMARKED_ALTERNATE: 'true' });
    const victim = uniq('readers');
    await createRole(victim, null);
    await adminMayAdminister(victim);
    const attacker = `${victim}_clone`;
    const attackerPassword = hostilePassword('attacker3');
    await createRole(attacker, attackerPassword);
    const before = await roleState(victim);
    const arn = await alternatingSecret(h, attacker, attackerPassword);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^RotationStateError: .*it is not a login/);
    expect(await roleState(victim)).toEqual(before);
  });

  it('attack: an unrelated unmarked X_clone is refused naming ADOPT_UNMARKED_ALTERNATE; with it, its extra role still refuses', async () => {
    const h = harness();
    const user = uniq('shop');
    const initial = hostilePassword('shop');
    await createRole(user, initial);
    await adminMayAdminister(user);
    const other = `${user}_clone`;
    const otherPassword = hostilePassword('other');
    const ops = uniq('ops');
    await createRole(ops, null);
    await createRole(other, otherPassword);
    await adminMayAdminister(other);
    h.sensitive(otherPassword);
    const arn = await alternatingSecret(h, user, initial);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^PrivilegeError: .*not marked as created by this function.*ADOPT_UNMARKED_ALTERNATE=true/);
    expect(await tryLogin(other, otherPassword)).toBe('ok');

    await noCredentialOf(h, arn, other);

    // A fresh secret (the first rotation stays incomplete), with the opt-in.
    await su.query(`GRANT ${ident(ops)} TO ${ident(other)}`);
    const before = await roleState(other);
    const h2 = harness({ ADOPT_UNMARKED_ALTERNATE: 'true' });
    const arn2 = await alternatingSecret(h2, user, initial);
    const r2 = await h2.rotate(arn2);
    expect(r2.succeeded).toBe(false);
    expect(r2.error).toContain(`membership of role "${ops}"`);
    expect(await roleState(other)).toEqual(before);
    expect(await tryLogin(other, otherPassword)).toBe('ok');
    await noCredentialOf(h2, arn2, other);
  });

  it('an unmarked genuine pair (as AWS\'s rotator leaves it) rotates only with ADOPT_UNMARKED_ALTERNATE=true, and is marked then', async () => {
    const h = harness();
    const user = uniq('legacy');
    const clone = `${user}_clone`;
    const initial = hostilePassword('legacy');
    await createRole(user, initial);
    await createRole(clone, hostilePassword('legacy-clone'), `IN ROLE ${ident(user)}`);
    await adminMayAdminister(user);
    await adminMayAdminister(clone);
    const r = await h.rotate(await alternatingSecret(h, user, initial));
    expect(r.error).toMatch(/ADOPT_UNMARKED_ALTERNATE/);
    expect((await roleState(clone)).comment).toBeNull();
    const h2 = harness({ ADOPT_UNMARKED_ALTERNATE: 'true' });
    const arn = await alternatingSecret(h2, user, initial);
    expect((await h2.rotate(arn)).error).toBeUndefined();
    expect((await roleState(clone)).comment).toBe(alternateMarker(user));
    h2.env = {};
    expect((await h2.rotate(arn)).error).toBeUndefined();
    expect((await h2.credentials(arn)).username).toBe(user);
  });

  it('two concurrent upserts of the same alternate user both succeed (concurrent duplicate converges)', async () => {
    const log = new Logger(() => undefined);
    const master = { engine: 'postgres', host: info.host, port: info.port, dbname: info.database, username: info.master, password: info.masterPassword } as DbSecret;
    const opts = { tls: { enabled: false, verifyChain: false, verifyHostname: false }, connectTimeoutMs: 5000, statementTimeoutMs: 30_000, log, env: {} };
    for (let i = 0; i < 3; i++) {
      const user = uniq('race');
      const initial = hostilePassword('race');
      await createRole(user, initial);
      await adminMayAdminister(user);
      const newPassword = `Race${RUN}${i}newPassw0rd`;
      const change = { currentUser: user, alternateUser: `${user}_clone`, newPassword, current: dbSecret(user, initial) as DbSecret };
      const [a, b] = await Promise.all([postgresEngine.connect(master, opts), postgresEngine.connect(master, opts)]);
      try {
        const run = async (c: Client) => {
          await postgresEngine.checkAlternateUser(c, change, { env: {}, log });
          await postgresEngine.upsertAlternateUser(c, change, { env: {}, log });
        };
        await Promise.all([run(a), run(b)]);
      } finally {
        await Promise.all([postgresEngine.close(a), postgresEngine.close(b)]);
      }
      expect(await tryLogin(`${user}_clone`, newPassword)).toBe('ok');
      expect((await roleState(`${user}_clone`)).comment).toBe(alternateMarker(user));
    }
  });

  it('two concurrent single-user password changes of the same step both succeed', async () => {
    const log = new Logger(() => undefined);
    const opts = { tls: { enabled: false, verifyChain: false, verifyHostname: false }, connectTimeoutMs: 5000, statementTimeoutMs: 30_000, log, env: {} };
    for (let i = 0; i < 3; i++) {
      const user = uniq('race1');
      const initial = hostilePassword('race1');
      await createRole(user, initial);
      const secret = { engine: 'postgres', host: info.host, port: info.port, dbname: info.database, username: user, password: initial } as DbSecret;
      const newPassword = `Race1${RUN}${i}newPassw0rd`;
      const [a, b] = await Promise.all([postgresEngine.connect(secret, opts), postgresEngine.connect(secret, opts)]);
      try {
        const change = { username: user, oldPassword: initial, newPassword };
        await Promise.all([postgresEngine.setOwnPassword(a, change, { env: {}, log }), postgresEngine.setOwnPassword(b, change, { env: {}, log })]);
      } finally {
        await Promise.all([postgresEngine.close(a), postgresEngine.close(b)]);
      }
      expect(await tryLogin(user, newPassword)).toBe('ok');
    }
  });

  if (major(info) >= 16) {
    it('16+: an existing clone the master holds no ADMIN OPTION on fails PRIVILEGE with the 16+ remedy and the server\'s DETAIL', async () => {
      const h = harness();
      const user = uniq('upgraded');
      const clone = `${user}_clone`;
      const initial = hostilePassword('upgraded');
      await createRole(user, initial);
      // A marked pair created before the upgrade (or by another admin): the master has no ADMIN OPTION on the clone.
      await createRole(clone, hostilePassword('upgraded-clone'), `IN ROLE ${ident(user)}`);
      await su.query(`COMMENT ON ROLE ${ident(clone)} IS ${literal(alternateMarker(user))}`);
      await adminMayAdminister(user);
      const arn = await alternatingSecret(h, user, initial);
      const r = await h.rotate(arn);
      expect(r.succeeded).toBe(false);
      expect(r.error).toMatch(/^PrivilegeError: PostgreSQL refused to set the password of .* DETAIL: Only roles with the CREATEROLE attribute and the ADMIN option on role .* may alter this role\..*On PostgreSQL 16\+ a CREATEROLE admin may alter only roles it holds ADMIN OPTION on/);
    });
  }
});

describe('a server that accepts the login, then never answers', () => {
  const info = inject('postgres');
  it('fails setSecret with NETWORK naming STATEMENT_TIMEOUT_MS, well before the Lambda timeout, and changes nothing', async () => {
    const proxy = await startStallProxy(info);
    const su = new Client({ host: info.host, port: info.port, user: info.superuser, password: info.superPassword, database: info.database, ssl: false });
    await su.connect();
    try {
      const h = createRotationHarness({
        handler: (o) => createHandler(new DatabaseRotator(postgresEngine), o),
        env: { STATEMENT_TIMEOUT_MS: '1000', CONNECT_TIMEOUT_MS: '3000' },
        sm: { rotationMaxAttempts: 1 },
      });
      h.sensitive(info.superPassword);
      const user = uniq('stall');
      const initial = hostilePassword('stall');
      await su.query(`CREATE ROLE ${su.escapeIdentifier(user)} LOGIN PASSWORD ${su.escapeLiteral(initial)}`);
      const arn = await h.createSecret({ engine: 'postgres', host: info.host, port: proxy.port, dbname: info.database, username: user, password: initial, ssl: false });
      const started = Date.now();
      const r = await h.rotate(arn);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(r.succeeded).toBe(false);
      expect(r.error).toMatch(/\[?NETWORK\]?|ConnectError/);
      expect(r.error).toMatch(/timed out after 1000 ms \(STATEMENT_TIMEOUT_MS\)/);
      expect(proxy.stalled()).toBeGreaterThan(0);
      // The ALTER ROLE never reached the server: the old password still logs in.
      const c = new Client({ host: info.host, port: info.port, user, password: initial, database: info.database, ssl: false });
      await c.connect();
      await c.end();
    } finally {
      await su.end();
      await proxy.close();
    }
  });
});
