/**
 * DatabaseRotator's strategy guards, against an in-memory "server" (host -> user -> password) so
 * the checks are exercised without a real database: the engine only logs in and changes
 * passwords, exactly through the DatabaseEngine interface.
 */
import { PutSecretValueCommand, UpdateSecretVersionStageCommand } from '@aws-sdk/client-secrets-manager';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConnectError, createHandler, type DatabaseEngine, DatabaseRotator, defineEngine, type DbSecret, type RotationError, RotationStateError, SecretFormatError } from '../../src';
import { RdsDouble } from '../../src/testing';
import { assertNoLeaksInAll, createRotationHarness, type RotationHarness } from '../support/rotation-harness';

type Conn = { host: string; user: string };

let servers: Map<string, Map<string, string>>;
let changes: string[];
/** Every connection attempt: user@host:port and whether TLS was on. */
let logins: Array<{ who: string; tls: boolean }>;
/** The connection attempts that failed (user@host:port). */
let failedLogins: string[];
/** Fault injection: thrown by the next connect() instead of logging in. */
let nextConnectFault: (() => Error) | undefined;
/** Called after every password change the engine makes. */
let afterChange: (() => void) | undefined;

const engine: DatabaseEngine<Conn> = defineEngine<Conn>({
  profile: { name: 'memory', engines: ['memory'], defaultPort: 1, username: { maxLength: 63 } },
  async connect(secret: DbSecret, options): Promise<Conn> {
    const who = `${secret.username}@${secret.host}:${secret.port ?? 1}`;
    logins.push({ who, tls: options.tls.enabled });
    const fault = nextConnectFault;
    nextConnectFault = undefined;
    if (fault) {
      failedLogins.push(who);
      throw fault();
    }
    if (servers.get(secret.host)?.get(secret.username) !== secret.password) {
      failedLogins.push(who);
      throw new ConnectError('AUTH', `login refused for ${secret.username}@${secret.host}`);
    }
    return { host: secret.host, user: secret.username };
  },
  async close(): Promise<void> {},
  async setOwnPassword(conn, change): Promise<void> {
    servers.get(conn.host)!.set(change.username, change.newPassword);
    changes.push(`own ${change.username}@${conn.host}`);
    afterChange?.();
  },
  async upsertAlternateUser(conn, change): Promise<void> {
    servers.get(conn.host)!.set(change.alternateUser, change.newPassword);
    changes.push(`upsert ${change.alternateUser}@${conn.host} by ${conn.user}`);
  },
  async checkAlternateUser(): Promise<void> {},
  async check(): Promise<void> {},
});

const CURRENT_PW = 'Current-Password-0001';
const ADMIN_PW = 'Admin-Password-0002';
const OTHER_PW = 'Other-Host-Password-0003';

let h: RotationHarness;
let rds: RdsDouble;

beforeEach(() => {
  servers = new Map([
    ['db-a', new Map([['app', CURRENT_PW], ['admin', ADMIN_PW]])],
    ['db-b', new Map()],
  ]);
  changes = [];
  logins = [];
  failedLogins = [];
  nextConnectFault = undefined;
  afterChange = undefined;
  rds = new RdsDouble();
  h = createRotationHarness({ handler: (opts) => createHandler(new DatabaseRotator(engine, { rdsClient: (region) => rds.client(region) }), opts) });
  h.sensitive(OTHER_PW);
});

afterEach(() => assertNoLeaksInAll());

const secret = (extra: Record<string, unknown> = {}) => ({ engine: 'memory', host: 'db-a', username: 'app', password: CURRENT_PW, ssl: false, ...extra });

describe('single user', () => {
  it('rotates the user\'s own password (control for the guards below)', async () => {
    const arn = await h.createSecret(secret());
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(true);
    const now = (await h.current(arn)).json!;
    expect(servers.get('db-a')!.get('app')).toBe(now.password);
    expect(changes).toEqual(['own app@db-a']);
  });

  it('refuses an AWSPENDING naming another host even when it logs in there', async () => {
    const arn = await h.createSecret(secret());
    const run = h.begin(arn);
    await h.client.send(new PutSecretValueCommand({
      SecretId: arn, ClientRequestToken: run.versionId, VersionStages: ['AWSPENDING'],
      SecretString: JSON.stringify(secret({ host: 'db-b', password: OTHER_PW })),
    }));
    servers.get('db-b')!.set('app', OTHER_PW);
    const err = await h.invoke(run.event('setSecret')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RotationStateError);
    expect((err as Error).message).toMatch(/^AWSPENDING's "host" field differs from AWSCURRENT's; only the password may change/);
    expect(changes).toEqual([]);
  });
});

describe('alternating users', () => {
  async function alternating(username: string, password: string): Promise<string> {
    const adminArn = await h.createSecret({ username: 'admin', password: ADMIN_PW, host: 'db-a', ssl: false });
    return h.createSecret(secret({ username, password, masterarn: adminArn }));
  }

  it('creates the clone through the admin (control for the guards below)', async () => {
    const r = await h.rotate(await alternating('app', CURRENT_PW));
    expect(r.succeeded).toBe(true);
    expect(changes).toEqual(['upsert app_clone@db-a by admin']);
  });

  it('refuses to make the admin reset its own password (child user "admin_clone")', async () => {
    servers.get('db-a')!.set('admin_clone', CURRENT_PW);
    const r = await h.rotate(await alternating('admin_clone', CURRENT_PW));
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/The alternate user "admin" is the admin secret's own user/);
    expect(changes).toEqual([]);
    expect(servers.get('db-a')!.get('admin')).toBe(ADMIN_PW);
  });

  it('rotationStrategy "alternating" without masterarn fails in createSecret, before any pending value exists', async () => {
    const arn = await h.createSecret(secret({ rotationStrategy: 'alternating' }));
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.steps).toEqual(['createSecret']);
    expect(r.error).toMatch(/alternating-users strategy but has no "masterarn"/);
    await expect(h.version(arn, r.versionId)).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });
});

