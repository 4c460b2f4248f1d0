/**
 * The Oracle preflight hooks (rotators/oracle/preflight.ts) against the in-process fake
 * (test/fakes/oracle-fake.ts), which models the RDS for Oracle master (addRdsMaster: DBA,
 * CONNECT, RESOURCE, SELECT_CATALOG_ROLE, EXECUTE_CATALOG_ROLE WITH ADMIN OPTION, without GRANT
 * ANY PRIVILEGE / GRANT ANY ROLE). The preflight passes for that master, reports together (with
 * remedies) what it or a weaker admin cannot give, and sends nothing but SELECTs.
 */
import { afterEach, expect, it } from 'vitest';
import { DatabaseRotator } from '../../src/db/database-rotator';
import { createHandler } from '../../src/handler';
import { createOracleEngine } from '../../rotators/oracle/engine';
import { FakeOracleServer } from '../fakes/oracle-fake';
import { assertNoLeaksInAll, createRotationHarness, type RotationHarness } from '../support/rotation-harness';
import { assertNoSecretIn, configurationTest } from './support';

const ADMIN_PW = `Adm1n-Pa55 ;'--\\ü`;
const USER = 'App;User\'--Ü';
const PW0 = `App'Init;Pw]\\ü%$$`;

let db: FakeOracleServer;
let h: RotationHarness;

function world(options: { passwordReuse?: 'allowed' | 'forbidden' } = {}): void {
  db = new FakeOracleServer(options);
  const engine = createOracleEngine({ connect: db.connect });
  h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(engine), o), env: {} });
  h.sensitive(ADMIN_PW, PW0);
  db.addRdsMaster('ADMIN', ADMIN_PW);
  db.addUser(USER, {
    password: PW0, verifyFunction: true, roles: ['CONNECT', 'RESOURCE'], systemPrivileges: ['CREATE VIEW'],
    objectGrants: [{ privilege: 'SELECT', object: '"SYS"."DBA_USERS"' }, { privilege: 'READ', object: 'DIRECTORY "DATA_PUMP_DIR"' }],
  });
}
const base = () => ({ engine: 'oracle', host: db.host, port: db.port, dbname: db.service, ssl: false });
const child = (extra: Record<string, unknown> = {}) => ({ ...base(), username: `"${USER}"`, password: PW0, ...extra });
const changes = () => db.statements.filter((s) => !/^\s*SELECT\b/i.test(s.sql)).map((s) => s.sql.slice(0, 40));
function checksLogged(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of h.records()) if (typeof r.preflightCheck === 'string') out[r.preflightCheck] = String(r.status);
  return out;
}

afterEach(() => {
  expect(db.openConnections, 'sessions left open').toBe(0);
  assertNoLeaksInAll();
});

it('single user: ALTER USER ... REPLACE needs no privilege; the profile limits are reported; nothing is changed', async () => {
  world({ passwordReuse: 'forbidden' });
  const arn = await h.createSecret(child());
  const r = await configurationTest(h, arn);
  expect(r.error).toBeUndefined();
  expect(checksLogged()).toMatchObject({ 'single.own-password': 'pass', 'single.profile': 'pass' });
  const profile = h.records().find((l) => l.preflightCheck === 'single.profile');
  expect(JSON.stringify(profile)).toContain('PASSWORD_REUSE_MAX 10');
  expect(JSON.stringify(h.records().find((l) => l.preflightCheck === 'single.own-password'))).toContain('REPLACE');
  expect(changes()).toEqual([]);
  expect(db.user(USER).passwordChanges).toBe(0);
});

it('single user: a verify-function profile with a password REPLACE cannot quote is reported', async () => {
  world();
  const quoted = `Has"Quote-Pw1`;
  h.sensitive(quoted);
  db.user(USER).password = quoted;
  const arn = await h.createSecret(child({ password: quoted }));
  const r = await configurationTest(h, arn);
  expect(r.succeeded).toBe(false);
  expect(r.error).toMatch(/\[CONFIG\] The user may change its own password \(ALTER USER \.\.\. REPLACE\): .*PASSWORD_VERIFY_FUNCTION/);
  expect(changes()).toEqual([]);
});

it('alternating users with the RDS master: passes (roles WITH ADMIN OPTION, DBA privileges, SYS objects through the catalog roles and the grant option); nothing is created', async () => {
  world();
  const adminArn = await h.createSecret({ ...base(), username: 'ADMIN', password: ADMIN_PW });
  const arn = await h.createSecret(child({ masterarn: adminArn }));
  const r = await configurationTest(h, arn);
  expect(r.error).toBeUndefined();
  expect(checksLogged()).toMatchObject({ 'admin.create-user': 'pass', 'admin.read-grants': 'pass', 'admin.copy-grants': 'pass' });
  expect(changes()).toEqual([]);
  expect(db.users.has(`${USER}_CLONE`)).toBe(false);
});

it('what the RDS master cannot give (a role it lacks ADMIN OPTION on, an object it may not grant) and what a weak admin lacks are reported together, with remedies', async () => {
  world();
  db.addRole('APP_ROLE');
  db.user(USER).roles.set('APP_ROLE', { admin: false });
  db.addUser('OTHER_OWNER', { password: 'x-Pw1', systemPrivileges: ['CREATE SESSION'] });
  const adminArn = await h.createSecret({ ...base(), username: 'ADMIN', password: ADMIN_PW });
  const arn = await h.createSecret(child({ masterarn: adminArn }));
  let r = await configurationTest(h, arn);
  expect(r.succeeded).toBe(false);
  expect(r.error).toMatch(/\[PRIVILEGE\] The admin may give .* may not give 1 of \d+: role "APP_ROLE" \(needs GRANT ANY ROLE or the role WITH ADMIN OPTION\)/);
  expect(r.error).toContain('WITH ADMIN OPTION / WITH GRANT OPTION');

  // A weak admin: CREATE SESSION, CREATE USER and dictionary access only.
  const WEAK_PW = 'Weak-Pa55;w0rd';
  h.sensitive(WEAK_PW);
  db.addUser('WEAK', { password: WEAK_PW, systemPrivileges: ['CREATE SESSION', 'CREATE USER', 'SELECT ANY DICTIONARY'], roles: ['SELECT_CATALOG_ROLE'] });
  const weakArn = await h.createSecret({ ...base(), username: 'WEAK', password: WEAK_PW });
  const arn2 = await h.createSecret(child({ masterarn: weakArn }));
  r = await configurationTest(h, arn2);
  expect(r.succeeded).toBe(false);
  expect(r.error).toContain('role "CONNECT"');
  expect(r.error).toContain('role "APP_ROLE"');
  expect(r.error).toContain('system privilege CREATE VIEW (needs GRANT ANY PRIVILEGE or it WITH ADMIN OPTION)');
  expect(r.error).toContain('SELECT on SYS.DBA_USERS (a SYS object: needs the grant option, given with rdsadmin.rdsadmin_util.grant_sys_object)');
  expect(r.error).toContain('READ on SYS.DATA_PUMP_DIR');

  // Without SELECT_CATALOG_ROLE the grants cannot even be read.
  db.user('WEAK').roles.delete('SELECT_CATALOG_ROLE');
  r = await configurationTest(h, arn2);
  expect(r.error).toMatch(/\[PRIVILEGE\] The admin may read the current user's grants \(DBMS_METADATA\): .*lacks SELECT_CATALOG_ROLE/);
  expect(changes()).toEqual([]);
  assertNoSecretIn(r.error ?? '', [PW0, ADMIN_PW, WEAK_PW]);
});
