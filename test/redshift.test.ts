/**
 * The Redshift rotator end to end, over the PostgreSQL wire protocol against the real
 * PostgreSQL 15 server of the global setup, through the Secrets Manager double and the real AWS
 * SDK client. Redshift-only catalog behaviour (pg_user/pg_group as Redshift implements them,
 * SVV_* views, datashare databases, case folding of identifiers) cannot be exercised here; the
 * SQL the engine sends is the subset both servers accept.
 */
import { GetRandomPasswordCommand } from '@aws-sdk/client-secrets-manager';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createHandler, Logger, type RotationEvent } from '../src';
import {
  RedshiftRotator,
  redshiftEngine,
  redshiftPasswordPolicy,
  validateRedshiftPassword,
} from '../rotators/redshift';
import { redshiftManagedAdminLookup } from '../rotators/redshift/managed-admin';
import { RedshiftDouble } from '../src/testing';
import { SSL_ONLY_GROUP } from './support/postgres';
import { assertNoLeaksInAll, createRotationHarness, type RotationHarness } from './support/rotation-harness';

const pg = inject('postgres');
const ID = randomUUID().replace(/-/g, '').slice(0, 6);
/** A database of this file's own, with TEMP revoked from PUBLIC so copying TEMP is observable. */
const DB = `rs db "${ID}"`;

let su: Client; // superuser, in the shared database
let suDb: Client; // superuser, in DB

function connectAs(user: string, password: string, database = DB): Client {
  return new Client({ host: pg.host, port: pg.port, user, password, database, ssl: { ca: pg.caPem }, connectionTimeoutMillis: 5000 });
}

/** Log in and run `sql` (if any); returns 'ok' or the SQLSTATE / error code of the failure. */
async function tryAs(user: string, password: string, sql?: string, database = DB): Promise<string> {
  const c = connectAs(user, password, database);
  try {
    await c.connect();
    if (sql) await c.query(sql);
    return 'ok';
  } catch (err) {
    return String((err as { code?: string }).code ?? (err as Error).message);
  } finally {
    await c.end().catch(() => undefined);
  }
}

const id = (s: string) => su.escapeIdentifier(s);
const lit = (s: string) => su.escapeLiteral(s);

async function createUser(name: string, password: string): Promise<void> {
  await su.query(`CREATE USER ${id(name)} PASSWORD ${lit(password)}`);
}

async function userExists(name: string): Promise<boolean> {
  return (await su.query('SELECT 1 FROM pg_user WHERE usename = $1', [name])).rowCount === 1;
}

async function groupsOf(user: string): Promise<string[]> {
  const { rows } = await su.query<{ g: string }>(
    'SELECT g.groname AS g FROM pg_group g JOIN pg_user u ON u.usesysid = ANY (g.grolist) WHERE u.usename = $1 ORDER BY 1', [user]);
  return rows.map((r) => r.g);
}

/** The secret every test starts from: TLS verify-full against the test CA. */
function secretFor(username: string, password: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { engine: 'redshift', host: pg.host, port: pg.port, dbname: DB, username, password, ssl: 'verify-full', sslCa: pg.caPem, ...extra };
}

/** A self-describing admin secret for the same server (Redshift-managed ones are tested on their own). */
function adminSecret(username: string, password: string): Record<string, unknown> {
  return { host: pg.host, port: pg.port, ssl: 'verify-full', sslCa: pg.caPem, username, password };
}

function harness(env: Record<string, string> = {}, sm?: { rotationMaxAttempts?: number }): RotationHarness {
  return createRotationHarness({ handler: (o) => createHandler(new RedshiftRotator(), o), env, sm });
}

