/**
 * MongoDB / DocumentDB rotator, end to end: the real handler and DatabaseRotator, the Secrets
 * Manager double behind the real AWS SDK client, and the real `mongodb` driver talking over TCP
 * (and TLS) to a wire-level fake server (test/fakes/mongo-wire-fake.ts) in two personalities:
 * self-managed MongoDB 7 and Amazon DocumentDB (users in admin, its roles and errors, no
 * customData). No real MongoDB or DocumentDB server can be installed here; the fake implements
 * the handshake, SCRAM-SHA-256, user management and an authorization model, and records every
 * command. The single-user and alternating-users suites, attacks included, run against both
 * personalities, each with the admin the real service has: DocumentDB's primary (master) user
 * (root, the role DocumentDB gives it) and, for MongoDB, a self-managed user administrator
 * (userAdminAnyDatabase, no root).
 *
 * Passwords never appear in assertion output: recorded commands are compared after replacing
 * each `pwd` with the name of the secret it equals.
 */
import { readFileSync } from 'node:fs';
import { UpdateSecretVersionStageCommand } from '@aws-sdk/client-secrets-manager';
import { MongoClient } from 'mongodb';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DatabaseRotator } from '../src/db/database-rotator';
import type { DbSecret } from '../src/db/secret';
import { defaultTrustedCas, type TlsOptions } from '../src/db/tls';
import { ConnectError } from '../src/errors';
import { createHandler } from '../src/handler';
import { Logger } from '../src/log';
import type { Env } from '../src/password';
import { rotator as packagedRotator } from '../rotators/mongodb';
import {
  classifyConnectError,
  createMongoEngine,
  MARKER_FIELD,
  markerModeFor,
  MONGO_EXCLUDE_CHARACTERS,
  mongoClientConfig,
  type MongoConnectConfig,
  mongoEngine,
} from '../rotators/mongodb/engine';
import { PUNCTUATION } from '../src/testing/random-password';
import { type FakePersonality, MongoWireFake, type RecordedCommand } from './fakes/mongo-wire-fake';
import { makeTestCerts, type TestCerts } from './support/certs';
import { RdsDouble } from '../src/testing';
import { assertNoLeaksInAll, createRotationHarness, type RotationHarness, type SecretVersion } from './support/rotation-harness';

// Hostile names and passwords: quotes ' and ", bracket ], backslash, spaces, semicolon, %, upper
// case, unicode, $$, --, and one ',' and '=' (escaped as =2C / =3D inside SCRAM).
const USER = `App 'o"Brien],x=y\\; %Ü$$--`;
const CLONE = `${USER}_clone`;
const PW0 = `Init'"]\\; %pä$w0rd,=$$--`;
const ADMIN_PW = `Adm'"]\\; ïn-Pw0rd!$$--`;
const LAMBDA_ENV: Env = { EXCLUDE_CHARACTERS: '', CONNECT_TIMEOUT_MS: '3000' };

let certs: TestCerts;
let plain: MongoWireFake;
let secure: MongoWireFake;
let rs: MongoWireFake;
let otherName: MongoWireFake;
let docdb: MongoWireFake;
let docdbTls: MongoWireFake;
const fakes = () => [plain, secure, rs, otherName, docdb, docdbTls];
const silent = new Logger(() => undefined);

beforeAll(async () => {
  certs = makeTestCerts();
  const tls = { cert: readFileSync(certs.serverCertFile), key: readFileSync(certs.serverKeyFile) };
  plain = new MongoWireFake();
  secure = new MongoWireFake({ tls });
  rs = new MongoWireFake({ replicaSet: 'rs0' });
  // The certificate names localhost and 127.0.0.1 only: 127.0.0.2 is a host it does not match.
  otherName = new MongoWireFake({ tls, host: '127.0.0.2' });
  docdb = new MongoWireFake({ personality: 'documentdb' });
  docdbTls = new MongoWireFake({ personality: 'documentdb', tls, replicaSet: 'rs0' });
  await Promise.all(fakes().map((f) => f.start()));
});

afterAll(async () => {
  await Promise.all(fakes().map((f) => f?.stop()));
});

beforeEach(() => {
  for (const f of fakes()) {
    f.reset();
    f.addRole('admin', 'changeOwnPasswordRole', ['changeOwnPassword']);
  }
});

afterEach(async () => {
  assertNoLeaksInAll();
  // Every connection the engine opened was closed.
  await vi.waitFor(() => expect(fakes().map((f) => f.openConnections)).toEqual(fakes().map(() => 0)));
});

/** How each service is set up, as its operators would have it. */
interface Personality {
  name: string;
  personality: FakePersonality;
  fake: () => MongoWireFake;
  /** The secret's engine value. */
  engine: 'mongo' | 'docdb';
  /** Where application users live (and the child secret's dbname). */
  userDb: string;
  /** The admin the real service has. */
  admin: string;
  adminRoles: string[];
  /** The pair marker lives in customData. */
  marker: boolean;
  /** The Lambda's environment for this service (the fakes listen on 127.0.0.1, not *.docdb.amazonaws.com). */
  env: Env;
}

const PERSONALITIES: Personality[] = [
  {
    name: 'MongoDB', personality: 'mongodb', fake: () => plain, engine: 'mongo', userDb: 'app',
    admin: 'user-admin', adminRoles: ['userAdminAnyDatabase@admin'], marker: true, env: {},
  },
  {
    name: 'DocumentDB', personality: 'documentdb', fake: () => docdb, engine: 'docdb', userDb: 'admin',
    admin: 'docdbmaster', adminRoles: ['root@admin'], marker: false, env: { MONGODB_ALTERNATE_MARKER: 'none' },
  },
];

function harness(env: Env = {}, rds = new RdsDouble()): RotationHarness {
  return createRotationHarness({
    handler: (options) => createHandler(new DatabaseRotator(mongoEngine, { rdsClient: (region) => rds.client(region) }), options),
    env: { ...LAMBDA_ENV, ...env },
  });
}

function childSecret(fake: MongoWireFake, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const tls = fake === secure || fake === otherName || fake === docdbTls;
  return {
    engine: fake.personality === 'documentdb' ? 'docdb' : 'mongo',
    host: fake.host,
    port: fake.port,
    username: USER,
    password: PW0,
    dbname: fake.personality === 'documentdb' ? 'admin' : 'app',
    ...(tls ? { sslCa: certs.caPem } : { ssl: false }),
    ...extra,
  };
}

/** Commands with every pwd replaced by the label of the secret it equals. */
function shape(cmds: RecordedCommand[], known: Record<string, string>): Array<Record<string, unknown>> {
  const label = (v: unknown) => Object.entries(known).find(([, pw]) => pw === v)?.[0] ?? '<some other password>';
  return cmds.map((c) => ({
    name: c.name,
    db: c.db,
    user: c.user,
    ok: c.ok,
    args: 'pwd' in c.args ? { ...c.args, pwd: label(c.args.pwd) } : c.args,
  }));
}

/** Commands that changed (or tried to change) a user. */
function writes(fake: MongoWireFake): RecordedCommand[] {
  return fake.userCommands().filter((c) => c.name !== 'usersInfo');
}

/** The parts of a secret a failing assertion may print. */
function visible(v: SecretVersion): Record<string, unknown> {
  const { password: _p, sslCa: _c, ...rest } = v.json ?? {};
  return rest;
}

function passwordOf(v: SecretVersion): string {
  return v.json!.password as string;
}