describe('where the admin secret connects', () => {
  /** The attack the endpoint rules stop: the child secret names a server its writer controls. */
  beforeEach(() => {
    servers.set('evil', new Map([['app', CURRENT_PW]]));
  });

  it('refuses an admin secret with no host and no RDS tags, before any admin login, naming the remedies', async () => {
    const adminArn = await h.createSecret({ username: 'admin', password: ADMIN_PW, ssl: false });
    const arn = await h.createSecret(secret({ host: 'evil', masterarn: adminArn }));
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/The admin secret .* has no "host" field and no aws:rds:primaryDBInstanceArn or aws:rds:primaryDBClusterArn tag/);
    expect(r.error).toMatch(/Add "host" \(and "port"\) to the admin secret, or use a service-managed admin secret, or set ADMIN_HOST_FROM_CHILD=true/);
    expect(logins.filter((l) => l.who.startsWith('admin@'))).toEqual([]);
    expect(changes).toEqual([]);
    expect(h.holderOf(arn, 'AWSCURRENT')).not.toBe(r.versionId);
  });

  it('uses the child\'s host for a host-less admin secret only with ADMIN_HOST_FROM_CHILD=true', async () => {
    h.env.ADMIN_HOST_FROM_CHILD = 'true';
    const adminArn = await h.createSecret({ username: 'admin', password: ADMIN_PW, ssl: false });
    const arn = await h.createSecret(secret({ masterarn: adminArn }));
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(true);
    expect(changes).toEqual(['upsert app_clone@db-a by admin']);
    const line = h.records().find((l) => l.message === 'admin secret endpoint');
    expect(line).toMatchObject({ host: 'db-a', endpointFrom: 'the child secret (ADMIN_HOST_FROM_CHILD)' });
  });

  it('finds an RDS-managed master secret\'s database through its aws:rds:primaryDBInstanceArn tag and the RDS API', async () => {
    const dbArn = rds.addInstance({ id: 'orders-db', engine: 'memory', address: 'db-a', port: 1 });
    const adminArn = await h.createSecret({ username: 'admin', password: ADMIN_PW, ssl: false });
    h.sm.tagSecret(adminArn, [{ Key: 'aws:rds:primaryDBInstanceArn', Value: dbArn }]);
    const arn = await h.createSecret(secret({ masterarn: adminArn }));
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(true);
    expect(changes).toEqual(['upsert app_clone@db-a by admin']);
    expect(rds.calls).toEqual([{ action: 'DescribeDBInstances', params: expect.objectContaining({ DBInstanceIdentifier: dbArn }), region: 'us-east-1' }]);
    // One DescribeSecret of the admin secret, in setSecret only.
    expect(h.sm.calls.filter((c) => c.operation === 'DescribeSecret' && c.secretId === adminArn)).toHaveLength(1);
    expect(h.records().find((l) => l.message === 'admin secret endpoint')).toMatchObject({ host: 'db-a', port: 1, endpointFrom: `RDS instance ${dbArn}` });
  });

  it('finds a cluster through aws:rds:primaryDBClusterArn (key in any case), in the ARN\'s region', async () => {
    const eu = new RdsDouble('eu-west-1');
    rds = eu;
    const dbArn = eu.addCluster({ id: 'orders', engine: 'memory', endpoint: 'db-a', port: 1, readerEndpoint: 'db-a-ro' });
    const adminArn = await h.createSecret({ username: 'admin', password: ADMIN_PW, ssl: false });
    h.sm.tagSecret(adminArn, [{ Key: 'AWS:RDS:PRIMARYDBCLUSTERARN', Value: dbArn }]);
    const r = await h.rotate(await h.createSecret(secret({ masterarn: adminArn })));
    expect(r.succeeded).toBe(true);
    expect(eu.calls.map((c) => [c.action, c.params.DBClusterIdentifier, c.region])).toEqual([['DescribeDBClusters', dbArn, 'eu-west-1']]);
  });

  it('refuses when the RDS endpoint is not the child\'s host (the child cannot redirect an RDS-managed admin)', async () => {
    const dbArn = rds.addInstance({ id: 'orders-db', engine: 'memory', address: 'db-a', port: 1 });
    const adminArn = await h.createSecret({ username: 'admin', password: ADMIN_PW, ssl: false });
    h.sm.tagSecret(adminArn, [{ Key: 'aws:rds:primaryDBInstanceArn', Value: dbArn }]);
    const r = await h.rotate(await h.createSecret(secret({ host: 'evil', masterarn: adminArn })));
    expect(r.succeeded).toBe(false);
    expect(r.error).toContain(`The admin secret's host "db-a" (from RDS instance ${dbArn}) is not the host "evil" of the secret being rotated.`);
    expect(logins.filter((l) => l.who.startsWith('admin@'))).toEqual([]);
  });

  it('reports an unknown RDS database, and an RDS API failure with the permission it needs', async () => {
    const adminArn = await h.createSecret({ username: 'admin', password: ADMIN_PW, ssl: false });
    h.sm.tagSecret(adminArn, [{ Key: 'aws:rds:primaryDBInstanceArn', Value: rds.instanceArn('gone') }]);
    const missing = await h.rotate(await h.createSecret(secret({ masterarn: adminArn })));
    expect(missing.error).toMatch(/tagged with the RDS instance arn:aws:rds:us-east-1:123456789012:db:gone, which RDS does not know/);

    const otherRegion = await h.createSecret({ username: 'admin', password: ADMIN_PW, ssl: false });
    h.sm.tagSecret(otherRegion, [{ Key: 'aws:rds:primaryDBClusterArn', Value: 'arn:aws:rds:ap-south-1:123456789012:cluster:x' }]);
    const denied = await h.rotate(await h.createSecret(secret({ masterarn: otherRegion })));
    expect(denied.error).toMatch(/Looking up the admin secret's database \(RDS cluster arn:aws:rds:ap-south-1:123456789012:cluster:x\) failed: InvalidClientTokenId/);
    expect(denied.error).toMatch(/needs rds:DescribeDBClusters on it/);
    expect(changes).toEqual([]);
  });

  it('takes TLS settings from the admin secret only: a child with ssl:false does not turn TLS off for the admin', async () => {
    const adminArn = await h.createSecret({ username: 'admin', password: ADMIN_PW, host: 'db-a' });
    const arn = await h.createSecret(secret({ masterarn: adminArn }));
    await h.rotate(arn);
    expect(logins.filter((l) => l.who.startsWith('app@'))[0]).toEqual({ who: 'app@db-a:1', tls: false });
    // No "ssl" in the admin secret: the default mode (verify-full) applies to the admin login.
    expect(logins.filter((l) => l.who.startsWith('admin@'))).toEqual([{ who: 'admin@db-a:1', tls: true }]);
  });
});