/** Redshift's password rules, written out independently of the engine's validator. */
function expectRedshiftPassword(pw: string): void {
  expect(pw.length).toBeGreaterThanOrEqual(8);
  expect(pw.length).toBeLessThanOrEqual(64);
  expect(pw).toMatch(/[A-Z]/);
  expect(pw).toMatch(/[a-z]/);
  expect(pw).toMatch(/[0-9]/);
  expect(pw).toMatch(/^[\x21-\x7e]+$/);
  expect(pw).not.toMatch(/['"\\/@ ]/);
}

// Hostile names: quotes, backslash, spaces, semicolons, %, upper case, unicode (each < 57 bytes so `_clone` fits PostgreSQL's 63).
const HOSTILE_PASSWORD = `In'it "pw" \\ ;% Ünï ${ID}`;

beforeAll(async () => {
  su = new Client({ host: pg.host, port: pg.port, user: pg.superuser, password: pg.superPassword, database: pg.database, ssl: false });
  await su.connect();
  await su.query(`CREATE DATABASE ${id(DB)}`);
  await su.query(`REVOKE TEMP ON DATABASE ${id(DB)} FROM PUBLIC`);
  suDb = new Client({ host: pg.host, port: pg.port, user: pg.superuser, password: pg.superPassword, database: DB, ssl: false });
  await suDb.connect();
});

afterAll(async () => {
  await suDb?.end();
  await su?.end();
});

afterEach(() => assertNoLeaksInAll());

describe('password policy', () => {
  it('generates passwords that meet the Redshift rules, whatever the permitted settings', async () => {
    const h = harness();
    const envs: Array<Record<string, string>> = [
      {},
      { PASSWORD_LENGTH: '8' },
      { PASSWORD_LENGTH: '64', EXCLUDE_PUNCTUATION: 'true' },
      { EXCLUDE_CHARACTERS: '' }, // the forbidden characters are added back
      { EXCLUDE_NUMBERS: 'false', EXCLUDE_CHARACTERS: 'abcdefghijklmnopqrstuvwxy' },
    ];
    for (const env of envs) {
      const policy = redshiftPasswordPolicy(env);
      for (let i = 0; i < 40; i++) {
        const out = await h.client.send(new GetRandomPasswordCommand({ ...policy }));
        const pw = out.RandomPassword!;
        h.sensitive(pw);
        expectRedshiftPassword(pw);
        expect(() => validateRedshiftPassword(pw)).not.toThrow();
      }
    }
    expect(redshiftPasswordPolicy({})).toMatchObject({ PasswordLength: 32, RequireEachIncludedType: true, ExcludeNumbers: false });
    expect(redshiftPasswordPolicy({}).ExcludeCharacters).toContain(':');
  });

  it('rejects settings that would break the rules with a ConfigError naming the variable', () => {
    for (const [env, name] of [
      [{ EXCLUDE_NUMBERS: 'true' }, 'EXCLUDE_NUMBERS'],
      [{ EXCLUDE_UPPERCASE: 'yes' }, 'EXCLUDE_UPPERCASE'],
      [{ EXCLUDE_LOWERCASE: '1' }, 'EXCLUDE_LOWERCASE'],
      [{ REQUIRE_EACH_INCLUDED_TYPE: 'false' }, 'REQUIRE_EACH_INCLUDED_TYPE'],
      [{ PASSWORD_LENGTH: '7' }, 'PASSWORD_LENGTH'],
      [{ PASSWORD_LENGTH: '65' }, 'PASSWORD_LENGTH'],
    ] as const) {
      expect(() => redshiftPasswordPolicy(env)).toThrow(expect.objectContaining({ code: 'CONFIG', message: expect.stringContaining(name) }));
    }
  });

  it('validatePassword names the broken rule and never the password', () => {
    const cases: Array<[string, RegExp]> = [
      ['Short1a', /7 characters long/],
      ['A1' + 'b'.repeat(63), /65 characters long/],
      ['nouppercase123', /lacks an upper-case letter;/],
      ['NOLOWERCASE123', /lacks a lower-case letter;/],
      ['NoDigitsHere!', /lacks a digit;/], ['nothing-but-lower', /lacks an upper-case letter and a digit;/],
      ['Has@Sign123', /1 character\(s\)/],
      ['Has Space123', /1 character\(s\)/],
      ["Quote'd\"123\\", /3 character\(s\)/],
      ['Ünïcode123aB', /2 character\(s\)/],
    ];
    for (const [pw, msg] of cases) {
      let err: unknown;
      try {
        validateRedshiftPassword(pw);
      } catch (e) {
        err = e;
      }
      expect(err, pw).toMatchObject({ code: 'SECRET_FORMAT' });
      expect((err as Error).message).toMatch(msg);
      expect((err as Error).message).not.toContain(pw);
    }
    expect(() => validateRedshiftPassword('Valid#Passw0rd')).not.toThrow();
  });

  it('EXCLUDE_NUMBERS=true fails the rotation in createSecret and leaves AWSCURRENT and the user untouched', async () => {
    const user = `rs nonum ${ID}`;
    const password = `Start-Pw-${ID}-1a`;
    await createUser(user, password);
    const h = harness({ EXCLUDE_NUMBERS: 'true' });
    const initial = JSON.stringify(secretFor(user, password));
    const arn = await h.createSecret(initial);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/ConfigError.*EXCLUDE_NUMBERS/);
    expect(r.calls).not.toContain('PutSecretValue');
    expect((await h.current(arn)).value).toBe(initial);
    expect(await tryAs(user, password)).toBe('ok');
  });
});

describe('single user', () => {
  it('rotates a hostile user name with a hostile initial password; the old password stops working', async () => {
    const user = `Rs "O'Hara" \\;% Ünï ${ID}`;
    await createUser(user, HOSTILE_PASSWORD);
    // Members of this group are refused without TLS: the rotation has to use TLS to succeed.
    await su.query(`ALTER GROUP ${id(SSL_ONLY_GROUP)} ADD USER ${id(user)}`);
    const h = harness();
    const arn = await h.createSecret(secretFor(user, HOSTILE_PASSWORD, { note: 'carried forward' }));
    const initialVersion = h.holderOf(arn, 'AWSCURRENT')!;

    const r1 = await h.rotate(arn);
    expect(r1.error).toBeUndefined();
    expect(r1.succeeded).toBe(true);
    const v1 = await h.current(arn);
    expect(v1.versionId).toBe(r1.versionId);
    expect(v1.json).toMatchObject({ engine: 'redshift', username: user, note: 'carried forward', dbname: DB });
    const pw1 = v1.json!.password as string;
    expectRedshiftPassword(pw1);
    expect(h.stages(arn)[initialVersion]).toEqual(['AWSPREVIOUS']);
    expect(await tryAs(user, pw1)).toBe('ok');
    expect(await tryAs(user, HOSTILE_PASSWORD)).toBe('28P01');

    // Second rotation logs in with the password the first one set.
    const r2 = await h.rotate(arn);
    expect(r2.succeeded).toBe(true);
    const pw2 = (await h.current(arn)).json!.password as string;
    expectRedshiftPassword(pw2);
    expect(pw2).not.toBe(pw1);
    expect(await tryAs(user, pw2)).toBe('ok');
    expect(await tryAs(user, pw1)).toBe('28P01');
    const logs = h.records();
    expect(logs.some((l) => l.message === 'new password set and verified by login')).toBe(true);
    expect(logs.filter((l) => l.level === 'ERROR')).toEqual([]);
  });

  it('survives every step being delivered twice', async () => {
    const user = `rs Twice ${ID}`;
    await createUser(user, HOSTILE_PASSWORD);
    const h = harness();
    const seen: string[] = [];
    h.intercept = async (event: RotationEvent, invoke) => {
      seen.push(event.Step);
      await invoke(event);
      await invoke(event);
    };
    const arn = await h.createSecret(secretFor(user, HOSTILE_PASSWORD));
    for (let i = 0; i < 2; i++) {
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      const pw = (await h.current(arn)).json!.password as string;
      expect(await tryAs(user, pw)).toBe('ok');
    }
    expect(seen).toEqual(['createSecret', 'setSecret', 'testSecret', 'finishSecret', 'createSecret', 'setSecret', 'testSecret', 'finishSecret']);
    expect(h.records().some((l) => l.message === 'AWSPENDING already logs in; password was set by an earlier attempt')).toBe(true);
  });

  it('a secret missing a field fails in createSecret, naming the field, with AWSCURRENT untouched', async () => {
    const h = harness();
    const initial = JSON.stringify({ engine: 'redshift', host: pg.host, port: pg.port, dbname: DB, password: HOSTILE_PASSWORD });
    const arn = await h.createSecret(initial);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/SecretFormatError.*"username" field/);
    expect(r.calls).not.toContain('PutSecretValue');
    expect(r.calls).not.toContain('UpdateSecretVersionStage');
    expect((await h.current(arn)).value).toBe(initial);
  });

  it('refuses a server whose certificate does not chain to sslCa (TLS), leaving the password alone', async () => {
    const user = `rs tls ${ID}`;
    await createUser(user, HOSTILE_PASSWORD);
    const h = harness();
    const initial = JSON.stringify(secretFor(user, HOSTILE_PASSWORD, { sslCa: pg.otherCaPem }));
    const arn = await h.createSecret(initial);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/\[TLS\]/);
    expect((await h.current(arn)).value).toBe(initial);
    expect(await tryAs(user, HOSTILE_PASSWORD)).toBe('ok');
  });

  it('classifies a wrong password as AUTH from connect()', async () => {
    const user = `rs auth ${ID}`;
    await createUser(user, HOSTILE_PASSWORD);
    const h = harness();
    const wrong = `Wrong-${ID}-Password1`;
    h.sensitive(wrong);
    const err = await redshiftEngine
      .connect(secretFor(user, wrong) as never, {
        tls: { enabled: true, verifyChain: true, verifyHostname: true, ca: pg.caPem },
        connectTimeoutMs: 5000, statementTimeoutMs: 30_000,
        log: new Logger(() => undefined),
        env: {},
      })
      .catch((e: unknown) => e);
    h.recordError(err);
    expect(err).toMatchObject({ code: 'AUTH' });
    expect((err as Error).message).toContain('28P01');
  });
});

