/**
 * MongoDB / DocumentDB rotator, end to end: the real handler and DatabaseRotator, the Secrets
 * Manager double behind the real AWS SDK client, and the real `mongodb` driver talking over TCP
 * (and TLS) to a wire-level fake MongoDB server (test/fakes/mongo-wire-fake.ts). No real MongoDB
 * or DocumentDB server can be installed here; the fake implements the handshake, SCRAM-SHA-256,
 * user management and a small authorization model, and records every command.
 *
 * Passwords never appear in assertion output: recorded commands are compared after replacing
 * each `pwd` with the name of the secret it equals.
 */
import { readFileSync } from 'node:fs';
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
  MONGO_EXCLUDE_CHARACTERS,
  mongoClientConfig,
  type MongoConnectConfig,
  mongoEngine,
} from '../rotators/mongodb/engine';
import { PUNCTUATION } from '../src/testing/random-password';
import { MongoWireFake, type RecordedCommand } from './fakes/mongo-wire-fake';
import { makeTestCerts, type TestCerts } from './support/certs';
import { RdsDouble } from '../src/testing';
import { assertNoLeaksInAll, createRotationHarness, type RotationHarness, type SecretVersion } from './support/rotation-harness';

// Hostile names and passwords: quotes ' and ", bracket ], backslash, spaces, semicolon, %, upper
// case, unicode, and one ',' and '=' (escaped as =2C / =3D inside SCRAM).
const USER = `App 'o"Brien],x=y\\; %Ü`;
const CLONE = `${USER}_clone`;
const PW0 = `Init'"]\\; %pä$w0rd,=`;
const ADMIN = 'rotation-admin';
const ADMIN_PW = `Adm'"]\\; ïn-Pw0rd!`;
const LAMBDA_ENV: Env = { EXCLUDE_CHARACTERS: '', CONNECT_TIMEOUT_MS: '3000' };

let certs: TestCerts;
let plain: MongoWireFake;
let secure: MongoWireFake;
let rs: MongoWireFake;
let otherName: MongoWireFake;
const fakes = () => [plain, secure, rs, otherName];
const silent = new Logger(() => undefined);

beforeAll(async () => {
  certs = makeTestCerts();
  const tls = { cert: readFileSync(certs.serverCertFile), key: readFileSync(certs.serverKeyFile) };
  plain = new MongoWireFake();
  secure = new MongoWireFake({ tls });
  rs = new MongoWireFake({ replicaSet: 'rs0' });
  // The certificate names localhost and 127.0.0.1 only: 127.0.0.2 is a host it does not match.
  otherName = new MongoWireFake({ tls, host: '127.0.0.2' });
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
  await vi.waitFor(() => expect(fakes().map((f) => f.openConnections)).toEqual([0, 0, 0, 0]));
});

function harness(env: Env = {}, rds = new RdsDouble()): RotationHarness {
  return createRotationHarness({
    handler: (options) => createHandler(new DatabaseRotator(mongoEngine, { rdsClient: (region) => rds.client(region) }), options),
    env: { ...LAMBDA_ENV, ...env },
  });
}