describe('database logins per rotation (issue #13/#14: at most 4, none failing, on a clean rotation)', () => {
  it('single user: AWSCURRENT (change), AWSPENDING (setSecret\'s check), testSecret, finishSecret; no failed login', async () => {
    const arn = await h.createSecret(secret());
    for (let i = 0; i < 2; i++) {
      logins = [];
      const r = await h.rotate(arn);
      expect(r.succeeded).toBe(true);
      expect(logins.map((l) => l.who)).toEqual(['app@db-a:1', 'app@db-a:1', 'app@db-a:1', 'app@db-a:1']);
      expect(failedLogins).toEqual([]);
    }
    expect(h.records().filter((l) => l.message === 'login failed')).toEqual([]);
  });

  it('alternating users: AWSCURRENT guard, admin, testSecret, finishSecret; no failed login', async () => {
    const adminArn = await h.createSecret({ username: 'admin', password: ADMIN_PW, host: 'db-a', ssl: false });
    const arn = await h.createSecret(secret({ masterarn: adminArn }));
    const seen: string[][] = [];
    for (let i = 0; i < 3; i++) {
      logins = [];
      const r = await h.rotate(arn);
      expect(r.succeeded).toBe(true);
      seen.push(logins.map((l) => l.who));
    }
    expect(seen).toEqual([
      ['app@db-a:1', 'admin@db-a:1', 'app_clone@db-a:1', 'app_clone@db-a:1'],
      ['app_clone@db-a:1', 'admin@db-a:1', 'app@db-a:1', 'app@db-a:1'],
      ['app@db-a:1', 'admin@db-a:1', 'app_clone@db-a:1', 'app_clone@db-a:1'],
    ]);
    expect(failedLogins).toEqual([]);
  });

  it('a retry after the password was already changed: AWSCURRENT is refused, AWSPENDING logs in, nothing changes twice', async () => {
    const arn = await h.createSecret(secret());
    h.intercept = async (event, invoke) => {
      await invoke(event);
      if (event.Step === 'setSecret') await invoke(event);
    };
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(true);
    expect(changes).toEqual(['own app@db-a']);
    expect(h.records().some((l) => l.message === 'AWSPENDING already logs in; password was set by an earlier attempt')).toBe(true);
    expect(servers.get('db-a')!.get('app')).toBe((await h.current(arn)).json!.password);
  });

  it('the no-op password change (server answers OK, changes nothing) is caught before promotion, as VERIFY', async () => {
    const arn = await h.createSecret(secret());
    afterChange = () => servers.get('db-a')!.set('app', CURRENT_PW);
    const before = await h.current(arn);
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^VerificationError: The server accepted the password change for "app" but the new password does not log in/);
    expect((await h.current(arn)).versionId).toBe(before.versionId);
  });

  it.each([
    ['NETWORK', 'connect ECONNRESET 10.0.0.1:5432'],
    ['NETWORK', 'connect ECONNREFUSED 10.0.0.1:5432'],
    ['NETWORK', 'the server did not answer within 5000 ms'],
    ['TLS', 'unable to verify the first certificate'],
  ] as const)('a %s failure (%s) on the verification login after the change is reported as such with a network remedy, not VERIFY', async (code, reason) => {
    const arn = await h.createSecret(secret());
    afterChange = () => {
      nextConnectFault = () => new ConnectError(code, reason);
    };
    const run = h.begin(arn);
    await h.invoke(run.event('createSecret'));
    const err = (await h.invoke(run.event('setSecret')).catch((e: unknown) => e)) as RotationError;
    expect(err.code).toBe(code);
    expect(err.message).toContain(`The password of "app" was changed, but the login that verifies it failed. Attempts: AWSPENDING (app@db-a): [${code}] ${reason}.`);
    expect(err.message).toMatch(/Check that the function can reach the database/);
    expect(err.message).not.toMatch(/had no effect/);
    // The retry recognises the finished change.
    await h.invoke(run.event('setSecret'));
    expect(changes).toEqual(['own app@db-a']);
  });
});