/** Does this secret log in to the fake (real driver, the secret's own TLS settings)? */
async function canLogin(secret: Record<string, unknown>): Promise<boolean> {
  const login = await new DatabaseRotator(mongoEngine).login(secret as DbSecret, 'probe', { env: LAMBDA_ENV, log: silent });
  if (login.ok) {
    await mongoEngine.close(login.conn);
    return true;
  }
  if (login.failure.code !== 'AUTH') throw new Error(`login probe failed with ${login.failure.code}: ${login.failure.reason}`);
  return false;
}

async function expectUnchanged(h: RotationHarness, arn: string, before: SecretVersion): Promise<void> {
  const after = await h.current(arn);
  expect(after.versionId).toBe(before.versionId);
  expect(after.value === before.value).toBe(true);
}

/** No version of the secret holds `password` (compared, never printed). */
async function expectNowhereIn(h: RotationHarness, arn: string, password: string): Promise<void> {
  for (const versionId of Object.keys(h.stages(arn))) {
    const v = await h.version(arn, versionId);
    expect(v.value.includes(password)).toBe(false);
  }
}

/** The failed step's error carried this shared code (as the handler logs it). */
function expectCode(h: RotationHarness, code: string): void {
  expect(h.records().filter((l) => l.message === 'step failed').map((l) => l.errorCode)).toContain(code);
}

/** An operator abandons a failed rotation (removes AWSPENDING) so that the next one can start. */
async function abandonPending(h: RotationHarness, arn: string): Promise<void> {
  const pending = h.holderOf(arn, 'AWSPENDING');
  if (pending) await h.client.send(new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: 'AWSPENDING', RemoveFromVersionId: pending }));
}

/** The marker this framework puts on a clone. */
function markerOf(original: string, db: string): Record<string, unknown> {
  return { [MARKER_FIELD]: { alternateOf: original, db } };
}

describe.each(PERSONALITIES)('$name: single user', (p) => {
  const env = (extra: Env = {}) => ({ ...p.env, ...extra });

  it('rotates with one exact updateUser; the new password logs in, the old one does not', async () => {
    const fake = p.fake();
    fake.addUser(p.userDb, USER, PW0, ['readWrite@app', 'changeOwnPasswordRole@admin']);
    const h = harness(env());
    const arn = await h.createSecret(childSecret(fake, { note: 'carried forward' }));

    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(r.succeeded).toBe(true);

    const cur = await h.current(arn);
    const pw1 = passwordOf(cur);
    expect(visible(cur)).toEqual({ engine: p.engine, host: fake.host, port: fake.port, username: USER, dbname: p.userDb, ssl: false, note: 'carried forward' });
    expect(pw1 === PW0).toBe(false);
    expect(pw1).toHaveLength(32);

    expect(shape(fake.userCommands(), { AWSPENDING: pw1, AWSCURRENT: PW0 })).toEqual([
      { name: 'updateUser', db: p.userDb, user: `${p.userDb}.${USER}`, ok: true, args: { updateUser: USER, pwd: 'AWSPENDING' } },
    ]);
    // setSecret: current; verification login; testSecret login; finishSecret login. None fails.
    expect(fake.logins.map((l) => [l.db, l.user, l.ok])).toEqual([
      [p.userDb, USER, true], [p.userDb, USER, true], [p.userDb, USER, true], [p.userDb, USER, true],
    ]);
    // One round trip proves a session: no ping; connectionStatus only in the checks of testSecret and finishSecret.
    expect(fake.commands.filter((c) => c.name === 'ping')).toEqual([]);
    expect(fake.commands.filter((c) => c.name === 'connectionStatus').map((c) => [c.user, c.ok])).toEqual([
      [`${p.userDb}.${USER}`, true],
      [`${p.userDb}.${USER}`, true],
    ]);

    expect(fake.checkPassword(p.userDb, USER, pw1)).toBe(true);
    expect(await canLogin({ ...cur.json })).toBe(true);
    expect(await canLogin({ ...cur.json, password: PW0 })).toBe(false);
  });

  it('replays every step twice without a second change or a second version', async () => {
    const fake = p.fake();
    fake.addUser(p.userDb, USER, PW0, ['readWrite@app', 'changeOwnPasswordRole@admin']);
    const h = harness(env());
    h.intercept = async (event, invoke) => {
      await invoke(event);
      await invoke(event);
    };
    const arn = await h.createSecret(childSecret(fake));
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(r.succeeded).toBe(true);
    expect(h.events.map((e) => e.Step)).toEqual(['createSecret', 'setSecret', 'testSecret', 'finishSecret']);
    // One version stored: the replayed createSecret's Put (another generated value) was refused, the first value kept.
    expect(h.sm.calls.filter((c) => c.operation === 'PutSecretValue').map((c) => c.error)).toEqual([undefined, 'ResourceExistsException']);
    expect(r.calls.filter((c) => c === 'UpdateSecretVersionStage')).toHaveLength(1);

    const pw1 = passwordOf(await h.current(arn));
    expect(shape(fake.userCommands(), { AWSPENDING: pw1 })).toEqual([
      { name: 'updateUser', db: p.userDb, user: `${p.userDb}.${USER}`, ok: true, args: { updateUser: USER, pwd: 'AWSPENDING' } },
    ]);
    expect(h.records().some((l) => l.message === 'AWSPENDING already logs in; password was set by an earlier attempt')).toBe(true);
    expect(fake.checkPassword(p.userDb, USER, pw1)).toBe(true);
  });

  it('recovers with AWSPREVIOUS when the database still has the previous password', async () => {
    const fake = p.fake();
    fake.addUser(p.userDb, USER, PW0, ['readWrite@app', 'changeOwnPasswordRole@admin']);
    const h = harness(env());
    const arn = await h.createSecret(childSecret(fake));
    expect((await h.rotate(arn)).succeeded).toBe(true);
    // The database is restored from a backup taken before the first rotation.
    fake.setPassword(p.userDb, USER, PW0);
    fake.resetRecords();

    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(r.succeeded).toBe(true);
    const pw2 = passwordOf(await h.current(arn));
    expect(shape(fake.userCommands(), { AWSPENDING: pw2 })).toEqual([
      { name: 'updateUser', db: p.userDb, user: `${p.userDb}.${USER}`, ok: true, args: { updateUser: USER, pwd: 'AWSPENDING' } },
    ]);
    // current, pending fail; previous logs in; then verification, testSecret and finishSecret.
    expect(fake.logins.map((l) => l.ok)).toEqual([false, false, true, true, true, true]);
    const changed = h.records().filter((l) => l.message === 'changed own password').at(-1);
    expect(changed?.loggedInWith).toBe('AWSPREVIOUS');
    expect(fake.checkPassword(p.userDb, USER, pw2)).toBe(true);
  });

  it('reports a missing changeOwnPassword privilege (code 13 -> PRIVILEGE) and leaves AWSCURRENT and the password alone', async () => {
    const fake = p.fake();
    fake.addUser(p.userDb, USER, PW0, ['readWrite@app']);
    const h = harness(env());
    const arn = await h.createSecret(childSecret(fake));
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('PrivilegeError');
    expectCode(h, 'PRIVILEGE');
    expect(r.error).toContain('code 13');
    expect(r.error).toContain('changeOwnPassword');
    await expectUnchanged(h, arn, before);
    expect(fake.checkPassword(p.userDb, USER, PW0)).toBe(true);
    expect(shape(fake.userCommands(), {})).toEqual([
      { name: 'updateUser', db: p.userDb, user: `${p.userDb}.${USER}`, ok: false, args: { updateUser: USER, pwd: '<some other password>' } },
    ]);
  });

  it('fails verification when the server answers OK but does not change the password', async () => {
    const fake = p.fake();
    fake.addUser(p.userDb, USER, PW0, ['readWrite@app', 'changeOwnPasswordRole@admin']);
    fake.ignoreNext('updateUser');
    const h = harness(env());
    const arn = await h.createSecret(childSecret(fake));
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('VerificationError');
    await expectUnchanged(h, arn, before);
    expect(fake.checkPassword(p.userDb, USER, PW0)).toBe(true);
  });

  it('a server that stops answering after the login fails the step with NETWORK naming STATEMENT_TIMEOUT_MS, well before the test times out', async () => {
    const fake = p.fake();
    fake.addUser(p.userDb, USER, PW0, ['readWrite@app', 'changeOwnPasswordRole@admin']);
    const h = harness(env({ STATEMENT_TIMEOUT_MS: '700' }));
    const arn = await h.createSecret(childSecret(fake));
    const before = await h.current(arn);
    fake.stallAfterLogin(USER);
    const started = Date.now();
    const r = await h.rotate(arn);
    expect(Date.now() - started).toBeLessThan(8_000);
    expect(r.succeeded).toBe(false);
    expectCode(h, 'NETWORK');
    expect(r.error).toContain('STATEMENT_TIMEOUT_MS=700');
    expect(r.error).toContain('timed out');
    await expectUnchanged(h, arn, before);
    // The update was sent and never answered.
    expect(fake.commands.filter((c) => c.name === 'updateUser').map((c) => c.codeName)).toEqual(['NoReply']);
  }, 15_000);
});