describe('alternating users', () => {
  it('creates the clone with groups and database/schema/table/view privileges, and copies later grants on every rotation', async () => {
    const app = `App 'Ü' "x" ${ID}`;
    const clone = `${app}_clone`;
    const grp = `Grp "a'b" ${ID}`;
    const grp2 = `grp2 ü; ${ID}`;
    const empty = `Empty "S'c" ${ID}`;
    const data = `data ${ID}`;
    const t = `T 'one' "x"`;
    const admin = `rs admin ${ID}`;
    const adminPassword = `Adm'n "pw" \\ ${ID}`;

    await su.query(`CREATE USER ${id(admin)} SUPERUSER PASSWORD ${lit(adminPassword)}`);
    await createUser(app, HOSTILE_PASSWORD);
    await su.query(`CREATE GROUP ${id(grp)}`);
    await su.query(`CREATE GROUP ${id(grp2)}`);
    await su.query(`ALTER GROUP ${id(grp)} ADD USER ${id(app)}`);
    await su.query(`GRANT CREATE, TEMP ON DATABASE ${id(DB)} TO ${id(app)}`);
    await suDb.query(`CREATE SCHEMA ${id(empty)}`); // a schema with no tables at all
    await suDb.query(`CREATE SCHEMA ${id(data)}`);
    await suDb.query(`CREATE TABLE ${id(data)}.${id(t)} (n int)`);
    await suDb.query(`CREATE TABLE ${id(data)}.t2 (n int)`); // privileges through the group only
    await suDb.query(`CREATE TABLE ${id(data)}.t3 (n int)`); // granted after rotation 1
    await suDb.query(`CREATE TABLE ${id(data)}.hidden (n int)`); // never granted
    await suDb.query(`CREATE VIEW ${id(data)}.${id('V "w"')} AS SELECT n FROM ${id(data)}.${id(t)}`);
    await suDb.query(`GRANT USAGE, CREATE ON SCHEMA ${id(empty)} TO ${id(app)}`);
    await suDb.query(`GRANT USAGE ON SCHEMA ${id(data)} TO ${id(app)}`);
    await suDb.query(`GRANT SELECT, INSERT ON ${id(data)}.${id(t)} TO ${id(app)}`);
    await suDb.query(`GRANT SELECT ON ${id(data)}.${id('V "w"')} TO ${id(app)}`);
    await suDb.query(`GRANT SELECT ON ${id(data)}.t2 TO ${id(grp)}`);

    const h = harness();
    const adminArn = await h.createSecret(adminSecret(admin, adminPassword));
    const arn = await h.createSecret(secretFor(app, HOSTILE_PASSWORD, { masterarn: adminArn }));

    // Rotation 1: app -> app_clone (created).
    const r1 = await h.rotate(arn);
    expect(r1.error).toBeUndefined();
    const c1 = (await h.current(arn)).json!;
    expect(c1.username).toBe(clone);
    const clonePw = c1.password as string;
    expectRedshiftPassword(clonePw);
    expect(await tryAs(app, HOSTILE_PASSWORD)).toBe('ok'); // the previous user keeps working
    expect(await groupsOf(clone)).toEqual([grp]);
    const q = (sql: string) => tryAs(clone, clonePw, sql);
    expect(await q(`SELECT n FROM ${id(data)}.${id(t)}`)).toBe('ok');
    expect(await q(`INSERT INTO ${id(data)}.${id(t)} VALUES (1)`)).toBe('ok');
    expect(await q(`UPDATE ${id(data)}.${id(t)} SET n = 2`)).toBe('42501'); // app had no UPDATE
    expect(await q(`SELECT n FROM ${id(data)}.${id('V "w"')}`)).toBe('ok');
    expect(await q(`SELECT n FROM ${id(data)}.t2`)).toBe('ok'); // through the group
    expect(await q(`SELECT n FROM ${id(data)}.t3`)).toBe('42501');
    expect(await q(`SELECT n FROM ${id(data)}.hidden`)).toBe('42501');
    expect(await q(`CREATE TABLE ${id(empty)}.made_by_clone (n int)`)).toBe('ok'); // CREATE on the empty schema
    expect(await q(`CREATE SCHEMA ${id(`by clone ${ID}`)}`)).toBe('ok'); // CREATE on the database
    expect(await q('CREATE TEMP TABLE tmp_by_clone (n int)')).toBe('ok'); // TEMP on the database (not from PUBLIC)
    const direct = await suDb.query<{ t: boolean; ins: boolean; upd: boolean }>(
      `SELECT has_table_privilege($1, $2, 'SELECT') AS t, has_table_privilege($1, $2, 'INSERT') AS ins, has_table_privilege($1, $2, 'UPDATE') AS upd`,
      [clone, `${id(data)}.${id(t)}`]);
    expect(direct.rows[0]).toEqual({ t: true, ins: true, upd: false });
    // t2's SELECT arrives through the group: no direct grant was added for it.
    const t2acl = await suDb.query<{ acl: string }>(`SELECT relacl::text AS acl FROM pg_class WHERE oid = $1::regclass`, [`${id(data)}.t2`]);
    expect(t2acl.rows[0].acl).not.toContain('clone');
    // Drop what the clone just created: as their owner it has every privilege on them, which rotation 2 would (rightly) copy.
    await suDb.query(`DROP TABLE ${id(empty)}.made_by_clone`);
    await suDb.query(`DROP SCHEMA ${id(`by clone ${ID}`)}`);

    // After rotation 1, AWSCURRENT's user (the clone) gets a new table grant and a new group.
    await suDb.query(`GRANT SELECT ON ${id(data)}.t3 TO ${id(clone)}`);
    await su.query(`ALTER GROUP ${id(grp2)} ADD USER ${id(clone)}`);

    // Rotation 2: app_clone -> app (exists: password changed, privileges topped up).
    const r2 = await h.rotate(arn);
    expect(r2.error).toBeUndefined();
    const c2 = (await h.current(arn)).json!;
    expect(c2.username).toBe(app);
    const appPw = c2.password as string;
    expect(await tryAs(app, HOSTILE_PASSWORD)).toBe('28P01');
    expect(await tryAs(app, appPw, `SELECT n FROM ${id(data)}.t3`)).toBe('ok');
    expect(await groupsOf(app)).toEqual([grp, grp2].sort());
    expect(await tryAs(clone, clonePw)).toBe('ok'); // AWSPREVIOUS still logs in

    // Rotation 3: app -> app_clone again (exists); the clone keeps everything and gets a new password.
    const r3 = await h.rotate(arn);
    expect(r3.error).toBeUndefined();
    const c3 = (await h.current(arn)).json!;
    expect(c3.username).toBe(clone);
    expect(c3.password).not.toBe(clonePw);
    expect(await tryAs(clone, clonePw)).toBe('28P01');
    expect(await tryAs(clone, c3.password as string, `SELECT n FROM ${id(data)}.t3`)).toBe('ok');
    expect(await tryAs(app, appPw)).toBe('ok');
    expect(await groupsOf(clone)).toEqual([grp, grp2].sort());

    const created = h.records().filter((l) => l.message === 'alternate user created');
    const updated = h.records().filter((l) => l.message === 'alternate user updated');
    expect(created).toHaveLength(1);
    expect(updated).toHaveLength(2);
    // Rotation 1 copied 1 group, CREATE+TEMP on DB, 3 schema privileges, 4 table/view privileges (t: SELECT, INSERT; view: SELECT).
    // (t2 is readable through the group, so it needs no grant of its own.)
    expect(created[0]).toMatchObject({ groups: 1, databaseGrants: 2, schemaGrants: 3, tableGrants: 3 });
    // Rotation 2 topped up app with t3 and grp2; rotation 3 had nothing to add to the clone.
    expect(updated[0]).toMatchObject({ groups: 1, databaseGrants: 0, schemaGrants: 0, tableGrants: 1 });
    expect(updated[1]).toMatchObject({ groups: 0, databaseGrants: 0, schemaGrants: 0, tableGrants: 0 });
  });

  it('survives every step being delivered twice', async () => {
    const app = `rs Multi Twice ${ID}`;
    const admin = `rs admin2 ${ID}`;
    const adminPassword = `Admin2-${ID}-Pw`;
    await su.query(`CREATE USER ${id(admin)} SUPERUSER PASSWORD ${lit(adminPassword)}`);
    await createUser(app, HOSTILE_PASSWORD);
    await su.query(`GRANT CREATE ON DATABASE ${id(DB)} TO ${id(app)}`);
    const h = harness();
    h.intercept = async (event, invoke) => {
      await invoke(event);
      await invoke(event);
    };
    const adminArn = await h.createSecret(adminSecret(admin, adminPassword));
    const arn = await h.createSecret(secretFor(app, HOSTILE_PASSWORD, { masterarn: adminArn }));
    for (const expected of [`${app}_clone`, app, `${app}_clone`]) {
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      const cur = (await h.current(arn)).json!;
      expect(cur.username).toBe(expected);
      expect(await tryAs(expected, cur.password as string, `CREATE SCHEMA ${id(`s ${randomUUID().slice(0, 8)}`)}`)).toBe('ok');
    }
  });

  describe('Redshift-managed admin secret (credentials only, tagged by Redshift)', () => {
    /** A harness whose Redshift APIs are the double; the managed secret has no sslCa, so the deployment's CA bundle verifies. */
    function managedHarness(rs: RedshiftDouble): RotationHarness {
      const lookup = redshiftManagedAdminLookup({ redshift: (r) => rs.client(r), serverless: (r) => rs.serverlessClient(r) });
      return createRotationHarness({ handler: (o) => createHandler(new RedshiftRotator(undefined, { managedAdmin: lookup }), o), env: { SSL_CA_BUNDLE: pg.caFile } });
    }

    async function managedSetup(tag: { Key: string; Value: string }, rs: RedshiftDouble) {
      const app = `rs Managed ${randomUUID().slice(0, 6)}`;
      const admin = `rs managed admin ${randomUUID().slice(0, 6)}`;
      const adminPassword = `Managed-${ID}-Pw`;
      await su.query(`CREATE USER ${id(admin)} SUPERUSER PASSWORD ${lit(adminPassword)}`);
      await createUser(app, HOSTILE_PASSWORD);
      const h = managedHarness(rs);
      h.sensitive(adminPassword);
      const adminArn = await h.createSecret({ username: admin, password: adminPassword });
      h.sm.tagSecret(adminArn, [tag]);
      const arn = await h.createSecret(secretFor(app, HOSTILE_PASSWORD, { masterarn: adminArn }));
      return { h, arn, app };
    }

    it('provisioned: the cluster endpoint comes from DescribeClusters, by the identifier in the tagged ARN', async () => {
      const rs = new RedshiftDouble();
      const clusterArn = rs.addCluster('analytics', pg.host, pg.port);
      const { h, arn, app } = await managedSetup({ Key: 'aws:redshift:primaryClusterArn', Value: clusterArn }, rs);
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      const cur = (await h.current(arn)).json!;
      expect(cur.username).toBe(`${app}_clone`);
      expect(await tryAs(`${app}_clone`, cur.password as string)).toBe('ok');
      expect(rs.calls.map((c) => [c.action, c.params.ClusterIdentifier])).toEqual([['DescribeClusters', 'analytics']]);
      expect(h.records().find((l) => l.message === 'admin secret endpoint')).toMatchObject({ host: pg.host, port: pg.port, endpointFrom: `Redshift cluster ${clusterArn}` });
    });

    it('Serverless: namespace ARN -> name -> the workgroup serving it, reading every page', async () => {
      const rs = new RedshiftDouble();
      rs.addNamespace('other-1');
      rs.addNamespace('other-2');
      const nsArn = rs.addNamespace('warehouse');
      rs.addWorkgroup('wg-a', 'other-1', 'wg-a.example.invalid');
      rs.addWorkgroup('wg-b', 'other-2', 'wg-b.example.invalid');
      rs.addWorkgroup('wg-warehouse', 'warehouse', pg.host, pg.port);
      const { h, arn } = await managedSetup({ Key: 'aws:redshift-serverless:namespaceArn', Value: nsArn }, rs);
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      // Two items a page in the double: both lists need a second page.
      expect(rs.calls.map((c) => [c.action, c.params.nextToken ?? null])).toEqual([
        ['ListNamespaces', null], ['ListNamespaces', '2'], ['ListWorkgroups', null], ['ListWorkgroups', '2'],
      ]);
      expect(h.records().find((l) => l.message === 'admin secret endpoint')).toMatchObject({ endpointFrom: 'Redshift Serverless workgroup wg-warehouse of namespace warehouse' });
    });

    it('an unknown cluster stops the rotation before the admin logs in; the child\'s host is never used instead', async () => {
      const rs = new RedshiftDouble();
      const { h, arn, app } = await managedSetup({ Key: 'aws:redshift:primaryClusterArn', Value: 'arn:aws:redshift:us-east-1:123456789012:cluster:gone' }, rs);
      const r = await h.rotate(arn);
      expect(r.succeeded).toBe(false);
      expect(r.error).toMatch(/tagged with the Redshift cluster arn:aws:redshift:us-east-1:123456789012:cluster:gone, which Redshift does not know/);
      expect(await userExists(`${app}_clone`)).toBe(false);
    });
  });

  it('rolls everything back when the admin cannot copy a privilege, and succeeds on a retry once it can', async () => {
    const app = `rs Rollback ${ID}`;
    const clone = `${app}_clone`;
    const admin = `rs weak admin ${ID}`;
    const adminPassword = `Weak'Admin "${ID}"`;
    await su.query(`CREATE USER ${id(admin)} CREATEROLE PASSWORD ${lit(adminPassword)}`);
    await createUser(app, HOSTILE_PASSWORD);
    await suDb.query(`CREATE TABLE ${id(`owned by su ${ID}`)} (n int)`);
    await suDb.query(`GRANT SELECT ON ${id(`owned by su ${ID}`)} TO ${id(app)}`);
    // The admin may read the table but holds no grant option: PostgreSQL answers its GRANT with a mere warning.
    await suDb.query(`GRANT SELECT ON ${id(`owned by su ${ID}`)} TO ${id(admin)}`);

    const h = harness();
    const failures: string[] = [];
    let cloneExistedAfterFailure: boolean | undefined;
    h.intercept = async (event, invoke) => {
      if (event.Step !== 'setSecret') return invoke(event);
      // A CREATEROLE admin can create the user but cannot grant on a table it does not own without
      // the grant option: PostgreSQL only warns, the engine's re-check turns that into an error.
      await invoke(event).catch((err: Error) => failures.push(`${err.name}: ${err.message}`));
      cloneExistedAfterFailure = await userExists(clone);
      await su.query(`ALTER USER ${id(admin)} SUPERUSER`);
      await invoke(event);
    };
    const adminArn = await h.createSecret(adminSecret(admin, adminPassword));
    const initial = secretFor(app, HOSTILE_PASSWORD, { masterarn: adminArn });
    const arn = await h.createSecret(initial);
    const r = await h.rotate(arn);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatch(/PrivilegeError.*still missing: SELECT on table public\."owned by su/);
    expect(cloneExistedAfterFailure).toBe(false);
    expect(r.error).toBeUndefined();
    const cur = (await h.current(arn)).json!;
    expect(cur.username).toBe(clone);
    expect(await tryAs(clone, cur.password as string, `SELECT n FROM ${id(`owned by su ${ID}`)}`)).toBe('ok');
  });

  it('refuses to clone a superuser and leaves AWSCURRENT untouched', async () => {
    const app = `rs Super ${ID}`;
    await su.query(`CREATE USER ${id(app)} SUPERUSER PASSWORD ${lit(HOSTILE_PASSWORD)}`);
    const h = harness();
    const adminArn = await h.createSecret(adminSecret(pg.superuser, pg.superPassword));
    const initial = JSON.stringify(secretFor(app, HOSTILE_PASSWORD, { masterarn: adminArn }));
    const arn = await h.createSecret(initial);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/is a superuser/);
    expect(await userExists(`${app}_clone`)).toBe(false);
    expect((await h.current(arn)).value).toBe(initial);
  });

  it('an admin secret missing its password fails setSecret without creating the clone', async () => {
    const app = `rs NoAdminPw ${ID}`;
    await createUser(app, HOSTILE_PASSWORD);
    const h = harness();
    const adminArn = await h.createSecret({ ...adminSecret(pg.superuser, ''), password: undefined });
    const initial = JSON.stringify(secretFor(app, HOSTILE_PASSWORD, { masterarn: adminArn }));
    const arn = await h.createSecret(initial);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/SecretFormatError.*"password" field/);
    expect(await userExists(`${app}_clone`)).toBe(false);
    expect((await h.current(arn)).value).toBe(initial);
    expect(await tryAs(app, HOSTILE_PASSWORD)).toBe('ok');
  });
});

