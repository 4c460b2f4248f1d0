/**
 * The Redshift preflight hooks (rotators/redshift/preflight.ts) against the real PostgreSQL
 * server of the global setup, as test/redshift.test.ts runs the Redshift engine (the catalog
 * queries are in the subset both share). A superuser admin (Redshift's cluster admin) passes; a
 * non-superuser admin is told together what it lacks: CREATE USER (no RBAC system privileges on
 * this server), group memberships, and object privileges it neither owns nor holds WITH GRANT
 * OPTION. Nothing is created or granted.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createHandler } from '../../src/handler';
import { RedshiftRotator } from '../../rotators/redshift/engine';
import { parseAcl } from '../../rotators/redshift/preflight';
import { assertNoLeaksInAll, createRotationHarness, type RotationHarness } from '../support/rotation-harness';
import { assertNoSecretIn, configurationTest, runCli } from './support';

const pg = inject('postgres');
const ID = randomUUID().replace(/-/g, '').slice(0, 6);
const DB = `rs ops "${ID}"`;
const PW = `Init'pw"x\\;Ü1 ${ID}`;
let su: Client;
let suDb: Client;
const id = (s: string) => su.escapeIdentifier(s);
const lit = (s: string) => su.escapeLiteral(s);

function harness(): RotationHarness {
  const h = createRotationHarness({ handler: (o) => createHandler(new RedshiftRotator(), o) });
  h.sensitive(PW, pg.superPassword);
  return h;
}
const secretFor = (username: string, extra: Record<string, unknown> = {}) =>
  ({ engine: 'redshift', host: pg.host, port: pg.port, dbname: DB, username, password: PW, ssl: 'verify-full', sslCa: pg.caPem, ...extra });
const adminSecret = (username: string) => ({ host: pg.host, port: pg.port, ssl: 'verify-full', sslCa: pg.caPem, username, password: PW });
async function userExists(name: string): Promise<boolean> {
  return (await su.query('SELECT 1 FROM pg_user WHERE usename = $1', [name])).rowCount === 1;
}
function checksLogged(h: RotationHarness): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of h.records()) if (typeof r.preflightCheck === 'string') out[r.preflightCheck] = String(r.status);
  return out;
}

const app = `rs Ops 'app' ${ID}`;
const grp = `Grp "o'ps" ${ID}`;
const schema = `sch ${ID}`;

beforeAll(async () => {
  su = new Client({ host: pg.host, port: pg.port, user: pg.superuser, password: pg.superPassword, database: pg.database, ssl: false });
  await su.connect();
  await su.query(`CREATE DATABASE ${id(DB)}`);
  suDb = new Client({ host: pg.host, port: pg.port, user: pg.superuser, password: pg.superPassword, database: DB, ssl: false });
  await suDb.connect();
  await su.query(`CREATE USER ${id(app)} PASSWORD ${lit(PW)}`);
  await su.query(`CREATE GROUP ${id(grp)}`);
  await su.query(`ALTER GROUP ${id(grp)} ADD USER ${id(app)}`);
  await suDb.query(`CREATE SCHEMA ${id(schema)}`);
  await suDb.query(`CREATE TABLE ${id(schema)}.${id('T "x"')} (n int)`);
  await suDb.query(`GRANT USAGE ON SCHEMA ${id(schema)} TO ${id(app)}`);
  await suDb.query(`GRANT SELECT, INSERT ON ${id(schema)}.${id('T "x"')} TO ${id(app)}`);
});
afterAll(async () => {
  await suDb?.end();
  await su?.end();
});
afterEach(() => assertNoLeaksInAll());

describe('Redshift preflight', () => {
  it('single user: passes and changes nothing', async () => {
    const h = harness();
    const arn = await h.createSecret(secretFor(app));
    const r = await configurationTest(h, arn);
    expect(r.error).toBeUndefined();
    expect(checksLogged(h)).toMatchObject({ 'current.login': 'pass', 'single.own-password': 'pass' });
  });

  it('a superuser admin (the cluster admin user): every check passes; the clone is not created', async () => {
    const admin = `rs ops su ${ID}`;
    await su.query(`CREATE USER ${id(admin)} SUPERUSER PASSWORD ${lit(PW)}`);
    const h = harness();
    const adminArn = await h.createSecret(adminSecret(admin));
    const arn = await h.createSecret(secretFor(app, { masterarn: adminArn }));
    const r = await configurationTest(h, arn);
    expect(r.error).toBeUndefined();
    expect(checksLogged(h)).toMatchObject({ 'admin.create-user': 'pass', 'admin.copy-grants': 'pass' });
    expect(await userExists(`${app}_clone`)).toBe(false);
  });

  it('a non-superuser admin: what it lacks is reported together with remedies; nothing is created or granted', async () => {
    const admin = `rs ops weak ${ID}`;
    await su.query(`CREATE USER ${id(admin)} CREATEROLE PASSWORD ${lit(PW)}`);
    // It may read the table but has no grant option; it owns nothing.
    await suDb.query(`GRANT SELECT ON ${id(schema)}.${id('T "x"')} TO ${id(admin)}`);
    const h = harness();
    const adminArn = await h.createSecret(adminSecret(admin));
    const arn = await h.createSecret(secretFor(app, { masterarn: adminArn }));
    const r = await configurationTest(h, arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/\[PRIVILEGE\] The admin may create .*is not a superuser \(and this server has no RBAC system privileges\)/);
    expect(r.error).toContain(`membership of group "${grp}"`);
    expect(r.error).toContain(`SELECT on table ${id(schema)}.${id('T "x"')}`);
    expect(r.error).toContain(`INSERT on table ${id(schema)}.${id('T "x"')}`);
    expect(r.error).toContain(`USAGE on schema ${id(schema)}`);
    expect(r.error).toContain('WITH GRANT OPTION');
    expect(await userExists(`${app}_clone`)).toBe(false);
    // The admin's own privileges are unchanged: still no grant option.
    const { rows } = await suDb.query(`SELECT has_table_privilege($1, $2, 'SELECT WITH GRANT OPTION') AS g`, [admin, `${id(schema)}.${id('T "x"')}`]);
    expect(rows[0].g).toBe(false);

    const pre = await runCli(h, ['preflight', '--secret-id', arn]);
    expect(pre.code).not.toBe(0);
    expect(pre.out).toContain('[FAIL] The admin may give');
    assertNoSecretIn(pre.out + pre.err + (r.error ?? ''), [PW, pg.superPassword]);

    // The grant option on the table and schema removes those items; the group still needs a superuser.
    await suDb.query(`GRANT SELECT, INSERT ON ${id(schema)}.${id('T "x"')} TO ${id(admin)} WITH GRANT OPTION`);
    await suDb.query(`GRANT USAGE ON SCHEMA ${id(schema)} TO ${id(admin)} WITH GRANT OPTION`);
    const again = await configurationTest(h, arn);
    expect(again.error).toContain(`membership of group "${grp}"`);
    expect(again.error).not.toContain(`on table ${id(schema)}`);
    expect(again.error).not.toContain(`USAGE on schema`);
  });

  it('parses ACL items as the server prints them, quoted names included', async () => {
    const { rows } = await suDb.query(`SELECT array_to_string(c.relacl, ',') AS acl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = 'T "x"'`, [schema]);
    const acl = parseAcl(rows[0].acl);
    const mine = acl.find((a) => a.grantee === app);
    expect(mine && [...mine.privileges.keys()].sort()).toEqual(['a', 'r']);
    expect(parseAcl('"a,""b"=r*w/x,group g=r/x,=U/x')).toEqual([
      { grantee: 'a,"b', group: false, privileges: new Map([['r', true], ['w', false]]) },
      { grantee: 'g', group: true, privileges: new Map([['r', false]]) },
      { grantee: '', group: false, privileges: new Map([['U', false]]) },
    ]);
  });
});
