/**
 * Preflight (with the MongoDB/DocumentDB privilege hooks, rotators/mongodb/preflight.ts) and
 * status/repair on MongoDB, against the wire-level fake server (real driver, real SCRAM): the
 * checks pass for a userAdminAnyDatabase admin, report together what a weaker admin lacks, fall
 * back to the built-in roles where connectionStatus lists no privileges (DocumentDB), and send
 * nothing but connectionStatus and usersInfo: no user is created or updated.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHandler } from '../../src/handler';
import { rotator as mongoRotator } from '../../rotators/mongodb';
import { MongoWireFake } from '../fakes/mongo-wire-fake';
import { assertNoLeaksInAll, createRotationHarness, type RotationHarness } from '../support/rotation-harness';
import { assertNoSecretIn, configurationTest, runCli } from './support';

const USER = `Ops 'o"Brien\\; %Ü`;
const PW0 = `Init'"]\\; %pä$w0rd-ops`;
const ADMIN = 'ops-admin';
const ADMIN_PW = `Adm'"]\\; ïn-Ops-Pw0rd!`;

let fake: MongoWireFake;

function harness(): RotationHarness {
  const h = createRotationHarness({ handler: (o) => createHandler(mongoRotator, o), env: { EXCLUDE_CHARACTERS: '', CONNECT_TIMEOUT_MS: '3000' } });
  h.sensitive(ADMIN_PW, PW0);
  return h;
}
const child = (extra: Record<string, unknown> = {}) => ({ engine: 'mongo', host: fake.host, port: fake.port, dbname: 'app', username: USER, password: PW0, ssl: false, ...extra });

beforeAll(async () => {
  fake = new MongoWireFake();
  await fake.start();
});
afterAll(async () => {
  await fake?.stop();
});
/** Every command the fake received was a read (no createUser, updateUser, dropUser, grantRolesToUser). */
function readOnly(): boolean {
  return fake.commands.every((c) => !['createUser', 'updateUser', 'dropUser', 'grantRolesToUser', 'revokeRolesFromUser'].includes(c.name));
}

afterEach(() => {
  fake.reset();
  assertNoLeaksInAll();
});

it('alternating users on MongoDB: every check passes for a userAdminAnyDatabase admin, no user is created', async () => {
  fake.addUser('app', USER, PW0, ['readWrite@app']);
  fake.addUser('admin', ADMIN, ADMIN_PW, ['userAdminAnyDatabase@admin']);
  const h = harness();
  const adminArn = await h.createSecret({ host: fake.host, port: fake.port, ssl: false, username: ADMIN, password: ADMIN_PW });
  const arn = await h.createSecret(child({ masterarn: adminArn }));
  const r = await configurationTest(h, arn);
  expect(r.error).toBeUndefined();
  const logged = Object.fromEntries(h.records().filter((l) => typeof l.preflightCheck === 'string').map((l) => [l.preflightCheck, l.status]));
  expect(logged).toMatchObject({ 'current.login': 'pass', 'admin.endpoint': 'pass', 'admin.login': 'pass', 'admin.user-admin': 'pass' });
  expect(readOnly()).toBe(true);

  const pre = await runCli(h, ['preflight', '--secret-id', arn]);
  expect(pre.code, pre.err).toBe(0);
  expect(pre.out).toMatch(/\[PASS\] The admin may create ".*" with the roles of/);
  expect(pre.out).toContain('connectionStatus lists the session\'s privileges');
  expect(pre.out).not.toContain('[SKIP]');
  assertNoSecretIn(pre.out + pre.err, [PW0, ADMIN_PW]);
});

it('single user on MongoDB, fault after setSecret: status sees it, repair finishes the rotation', async () => {
  fake.addRole('admin', 'changeOwnPasswordRole', ['changeOwnPassword']);
  fake.addUser('app', USER, PW0, ['readWrite@app', 'changeOwnPasswordRole@admin']);
  const h = harness();
  const arn = await h.createSecret(child());
  h.intercept = async (event, invoke) => {
    await invoke(event);
    if (event.Step === 'setSecret') throw new Error('injected fault after setSecret');
  };
  expect((await h.rotate(arn)).succeeded).toBe(false);
  h.intercept = undefined;
  const pendingId = h.holderOf(arn, 'AWSPENDING')!;
  const fix = await runCli(h, ['repair', '--secret-id', arn, '--yes']);
  expect(fix.code, fix.out + fix.err).toBe(0);
  expect(h.holderOf(arn, 'AWSCURRENT')).toBe(pendingId);
  const cur = await h.credentials(arn);
  expect(fake.checkPassword('app', USER, cur.password)).toBe(true);
  assertNoSecretIn(fix.out + fix.err, [PW0, cur.password]);
});

