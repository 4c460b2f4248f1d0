/**
 * DatabaseRotator's strategy guards, against an in-memory "server" (host -> user -> password) so
 * the checks are exercised without a real database: the engine only logs in and changes
 * passwords, exactly through the DatabaseEngine interface.
 */
import { PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConnectError, createHandler, type DatabaseEngine, DatabaseRotator, type DbSecret, RotationStateError } from '../../src';
import { RdsDouble } from '../../src/testing';
import { assertNoLeaksInAll, createRotationHarness, type RotationHarness } from '../support/rotation-harness';

type Conn = { host: string; user: string };

let servers: Map<string, Map<string, string>>;
let changes: string[];
/** Every connection attempt: user@host:port and whether TLS was on. */
let logins: Array<{ who: string; tls: boolean }>;

const engine: DatabaseEngine<Conn> = {
  name: 'memory',
  engines: ['memory'],
  defaultPort: 1,
  maxUsernameLength: 63,
  async connect(secret: DbSecret, options): Promise<Conn> {
    logins.push({ who: `${secret.username}@${secret.host}:${secret.port ?? 1}`, tls: options.tls.enabled });
    if (servers.get(secret.host)?.get(secret.username) !== secret.password) {
      throw new ConnectError('AUTH', `login refused for ${secret.username}@${secret.host}`);
    }
    return { host: secret.host, user: secret.username };
  },
  async close(): Promise<void> {},
  async setOwnPassword(conn, change): Promise<void> {
    servers.get(conn.host)!.set(change.username, change.newPassword);
    changes.push(`own ${change.username}@${conn.host}`);
  },
  async upsertAlternateUser(conn, change): Promise<void> {
    servers.get(conn.host)!.set(change.alternateUser, change.newPassword);
    changes.push(`upsert ${change.alternateUser}@${conn.host} by ${conn.user}`);
  },
  async check(): Promise<void> {},
};

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
    expect((err as Error).message).toMatch(/AWSPENDING's host "db-b" differs from AWSCURRENT's "db-a"/);
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