describe('the alternate user must be the pair (attacks; Redshift has no marker, so capabilities decide)', () => {
  /** A superuser admin, as Redshift's cluster admin user is. */
  async function superAdmin(h: RotationHarness, tag: string): Promise<string> {
    const admin = `rs atk admin ${tag} ${ID}`;
    const adminPassword = `Atk'Admin "${tag}" ${ID}`;
    await su.query(`CREATE USER ${id(admin)} SUPERUSER PASSWORD ${lit(adminPassword)}`);
    h.sensitive(adminPassword);
    return h.createSecret(adminSecret(admin, adminPassword));
  }

  /** Log in as `victim` with every password any version of the secret holds: none may work. */
  async function noCredentialOf(h: RotationHarness, arn: string, victim: string): Promise<void> {
    for (const versionId of Object.keys(h.stages(arn))) {
      const v = await h.version(arn, versionId);
      if (v.json?.username === victim) expect(await tryAs(victim, String(v.json.password))).not.toBe('ok');
    }
  }

  it('a child secret naming X_clone for an existing superuser X fails PRIVILEGE; X keeps its password', async () => {
    const victim = `rs Victim Su ${ID}`;
    const victimPassword = `Victim'Su "pw" ${ID}`;
    await su.query(`CREATE USER ${id(victim)} SUPERUSER PASSWORD ${lit(victimPassword)}`);
    const attacker = `${victim}_clone`;
    await createUser(attacker, HOSTILE_PASSWORD);
    const h = harness();
    h.sensitive(victimPassword);
    const arn = await h.createSecret(secretFor(attacker, HOSTILE_PASSWORD, { masterarn: await superAdmin(h, 'su') }));
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^PrivilegeError: Refusing to change the existing .* superuser \(CREATEUSER\)/);
    expect(await tryAs(victim, victimPassword)).toBe('ok');
    await noCredentialOf(h, arn, victim);
  });

  it('an unrelated application user X (table privileges, a group) behind X_clone fails PRIVILEGE', async () => {
    const victim = `rs Victim App ${ID}`;
    const victimPassword = `Victim'App "pw" ${ID}`;
    const grp = `rs victim grp ${ID}`;
    await createUser(victim, victimPassword);
    await su.query(`CREATE GROUP ${id(grp)} WITH USER ${id(victim)}`);
    await suDb.query(`CREATE TABLE ${id(`payroll ${ID}`)} (n int)`);
    await suDb.query(`GRANT SELECT ON ${id(`payroll ${ID}`)} TO ${id(victim)}`);
    const attacker = `${victim}_clone`;
    await createUser(attacker, HOSTILE_PASSWORD);
    const h = harness();
    h.sensitive(victimPassword);
    const arn = await h.createSecret(secretFor(attacker, HOSTILE_PASSWORD, { masterarn: await superAdmin(h, 'app') }));
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^PrivilegeError: Refusing to change/);
    expect(r.error).toContain('membership of');
    expect(r.error).toMatch(/SELECT on table public\."payroll/);
    expect(await tryAs(victim, victimPassword)).toBe('ok');
    expect(await groupsOf(attacker)).toEqual([]);
    await noCredentialOf(h, arn, victim);
  });

  it('a group named X behind X_clone fails STATE', async () => {
    const victim = `rs victim group ${ID}`;
    await su.query(`CREATE GROUP ${id(victim)}`);
    const attacker = `${victim}_clone`;
    await createUser(attacker, HOSTILE_PASSWORD);
    const h = harness();
    const arn = await h.createSecret(secretFor(attacker, HOSTILE_PASSWORD, { masterarn: await superAdmin(h, 'grp') }));
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^RotationStateError: .*it is a group, not a user/);
    expect(await userExists(victim)).toBe(false);
  });

  it('an unrelated X_clone holding a privilege X lacks fails PRIVILEGE and keeps its password', async () => {
    const app = `rs Owner ${ID}`;
    await createUser(app, HOSTILE_PASSWORD);
    const other = `${app}_clone`;
    const otherPassword = `Other'Clone "pw" ${ID}`;
    await createUser(other, otherPassword);
    await suDb.query(`CREATE TABLE ${id(`secrets ${ID}`)} (n int)`);
    await suDb.query(`GRANT SELECT ON ${id(`secrets ${ID}`)} TO ${id(other)}`);
    const h = harness();
    h.sensitive(otherPassword);
    const arn = await h.createSecret(secretFor(app, HOSTILE_PASSWORD, { masterarn: await superAdmin(h, 'other') }));
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^PrivilegeError: Refusing to change the existing ".*_clone".*SELECT on table public\."secrets/);
    expect(await tryAs(other, otherPassword)).toBe('ok');
    await noCredentialOf(h, arn, other);
  });
});