it('a weaker admin (userAdmin on the user\'s database only): the missing grantRole is reported with its remedy; nothing is sent', async () => {
  fake.addUser('app', USER, PW0, ['readWrite@app', 'read@reporting']);
  fake.addUser('admin', ADMIN, ADMIN_PW, ['userAdmin@app']);
  const h = harness();
  const adminArn = await h.createSecret({ host: fake.host, port: fake.port, ssl: false, username: ADMIN, password: ADMIN_PW });
  const arn = await h.createSecret(child({ masterarn: adminArn }));
  const r = await configurationTest(h, arn);
  expect(r.succeeded).toBe(false);
  expect(r.error).toMatch(/\[PRIVILEGE\] The admin may create .* lacks grantRole on "reporting"/);
  expect(r.error).toContain('userAdminAnyDatabase');
  expect(r.error).not.toContain('createUser on "app"');
  expect(readOnly()).toBe(true);
  const pre = await runCli(h, ['preflight', '--secret-id', arn]);
  expect(pre.code).not.toBe(0);
  expect(pre.out).toContain('[FAIL] The admin may create');
  assertNoSecretIn(pre.out + pre.err + (r.error ?? ''), [PW0, ADMIN_PW]);
});

it('an admin with only read roles: every missing action is reported together', async () => {
  fake.addUser('app', USER, PW0, ['readWrite@app']);
  fake.addUser('admin', ADMIN, ADMIN_PW, ['readAnyDatabase@admin']);
  const h = harness();
  const adminArn = await h.createSecret({ host: fake.host, port: fake.port, ssl: false, username: ADMIN, password: ADMIN_PW });
  const arn = await h.createSecret(child({ masterarn: adminArn }));
  const r = await configurationTest(h, arn);
  expect(r.succeeded).toBe(false);
  expect(r.error).toMatch(/lacks viewUser on "app", createUser on "app", changeCustomData on "app"/);
  expect(readOnly()).toBe(true);
});

it('single user: changeOwnPassword is checked from the listed privileges; without it the preflight fails with the remedy', async () => {
  fake.addRole('admin', 'changeOwnPasswordRole', ['changeOwnPassword']);
  fake.addUser('app', USER, PW0, ['readWrite@app', 'changeOwnPasswordRole@admin']);
  const h = harness();
  const arn = await h.createSecret(child());
  expect((await configurationTest(h, arn)).error).toBeUndefined();
  expect(h.records().find((l) => l.preflightCheck === 'single.own-password')?.status).toBe('pass');

  fake.reset();
  fake.addUser('app', USER, PW0, ['readWrite@app']);
  const h2 = harness();
  const arn2 = await h2.createSecret(child());
  const r = await configurationTest(h2, arn2);
  expect(r.error).toMatch(/\[PRIVILEGE\] The user may change its own password \(changeOwnPassword\)/);
  expect(r.error).toContain('changeOwnPassword');
  expect(readOnly()).toBe(true);
  expect(fake.checkPassword('app', USER, PW0)).toBe(true);
});

describe('DocumentDB (connectionStatus refuses showPrivileges): judged from the built-in roles', () => {
  let docdb: MongoWireFake;
  beforeAll(async () => {
    docdb = new MongoWireFake({ personality: 'documentdb' });
    await docdb.start();
  });
  afterAll(async () => {
    await docdb?.stop();
  });
  const docChild = (extra: Record<string, unknown> = {}) => ({ engine: 'docdb', host: docdb.host, port: docdb.port, dbname: 'admin', username: USER, password: PW0, ssl: false, ...extra });
  const env = { EXCLUDE_CHARACTERS: '', CONNECT_TIMEOUT_MS: '3000', MONGODB_ALTERNATE_MARKER: 'none' };

  it('the primary user (root) passes; a readWriteAnyDatabase admin is reported; nothing is created', async () => {
    docdb.addUser('admin', USER, PW0, ['readWrite@app']);
    docdb.addUser('admin', ADMIN, ADMIN_PW, ['root@admin']);
    docdb.addUser('admin', 'weak', ADMIN_PW, ['readWriteAnyDatabase@admin']);
    const h = createRotationHarness({ handler: (o) => createHandler(mongoRotator, o), env });
    h.sensitive(ADMIN_PW, PW0);
    const adminArn = await h.createSecret({ host: docdb.host, port: docdb.port, ssl: false, username: ADMIN, password: ADMIN_PW });
    const arn = await h.createSecret(docChild({ masterarn: adminArn }));
    const r = await configurationTest(h, arn);
    expect(r.error).toBeUndefined();
    expect(h.records().find((l) => l.preflightCheck === 'admin.user-admin')?.detail ?? JSON.stringify(h.records().filter((l) => l.preflightCheck === 'admin.user-admin'))).toContain('root@admin');

    const weakArn = await h.createSecret({ host: docdb.host, port: docdb.port, ssl: false, username: 'weak', password: ADMIN_PW });
    const arn2 = await h.createSecret(docChild({ masterarn: weakArn }));
    const r2 = await configurationTest(h, arn2);
    expect(r2.succeeded).toBe(false);
    expect(r2.error).toMatch(/\[PRIVILEGE\] The admin may create .* lacks viewUser on "admin", createUser on "admin" \(connectionStatus lists no privileges here; judged from the roles readWriteAnyDatabase@admin\)/);
    expect(docdb.commands.filter((c) => c.name === 'createUser' || c.name === 'updateUser')).toEqual([]);
  });
});