describe('a working credential is never stranded (single user)', () => {
  /** The database accepts only an old password that no label points at any more. */
  async function stranded(): Promise<{ arn: string; oldVersion: string }> {
    const arn = await h.createSecret(secret());
    const oldVersion = (await h.current(arn)).versionId;
    for (const pw of ['Stale-Password-0004', 'Stale-Password-0005']) {
      h.sensitive(pw);
      await h.client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: randomUUID(), SecretString: JSON.stringify(secret({ password: pw })) }));
    }
    expect(h.stages(arn)[oldVersion]).toBeUndefined();
    return { arn, oldVersion };
  }

  it('tries the newest unlabelled versions when AWSCURRENT, AWSPENDING and AWSPREVIOUS fail, and says which one it used', async () => {
    const { arn, oldVersion } = await stranded();
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(changes).toEqual(['own app@db-a']);
    expect(servers.get('db-a')!.get('app')).toBe((await h.current(arn)).json!.password);
    expect(h.records().find((l) => l.message === 'logged in with the password of an unlabelled version')).toMatchObject({ usedVersionId: oldVersion, level: 'WARN' });
    expect(r.calls).toContain('ListSecretVersionIds');
  });

  it('uses only the password of an unlabelled version: one naming another host or user is ignored, and TLS stays AWSCURRENT\'s', async () => {
    const arn = await h.createSecret(secret({ ssl: true }));
    servers.set('evil', new Map([['app', 'Evil-Host-Password-07']]));
    h.sensitive('Evil-Host-Password-07');
    await h.client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: randomUUID(), SecretString: JSON.stringify(secret({ host: 'evil', password: 'Evil-Host-Password-07', ssl: false })) }));
    for (const pw of ['Stale-Password-0004', 'Stale-Password-0005']) {
      await h.client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: randomUUID(), SecretString: JSON.stringify(secret({ password: pw, ssl: true })) }));
    }
    servers.get('db-a')!.set('app', 'Unused-Password-0008');
    h.sensitive('Unused-Password-0008', 'Stale-Password-0004', 'Stale-Password-0005');
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(logins.filter((l) => l.who.includes('evil'))).toEqual([]);
    expect(logins.every((l) => l.tls)).toBe(true);
    expect(h.records().some((l) => typeof l.message === 'string' && /ignoring unlabelled version .*: it names another user or endpoint/.test(l.message))).toBe(true);
    expect(r.error).toMatch(/Unable to log into the database with the current, pending, previous or recent unlabelled secret/);
    expect(changes).toEqual([]);
  });

  it('does not fall back on a NETWORK failure of AWSCURRENT (nothing else is tried, nothing changes)', async () => {
    const arn = await h.createSecret(secret());
    const run = h.begin(arn);
    await h.invoke(run.event('createSecret'));
    nextConnectFault = () => new ConnectError('NETWORK', 'connect ECONNREFUSED 10.0.0.1:5432');
    const err = (await h.invoke(run.event('setSecret')).catch((e: unknown) => e)) as RotationError;
    expect(err.code).toBe('NETWORK');
    expect(logins).toHaveLength(1);
    expect(changes).toEqual([]);
  });
});

describe('attacks: the admin endpoint never comes from the child secret', () => {
  it('an admin secret with host but no port connects to the engine\'s default port, not the port the child names', async () => {
    const adminArn = await h.createSecret({ username: 'admin', password: ADMIN_PW, host: 'db-a', ssl: false });
    const arn = await h.createSecret(secret({ port: 7777, masterarn: adminArn }));
    await h.rotate(arn);
    expect(logins.filter((l) => l.who.startsWith('admin@')).map((l) => l.who)).toEqual(['admin@db-a:1']);
    expect(h.records().find((l) => l.message === 'admin secret endpoint')).toMatchObject({ port: 1, endpointFrom: 'the admin secret' });
  });

  it('an RDS-managed admin takes the port RDS reports, not the child\'s', async () => {
    const dbArn = rds.addInstance({ id: 'orders-db', engine: 'memory', address: 'db-a', port: 6543 });
    const adminArn = await h.createSecret({ username: 'admin', password: ADMIN_PW, ssl: false });
    h.sm.tagSecret(adminArn, [{ Key: 'aws:rds:primaryDBInstanceArn', Value: dbArn }]);
    await h.rotate(await h.createSecret(secret({ port: 7777, masterarn: adminArn })));
    expect(logins.filter((l) => l.who.startsWith('admin@')).map((l) => l.who)).toEqual(['admin@db-a:6543']);
  });

  it.each([['abc'], [0], [70000], [1.5], ['1.5'], [-1], [true]])('refuses port %j in any secret with SECRET_FORMAT naming the field', async (port) => {
    const child = await h.createSecret(secret({ port }));
    const r = await h.rotate(child);
    expect(r.steps).toEqual(['createSecret']);
    expect(r.error).toMatch(/^SecretFormatError: The AWSCURRENT secret's "port" field must be a port number \(a whole number from 1 to 65535\)\./);

    const adminArn = await h.createSecret({ username: 'admin', password: ADMIN_PW, host: 'db-a', port, ssl: false });
    const r2 = await h.rotate(await h.createSecret(secret({ masterarn: adminArn })));
    expect(r2.error).toMatch(/SecretFormatError: The admin secret's "port" field must be a port number \(a whole number from 1 to 65535\)\./);
    expect(logins.filter((l) => l.who.startsWith('admin@'))).toEqual([]);
    expect(changes).toEqual([]);
  });

  it('accepts a port as a digit string', async () => {
    const r = await h.rotate(await h.createSecret(secret({ port: '1' })));
    expect(r.error).toBeUndefined();
  });
});

describe('attacks: AWSPENDING may differ from AWSCURRENT only in the password (and username for alternating users)', () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['ssl', { ssl: false }],
    ['port', { port: 7777 }],
    ['dbname', { dbname: 'other' }],
    ['sslCa', { sslCa: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----' }],
    ['engine', { engine: 'memory2' }],
    ['extra', { extra: { nested: 1 } }],
  ];

  it.each(cases)('a pending value with another %s is refused in setSecret, testSecret and finishSecret: nothing sent or promoted', async (field, change) => {
    const multi = new DatabaseRotator(Object.assign(Object.create(engine), { profile: { ...engine.profile, engines: ['memory', 'memory2'] } }) as DatabaseEngine<Conn>);
    const hh = createRotationHarness({ handler: (opts) => createHandler(multi, opts) });
    const arn = await hh.createSecret(secret({ ssl: 'require', dbname: 'app', port: 1 }));
    const run = hh.begin(arn);
    const hostile = secret({ ssl: 'require', dbname: 'app', port: 1, password: 'Pending-Password-0009', ...change });
    hh.sensitive('Pending-Password-0009');
    await hh.client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: run.versionId, VersionStages: ['AWSPENDING'], SecretString: JSON.stringify(hostile) }));
    servers.get('db-a')!.set('app', 'Pending-Password-0009'); // even when it would log in
    const holder = hh.holderOf(arn, 'AWSCURRENT');
    for (const step of ['setSecret', 'testSecret', 'finishSecret'] as const) {
      const err = (await hh.invoke(run.event(step)).catch((e: unknown) => e)) as RotationError;
      expect(err.code).toBe('STATE');
      expect(err.message).toContain(`AWSPENDING's "${field}" field differs from AWSCURRENT's`);
    }
    expect(logins).toEqual([]);
    expect(changes).toEqual([]);
    expect(hh.holderOf(arn, 'AWSCURRENT')).toBe(holder);
  });

  it('alternating: a pending value with another masterarn is refused before any login', async () => {
    const adminArn = await h.createSecret({ username: 'admin', password: ADMIN_PW, host: 'db-a', ssl: false });
    const arn = await h.createSecret(secret({ masterarn: adminArn }));
    const run = h.begin(arn);
    await h.client.send(new PutSecretValueCommand({
      SecretId: arn, ClientRequestToken: run.versionId, VersionStages: ['AWSPENDING'],
      SecretString: JSON.stringify(secret({ username: 'app_clone', password: 'Pending-Password-0009', masterarn: `${adminArn}-other` })),
    }));
    const err = (await h.invoke(run.event('setSecret')).catch((e: unknown) => e)) as RotationError;
    expect(err.message).toContain('AWSPENDING\'s "masterarn" field differs from AWSCURRENT\'s; only the password and the username may change');
    expect(logins).toEqual([]);
  });
});

