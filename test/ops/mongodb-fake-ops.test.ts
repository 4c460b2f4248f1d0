/**
 * The engine-neutral preflight and status/repair on an engine without privilege hooks: MongoDB,
 * against the wire-level fake server (real driver, real SCRAM). Generic checks run; the
 * privilege check is reported as skipped, never as passed; nothing is created.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
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
afterEach(() => {
  fake.reset();
  assertNoLeaksInAll();
});

it('alternating users on MongoDB: generic checks pass, the privilege check is SKIP, no user is created', async () => {
  fake.addUser('app', USER, PW0, ['readWrite@app']);
  fake.addUser('admin', ADMIN, ADMIN_PW, ['userAdminAnyDatabase@admin']);
  const h = harness();
  const adminArn = await h.createSecret({ host: fake.host, port: fake.port, ssl: false, username: ADMIN, password: ADMIN_PW });
  const arn = await h.createSecret(child({ masterarn: adminArn }));
  const r = await configurationTest(h, arn);
  expect(r.error).toBeUndefined();
  const logged = Object.fromEntries(h.records().filter((l) => typeof l.preflightCheck === 'string').map((l) => [l.preflightCheck, l.status]));
  expect(logged).toMatchObject({ 'current.login': 'pass', 'admin.endpoint': 'pass', 'admin.login': 'pass', 'admin.privileges': 'skip' });
  expect(fake.userCommands().filter((c) => c.name === 'createUser' || c.name === 'updateUser')).toEqual([]);

  const pre = await runCli(h, ['preflight', '--secret-id', arn]);
  expect(pre.code, pre.err).toBe(0);
  expect(pre.out).toContain('[SKIP] The admin holds what creating/updating the alternate user needs');
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
