/**
 * DatabaseRotator's strategy guards, against an in-memory "server" (host -> user -> password) so
 * the checks are exercised without a real database: the engine only logs in and changes
 * passwords, exactly through the DatabaseEngine interface.
 */
import { PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConnectError, createHandler, type DatabaseEngine, DatabaseRotator, type DbSecret, RotationStateError } from '../../src';
import { assertNoLeaksInAll, createRotationHarness, type RotationHarness } from '../support/rotation-harness';

type Conn = { host: string; user: string };

let servers: Map<string, Map<string, string>>;
let changes: string[];

const engine: DatabaseEngine<Conn> = {
  name: 'memory',
  engines: ['memory'],
  defaultPort: 1,
  maxUsernameLength: 63,
  async connect(secret: DbSecret): Promise<Conn> {
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

beforeEach(() => {
  servers = new Map([
    ['db-a', new Map([['app', CURRENT_PW], ['admin', ADMIN_PW]])],
    ['db-b', new Map()],
  ]);
  changes = [];
  h = createRotationHarness({ handler: (opts) => createHandler(new DatabaseRotator(engine), opts) });
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
    const adminArn = await h.createSecret({ username: 'admin', password: ADMIN_PW });
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