describe('attacks: finishSecret promotes only a value that works', () => {
  it('finishSecret right after createSecret (setSecret never ran) fails AUTH and leaves AWSCURRENT', async () => {
    const arn = await h.createSecret(secret());
    const holder = h.holderOf(arn, 'AWSCURRENT');
    const run = h.begin(arn);
    await h.invoke(run.event('createSecret'));
    const err = (await h.invoke(run.event('finishSecret')).catch((e: unknown) => e)) as RotationError;
    expect(err.code).toBe('AUTH');
    expect(err.message).toMatch(/Unable to log into the database with the AWSPENDING secret.*setSecret has not run for this version/);
    expect(h.holderOf(arn, 'AWSCURRENT')).toBe(holder);
    expect(servers.get('db-a')!.get('app')).toBe(CURRENT_PW);
  });

  it('finishSecret on the value-less placeholder RotateSecret creates fails STATE and leaves AWSCURRENT', async () => {
    const arn = await h.createSecret(secret());
    const holder = h.holderOf(arn, 'AWSCURRENT');
    const run = h.begin(arn);
    const err = (await h.invoke(run.event('finishSecret')).catch((e: unknown) => e)) as RotationError;
    expect(err.code).toBe('STATE');
    expect(err.message).toMatch(/AWSPENDING version .* has no value; refusing to move AWSCURRENT to it/);
    expect(h.holderOf(arn, 'AWSCURRENT')).toBe(holder);
    expect(logins).toEqual([]);
  });

  it('finishSecret on an invalid AWSPENDING value fails SECRET_FORMAT and leaves AWSCURRENT', async () => {
    const arn = await h.createSecret(secret());
    const holder = h.holderOf(arn, 'AWSCURRENT');
    const run = h.begin(arn);
    await h.client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: run.versionId, VersionStages: ['AWSPENDING'], SecretString: '{"engine":"memory"}' }));
    const err = (await h.invoke(run.event('finishSecret')).catch((e: unknown) => e)) as RotationError;
    expect(err.code).toBe('SECRET_FORMAT');
    expect(h.holderOf(arn, 'AWSCURRENT')).toBe(holder);
  });

  it('testSecret on the value-less placeholder (RotateImmediately=false) tests AWSCURRENT', async () => {
    const arn = await h.createSecret(secret());
    const r = await h.sm.rotateAndWait(arn, { lambdaArn: h.lambdaArn, rotateImmediately: false });
    expect(r).toMatchObject({ succeeded: true, steps: ['testSecret'] });
    expect(logins.map((l) => l.who)).toEqual(['app@db-a:1']);
    expect(h.records().some((l) => l.message === 'AWSCURRENT logs in and runs the check query')).toBe(true);
  });
});