function childSecret(fake: MongoWireFake, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    engine: 'mongo',
    host: fake.host,
    port: fake.port,
    username: USER,
    password: PW0,
    dbname: 'app',
    ...(fake === secure || fake === otherName ? { sslCa: certs.caPem } : { ssl: false }),
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

describe('single user', () => {
  it('rotates over verified TLS with one exact updateUser; the new password logs in, the old one does not', async () => {
    secure.addUser('app', USER, PW0, ['readWrite@app', 'changeOwnPasswordRole@admin']);
    const h = harness();
    const arn = await h.createSecret(childSecret(secure, { note: 'carried forward' }));

    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(r.succeeded).toBe(true);

    const cur = await h.current(arn);
    const pw1 = passwordOf(cur);
    expect(visible(cur)).toEqual({ engine: 'mongo', host: secure.host, port: secure.port, username: USER, dbname: 'app', note: 'carried forward' });
    expect(pw1 === PW0).toBe(false);
    expect(pw1).toHaveLength(32);

    expect(shape(secure.userCommands(), { AWSPENDING: pw1, AWSCURRENT: PW0 })).toEqual([
      { name: 'updateUser', db: 'app', user: `app.${USER}`, ok: true, args: { updateUser: USER, pwd: 'AWSPENDING' } },
    ]);
    // setSecret: pending (fails), current; verification login; testSecret login.
    expect(secure.logins.map((l) => [l.db, l.user, l.ok])).toEqual([
      ['app', USER, false], ['app', USER, true], ['app', USER, true], ['app', USER, true],
    ]);
    // testSecret ran ping and connectionStatus as the pending user.
    expect(secure.commands.filter((c) => c.name === 'connectionStatus').map((c) => c.user)).toContain(`app.${USER}`);

    expect(secure.checkPassword('app', USER, pw1)).toBe(true);
    expect(await canLogin({ ...cur.json })).toBe(true);
    expect(await canLogin({ ...cur.json, password: PW0 })).toBe(false);
    expect(secure.tlsErrors).toEqual([]);
  });

  it('replays every step twice without a second change or a second version', async () => {
    plain.addUser('app', USER, PW0, ['readWrite@app', 'changeOwnPasswordRole@admin']);
    const h = harness();
    h.intercept = async (event, invoke) => {
      await invoke(event);
      await invoke(event);
    };
    const arn = await h.createSecret(childSecret(plain));
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(r.succeeded).toBe(true);
    expect(h.events.map((e) => e.Step)).toEqual(['createSecret', 'setSecret', 'testSecret', 'finishSecret']);
    expect(r.calls.filter((c) => c === 'PutSecretValue')).toHaveLength(1);
    expect(r.calls.filter((c) => c === 'UpdateSecretVersionStage')).toHaveLength(1);

    const pw1 = passwordOf(await h.current(arn));
    expect(shape(plain.userCommands(), { AWSPENDING: pw1 })).toEqual([
      { name: 'updateUser', db: 'app', user: `app.${USER}`, ok: true, args: { updateUser: USER, pwd: 'AWSPENDING' } },
    ]);
    expect(h.records().some((l) => l.message === 'AWSPENDING already logs in; password was set by an earlier attempt')).toBe(true);
    expect(plain.checkPassword('app', USER, pw1)).toBe(true);
  });

  it('recovers with AWSPREVIOUS when the database still has the previous password', async () => {
    plain.addUser('app', USER, PW0, ['readWrite@app', 'changeOwnPasswordRole@admin']);
    const h = harness();
    const arn = await h.createSecret(childSecret(plain));
    expect((await h.rotate(arn)).succeeded).toBe(true);
    // The database is restored from a backup taken before the first rotation.
    plain.setPassword('app', USER, PW0);
    plain.resetRecords();

    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(r.succeeded).toBe(true);
    const pw2 = passwordOf(await h.current(arn));
    expect(shape(plain.userCommands(), { AWSPENDING: pw2 })).toEqual([
      { name: 'updateUser', db: 'app', user: `app.${USER}`, ok: true, args: { updateUser: USER, pwd: 'AWSPENDING' } },
    ]);
    // pending, current fail; previous logs in; then verification and testSecret.
    expect(plain.logins.map((l) => l.ok)).toEqual([false, false, true, true, true]);
    const changed = h.records().filter((l) => l.message === 'changed own password').at(-1);
    expect(changed?.loggedInWith).toBe('AWSPREVIOUS');
    expect(plain.checkPassword('app', USER, pw2)).toBe(true);
  });

  it('reports a missing changeOwnPassword privilege and leaves AWSCURRENT and the password alone', async () => {
    plain.addUser('app', USER, PW0, ['readWrite@app']);
    const h = harness();
    const arn = await h.createSecret(childSecret(plain));
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('PrivilegeError');
    expect(r.error).toContain('changeOwnPassword');
    await expectUnchanged(h, arn, before);
    expect(plain.checkPassword('app', USER, PW0)).toBe(true);
    expect(shape(plain.userCommands(), {})).toEqual([
      { name: 'updateUser', db: 'app', user: `app.${USER}`, ok: false, args: { updateUser: USER, pwd: '<some other password>' } },
    ]);
  });

  it('fails verification when the server answers OK but does not change the password', async () => {
    plain.addUser('app', USER, PW0, ['readWrite@app', 'changeOwnPasswordRole@admin']);
    plain.ignoreNext('updateUser');
    const h = harness();
    const arn = await h.createSecret(childSecret(plain));
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('VerificationError');
    await expectUnchanged(h, arn, before);
    expect(plain.checkPassword('app', USER, PW0)).toBe(true);
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

describe('alternating users', () => {
  async function setupAlternating(fake: MongoWireFake, h: RotationHarness, childExtra: Record<string, unknown> = {}, adminExtra: Record<string, unknown> = {}) {
    fake.addUser('admin', ADMIN, ADMIN_PW, ['root@admin']);
    fake.addUser('app', USER, PW0, ['readWrite@app', 'read@reporting']);
    const child = childSecret(fake, childExtra);
    // The admin secret names the same server and TLS settings itself (it never borrows the child's).
    const adminArn = await h.createSecret({ host: child.host, port: child.port, ssl: child.ssl, sslCa: child.sslCa, username: ADMIN, password: ADMIN_PW, ...adminExtra });
    const arn = await h.createSecret({ ...child, masterarn: adminArn });
    return { arn, adminArn };
  }

  it('creates the clone in the CHILD database with the same roles, then alternates user -> clone -> user', async () => {
    const h = harness();
    const { arn } = await setupAlternating(plain, h);
    const asAdmin = `admin.${ADMIN}`;
    const baseRoles = [{ role: 'readWrite', db: 'app' }, { role: 'read', db: 'reporting' }];

    // Rotation 1: USER -> CLONE (created).
    let r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    let cur = await h.current(arn);
    const pw1 = passwordOf(cur);
    expect(visible(cur)).toMatchObject({ username: CLONE, dbname: 'app' });
    expect(shape(plain.userCommands(), { AWSPENDING: pw1 })).toEqual([
      { name: 'usersInfo', db: 'app', user: asAdmin, ok: true, args: { usersInfo: { user: USER, db: 'app' } } },
      { name: 'usersInfo', db: 'app', user: asAdmin, ok: true, args: { usersInfo: { user: CLONE, db: 'app' } } },
      { name: 'createUser', db: 'app', user: asAdmin, ok: true, args: { createUser: CLONE, pwd: 'AWSPENDING', roles: baseRoles } },
    ]);
    expect(plain.getUser('app', CLONE)?.roles).toEqual(baseRoles);
    expect(plain.getUser('admin', CLONE)).toBeUndefined();
    // AWSCURRENT guard, admin, verification, testSecret.
    expect(plain.logins.map((l) => [l.user, l.ok])).toEqual([[USER, true], [ADMIN, true], [CLONE, true], [CLONE, true]]);
    expect(await canLogin({ ...cur.json })).toBe(true);
    expect(await canLogin({ ...cur.json, username: USER, password: PW0 })).toBe(true); // the other user is untouched

    // A role granted to the current user later reaches the other user at the next rotation.
    plain.grantRole('app', CLONE, 'dbAdmin@app');
    plain.resetRecords();

    // Rotation 2: CLONE -> USER (updated: password and roles).
    r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    cur = await h.current(arn);
    const pw2 = passwordOf(cur);
    expect(visible(cur)).toMatchObject({ username: USER });
    const mirrored = [...baseRoles, { role: 'dbAdmin', db: 'app' }];
    expect(shape(plain.userCommands(), { AWSPENDING: pw2 })).toEqual([
      { name: 'usersInfo', db: 'app', user: asAdmin, ok: true, args: { usersInfo: { user: CLONE, db: 'app' } } },
      { name: 'usersInfo', db: 'app', user: asAdmin, ok: true, args: { usersInfo: { user: USER, db: 'app' } } },
      { name: 'updateUser', db: 'app', user: asAdmin, ok: true, args: { updateUser: USER, pwd: 'AWSPENDING', roles: mirrored } },
    ]);
    expect(plain.getUser('app', USER)?.roles).toEqual(mirrored);
    expect(await canLogin({ ...cur.json })).toBe(true);
    expect(await canLogin({ ...cur.json, password: PW0 })).toBe(false);
    expect(await canLogin({ ...cur.json, username: CLONE, password: pw1 })).toBe(true);

    // Rotation 3: USER -> CLONE (updated).
    plain.resetRecords();
    r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    cur = await h.current(arn);
    const pw3 = passwordOf(cur);
    expect(visible(cur)).toMatchObject({ username: CLONE });
    expect(shape(plain.userCommands().filter((c) => c.name !== 'usersInfo'), { AWSPENDING: pw3 })).toEqual([
      { name: 'updateUser', db: 'app', user: asAdmin, ok: true, args: { updateUser: CLONE, pwd: 'AWSPENDING', roles: mirrored } },
    ]);
    expect(await canLogin({ ...cur.json })).toBe(true);
    expect(await canLogin({ ...cur.json, password: pw1 })).toBe(false);
    expect(plain.listUsers().map((u) => `${u.user}@${u.db}`).sort()).toEqual([`${ADMIN}@admin`, `${CLONE}@app`, `${USER}@app`].sort());
  });

  it('replays every step twice: one version, one createUser, and a replayed setSecret re-applies the same state', async () => {
    const h = harness();
    const { arn } = await setupAlternating(plain, h);
    h.intercept = async (event, invoke) => {
      await invoke(event);
      await invoke(event);
    };
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(r.calls.filter((c) => c === 'PutSecretValue')).toHaveLength(1);
    const pw = passwordOf(await h.current(arn));
    const roles = [{ role: 'readWrite', db: 'app' }, { role: 'read', db: 'reporting' }];
    // The framework re-runs the (idempotent) upsert on a replayed setSecret: it finds the clone
    // and sets the same password and roles again.
    expect(shape(plain.userCommands().filter((c) => c.name !== 'usersInfo'), { AWSPENDING: pw })).toEqual([
      { name: 'createUser', db: 'app', user: `admin.${ADMIN}`, ok: true, args: { createUser: CLONE, pwd: 'AWSPENDING', roles } },
      { name: 'updateUser', db: 'app', user: `admin.${ADMIN}`, ok: true, args: { updateUser: CLONE, pwd: 'AWSPENDING', roles } },
    ]);
    expect(plain.checkPassword('app', CLONE, pw)).toBe(true);
  });

  it('works the DocumentDB way: engine docdb, users in admin, an RDS-managed admin secret found through its cluster tag, verified TLS', async () => {
    secure.addUser('admin', 'docdbadmin', ADMIN_PW, ['root@admin']);
    secure.addUser('admin', 'app_user', PW0, [{ role: 'readWrite', db: 'app' }]);
    const rds = new RdsDouble();
    const clusterArn = rds.addCluster({ id: 'docs', engine: 'docdb', endpoint: secure.host, port: secure.port });
    // The managed secret has no sslCa: the deployment's CA bundle (SSL_CA_BUNDLE) verifies the admin's connection.
    const h = harness({ SSL_CA_BUNDLE: certs.caFile }, rds);
    const adminArn = await h.createSecret({ username: 'docdbadmin', password: ADMIN_PW });
    h.sm.tagSecret(adminArn, [{ Key: 'aws:rds:primaryDBClusterArn', Value: clusterArn }]);
    const arn = await h.createSecret({ engine: 'docdb', host: secure.host, port: secure.port, username: 'app_user', password: PW0, sslCa: certs.caPem, masterarn: adminArn });
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const pw = passwordOf(await h.current(arn));
    expect(shape(secure.userCommands().filter((c) => c.name === 'createUser'), { AWSPENDING: pw })).toEqual([
      { name: 'createUser', db: 'admin', user: 'admin.docdbadmin', ok: true, args: { createUser: 'app_user_clone', pwd: 'AWSPENDING', roles: [{ role: 'readWrite', db: 'app' }] } },
    ]);
    expect(secure.checkPassword('admin', 'app_user_clone', pw)).toBe(true);
    expect(rds.calls.map((c) => [c.action, c.params.DBClusterIdentifier])).toEqual([['DescribeDBClusters', clusterArn]]);
  });

  it('confused-deputy guard: a forged AWSCURRENT never gets the admin to act', async () => {
    const h = harness();
    const forged = 'Forged-password-123';
    h.sensitive(forged);
    const { arn } = await setupAlternating(plain, h, { password: forged });
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('AWSCURRENT');
    expect(r.error).toContain('refusing to use the admin secret');
    await expectUnchanged(h, arn, before);
    expect(plain.userCommands()).toEqual([]);
    expect(plain.logins.filter((l) => l.user === ADMIN)).toEqual([]);
    expect(plain.getUser('app', CLONE)).toBeUndefined();
  });

  it('refuses an admin secret for another host before logging in as the admin', async () => {
    const h = harness();
    const { arn } = await setupAlternating(plain, h, {}, { host: 'db.elsewhere.example' });
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('is not the host');
    expect(plain.logins.filter((l) => l.user === ADMIN)).toEqual([]);
    expect(plain.userCommands()).toEqual([]);
  });

  it('reports a wrong admin password as an admin login failure', async () => {
    const h = harness();
    const { arn } = await setupAlternating(plain, h, {}, { password: 'Wrong-admin-password-1' });
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('admin secret');
    expect(r.error).toContain('[AUTH]');
    expect(plain.userCommands()).toEqual([]);
  });

  it('reports an admin without userAdmin as a privilege problem', async () => {
    const h = harness();
    plain.addUser('admin', 'weak-admin', ADMIN_PW, ['readWrite@app']);
    const { arn } = await setupAlternating(plain, h, {}, { username: 'weak-admin' });
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('PrivilegeError');
    expect(r.error).toContain('userAdmin');
    await expectUnchanged(h, arn, before);
    expect(plain.getUser('app', CLONE)).toBeUndefined();
  });

  it('never changes the admin user itself when it is one of the rotated pair', async () => {
    plain.addUser('admin', 'boss', ADMIN_PW, ['root@admin']);
    plain.addUser('admin', 'boss_clone', PW0, ['read@app']);
    const h = harness();
    const adminArn = await h.createSecret({ host: plain.host, port: plain.port, ssl: false, username: 'boss', password: ADMIN_PW });
    const arn = await h.createSecret({ engine: 'mongo', host: plain.host, port: plain.port, username: 'boss_clone', password: PW0, ssl: false, masterarn: adminArn });
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain('refusing to change its password or roles');
    expect(plain.checkPassword('admin', 'boss', ADMIN_PW)).toBe(true);
    expect(plain.getUser('admin', 'boss')?.roles).toEqual([{ role: 'root', db: 'admin' }]);
    expect(plain.userCommands()).toEqual([]);
  });
});

describe('secret validation', () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['missing host', { host: undefined }, '"host"'],
    ['missing password', { password: undefined }, '"password"'],
    ['a connection string as host', { host: 'mongodb://evil.example:27017/?authSource=x' }, '"host"'],
    ['a host list', { host: 'a.example,b.example' }, '"host"'],
    ['replicaSet not a string', { replicaSet: 7 }, '"replicaSet"'],
    ['empty authSource', { authSource: '' }, '"authSource"'],
    ['invalid dbname', { dbname: 'app.users' }, '"dbname"'],
    ['dbname not a string', { dbname: 5 }, '"dbname"'],
    ['invalid port', { port: 'abc' }, '"port"'],
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
    await mongoEngine.check(ca);
    await mongoEngine.close(ca);
    const req = await mongoEngine.connect(secret, { tls: { enabled: true, verifyChain: false, verifyHostname: false, ca: certs.otherCaPem }, connectTimeoutMs: 2000, statementTimeoutMs: 30_000, log, env: {} });
    await mongoEngine.close(req);
  });

  it('check() falls back to usersInfo on oneself where connectionStatus does not exist', async () => {
    secure.addUser('app', USER, PW0, ['read@app']);
    const conn = await mongoEngine.connect(childSecret(secure) as DbSecret, { tls: verifyFull(certs.caPem), connectTimeoutMs: 2000, statementTimeoutMs: 30_000, log, env: {} });
    try {
      secure.failNext('connectionStatus', { code: 59, codeName: 'CommandNotFound', errmsg: "no such command: 'connectionStatus'" });
      await mongoEngine.check(conn);
    } finally {
      await mongoEngine.close(conn);
    }
    expect(shape(secure.commands.filter((c) => ['ping', 'connectionStatus', 'usersInfo'].includes(c.name)), {})).toEqual([
      { name: 'ping', db: 'app', user: `app.${USER}`, ok: true, args: { ping: 1 } },
      { name: 'ping', db: 'app', user: `app.${USER}`, ok: true, args: { ping: 1 } },
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
    expect(packagedRotator.engine.engines).toEqual(['mongo', 'docdb']);
    expect(packagedRotator.engine.defaultPort).toBe(27017);
  });
});

describe('the fake server', () => {
  it('rejects unknown commands and unknown fields loudly', async () => {
    plain.addUser('admin', ADMIN, ADMIN_PW, ['root@admin']);
    const client = new MongoClient(`mongodb://${plain.host}:${plain.port}/`, {
      auth: { username: ADMIN, password: ADMIN_PW }, authSource: 'admin', directConnection: true, serverSelectionTimeoutMS: 2000,
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