describe('single user (MongoDB only)', () => {
  it('rotates over verified TLS', async () => {
    secure.addUser('app', USER, PW0, ['readWrite@app', 'changeOwnPasswordRole@admin']);
    const h = harness();
    const arn = await h.createSecret(childSecret(secure));
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const cur = await h.current(arn);
    expect(secure.checkPassword('app', USER, passwordOf(cur))).toBe(true);
    expect(await canLogin({ ...cur.json })).toBe(true);
    expect(secure.tlsErrors).toEqual([]);
  });

  it('generates URI-safe passwords by default: an application can put them in a mongodb:// URI unescaped', async () => {
    plain.addUser('app', 'uri_user', 'Initial-Passw0rd', ['readWrite@app', 'changeOwnPasswordRole@admin']);
    const h = harness({ EXCLUDE_CHARACTERS: undefined });
    const arn = await h.createSecret({ ...childSecret(plain), username: 'uri_user', password: 'Initial-Passw0rd' });
    expect((await h.rotate(arn)).succeeded).toBe(true);
    const pw = passwordOf(await h.current(arn));
    expect([...MONGO_EXCLUDE_CHARACTERS].filter((c) => pw.includes(c))).toEqual([]);
    // The generated password, and one holding every punctuation character the policy allows.
    const everyAllowed = `Aa1${[...PUNCTUATION].filter((c) => !MONGO_EXCLUDE_CHARACTERS.includes(c)).join('')}`;
    h.sensitive(everyAllowed);
    plain.addUser('app', 'uri_user2', everyAllowed, ['read@app']);
    for (const [user, password] of [['uri_user', pw], ['uri_user2', everyAllowed]]) {
      const client = new MongoClient(`mongodb://${user}:${password}@${plain.host}:${plain.port}/app?directConnection=true&serverSelectionTimeoutMS=3000`);
      try {
        await client.connect();
        const status = await client.db('app').command({ connectionStatus: 1 });
        expect(status.authInfo.authenticatedUsers).toEqual([{ user, db: 'app' }]);
      } finally {
        await client.close();
      }
    }
  });

  it('honours replicaSet: connects as a replica-set member and rotates', async () => {
    rs.addUser('app', USER, PW0, ['readWrite@app', 'changeOwnPasswordRole@admin']);
    const h = harness();
    const arn = await h.createSecret(childSecret(rs, { replicaSet: 'rs0' }));
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(r.succeeded).toBe(true);
    expect(rs.checkPassword('app', USER, passwordOf(await h.current(arn)))).toBe(true);

    // A wrong set name: the driver drops the server and the error names the replica set.
    const login = await new DatabaseRotator(mongoEngine).login(
      { ...childSecret(rs), replicaSet: 'other-set' } as unknown as DbSecret, 'probe', { env: { CONNECT_TIMEOUT_MS: '500' }, log: silent });
    expect(login.ok).toBe(false);
    if (!login.ok) {
      expect(login.failure.code).toBe('NETWORK');
      expect(login.failure.reason).toContain('replica set "other-set"');
    }
  });
});

describe('single user (DocumentDB only)', () => {
  it('a secret whose dbname is the application database still rotates: DocumentDB authenticates every user against admin', async () => {
    docdb.addUser('admin', USER, PW0, ['readWrite@app', 'changeOwnPasswordRole@admin']);
    const h = harness({ MONGODB_ALTERNATE_MARKER: 'none' });
    const arn = await h.createSecret(childSecret(docdb, { dbname: 'app' }));
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const pw = passwordOf(await h.current(arn));
    // Sent to app, applied in admin (where the fake, like DocumentDB, keeps the user).
    expect(shape(writes(docdb), { AWSPENDING: pw })).toEqual([
      { name: 'updateUser', db: 'app', user: `admin.${USER}`, ok: true, args: { updateUser: USER, pwd: 'AWSPENDING' } },
    ]);
    expect(docdb.checkPassword('admin', USER, pw)).toBe(true);
  });
});

const BASE_ROLES = [{ role: 'readWrite', db: 'app' }, { role: 'read', db: 'reporting' }];

async function setupAlternating(p: Personality, h: RotationHarness, childExtra: Record<string, unknown> = {}, adminExtra: Record<string, unknown> = {}) {
  const fake = p.fake();
  fake.addUser('admin', p.admin, ADMIN_PW, p.adminRoles);
  if (!fake.getUser(p.userDb, USER)) fake.addUser(p.userDb, USER, PW0, BASE_ROLES);
  const child = childSecret(fake, childExtra);
  // The admin secret names the same server and TLS settings itself (it never borrows the child's).
  const adminArn = await h.createSecret({ host: child.host, port: child.port, ssl: child.ssl, sslCa: child.sslCa, username: p.admin, password: ADMIN_PW, ...adminExtra });
  const arn = await h.createSecret({ ...child, masterarn: adminArn });
  return { arn, adminArn, fake };
}