describe('object kinds (modelled on PostgreSQL)', () => {
  it('external schema: USAGE copied, CREATE skipped with a warning; view: SELECT only; materialized view: SELECT', async () => {
    // Redshift lists external (Spectrum) schemas in pg_catalog.pg_external_schema; the engine finds
    // the catalog by name through search_path, so a table of that shape in public models it here.
    await suDb.query('CREATE TABLE IF NOT EXISTS public.pg_external_schema (esoid oid, eskind int, esdbname text, esoptions text)');
    await suDb.query('GRANT SELECT ON public.pg_external_schema TO PUBLIC');
    const app = `rs Kinds ${ID}`;
    const clone = `${app}_clone`;
    const ext = `spectrum ${ID}`;
    await createUser(app, HOSTILE_PASSWORD);
    await suDb.query(`CREATE SCHEMA ${id(ext)}`);
    await suDb.query(`INSERT INTO public.pg_external_schema SELECT oid, 1, 'lake', '{}' FROM pg_namespace WHERE nspname = $1`, [ext]);
    await suDb.query(`GRANT USAGE, CREATE ON SCHEMA ${id(ext)} TO ${id(app)}`);
    await suDb.query(`CREATE TABLE ${id(`base ${ID}`)} (n int)`);
    await suDb.query(`CREATE VIEW ${id(`v ${ID}`)} AS SELECT n FROM ${id(`base ${ID}`)}`);
    await suDb.query(`CREATE MATERIALIZED VIEW ${id(`mv ${ID}`)} AS SELECT n FROM ${id(`base ${ID}`)}`);
    await suDb.query(`GRANT SELECT, INSERT ON ${id(`v ${ID}`)} TO ${id(app)}`);
    await suDb.query(`GRANT SELECT ON ${id(`mv ${ID}`)} TO ${id(app)}`);
    const h = harness();
    const admin = `rs kinds admin ${ID}`;
    const adminPassword = `Kinds'Admin ${ID}`;
    await su.query(`CREATE USER ${id(admin)} SUPERUSER PASSWORD ${lit(adminPassword)}`);
    h.sensitive(adminPassword);
    const arn = await h.createSecret(secretFor(app, HOSTILE_PASSWORD, { masterarn: await h.createSecret(adminSecret(admin, adminPassword)) }));
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const privs = await suDb.query(
      `SELECT has_schema_privilege($1, $2, 'USAGE') AS usage, has_schema_privilege($1, $2, 'CREATE') AS create,
              has_table_privilege($1, $3, 'SELECT') AS v_select, has_table_privilege($1, $3, 'INSERT') AS v_insert,
              has_table_privilege($1, $4, 'SELECT') AS mv_select`,
      [clone, ext, `public.${id(`v ${ID}`)}`, `public.${id(`mv ${ID}`)}`],
    );
    expect(privs.rows[0]).toEqual({ usage: true, create: false, v_select: true, v_insert: false, mv_select: true });
    const warning = h.records().find((l) => l.message === 'privileges this object kind does not take on Redshift were not copied');
    expect(warning?.skipped).toEqual([`CREATE on external schema ${id(ext)}`, `INSERT on view public.${id(`v ${ID}`)}`]);
    // The next rotation (clone -> app) does not count the skipped privileges against the pair.
    expect((await h.rotate(arn)).error).toBeUndefined();
  });

  it('one database the admin may not grant on does not stop the others; the failure names it', async () => {
    const ok = `rs db ok ${ID}`;
    const odd = `rs db odd ${ID}`;
    await su.query(`CREATE DATABASE ${id(ok)}`);
    await su.query(`CREATE DATABASE ${id(odd)}`);
    await su.query(`REVOKE ALL ON DATABASE ${id(odd)} FROM PUBLIC`);
    const app = `rs Dbs ${ID}`;
    const clone = `${app}_clone`;
    await createUser(app, HOSTILE_PASSWORD);
    await su.query(`GRANT CONNECT ON DATABASE ${id(odd)} TO ${id(app)}`);
    await su.query(`GRANT CREATE ON DATABASE ${id(ok)} TO ${id(app)}`);
    await su.query(`GRANT CREATE ON DATABASE ${id(odd)} TO ${id(app)}`);
    // A CREATEROLE admin that may grant CREATE on one database only (no privilege at all on the odd one).
    const admin = `rs db admin ${ID}`;
    const adminPassword = `Db'Admin "pw" ${ID}`;
    await su.query(`CREATE USER ${id(admin)} CREATEROLE PASSWORD ${lit(adminPassword)}`);
    await su.query(`GRANT CREATE ON DATABASE ${id(ok)} TO ${id(admin)} WITH GRANT OPTION`);
    await su.query(`GRANT CONNECT, CREATE ON DATABASE ${id(DB)} TO ${id(admin)}`);
    const h = harness();
    h.sensitive(adminPassword);
    const arn = await h.createSecret(secretFor(app, HOSTILE_PASSWORD, { masterarn: await h.createSecret(adminSecret(admin, adminPassword)) }));
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^PrivilegeError: .*every database privilege.*still missing: CREATE on database .*rs db odd/);
    const granted = await su.query(`SELECT has_database_privilege($1, $2, 'CREATE') AS ok, has_database_privilege($1, $3, 'CREATE') AS odd`, [clone, ok, odd]);
    expect(granted.rows[0]).toEqual({ ok: true, odd: false });
  });
});

describe('a server that accepts the login, then never answers', () => {
  it('fails with NETWORK naming STATEMENT_TIMEOUT_MS (SET statement_timeout is the first statement)', async () => {
    const { startStallProxy } = await import('./support/stall-proxy');
    const proxy = await startStallProxy(pg);
    try {
      const app = `rs Stall ${ID}`;
      await createUser(app, HOSTILE_PASSWORD);
      const h = harness({ STATEMENT_TIMEOUT_MS: '1000', CONNECT_TIMEOUT_MS: '3000' }, { rotationMaxAttempts: 1 });
      const arn = await h.createSecret(secretFor(app, HOSTILE_PASSWORD, { port: proxy.port, ssl: false, sslCa: undefined }));
      const started = Date.now();
      const r = await h.rotate(arn);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(r.succeeded).toBe(false);
      expect(r.error).toMatch(/\[NETWORK\].*timed out after 1000 ms \(STATEMENT_TIMEOUT_MS\)/);
      expect(await tryAs(app, HOSTILE_PASSWORD)).toBe('ok');
    } finally {
      await proxy.close();
    }
  });
});