describe('configuration is checked in createSecret, before AWSPENDING is written', () => {
  it.each([
    ['CONNECT_TIMEOUT_MS', 'abc', /CONNECT_TIMEOUT_MS must be a whole number of milliseconds/],
    ['STATEMENT_TIMEOUT_MS', '5', /STATEMENT_TIMEOUT_MS must be a whole number of milliseconds/],
    ['ADMIN_HOST_FROM_CHILD', 'ture', /ADMIN_HOST_FROM_CHILD must be true or false/],
    ['DEFAULT_SSL_MODE', 'maybe', /DEFAULT_SSL_MODE "maybe" is not one of/],
    ['PASSWORD_LENGTH', 'long', /PASSWORD_LENGTH must be a whole number/],
    ['EXCLUDE_NUMBERS', 'sure', /EXCLUDE_NUMBERS must be true or false/],
    ['SSL_CA_BUNDLE', '/nonexistent/ca.pem', /SSL_CA_BUNDLE points to \/nonexistent\/ca.pem, which cannot be read/],
    ['LOG_LEVEL', 'verbose', /LOG_LEVEL must be debug, info, warn or error, got "verbose"/],
  ])('%s=%s fails createSecret with CONFIG and stores no AWSPENDING value', async (name, value, message) => {
    const arn = await h.createSecret(secret());
    h.env[name] = value;
    const r = await h.rotate(arn);
    expect(r.steps).toEqual(['createSecret']);
    expect(r.error).toMatch(message);
    expect(r.error).toMatch(/^ConfigError/);
    expect(h.sm.calls.filter((c) => c.operation === 'PutSecretValue')).toEqual([]);
    await expect(h.version(arn, r.versionId)).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    expect(logins).toEqual([]);
  });
});