describe.each(PERSONALITIES)('$name: alternating users', (p) => {
  const env = (extra: Env = {}) => ({ ...p.env, ...extra });
  const asAdmin = `admin.${p.admin}`;
  /** The clone's marker as createUser/updateUser send it (none where the service has no customData). */
  const sentMarker = (): Record<string, unknown> => (p.marker ? { customData: markerOf(USER, p.userDb) } : {});

  it('creates the clone (marked where the service allows) with the same roles, then alternates user -> clone -> user -> clone', async () => {
    const h = harness(env());
    const { arn, fake } = await setupAlternating(p, h);

    // Rotation 1: USER -> CLONE (created).
    let r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    let cur = await h.current(arn);
    const pw1 = passwordOf(cur);
    expect(visible(cur)).toMatchObject({ username: CLONE, dbname: p.userDb });
    expect(shape(fake.userCommands(), { AWSPENDING: pw1 })).toEqual([
      { name: 'usersInfo', db: p.userDb, user: asAdmin, ok: true, args: { usersInfo: { user: USER, db: p.userDb } } },
      { name: 'usersInfo', db: p.userDb, user: asAdmin, ok: true, args: { usersInfo: { user: CLONE, db: p.userDb } } },
      { name: 'createUser', db: p.userDb, user: asAdmin, ok: true, args: { createUser: CLONE, pwd: 'AWSPENDING', roles: BASE_ROLES, ...sentMarker() } },
    ]);
    expect(fake.getUser(p.userDb, CLONE)).toEqual({ user: CLONE, db: p.userDb, roles: BASE_ROLES, ...sentMarker() });
    expect(fake.getUser(p.userDb, USER)?.customData).toBeUndefined(); // the original user is never marked
    // AWSCURRENT guard, admin, verification, testSecret.
    expect(fake.logins.map((l) => [l.user, l.ok])).toEqual([[USER, true], [p.admin, true], [CLONE, true], [CLONE, true]]);
    expect(await canLogin({ ...cur.json })).toBe(true);
    expect(await canLogin({ ...cur.json, username: USER, password: PW0 })).toBe(true); // the other user is untouched

    // A role granted to the current user later reaches the other user at the next rotation.
    fake.grantRole(p.userDb, CLONE, 'dbAdmin@app');
    fake.resetRecords();

    // Rotation 2: CLONE -> USER (updated: password and roles; the marked clone is not written).
    r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    cur = await h.current(arn);
    const pw2 = passwordOf(cur);
    expect(visible(cur)).toMatchObject({ username: USER });
    const mirrored = [...BASE_ROLES, { role: 'dbAdmin', db: 'app' }];
    expect(shape(fake.userCommands(), { AWSPENDING: pw2 })).toEqual([
      { name: 'usersInfo', db: p.userDb, user: asAdmin, ok: true, args: { usersInfo: { user: CLONE, db: p.userDb } } },
      { name: 'usersInfo', db: p.userDb, user: asAdmin, ok: true, args: { usersInfo: { user: USER, db: p.userDb } } },
      { name: 'updateUser', db: p.userDb, user: asAdmin, ok: true, args: { updateUser: USER, pwd: 'AWSPENDING', roles: mirrored } },
    ]);
    expect(fake.getUser(p.userDb, USER)?.roles).toEqual(mirrored);
    expect(await canLogin({ ...cur.json })).toBe(true);
    expect(await canLogin({ ...cur.json, password: PW0 })).toBe(false);
    expect(await canLogin({ ...cur.json, username: CLONE, password: pw1 })).toBe(true);

    // Rotation 3: USER -> CLONE (updated, marker kept).
    fake.resetRecords();
    r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    cur = await h.current(arn);
    const pw3 = passwordOf(cur);
    expect(visible(cur)).toMatchObject({ username: CLONE });
    expect(shape(writes(fake), { AWSPENDING: pw3 })).toEqual([
      { name: 'updateUser', db: p.userDb, user: asAdmin, ok: true, args: { updateUser: CLONE, pwd: 'AWSPENDING', roles: mirrored, ...sentMarker() } },
    ]);
    expect(await canLogin({ ...cur.json })).toBe(true);
    expect(await canLogin({ ...cur.json, password: pw1 })).toBe(false);
    expect(fake.listUsers().map((u) => `${u.user}@${u.db}`).sort()).toEqual([`${p.admin}@admin`, `${CLONE}@${p.userDb}`, `${USER}@${p.userDb}`].sort());
  });

  it('replays every step twice: one version, one createUser, and a replayed setSecret re-applies the same state', async () => {
    const h = harness(env());
    const { arn, fake } = await setupAlternating(p, h);
    h.intercept = async (event, invoke) => {
      await invoke(event);
      await invoke(event);
    };
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    // One version stored: the replayed createSecret's Put (another generated value) was refused, the first value kept.
    expect(h.sm.calls.filter((c) => c.operation === 'PutSecretValue').map((c) => c.error)).toEqual([undefined, 'ResourceExistsException']);
    const pw = passwordOf(await h.current(arn));
    // The framework re-runs the (idempotent) upsert on a replayed setSecret: it finds the
    // (marked) clone and sets the same password and roles again.
    expect(shape(writes(fake), { AWSPENDING: pw })).toEqual([
      { name: 'createUser', db: p.userDb, user: asAdmin, ok: true, args: { createUser: CLONE, pwd: 'AWSPENDING', roles: BASE_ROLES, ...sentMarker() } },
      { name: 'updateUser', db: p.userDb, user: asAdmin, ok: true, args: { updateUser: CLONE, pwd: 'AWSPENDING', roles: BASE_ROLES, ...sentMarker() } },
    ]);
    expect(fake.checkPassword(p.userDb, CLONE, pw)).toBe(true);
  });

  it('a concurrent duplicate createUser (51003, the clone created by another invocation) converges: proved again, then updated', async () => {
    const h = harness(env());
    const { arn, fake } = await setupAlternating(p, h);
    // Another invocation of the same step creates the clone (with its own password) just before ours.
    const otherPw = 'Other-invocation-Passw0rd';
    h.sensitive(otherPw);
    fake.beforeNext('createUser', () => fake.addUser(p.userDb, CLONE, otherPw, BASE_ROLES, p.marker ? markerOf(USER, p.userDb) : undefined));
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const pw = passwordOf(await h.current(arn));
    expect(shape(writes(fake), { AWSPENDING: pw })).toEqual([
      { name: 'createUser', db: p.userDb, user: asAdmin, ok: false, args: { createUser: CLONE, pwd: 'AWSPENDING', roles: BASE_ROLES, ...sentMarker() } },
      { name: 'updateUser', db: p.userDb, user: asAdmin, ok: true, args: { updateUser: CLONE, pwd: 'AWSPENDING', roles: BASE_ROLES, ...sentMarker() } },
    ]);
    expect(fake.commands.find((c) => c.name === 'createUser')?.code).toBe(51003);
    expect(fake.checkPassword(p.userDb, CLONE, pw)).toBe(true);
    expect(fake.checkPassword(p.userDb, CLONE, otherPw)).toBe(false);
  });

  it('attack: a user created under the clone\'s name between the proof and createUser is proved again and refused, not updated', async () => {
    const h = harness(env());
    const { arn, fake } = await setupAlternating(p, h);
    const victimPw = 'Raced-in-Passw0rd-12';
    h.sensitive(victimPw);
    fake.beforeNext('createUser', () => fake.addUser(p.userDb, CLONE, victimPw, ['readWrite@billing']));
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expectCode(h, 'PRIVILEGE');
    expect(r.error).toContain('readWrite@billing');
    expect(writes(fake).map((c) => [c.name, c.ok, c.code])).toEqual([['createUser', false, 51003]]);
    expect(await canLogin({ ...childSecret(fake), username: CLONE, password: victimPw })).toBe(true);
    await expectNowhereIn(h, arn, victimPw);
  });

  it('attack: a child secret naming X_clone (created by the attacker) never gets the admin to reset the privileged user X', async () => {
    const h = harness(env());
    const fake = p.fake();
    const bossPw = 'Boss-own-Passw0rd-123';
    h.sensitive(bossPw);
    const bossRoles = [{ role: 'dbOwner', db: 'app' }, { role: 'userAdminAnyDatabase', db: 'admin' }];
    fake.addUser(p.userDb, 'boss', bossPw, bossRoles);
    // The attacker's own login, named boss_clone, even carrying a forged marker where customData exists.
    fake.addUser(p.userDb, 'boss_clone', PW0, ['read@app'], p.marker ? markerOf('boss', p.userDb) : undefined);
    const { arn } = await setupAlternating(p, h, { username: 'boss_clone' });
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('PrivilegeError');
    expectCode(h, 'PRIVILEGE');
    expect(r.error).toContain('"boss"');
    expect(r.error).toContain('administrative: dbOwner@app, userAdminAnyDatabase@admin');
    await expectUnchanged(h, arn, before);
    expect(writes(fake)).toEqual([]);
    expect(fake.getUser(p.userDb, 'boss')?.roles).toEqual(bossRoles);
    expect(await canLogin({ ...childSecret(fake), username: 'boss', password: bossPw })).toBe(true);
    const pending = h.holderOf(arn, 'AWSPENDING');
    if (pending) expect(fake.checkPassword(p.userDb, 'boss', passwordOf(await h.version(arn, pending)))).toBe(false);
    await expectNowhereIn(h, arn, bossPw);
  });

  it('attack: an unrelated application user that happens to be named X_clone is refused (PRIVILEGE) and keeps its password', async () => {
    const h = harness(env());
    const fake = p.fake();
    const victimPw = 'Billing-app-Passw0rd-1';
    h.sensitive(victimPw);
    fake.addUser(p.userDb, CLONE, victimPw, ['readWrite@billing']);
    const { arn } = await setupAlternating(p, h);
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expectCode(h, 'PRIVILEGE');
    expect(r.error).toContain('readWrite@billing');
    await expectUnchanged(h, arn, before);
    expect(writes(fake)).toEqual([]);
    expect(fake.getUser(p.userDb, CLONE)?.roles).toEqual([{ role: 'readWrite', db: 'billing' }]);
    expect(await canLogin({ ...childSecret(fake), username: CLONE, password: victimPw })).toBe(true);
    await expectNowhereIn(h, arn, victimPw);
  });

  it('refuses an admin secret for another host before logging in as the admin', async () => {
    const h = harness(env());
    const { arn, fake } = await setupAlternating(p, h, {}, { host: 'db.elsewhere.example' });
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('is not the host');
    expect(fake.logins.filter((l) => l.user === p.admin)).toEqual([]);
    expect(fake.userCommands()).toEqual([]);
  });

  it('reports a wrong admin password as an admin login failure', async () => {
    const h = harness(env());
    const { arn, fake } = await setupAlternating(p, h, {}, { password: 'Wrong-admin-password-1' });
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('admin secret');
    expect(r.error).toContain('[AUTH]');
    expect(fake.userCommands()).toEqual([]);
  });

  it('reports an admin without user-administration rights as a privilege problem (code 13)', async () => {
    const h = harness(env());
    const fake = p.fake();
    fake.addUser('admin', 'weak-admin', ADMIN_PW, ['readWrite@app']);
    const { arn } = await setupAlternating(p, h, {}, { username: 'weak-admin' });
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expectCode(h, 'PRIVILEGE');
    expect(r.error).toContain('code 13');
    expect(r.error).toContain('userAdmin');
    await expectUnchanged(h, arn, before);
    expect(fake.getUser(p.userDb, CLONE)).toBeUndefined();
  });

  it('a server that stops answering the admin fails the step with NETWORK naming STATEMENT_TIMEOUT_MS; nothing changed', async () => {
    const h = harness(env({ STATEMENT_TIMEOUT_MS: '600' }));
    const { arn, fake } = await setupAlternating(p, h);
    const before = await h.current(arn);
    fake.stallAfterLogin(p.admin);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expectCode(h, 'NETWORK');
    expect(r.error).toContain('STATEMENT_TIMEOUT_MS=600');
    await expectUnchanged(h, arn, before);
    expect(fake.getUser(p.userDb, CLONE)).toBeUndefined();
  }, 15_000);
});

