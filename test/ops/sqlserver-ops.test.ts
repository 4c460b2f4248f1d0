/**
 * The SQL Server preflight hooks (rotators/sqlserver/preflight.ts) against the in-process fake
 * (test/fakes/sqlserver-fake.ts), which models the RDS for SQL Server master (addRdsMaster: ALTER
 * ANY LOGIN and the other documented server permissions WITH GRANT OPTION, processadmin and
 * setupadmin, db_owner in its databases; never sysadmin). The preflight passes for that master,
 * reports together (with remedies) what a weaker admin lacks, and runs no statement but catalog
 * reads. (The CLI runs the same runPreflight with the packaged engine, which the fake cannot
 * serve: test/ops/cli-process.test.ts covers the CLI on the real servers.)
 */
import { afterEach, expect, it } from 'vitest';
import { DatabaseRotator } from '../../src/db/database-rotator';
import { createHandler } from '../../src/handler';
import { createSqlServerEngine } from '../../rotators/sqlserver/engine';
import { FakeSqlServer } from '../fakes/sqlserver-fake';
import { assertNoLeaksInAll, createRotationHarness, type RotationHarness } from '../support/rotation-harness';
import { assertNoSecretIn, configurationTest } from './support';

const HOST = 'sql-1.abcdefghij.us-east-1.rds.amazonaws.com';
const ADMIN = 'rds_master';
const ADMIN_PW = `Adm1n-Pa55'"]\\;--word!`;
const USER = `app O'Br]i;en -- Ü`;
const PW0 = `Init'"]\\; %pä$$w0rd-1`;

let fake: FakeSqlServer;
let h: RotationHarness;

function world(): void {
  fake = new FakeSqlServer();
  const engine = createSqlServerEngine({ connect: fake.connect });
  h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(engine), o), env: { EXCLUDE_CHARACTERS: '' } });
  h.sensitive(ADMIN_PW, PW0);
  fake.addDatabase('appdb');
  fake.addRdsMaster(ADMIN, ADMIN_PW);
  fake.addLogin(USER, PW0, { defaultDatabase: 'appdb' });
  fake.addUser('appdb', USER, { login: USER });
  // What the clone must be given: a database role, a database permission, a fixed server role the
  // RDS master is in, and a server permission the master holds WITH GRANT OPTION.
  fake.addRoleMember('appdb', 'db_datareader', USER);
  fake.grant('appdb', { grantee: USER, class: 0, state: 'G', permissionName: 'VIEW DEFINITION' });
  fake.serverRoleMembers.get('processadmin')!.add(USER);
  fake.serverPermissions.push({ grantee: USER, class: 100, state: 'G', permissionName: 'VIEW SERVER STATE' });
}

afterEach(() => {
  h.sensitive(...fake.passwordsSeen);
  expect(fake.open.size, 'sessions left open').toBe(0);
  expect(fake.unrecognised, 'statements the fake did not recognise').toEqual([]);
  assertNoLeaksInAll();
});

const secret = (extra: Record<string, unknown> = {}) => ({ engine: 'sqlserver', host: HOST, port: 1433, dbname: 'appdb', username: USER, password: PW0, ...extra });
function checksLogged(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of h.records()) if (typeof r.preflightCheck === 'string') out[r.preflightCheck] = String(r.status);
  return out;
}

it('single user: the SQL login may change its own password; nothing is run but catalog reads', async () => {
  world();
  const arn = await h.createSecret(secret());
  const r = await configurationTest(h, arn);
  expect(r.error).toBeUndefined();
  expect(checksLogged()).toMatchObject({ 'current.login': 'pass', 'single.own-password': 'pass', 'single.policy': 'pass' });
  expect(fake.ddlSince(0)).toEqual([]);
  expect(fake.canLogin(USER, PW0, 'appdb')).toBe(true);
});

it('single user: a locked-out login is reported (fake answering IsLocked = 1)', async () => {
  world();
  const arn = await h.createSecret(secret());
  // The fake never locks a login itself; answer the policy query as SQL Server does for a locked one.
  const original = fake.execute.bind(fake);
  fake.execute = (session, sql, params) => (sql.includes("LOGINPROPERTY(l.name, 'IsLocked')") ? [{ policyChecked: 1, expirationChecked: 0, mustChange: 0, locked: 1 }] : original(session, sql, params));
  const r = await configurationTest(h, arn);
  expect(r.succeeded).toBe(false);
  expect(r.error).toMatch(/\[AUTH\] The login is not locked out/);
  expect(r.error).toContain('CHECK_POLICY = OFF');
});

it('alternating users with the RDS master: every privilege check passes; no login or user is created', async () => {
  world();
  const adminArn = await h.createSecret({ engine: 'sqlserver', host: HOST, username: ADMIN, password: ADMIN_PW });
  const arn = await h.createSecret(secret({ masterarn: adminArn }));
  const r = await configurationTest(h, arn);
  expect(r.error).toBeUndefined();
  expect(checksLogged()).toMatchObject({
    'admin.login': 'pass', 'admin.create-user': 'pass', 'admin.grant-roles': 'pass', 'admin.server-grants': 'pass',
  });
  expect(fake.ddlSince(0)).toEqual([]);
  expect(fake.logins.has(`${USER}_clone`)).toBe(false);
});

it('a weaker admin: everything it lacks is reported together with remedies, before anything is changed', async () => {
  world();
  const WEAK = `weak ]admin' ;--`;
  const WEAK_PW = `We'ak]\\;--Pa55!`;
  h.sensitive(WEAK_PW);
  fake.addLogin(WEAK, WEAK_PW, { defaultDatabase: 'appdb' });
  fake.addUser('appdb', WEAK, { login: WEAK });
  fake.serverPermissions.push({ grantee: WEAK, class: 100, state: 'G', permissionName: 'ALTER ANY LOGIN' });
  const adminArn = await h.createSecret({ engine: 'sqlserver', host: HOST, username: WEAK, password: WEAK_PW });
  const arn = await h.createSecret(secret({ masterarn: adminArn }));
  const r = await configurationTest(h, arn);
  expect(r.succeeded).toBe(false);
  expect(r.error).toContain('found 4 problem(s)');
  // The pair check fails closed: an admin that cannot see the database's DDL triggers is refused.
  expect(r.error).toMatch(/\[PRIVILEGE\] The existing alternate user \(if any\) is this pair's: The admin user lacks VIEW DEFINITION on database \[appdb\]/);
  expect(r.error).toMatch(/\[PRIVILEGE\] The admin may create or alter .*lacks ALTER ANY USER \(database appdb\)/);
  expect(r.error).toMatch(/\[PRIVILEGE\] The admin may give .* the database roles and permissions .*role db_datareader, 1 permission grant\(s\)/);
  expect(r.error).toMatch(/\[PRIVILEGE\] The admin may give .* the server roles and permissions .*"processadmin".*"VIEW SERVER STATE"/);
  expect(r.error).toContain('ALTER ROLE db_owner ADD MEMBER');
  expect(fake.ddlSince(0)).toEqual([]);
  assertNoSecretIn(r.error ?? '', [PW0, WEAK_PW, ADMIN_PW]);

  // Without ALTER ANY LOGIN the admin cannot even see the login: reported as a privilege problem.
  fake.serverPermissions.splice(fake.serverPermissions.findIndex((p) => p.grantee === WEAK && p.permissionName === 'ALTER ANY LOGIN'), 1);
  const blind = await configurationTest(h, arn);
  expect(blind.error).toMatch(/\[PRIVILEGE\] .* is a SQL login the admin can see/);
  expect(fake.ddlSince(0)).toEqual([]);
});