describe('Secrets Manager errors are typed and actionable', () => {
  it('a concurrent duplicate createSecret converges: the second invocation reads back the first one\'s value', async () => {
    const arn = await h.createSecret(secret());
    const run = h.begin(arn);
    await Promise.all([h.invoke(run.event('createSecret')), h.invoke(run.event('createSecret'))]);
    expect(h.sm.calls.filter((c) => c.operation === 'PutSecretValue')).toHaveLength(2);
    expect(h.records().some((l) => l.message === 'AWSPENDING value already exists; nothing to create')).toBe(true);
    for (const step of ['setSecret', 'testSecret', 'finishSecret'] as const) await h.invoke(run.event(step));
    expect(h.holderOf(arn, 'AWSCURRENT')).toBe(run.versionId);
    expect(servers.get('db-a')!.get('app')).toBe((await h.current(arn)).json!.password);
  });

  it('a duplicate finishSecret that loses the race for the label (InvalidParameterException) converges when this version holds AWSCURRENT', async () => {
    const arn = await h.createSecret(secret());
    const run = h.begin(arn);
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await h.invoke(run.event(step));
    const holder = h.holderOf(arn, 'AWSCURRENT')!;
    // The other invocation's move happens between this one's DescribeSecret and its own move.
    h.intercept = undefined;
    const original = h.sm.handleJsonRequest.bind(h.sm);
    let raced = false;
    h.sm.handleJsonRequest = async (target, body) => {
      if (!raced && target?.endsWith('UpdateSecretVersionStage')) {
        raced = true;
        await original(target, body);
        h.sm.failNext('UpdateSecretVersionStage', 'InvalidParameterException', `Staging label AWSCURRENT is attached to version ${run.versionId}, not to the RemoveFromVersionId ${holder}.`);
      }
      return original(target, body);
    };
    await h.invoke(run.event('finishSecret'));
    expect(raced).toBe(true);
    expect(h.holderOf(arn, 'AWSCURRENT')).toBe(run.versionId);
    expect(h.records().some((l) => l.message === 'AWSCURRENT was already moved to this version (a concurrent invocation)')).toBe(true);
  });

  it('an InvalidParameterException on the label move when this version does not hold AWSCURRENT is an error', async () => {
    const arn = await h.createSecret(secret());
    const run = h.begin(arn);
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await h.invoke(run.event(step));
    h.sm.failNext('UpdateSecretVersionStage', 'InvalidParameterException', 'Injected.');
    await expect(h.invoke(run.event('finishSecret'))).rejects.toMatchObject({ code: 'STATE' });
    expect(h.holderOf(arn, 'AWSCURRENT')).not.toBe(run.versionId);
  });

  it.each([
    ['DescribeSecret', 'AccessDeniedException', 'PRIVILEGE', /needs secretsmanager:DescribeSecret on arn:/],
    ['DescribeSecret', 'ResourceNotFoundException', 'STATE', /secret or version not found/],
    ['GetSecretValue', 'DecryptionFailure', 'CONFIG', /kms:Decrypt/],
    ['GetSecretValue', 'ThrottlingException', 'NETWORK', /after the SDK's retries.*throttling or unreachable/],
    ['PutSecretValue', 'AccessDeniedException', 'PRIVILEGE', /needs secretsmanager:PutSecretValue/],
  ])('%s failing with %s is %s', async (operation, type, code, message) => {
    const arn = await h.createSecret(secret());
    const run = h.begin(arn);
    h.sm.failNext(operation, type);
    const err = (await h.invoke(run.event('createSecret')).catch((e: unknown) => e)) as RotationError;
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
  });

  it('an event with a huge SecretId is an EVENT error, and the message does not repeat the whole id', async () => {
    const err = (await h.invoke({ SecretId: 'x'.repeat(100_000), ClientRequestToken: randomUUID(), Step: 'createSecret' }).catch((e: unknown) => e)) as RotationError;
    expect(err.code).toBe('EVENT');
    expect(err.message).toBe('The rotation event\'s SecretId is 100000 characters long; a secret ARN or name has at most 2048.');
    expect(h.sm.calls).toEqual([]);
    expect(h.logs.every((l) => l.length < 2000)).toBe(true);
  });

  it('a SecretId Secrets Manager rejects as invalid (ValidationException) is an EVENT error too', async () => {
    h.sm.failNext('DescribeSecret', 'ValidationException', 'Invalid name. Must be a valid name containing alphanumeric characters.');
    const err = (await h.invoke({ SecretId: 'not a valid name!', ClientRequestToken: randomUUID(), Step: 'createSecret' }).catch((e: unknown) => e)) as RotationError;
    expect(err.code).toBe('EVENT');
    expect(err.message).toMatch(/^DescribeSecret on not a valid name! failed: ValidationException: Invalid name.* The event's SecretId is not a valid secret id\./);
  });

  it('a missing admin secret is CONFIG naming masterarn', async () => {
    const arn = await h.createSecret(secret({ masterarn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-abcdef' }));
    const r = await h.rotate(arn);
    expect(r.error).toMatch(/^ConfigError: The admin secret arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-abcdef \(the "masterarn" field\) was not found, or has no AWSCURRENT value\./);
    expect(logins.filter((l) => l.who.startsWith('admin@'))).toEqual([]);
  });
});

describe('the value-less placeholder left by an abandoned rotation', () => {
  it('finishSecret refuses even after the stage was moved by hand', async () => {
    const arn = await h.createSecret(secret());
    const run = h.begin(arn);
    const holder = h.holderOf(arn, 'AWSCURRENT')!;
    // An operator (or attacker) tries to finish by hand through the function: nothing moves.
    await expect(h.invoke(run.event('finishSecret'))).rejects.toMatchObject({ code: 'STATE' });
    await h.client.send(new UpdateSecretVersionStageCommand({ SecretId: arn, VersionStage: 'AWSPENDING', RemoveFromVersionId: run.versionId }));
    expect(h.holderOf(arn, 'AWSCURRENT')).toBe(holder);
  });
});

describe('an error an engine leaves unclassified', () => {
  it('leaves the step as a DatabaseError (STATE) with the engine\'s message, the same on every engine; an upsert gets its retries first', async () => {
    let upserts = 0;
    const failing = defineEngine<Conn>({
      ...engine,
      profile: engine.profile,
      async setOwnPassword() {
        throw new Error('the server failed to change the password (SQLSTATE XX000)');
      },
      async upsertAlternateUser() {
        upserts++;
        throw Object.assign(new Error('duplicate key value violates unique constraint (SQLSTATE 23505)'), { code: '23505' });
      },
    });
    const hh = createRotationHarness({ handler: (opts) => createHandler(new DatabaseRotator(failing), opts) });
    const single = await hh.createSecret(secret());
    const r1 = await hh.rotate(single);
    expect(r1.succeeded).toBe(false);
    expect(r1.error).toMatch(/^DatabaseError: the server failed to change the password \(SQLSTATE XX000\)\. The database refused a statement/);
    expect(hh.records().find((l) => l.message === 'step failed')).toMatchObject({ errorCode: 'STATE', errorName: 'DatabaseError', step: 'setSecret' });
    expect(hh.records().find((l) => l.message === 'engine call ended' && l.outcome === 'error')).toBeUndefined(); // debug lines are off by default

    const adminArn = await hh.createSecret({ username: 'admin', password: ADMIN_PW, host: 'db-a', ssl: false });
    const multi = await hh.createSecret(secret({ masterarn: adminArn }));
    hh.env.LOG_LEVEL = 'debug';
    const r2 = await hh.rotate(multi);
    expect(r2.succeeded).toBe(false);
    expect(upserts).toBe(3);
    expect(hh.records().filter((l) => l.message === 'step failed').at(-1)).toMatchObject({ errorCode: 'STATE', errorName: 'DatabaseError' });
    expect(hh.records().filter((l) => l.message === 'engine call ended' && l.call === 'upsertAlternateUser').map((l) => [l.outcome, l.errorCode, l.errorType]))
      .toEqual([['error', 'STATE', 'DatabaseError'], ['error', 'STATE', 'DatabaseError'], ['error', 'STATE', 'DatabaseError']]);
  });
});

describe('a hand-written AWSPENDING cannot bypass the engine\'s password rule', () => {
  it('a pending password the engine cannot carry is refused by setSecret, testSecret and finishSecret before any login', async () => {
    const strict = defineEngine<Conn>({
      ...engine,
      profile: {
        ...engine.profile,
        password: {
          validate(password: string) {
            if (password.includes('"')) throw new SecretFormatError('The AWSPENDING secret\'s "password" field contains ", which this server cannot quote.');
          },
        },
      },
    });
    const hh = createRotationHarness({ handler: (opts) => createHandler(new DatabaseRotator(strict), opts) });
    const arn = await hh.createSecret(secret());
    const run = hh.begin(arn);
    const bad = 'Hand"Written-Pending-0011';
    hh.sensitive(bad);
    await hh.client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: run.versionId, VersionStages: ['AWSPENDING'], SecretString: JSON.stringify(secret({ password: bad })) }));
    logins.length = 0;
    for (const step of ['setSecret', 'testSecret', 'finishSecret'] as const) {
      const err = (await hh.invoke(run.event(step)).catch((e: unknown) => e)) as RotationError;
      expect(err.code, step).toBe('SECRET_FORMAT');
    }
    expect(logins).toEqual([]);
    expect(changes).toEqual([]);
    expect(hh.holderOf(arn, 'AWSCURRENT')).not.toBe(run.versionId);
  });
});

describe('a hand-written AWSPENDING cannot bypass createSecret\'s username limit', () => {
  it('an alternate name over the limit, stored by a writer of the secret, is refused by setSecret before the admin is used', async () => {
    const long = 'u'.repeat(60); // its clone, 66 characters, is over the engine's 63
    servers.get('db-a')!.set(long, CURRENT_PW);
    const adminArn = await h.createSecret({ username: 'admin', password: ADMIN_PW, host: 'db-a', ssl: false });
    const arn = await h.createSecret(secret({ username: long, masterarn: adminArn }));
    const run = h.begin(arn);
    const created = await h.invoke(run.event('createSecret')).catch((e: unknown) => e as RotationError);
    expect(created).toMatchObject({ code: 'SECRET_FORMAT' });
    await h.client.send(new PutSecretValueCommand({
      SecretId: arn, ClientRequestToken: run.versionId, VersionStages: ['AWSPENDING'],
      SecretString: JSON.stringify(secret({ username: `${long}_clone`, password: 'Pending-Password-0010', masterarn: adminArn })),
    }));
    h.sensitive('Pending-Password-0010');
    const err = (await h.invoke(run.event('setSecret')).catch((e: unknown) => e)) as RotationError;
    expect(err.code).toBe('SECRET_FORMAT');
    expect(err.message).toMatch(/would be 66 characters long; memory allows 63/);
    expect(changes).toEqual([]);
    expect(logins.map((l) => l.who)).not.toContain('admin@db-a:1');
  });
});

describe('Secrets Manager calls per step (issue #14), both strategies, warm and cold', () => {
  /**
   * One rotation, step by step, with the calls each step made (GetSecretValue shown with what it
   * selected; "admin" is the masterarn secret). `cold`: every step in a new handler with a new
   * client, as when each step lands in a fresh container.
   */
  async function perStep(arn: string, cold: boolean): Promise<Record<string, string[]>> {
    // Most calls in flight at once (the reads a step makes together).
    let inFlight = 0;
    let most = 0;
    const fresh = () => {
      const client = h.sm.client();
      client.middlewareStack.add((next) => async (args) => {
        most = Math.max(most, ++inFlight);
        try {
          return await next(args);
        } finally {
          inFlight--;
        }
      }, { step: 'initialize', name: 'countInFlight' });
      return createHandler(new DatabaseRotator(engine), { client, env: {}, logSink: () => undefined });
    };
    const warm = fresh();
    const run = h.begin(arn);
    const out: Record<string, string[]> = {};
    for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) {
      h.sm.resetCalls();
      most = 0;
      await (cold ? fresh() : warm)(run.event(step));
      concurrent[step] = most;
      out[step] = h.sm.calls.map((c) => {
        if (c.operation !== 'GetSecretValue') return c.operation.replace('SecretVersionStage', 'Stage').replace('SecretValue', '').replace('Secret', '');
        if (c.secretId !== arn) return 'Get admin';
        return c.versionId === run.versionId ? 'Get AWSPENDING (token)' : `Get ${c.versionStage}`;
      });
    }
    run.complete();
    expect(h.holderOf(arn, 'AWSCURRENT')).toBe(run.versionId);
    return out;
  }
  const total = (steps: Record<string, string[]>) => Object.values(steps).flat().length;
  let concurrent: Record<string, number> = {};

  it('single user: 7 warm, 11 with a fresh container per step (testSecret and finishSecret: no DescribeSecret, the reads show the labels)', async () => {
    const arn = await h.createSecret(secret());
    const warm = await perStep(arn, false);
    expect(warm).toEqual({
      createSecret: ['Get AWSCURRENT', 'Describe', 'Put'],
      setSecret: ['Describe'],
      testSecret: ['Describe'],
      finishSecret: ['Describe', 'UpdateStage'],
    });
    const warmConcurrent = { ...concurrent };
    const cold = await perStep(arn, true);
    expect(cold).toEqual({
      createSecret: ['Get AWSCURRENT', 'Describe', 'Put'],
      // setSecret changes the target: DescribeSecret (rotation still enabled?) with its two reads.
      setSecret: ['Get AWSPENDING (token)', 'Get AWSCURRENT', 'Describe'],
      testSecret: ['Get AWSCURRENT', 'Get AWSPENDING (token)'],
      finishSecret: ['Get AWSCURRENT', 'Get AWSPENDING (token)', 'UpdateStage'],
    });
    expect([total(warm), total(cold)]).toEqual([7, 11]);
    // The reads of a step are made together: one round trip of waiting before its work.
    expect(warmConcurrent).toEqual({ createSecret: 2, setSecret: 1, testSecret: 1, finishSecret: 1 });
    expect(concurrent).toEqual({ createSecret: 2, setSecret: 3, testSecret: 2, finishSecret: 2 });
  });

  it('alternating users: 8 warm (the admin secret is read in every setSecret); 12 with a fresh container per step', async () => {
    const adminArn = await h.createSecret({ username: 'admin', password: ADMIN_PW, host: 'db-a', ssl: false });
    const arn = await h.createSecret(secret({ masterarn: adminArn }));
    const warm = await perStep(arn, false);
    expect(warm).toEqual({
      createSecret: ['Get AWSCURRENT', 'Describe', 'Put'],
      setSecret: ['Describe', 'Get admin'],
      testSecret: ['Describe'],
      finishSecret: ['Describe', 'UpdateStage'],
    });
    const cold = await perStep(arn, true);
    expect(cold).toEqual({
      createSecret: ['Get AWSCURRENT', 'Describe', 'Put'],
      setSecret: ['Get AWSPENDING (token)', 'Get AWSCURRENT', 'Describe', 'Get admin'],
      testSecret: ['Get AWSCURRENT', 'Get AWSPENDING (token)'],
      finishSecret: ['Get AWSCURRENT', 'Get AWSPENDING (token)', 'UpdateStage'],
    });
    expect([total(warm), total(cold)]).toEqual([8, 12]);
    expect(concurrent).toEqual({ createSecret: 2, setSecret: 3, testSecret: 2, finishSecret: 2 });
  });
});