describe('alternating users (MongoDB: the customData marker)', () => {
  const p = PERSONALITIES[0];

  it('attack: an unmarked X_clone holding no role beyond X\'s is refused (STATE, names ADOPT_UNMARKED_ALTERNATE), as is a marker naming someone else', async () => {
    for (const customData of [undefined, markerOf('someone-else', 'app'), { [MARKER_FIELD]: { alternateOf: USER, db: 'other' } }]) {
      plain.reset();
      const h = harness();
      const victimPw = 'Unrelated-Passw0rd-1';
      h.sensitive(victimPw);
      plain.addUser('app', CLONE, victimPw, ['read@reporting'], customData);
      const { arn } = await setupAlternating(p, h);
      const before = await h.current(arn);
      const r = await h.rotate(arn);
      expect(r.succeeded).toBe(false);
      expect(r.error).toContain('RotationStateError');
      expectCode(h, 'STATE');
      expect(r.error).toContain('ADOPT_UNMARKED_ALTERNATE');
      await expectUnchanged(h, arn, before);
      expect(writes(plain)).toEqual([]);
      expect(await canLogin({ ...childSecret(plain), username: CLONE, password: victimPw })).toBe(true);
      await expectNowhereIn(h, arn, victimPw);
    }
  });

  it('an unmarked pair (e.g. made by AWS\'s rotator) rotates only with ADOPT_UNMARKED_ALTERNATE=true, which marks it; then it rotates without', async () => {
    const h = harness();
    // AWS's rotator left X and X_clone with the same roles; the secret currently names the clone.
    const clonePw = 'Clone-current-Passw0rd';
    h.sensitive(clonePw);
    plain.addUser('app', USER, PW0, BASE_ROLES);
    plain.addUser('app', CLONE, clonePw, BASE_ROLES, { team: 'payments' });
    const { arn } = await setupAlternating(p, h, { username: CLONE, password: clonePw });

    let r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('ADOPT_UNMARKED_ALTERNATE');
    expect(writes(plain)).toEqual([]);
    expect(plain.checkPassword('app', USER, PW0)).toBe(true);
    await abandonPending(h, arn);

    plain.resetRecords();
    h.env = { ...h.env, ADOPT_UNMARKED_ALTERNATE: 'true' };
    r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const pw = passwordOf(await h.current(arn));
    // The clone (current) is marked first, its other customData kept; then the other user is updated.
    expect(shape(writes(plain), { AWSPENDING: pw })).toEqual([
      { name: 'updateUser', db: 'app', user: `admin.${p.admin}`, ok: true, args: { updateUser: CLONE, customData: { team: 'payments', ...markerOf(USER, 'app') } } },
      { name: 'updateUser', db: 'app', user: `admin.${p.admin}`, ok: true, args: { updateUser: USER, pwd: 'AWSPENDING', roles: BASE_ROLES } },
    ]);
    expect(h.records().some((l) => l.level === 'WARN' && String(l.message).includes('adopting an unmarked pair'))).toBe(true);

    plain.resetRecords();
    h.env = { ...h.env, ADOPT_UNMARKED_ALTERNATE: undefined };
    r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(passwordOf(await h.current(arn)) === pw).toBe(false);
    expect(plain.getUser('app', CLONE)?.customData).toEqual({ team: 'payments', ...markerOf(USER, 'app') });
  });

  it('a server without customData (DocumentDB reached under another name) refuses the marked createUser: UNSUPPORTED naming MONGODB_ALTERNATE_MARKER, no user created', async () => {
    const h = harness(); // 127.0.0.1 is not a *.docdb.amazonaws.com endpoint: the marker mode is customData
    const dp = PERSONALITIES[1];
    const { arn } = await setupAlternating(dp, h);
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expectCode(h, 'UNSUPPORTED');
    expect(r.error).toContain('MONGODB_ALTERNATE_MARKER=none');
    await expectUnchanged(h, arn, before);
    expect(docdb.getUser('admin', CLONE)).toBeUndefined();
    expect(docdb.commands.find((c) => c.name === 'createUser')?.code).toBe(2);
  });

  it('never changes the admin user itself when it is one of the rotated pair', async () => {
    plain.addUser('admin', 'boss', ADMIN_PW, ['userAdminAnyDatabase@admin']);
    plain.addUser('admin', 'boss_clone', PW0, ['read@app']);
    const h = harness();
    const adminArn = await h.createSecret({ host: plain.host, port: plain.port, ssl: false, username: 'boss', password: ADMIN_PW });
    const arn = await h.createSecret({ engine: 'mongo', host: plain.host, port: plain.port, username: 'boss_clone', password: PW0, ssl: false, masterarn: adminArn });
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('refusing to change its password or roles');
    expect(plain.checkPassword('admin', 'boss', ADMIN_PW)).toBe(true);
    expect(plain.getUser('admin', 'boss')?.roles).toEqual([{ role: 'userAdminAnyDatabase', db: 'admin' }]);
    expect(writes(plain)).toEqual([]);
  });
});

describe('alternating users (DocumentDB)', () => {
  const p = PERSONALITIES[1];

  it('no marker place: an unmarked X_clone holding no role beyond X\'s is adopted on the capability check alone (documented limit)', async () => {
    const h = harness(p.env);
    docdb.addUser('admin', CLONE, 'Leftover-clone-Passw0rd', ['read@reporting']);
    h.sensitive('Leftover-clone-Passw0rd');
    const { arn } = await setupAlternating(p, h);
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(h.records().some((l) => String(l.message).includes('no pair marker on this server'))).toBe(true);
    expect(docdb.getUser('admin', CLONE)?.roles).toEqual(BASE_ROLES);
    expect(writes(docdb).every((c) => !('customData' in c.args))).toBe(true);
  });

  it('attack: a child secret naming serviceadmin_clone never touches serviceadmin (PRIVILEGE: it holds root)', async () => {
    const h = harness(p.env);
    docdb.addUser('admin', 'serviceadmin_clone', PW0, ['read@app']);
    const { arn } = await setupAlternating(p, h, { username: 'serviceadmin_clone' });
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expectCode(h, 'PRIVILEGE');
    expect(r.error).toContain('root@admin');
    expect(writes(docdb)).toEqual([]);
  });

  it('never changes the master user itself when it is one of the rotated pair', async () => {
    docdb.addUser('admin', p.admin, ADMIN_PW, p.adminRoles);
    docdb.addUser('admin', `${p.admin}_clone`, PW0, ['read@app']);
    const h = harness(p.env);
    const adminArn = await h.createSecret({ host: docdb.host, port: docdb.port, ssl: false, username: p.admin, password: ADMIN_PW });
    // The child names another database: DocumentDB still keeps (and authenticates) both users in admin.
    const arn = await h.createSecret({ engine: 'docdb', host: docdb.host, port: docdb.port, username: `${p.admin}_clone`, password: PW0, dbname: 'app', ssl: false, masterarn: adminArn });
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('refusing to change its password or roles');
    expect(docdb.checkPassword('admin', p.admin, ADMIN_PW)).toBe(true);
    expect(writes(docdb)).toEqual([]);
  });

  it('works the DocumentDB way: engine docdb, an RDS-managed master secret found through its cluster tag, verified TLS, marker mode chosen by the endpoint', async () => {
    docdbTls.addUser('admin', 'docdbadmin', ADMIN_PW, ['root@admin']);
    docdbTls.addUser('admin', 'app_user', PW0, [{ role: 'readWrite', db: 'app' }]);
    const rds = new RdsDouble();
    const clusterArn = rds.addCluster({ id: 'docs', engine: 'docdb', endpoint: docdbTls.host, port: docdbTls.port });
    // The managed secret has no sslCa: the deployment's CA bundle (SSL_CA_BUNDLE) verifies the admin's connection.
    const h = harness({ ...p.env, SSL_CA_BUNDLE: certs.caFile }, rds);
    const adminArn = await h.createSecret({ username: 'docdbadmin', password: ADMIN_PW });
    h.sm.tagSecret(adminArn, [{ Key: 'aws:rds:primaryDBClusterArn', Value: clusterArn }]);
    const arn = await h.createSecret({ engine: 'docdb', host: docdbTls.host, port: docdbTls.port, username: 'app_user', password: PW0, sslCa: certs.caPem, masterarn: adminArn });
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const pw = passwordOf(await h.current(arn));
    expect(shape(docdbTls.userCommands().filter((c) => c.name === 'createUser'), { AWSPENDING: pw })).toEqual([
      { name: 'createUser', db: 'admin', user: 'admin.docdbadmin', ok: true, args: { createUser: 'app_user_clone', pwd: 'AWSPENDING', roles: [{ role: 'readWrite', db: 'app' }] } },
    ]);
    expect(docdbTls.checkPassword('admin', 'app_user_clone', pw)).toBe(true);
    expect(rds.calls.map((c) => [c.action, c.params.DBClusterIdentifier])).toEqual([['DescribeDBClusters', clusterArn]]);
    // The endpoints DocumentDB gives clusters select "no marker" without any setting.
    expect(markerModeFor({}, 'docs.cluster-abc123.us-east-1.docdb.amazonaws.com')).toBe('none');
    expect(markerModeFor({}, 'docs.cluster-ro-abc123.cn-north-1.docdb.amazonaws.com.cn')).toBe('none');
    expect(markerModeFor({}, 'docs-123.us-east-1.docdb-elastic.amazonaws.com')).toBe('none');
    expect(markerModeFor({}, 'mongo.internal.example')).toBe('customData');
    expect(markerModeFor({ MONGODB_ALTERNATE_MARKER: 'customData' }, 'docs.cluster-abc123.us-east-1.docdb.amazonaws.com')).toBe('customData');
  });
});

describe('secret validation', () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['a connection string as host', { host: 'mongodb://evil.example:27017/?authSource=x' }, '"host"'],
    ['a host list', { host: 'a.example,b.example' }, '"host"'],
    ['replicaSet not a string', { replicaSet: 7 }, '"replicaSet"'],
    ['empty authSource', { authSource: '' }, '"authSource"'],
    ['invalid dbname', { dbname: 'app.users' }, '"dbname"'],
    ['dbname not a string', { dbname: 5 }, '"dbname"'],
    ['unknown ssl mode', { ssl: 'sometimes' }, '"ssl"'],
    ['username the driver cannot authenticate', { username: 'a,b,c' }, '"username"'],
    ['another engine', { engine: 'postgres' }, 'engine'],
  ];
  it.each(cases)('%s: a clear error naming the field, AWSCURRENT untouched, no connection', async (_name, patch, field) => {
    const h = harness();
    const arn = await h.createSecret(JSON.stringify({ ...childSecret(plain), ...patch }));
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('SecretFormatError');
    expect(r.error).toContain(field);
    await expectUnchanged(h, arn, before);
    expect(plain.commands).toEqual([]);
  });
});

describe('environment validation', () => {
  const cases: Array<[string, Env, string]> = [
    ['an unknown marker mode', { MONGODB_ALTERNATE_MARKER: 'sometimes' }, 'MONGODB_ALTERNATE_MARKER'],
    ['a non-boolean ADOPT_UNMARKED_ALTERNATE', { ADOPT_UNMARKED_ALTERNATE: 'maybe' }, 'ADOPT_UNMARKED_ALTERNATE'],
  ];
  it.each(cases)('%s fails createSecret (ConfigError naming it) before AWSPENDING exists or anything connects', async (_name, env, name) => {
    plain.addUser('app', USER, PW0, ['readWrite@app', 'changeOwnPasswordRole@admin']);
    const h = harness(env);
    const arn = await h.createSecret(childSecret(plain));
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('ConfigError');
    expect(r.error).toContain(name);
    expect(h.events.map((e) => e.Step)).toEqual(['createSecret']);
    expect(r.calls).not.toContain('PutSecretValue');
    await expectUnchanged(h, arn, before);
    expect(plain.commands).toEqual([]);
  });
});

describe('TLS', () => {
  const log = silent;
  const verifyFull = (ca?: string): TlsOptions => ({ enabled: true, verifyChain: true, verifyHostname: true, ca });

  it('refuses a server whose certificate is not signed by the given CA (TLS error, rotation untouched)', async () => {
    secure.addUser('app', USER, PW0, ['readWrite@app', 'changeOwnPasswordRole@admin']);
    const h = harness({ CONNECT_TIMEOUT_MS: '500' });
    const arn = await h.createSecret(childSecret(secure, { sslCa: certs.otherCaPem }));
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('[TLS]');
    await expectUnchanged(h, arn, before);
    expect(secure.commands).toEqual([]);
  });

  it('verifies the host name in verify-full and not in verify-ca; require skips verification', async () => {
    otherName.addUser('admin', 'u', 'Password-123', ['read@app']);
    const secret = { engine: 'mongo', host: otherName.host, port: otherName.port, username: 'u', password: 'Password-123' } as DbSecret;
    const err = await mongoEngine.connect(secret, { tls: verifyFull(certs.caPem), connectTimeoutMs: 500, statementTimeoutMs: 30_000, log, env: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe('TLS');
    expect((err as Error).message).toMatch(/127\.0\.0\.2|altnames|IP/);

    const ca = await mongoEngine.connect(secret, { tls: { enabled: true, verifyChain: true, verifyHostname: false, ca: certs.caPem }, connectTimeoutMs: 2000, statementTimeoutMs: 30_000, log, env: {} });
    await mongoEngine.check(ca, { env: {}, log: silent });
    await mongoEngine.close(ca);
    const req = await mongoEngine.connect(secret, { tls: { enabled: true, verifyChain: false, verifyHostname: false, ca: certs.otherCaPem }, connectTimeoutMs: 2000, statementTimeoutMs: 30_000, log, env: {} });
    await mongoEngine.close(req);
  });

  it('check() falls back to usersInfo on oneself where connectionStatus does not exist', async () => {
    secure.addUser('app', USER, PW0, ['read@app']);
    const conn = await mongoEngine.connect(childSecret(secure) as DbSecret, { tls: verifyFull(certs.caPem), connectTimeoutMs: 2000, statementTimeoutMs: 30_000, log, env: {} });
    try {
      secure.failNext('connectionStatus', { code: 59, codeName: 'CommandNotFound', errmsg: "no such command: 'connectionStatus'" });
      await mongoEngine.check(conn, { env: {}, log: silent });
    } finally {
      await mongoEngine.close(conn);
    }
    // connect() sends nothing after the login; check() one connectionStatus (then its fallback).
    expect(shape(secure.commands.filter((c) => ['ping', 'connectionStatus', 'usersInfo'].includes(c.name)), {})).toEqual([
      { name: 'connectionStatus', db: 'app', user: `app.${USER}`, ok: false, args: { connectionStatus: 1 } },
      { name: 'usersInfo', db: 'app', user: `app.${USER}`, ok: true, args: { usersInfo: { user: USER, db: 'app' } } },
    ]);
  });

  it('plaintext against a TLS-only server is a connection failure, not a login failure', async () => {
    secure.addUser('admin', 'u', 'Password-123', ['read@app']);
    const secret = { engine: 'mongo', host: secure.host, port: secure.port, username: 'u', password: 'Password-123' } as DbSecret;
    const err = await mongoEngine.connect(secret, { tls: { enabled: false, verifyChain: false, verifyHostname: false }, connectTimeoutMs: 500, statementTimeoutMs: 30_000, log, env: {} }).catch((e: unknown) => e);
    expect((err as ConnectError).code).toBe('NETWORK');
    expect(secure.logins).toEqual([]);
  });

  it('ssl "prefer" falls back to plaintext with a warning when the server has no TLS', async () => {
    plain.addUser('app', USER, PW0, ['readWrite@app', 'changeOwnPasswordRole@admin']);
    const h = harness({ CONNECT_TIMEOUT_MS: '800' });
    const arn = await h.createSecret(childSecret(plain, { ssl: 'prefer' }));
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(r.succeeded).toBe(true);
    expect(h.records().some((l) => l.level === 'WARN' && String(l.message).includes('WITHOUT TLS'))).toBe(true);
    expect(plain.protocolErrors.length).toBeGreaterThan(0); // the TLS ClientHellos it refused
  });
});

describe('connection settings', () => {
  const secret: DbSecret = {
    engine: 'mongo', host: 'docdb.cluster-abc.us-east-1.docdb.amazonaws.com', port: 27017,
    username: USER, password: PW0, dbname: 'app', replicaSet: 'rs0',
  };

  it('builds the client from the secret: credentials only in auth, TLS verified with the CA, timeouts', () => {
    const config = mongoClientConfig(secret, { tls: { enabled: true, verifyChain: true, verifyHostname: true, ca: certs.caPem }, connectTimeoutMs: 4000 });
    expect(config.url).toBe('mongodb://docdb.cluster-abc.us-east-1.docdb.amazonaws.com:27017/');
    const { auth, ca, ...rest } = config.options;
    expect(auth?.username).toBe(USER);
    expect(auth?.password === PW0).toBe(true);
    expect(ca === certs.caPem).toBe(true);
    expect(rest).toEqual({
      authSource: 'app',
      replicaSet: 'rs0',
      directConnection: false,
      tls: true,
      tlsAllowInvalidCertificates: false,
      tlsAllowInvalidHostnames: false,
      connectTimeoutMS: 4000,
      serverSelectionTimeoutMS: 4000,
      socketTimeoutMS: 30_000,
      retryWrites: false,
      maxPoolSize: 1,
      appName: 'rotation-lambdas',
    });
    expect(config).toMatchObject({ host: secret.host, port: 27017, authSource: 'app', replicaSet: 'rs0' });
  });

  it('bounds every command after the login by STATEMENT_TIMEOUT_MS (socketTimeoutMS)', () => {
    const config = mongoClientConfig(secret, { tls: verifyFullNoCa(), connectTimeoutMs: 1000, statementTimeoutMs: 1234 });
    expect(config.options.socketTimeoutMS).toBe(1234);
    expect(config.options.connectTimeoutMS).toBe(1000);
  });

  it('maps each TLS mode and the authentication database choices', () => {
    const none = mongoClientConfig({ ...secret, replicaSet: undefined, dbname: undefined }, { tls: { enabled: false, verifyChain: false, verifyHostname: false }, connectTimeoutMs: 1000 });
    expect(none.options).toMatchObject({ tls: false, directConnection: true, authSource: 'admin' });
    expect(none.options).not.toHaveProperty('tlsAllowInvalidCertificates');
    expect(none.options).not.toHaveProperty('replicaSet');
    const verifyCa = mongoClientConfig({ ...secret, authSource: 'admin' }, { tls: { enabled: true, verifyChain: true, verifyHostname: false }, connectTimeoutMs: 1000 });
    expect(verifyCa.options).toMatchObject({ tls: true, tlsAllowInvalidCertificates: false, tlsAllowInvalidHostnames: true, authSource: 'admin' });
    // No CA configured: Node's roots plus the Amazon RDS CAs (DocumentDB's issuers).
    expect(verifyCa.options.ca).toBe(defaultTrustedCas());
    const require = mongoClientConfig(secret, { tls: { enabled: true, verifyChain: false, verifyHostname: false }, connectTimeoutMs: 1000 });
    expect(require.options).toMatchObject({ tlsAllowInvalidCertificates: true, tlsAllowInvalidHostnames: true });
    expect(mongoClientConfig({ ...secret, host: '::1', port: 27018 }, { tls: verifyFullNoCa(), connectTimeoutMs: 1000 }).url).toBe('mongodb://[::1]:27018/');
  });

  it('hands the config to an injected connection factory and logs no credential', async () => {
    const lines: string[] = [];
    const seen: MongoConnectConfig[] = [];
    const engine = createMongoEngine({
      connect: async (config) => {
        seen.push(config);
        throw Object.assign(new Error('Authentication failed.'), { name: 'MongoServerError', code: 18, codeName: 'AuthenticationFailed' });
      },
    });
    const log = new Logger((l) => lines.push(l), {}, undefined, 'debug');
    const err = await engine.connect(secret, { tls: verifyFullNoCa(), connectTimeoutMs: 1000, statementTimeoutMs: 30_000, log, env: {} }).catch((e: unknown) => e);
    expect((err as ConnectError).code).toBe('AUTH');
    expect((err as Error).message).toContain('authentication database "app"');
    expect(seen).toHaveLength(1);
    expect(seen[0].url.includes(PW0) || seen[0].url.includes(encodeURIComponent(PW0)) || seen[0].url.includes('@')).toBe(false);
    expect(lines.length).toBeGreaterThan(0);
    for (const text of [...lines, (err as Error).message]) {
      expect(text.includes(PW0) || text.includes(JSON.stringify(PW0).slice(1, -1))).toBe(false);
    }
  });

  it('never lets a server message that echoes the password reach the error or its causes', async () => {
    const newPassword = `Echoed'"\\-Passw0rd-${Date.now()}`;
    const echo = (code: number, codeName: string) =>
      Object.assign(new Error(`not authorized on app to execute command { updateUser: "u", pwd: "${newPassword}" }`), { name: 'MongoServerError', code, codeName });
    for (const [code, codeName, expected] of [[13, 'Unauthorized', 'PRIVILEGE'], [8000, 'AtlasError', undefined]] as const) {
      const engine = createMongoEngine({
        connect: async () => ({ db: () => ({ command: async () => { throw echo(code, codeName); } }), close: async () => undefined }),
      });
      const conn = await engine.connect(secret, { tls: verifyFullNoCa(), connectTimeoutMs: 1000, statementTimeoutMs: 1000, log: silent, env: {} });
      const err = await engine.setOwnPassword(conn, { username: 'u', oldPassword: PW0, newPassword }, { env: {}, log: silent }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as { code?: unknown }).code).toBe(expected ?? code);
      for (let e: unknown = err, depth = 0; e && depth < 10; e = (e as { cause?: unknown }).cause, depth++) {
        const text = `${(e as Error).message} ${(e as Error).stack ?? ''}`;
        expect(text.includes(newPassword)).toBe(false);
      }
      expect((err as Error).message).toContain('<password>');
    }
  });

  it('classifies driver errors', () => {
    const cfg = { host: 'h', port: 1, authSource: 'admin' };
    const named = (name: string, message: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(message), { name, ...extra });
    expect(classifyConnectError(named('MongoServerError', 'x', { code: 18 }), cfg, 'u').code).toBe('AUTH');
    expect(classifyConnectError(named('MongoParseError', 'bad option'), cfg, 'u').code).toBe('CONFIG');
    expect(classifyConnectError(named('MongoNetworkError', 'connect ECONNREFUSED h:1'), cfg, 'u').code).toBe('NETWORK');
    const tlsCause = Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' });
    expect(classifyConnectError(Object.assign(named('MongoServerSelectionError', 'Server selection timed out'), { cause: tlsCause }), cfg, 'u').code).toBe('TLS');
  });

  it('the packaged function uses this engine', () => {
    expect(packagedRotator.profile.engines).toEqual(['mongo', 'docdb']);
    expect(packagedRotator.profile.defaultPort).toBe(27017);
  });
});

describe('the fake server', () => {
  it('behaves like DocumentDB in its DocumentDB personality', async () => {
    docdb.addUser('admin', 'master', ADMIN_PW, ['root@admin']);
    expect(() => docdb.addUser('app', 'x', 'Password-123')).toThrow(/admin/);
    const client = new MongoClient(`mongodb://${docdb.host}:${docdb.port}/`, {
      auth: { username: 'master', password: ADMIN_PW }, authSource: 'app', directConnection: true, serverSelectionTimeoutMS: 2000,
    });
    try {
      await client.connect();
      // Authenticated against admin although the client named app.
      expect((await client.db('app').command({ connectionStatus: 1 })).authInfo.authenticatedUsers).toEqual([{ user: 'master', db: 'admin' }]);
      await expect(client.db('app').command({ dropDatabase: 1 })).rejects.toMatchObject({ code: 303, message: 'Feature not supported: dropDatabase' });
      await expect(client.db('app').command({ createUser: 'x', pwd: 'Password-123', roles: [], customData: {} }))
        .rejects.toMatchObject({ code: 2, message: '"customData" is not a valid argument to createUser' });
      await expect(client.db('app').command({ createUser: 'x', pwd: 'Password-123', roles: ['userAdmin'] })).rejects.toMatchObject({ codeName: 'RoleNotFound' });
      await expect(client.db('admin').command({ updateUser: 'serviceadmin', pwd: 'Password-123' })).rejects.toMatchObject({ code: 13 });
      // Created from app, kept in admin, with a role of app.
      await client.db('app').command({ createUser: 'x', pwd: 'Password-123', roles: ['read'] });
      expect((await client.db('app').command({ usersInfo: { user: 'x', db: 'app' } })).users).toEqual([
        { _id: 'x', user: 'x', db: 'admin', roles: [{ role: 'read', db: 'app' }] },
      ]);
    } finally {
      await client.close();
    }
    expect(docdb.listUsers().map((u) => `${u.user}@${u.db}`).sort()).toEqual(['master@admin', 'x@admin']);
    const serviceLogin = await new DatabaseRotator(mongoEngine).login(
      { engine: 'docdb', host: docdb.host, port: docdb.port, username: 'serviceadmin', password: 'anything-1', ssl: false } as DbSecret, 'probe', { env: LAMBDA_ENV, log: silent });
    expect(serviceLogin.ok).toBe(false);
  });

  it('rejects unknown commands and unknown fields loudly', async () => {
    plain.addUser('admin', 'root-user', ADMIN_PW, ['root@admin']);
    const client = new MongoClient(`mongodb://${plain.host}:${plain.port}/`, {
      auth: { username: 'root-user', password: ADMIN_PW }, authSource: 'admin', directConnection: true, serverSelectionTimeoutMS: 2000,
    });
    try {
      await client.connect();
      await expect(client.db('app').command({ dropDatabase: 1 })).rejects.toMatchObject({ code: 59, codeName: 'CommandNotFound' });
      await expect(client.db('app').command({ createUser: 'x', pwd: 'Password-123', roles: [], bogus: 1 })).rejects.toMatchObject({ code: 40415 });
      await expect(client.db('app').command({ createUser: 'x', pwd: 'Password-123', roles: ['noSuchRole'] })).rejects.toMatchObject({ codeName: 'RoleNotFound' });
      await expect(client.db('app').command({ updateUser: 'nobody', pwd: 'Password-123' })).rejects.toMatchObject({ codeName: 'UserNotFound' });
    } finally {
      await client.close();
    }
  });
});

function verifyFullNoCa(): TlsOptions {
  return { enabled: true, verifyChain: true, verifyHostname: true };
}
