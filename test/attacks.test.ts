/**
 * Issue #9 attacks against the real PostgreSQL 15 and MariaDB 10.11 servers (global setup), the
 * real drivers and the Secrets Manager double. Each test does what an attacker would: write a
 * hostile child or pending value, invoke a step out of order, or point the child secret at a
 * rogue listener that records what it receives; then it asserts nothing was sent, changed or
 * promoted. The engines are wrapped only to count logins (every call goes to the real engine).
 */
import { PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createConnection, type Connection } from 'mysql2/promise';
import { Client } from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { DatabaseRotator } from '../src/db/database-rotator';
import type { DatabaseEngine } from '../src/db/engine';
import type { RotationError } from '../src/errors';
import { createHandler } from '../src/handler';
import { mysqlEngine } from '../rotators/mysql/engine';
import { postgresEngine } from '../rotators/postgres/engine';
import type { MariaDbInfo, PostgresInfo } from './support/provided';
import { assertNoLeaksInAll, createRotationHarness, type RotationHarness } from './support/rotation-harness';
import { mariaLogin, pgLogin } from './support/logins';

const pgInfo: PostgresInfo = inject('postgres');
const mariaInfo: MariaDbInfo = inject('mariadb');
const RUN = Math.random().toString(36).slice(2, 6);
let counter = 0;
const uniq = (base: string) => `${base}_${RUN}_${++counter}`;
const hostilePassword = (tag: string) => `At'k"\\$$;--%Ü ${tag} ${RUN}-Pw9`;

/** Every login the rotation function attempted, with its outcome. */
interface LoginRecord {
  user: string;
  port: unknown;
  tls: boolean;
  ok: boolean;
}

/** The real engine, counting logins. */
function recording<C>(engine: DatabaseEngine<C>, logins: LoginRecord[]): DatabaseEngine<C> {
  const wrapped = Object.create(engine) as DatabaseEngine<C>;
  wrapped.connect = async (secret, options) => {
    try {
      const conn = await engine.connect(secret, options);
      logins.push({ user: secret.username, port: secret.port, tls: options.tls.enabled, ok: true });
      return conn;
    } catch (err) {
      logins.push({ user: secret.username, port: secret.port, tls: options.tls.enabled, ok: false });
      throw err;
    }
  };
  return wrapped;
}

interface Target {
  name: string;
  engine: DatabaseEngine<unknown>;
  secret(user: string, password: string, extra?: Record<string, unknown>): Record<string, unknown>;
  caPem: string;
  createUser(user: string, password: string): Promise<void>;
  /** An admin with the privileges of the managed service's master user (not a superuser). */
  admin: { username: string; password: string };
  tryLogin(user: string, password: string): Promise<string>;
  /** Failed-authentication lines the server itself logged for any of `users` since `mark`. */
  serverLog(): Promise<{ mark(): Promise<number>; failedLogins(since: number, users: string[]): Promise<string[]> }>;
  sensitive: string[];
}

let su: Client;
let root: Connection;

const postgres: Target = {
  name: 'PostgreSQL 15',
  engine: postgresEngine as DatabaseEngine<unknown>,
  secret: (username, password, extra = {}) => ({ engine: 'postgres', host: pgInfo.host, port: pgInfo.port, dbname: pgInfo.database, username, password, ssl: false, ...extra }),
  caPem: pgInfo.caPem,
  async createUser(user, password) {
    await su.query(`CREATE ROLE ${su.escapeIdentifier(user)} WITH LOGIN PASSWORD ${su.escapeLiteral(password)}`);
  },
  admin: { username: uniq('atk admin'), password: hostilePassword('pgadmin') },
  tryLogin: (user, password) => pgLogin(pgInfo, user, password),
  async serverLog() {
    // The server's own log (logging_collector): a failed password login is logged at FATAL.
    const read = async () => String((await su.query('SELECT pg_read_file(pg_current_logfile()) AS t')).rows[0].t);
    return {
      mark: async () => (await read()).length,
      failedLogins: async (since, users) =>
        (await read()).slice(since).split('\n').filter((l) => /authentication failed for user/.test(l) && users.some((u) => l.includes(`"${u}"`))),
    };
  },
  sensitive: [pgInfo.superPassword],
};

const mariadb: Target = {
  name: 'MariaDB 10.11',
  engine: mysqlEngine as DatabaseEngine<unknown>,
  secret: (username, password, extra = {}) => ({ engine: 'mariadb', host: mariaInfo.host, port: mariaInfo.port, username, password, ssl: false, ...extra }),
  caPem: mariaInfo.caPem,
  async createUser(user, password) {
    await root.query('CREATE USER ?@? IDENTIFIED BY ?', [user, '%', password]);
  },
  admin: { username: uniq('atk admin'), password: hostilePassword('myadmin') },
  tryLogin: (user, password) => mariaLogin(mariaInfo, user, password),
  async serverLog() {
    // The server's error log: MariaDB logs a refused login as "Access denied for user 'u'@'host'" (log_warnings >= 2, the default).
    const read = () => readFileSync(mariaInfo.errorLog, 'utf8');
    return {
      mark: async () => read().length,
      failedLogins: async (since, users) => read().slice(since).split('\n').filter((l) => /Access denied for user/.test(l) && users.some((u) => l.includes(`'${u}'@`))),
    };
  },
  sensitive: [mariaInfo.rootPassword],
};

beforeAll(async () => {
  su = new Client({ host: pgInfo.host, port: pgInfo.port, user: pgInfo.superuser, password: pgInfo.superPassword, database: pgInfo.database, ssl: false });
  await su.connect();
  await su.query(`CREATE ROLE ${su.escapeIdentifier(postgres.admin.username)} WITH LOGIN CREATEROLE PASSWORD ${su.escapeLiteral(postgres.admin.password)}`);
  root = await createConnection({ host: mariaInfo.host, port: mariaInfo.port, user: mariaInfo.rootUser, password: mariaInfo.rootPassword });
  await mariadb.createUser(mariadb.admin.username, mariadb.admin.password);
  await root.query(
    'GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, REFERENCES, INDEX, ALTER, SHOW DATABASES, ' +
      'CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE, BINLOG MONITOR, CREATE VIEW, SHOW VIEW, ' +
      'CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT, TRIGGER ON *.* TO ?@? WITH GRANT OPTION',
    [mariadb.admin.username, '%'],
  );
});

afterAll(async () => {
  await su?.end();
  await root?.end();
});

afterEach(() => assertNoLeaksInAll());

function harness(target: Target, logins: LoginRecord[]): RotationHarness {
  const h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(recording(target.engine, logins)), o) });
  h.sensitive(...target.sensitive, target.admin.password);
  return h;
}

/** A TCP listener that records every connection and every byte it receives (and answers nothing). */
async function recorder(): Promise<{ port: number; connections: number; bytes: () => Buffer; close: () => Promise<void> }> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return connections;
    },
    bytes: () => Buffer.concat(chunks),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * A rogue PostgreSQL server: it asks every client for its password in cleartext, accepts any
 * login, answers every query with an empty result, and records every byte it receives.
 */
async function roguePostgres(): Promise<{ port: number; received: () => Buffer; logins: string[]; close: () => Promise<void> }> {
  const chunks: Buffer[] = [];
  const logins: string[] = [];
  const sockets = new Set<Socket>();
  const msg = (type: string, body: Buffer) => {
    const head = Buffer.alloc(5);
    head.write(type, 0, 'latin1');
    head.writeInt32BE(body.length + 4, 1);
    return Buffer.concat([head, body]);
  };
  const int32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    return b;
  };
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let started = false;
    s.on('data', (d) => {
      chunks.push(d);
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (!started) {
          if (buf.length < 8) return;
          const len = buf.readInt32BE(0);
          if (buf.length < len) return;
          const code = buf.readInt32BE(4);
          const body = buf.subarray(8, len);
          buf = buf.subarray(len);
          if (code === 80877103 || code === 80877104) {
            s.write('N'); // no TLS, no GSS: plaintext from here on
            continue;
          }
          const parts = body.toString('utf8').split('\0');
          logins.push(parts[parts.indexOf('user') + 1] ?? '');
          started = true;
          s.write(msg('R', int32(3))); // AuthenticationCleartextPassword
          continue;
        }
        if (buf.length < 5) return;
        const type = String.fromCharCode(buf[0]);
        const len = buf.readInt32BE(1);
        if (buf.length < len + 1) return;
        buf = buf.subarray(len + 1);
        if (type === 'p') s.write(Buffer.concat([msg('R', int32(0)), msg('Z', Buffer.from('I'))])); // AuthenticationOk, ReadyForQuery
        else if (type === 'Q') s.write(Buffer.concat([msg('I', Buffer.alloc(0)), msg('Z', Buffer.from('I'))]));
        else if (type === 'X') s.end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    received: () => Buffer.concat(chunks),
    logins,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('the admin credentials go only where the admin secret says (PostgreSQL, rogue listener)', () => {
  it('a child secret pointing its port at a rogue listener that accepts any login never receives the admin\'s login', async () => {
    const rogue = await roguePostgres();
    try {
      const logins: LoginRecord[] = [];
      const h = harness(postgres, logins);
      const childUser = uniq('victim');
      const childPassword = hostilePassword('child');
      // The admin secret names the host but no port (the README allows it).
      const adminArn = await h.createSecret({ host: pgInfo.host, ssl: false, ...postgres.admin });
      const arn = await h.createSecret(postgres.secret(childUser, childPassword, { port: rogue.port, masterarn: adminArn }));
      const before = await h.current(arn);

      const r = await h.rotate(arn);

      // Control: the rogue works, it received the child's own (guard) login, password in cleartext.
      expect(rogue.logins).toEqual([childUser]);
      expect(rogue.received().includes(Buffer.from(childPassword))).toBe(true);
      // The attack: neither the admin's username nor its password ever reached it.
      expect(rogue.received().includes(Buffer.from(postgres.admin.username))).toBe(false);
      expect(rogue.received().includes(Buffer.from(postgres.admin.password))).toBe(false);
      // The admin went to the engine's default port, the only port left when its secret names none.
      expect(h.records().find((l) => l.message === 'admin secret endpoint')).toMatchObject({ host: pgInfo.host, port: 5432, endpointFrom: 'the admin secret' });
      expect(logins.filter((l) => l.user === postgres.admin.username).map((l) => l.port)).toEqual([5432]);
      expect(r.succeeded).toBe(false);
      expect((await h.current(arn)).versionId).toBe(before.versionId);
    } finally {
      await rogue.close();
    }
  });

  it('control: with the admin secret\'s own port the same rotation works against the real server', async () => {
    const logins: LoginRecord[] = [];
    const h = harness(postgres, logins);
    const childUser = uniq('victim');
    const childPassword = hostilePassword('child');
    await postgres.createUser(childUser, childPassword);
    const adminArn = await h.createSecret({ host: pgInfo.host, port: pgInfo.port, ssl: false, ...postgres.admin });
    const arn = await h.createSecret(postgres.secret(childUser, childPassword, { masterarn: adminArn }));
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(logins.filter((l) => l.user === postgres.admin.username).map((l) => l.port)).toEqual([pgInfo.port]);
  });
});

describe.each([postgres, mariadb])('$name', (target) => {
  async function singleUser(h: RotationHarness, extra: Record<string, unknown> = {}) {
    const user = uniq('atk');
    const initial = hostilePassword('single');
    await target.createUser(user, initial);
    const arn = await h.createSecret(target.secret(user, initial, extra));
    return { user, initial, arn };
  }

  async function alternating(h: RotationHarness) {
    const user = uniq('atk');
    const initial = hostilePassword('alt');
    await target.createUser(user, initial);
    const child = target.secret(user, initial);
    const adminArn = await h.createSecret({ host: child.host, port: child.port, ssl: false, ...target.admin });
    const arn = await h.createSecret({ ...child, masterarn: adminArn });
    return { user, initial, arn };
  }

  describe('a clean rotation makes at most 4 database logins, none failing', () => {
    it('the server log shows every failed login (the check below is not vacuous)', async () => {
      const log = await target.serverLog();
      const user = uniq('logprobe');
      await target.createUser(user, hostilePassword('probe'));
      const mark = await log.mark();
      expect(await target.tryLogin(user, 'Wrong-Password-1')).not.toBe('ok');
      await expect.poll(() => log.failedLogins(mark, [user]), { timeout: 5000 }).toHaveLength(1);
    });

    for (const strategy of ['single', 'alternating'] as const) {
      it(`${strategy}: three clean rotations leave no failed login in the server's own log`, async () => {
        const log = await target.serverLog();
        const h = harness(target, []);
        const { arn, user } = strategy === 'single' ? await singleUser(h) : await alternating(h);
        const mark = await log.mark();
        for (let i = 0; i < 3; i++) expect((await h.rotate(arn)).error).toBeUndefined();
        // Give the server's logger a moment, then read: nothing for the pair or the admin.
        await new Promise((r) => setTimeout(r, 300));
        expect(await log.failedLogins(mark, [user, `${user}_clone`, target.admin.username])).toEqual([]);
      });
    }

    it('single user: 4 logins (change, its check, testSecret, finishSecret), all succeed, twice in a row', async () => {
      const logins: LoginRecord[] = [];
      const h = harness(target, logins);
      const { arn, user } = await singleUser(h);
      for (let i = 0; i < 2; i++) {
        logins.length = 0;
        const r = await h.rotate(arn);
        expect(r.error).toBeUndefined();
        expect(logins).toEqual([0, 1, 2, 3].map(() => ({ user, port: expect.anything(), tls: false, ok: true })));
      }
      const { password } = await h.credentials(arn);
      expect(await target.tryLogin(user, password)).toBe('ok');
    });

    it('alternating users: 4 logins (guard, admin, testSecret, finishSecret), all succeed', async () => {
      const logins: LoginRecord[] = [];
      const h = harness(target, logins);
      const { arn, user } = await alternating(h);
      for (const [current, next] of [[user, `${user}_clone`], [`${user}_clone`, user]]) {
        logins.length = 0;
        const r = await h.rotate(arn);
        expect(r.error).toBeUndefined();
        expect(logins.map((l) => [l.user, l.ok])).toEqual([[current, true], [target.admin.username, true], [next, true], [next, true]]);
      }
    });
  });

  describe('duplicate concurrent invocations of the same step converge', () => {
    for (const strategy of ['single', 'alternating'] as const) {
      it(`${strategy}: every step invoked twice at once succeeds, and the result logs in`, async () => {
        const logins: LoginRecord[] = [];
        const h = harness(target, logins);
        const { arn, user } = strategy === 'single' ? await singleUser(h) : await alternating(h);
        const run = h.begin(arn);
        for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) {
          await Promise.all([h.invoke(run.event(step)), h.invoke(run.event(step))]);
        }
        expect(h.holderOf(arn, 'AWSCURRENT')).toBe(run.versionId);
        const { username, password } = await h.credentials(arn);
        expect(username).toBe(strategy === 'single' ? user : `${user}_clone`);
        expect(await target.tryLogin(username, password)).toBe('ok');
      });
    }
  });

  it('a working credential is never stranded: the password only an unlabelled version holds is found and used', async () => {
    const logins: LoginRecord[] = [];
    const h = harness(target, logins);
    const { arn, user, initial } = await singleUser(h);
    const working = (await h.current(arn)).versionId;
    // Two later versions whose passwords the database never got (e.g. a rotation an operator
    // abandoned after the service gave up): the working one loses every label.
    for (const tag of ['stale1', 'stale2']) {
      const stale = hostilePassword(tag);
      h.sensitive(stale);
      await h.client.send(new PutSecretValueCommand({ SecretId: arn, ClientRequestToken: randomUUID(), SecretString: JSON.stringify(target.secret(user, stale)) }));
    }
    expect(h.stages(arn)[working]).toBeUndefined();
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(h.records().find((l) => l.message === 'logged in with the password of an unlabelled version')).toMatchObject({ usedVersionId: working });
    const { password } = await h.credentials(arn);
    expect(await target.tryLogin(user, password)).toBe('ok');
    expect(await target.tryLogin(user, initial)).not.toBe('ok');
  });

  describe('finishSecret promotes only a value that works', () => {
    it('finishSecret right after createSecret (setSecret never ran): AUTH, AWSCURRENT does not move, the database is unchanged', async () => {
      const logins: LoginRecord[] = [];
      const h = harness(target, logins);
      const { arn, user, initial } = await singleUser(h);
      const before = await h.current(arn);
      const run = h.begin(arn);
      await h.invoke(run.event('createSecret'));
      const err = (await h.invoke(run.event('finishSecret')).catch((e: unknown) => e)) as RotationError;
      expect(err.code).toBe('AUTH');
      expect(err.message).toMatch(/Unable to log into the database with the AWSPENDING secret/);
      expect(err.message).toMatch(/setSecret has not run for this version/);
      expect(h.holderOf(arn, 'AWSCURRENT')).toBe(before.versionId);
      expect(await target.tryLogin(user, initial)).toBe('ok');
      // The rotation can still complete normally afterwards.
      for (const step of ['setSecret', 'testSecret', 'finishSecret'] as const) await h.invoke(run.event(step));
      expect(h.holderOf(arn, 'AWSCURRENT')).toBe(run.versionId);
      expect(await target.tryLogin(user, (await h.credentials(arn)).password)).toBe('ok');
    });

    it('finishSecret on the value-less placeholder: STATE, no login, AWSCURRENT does not move', async () => {
      const logins: LoginRecord[] = [];
      const h = harness(target, logins);
      const { arn } = await singleUser(h);
      const before = await h.current(arn);
      const run = h.begin(arn);
      const err = (await h.invoke(run.event('finishSecret')).catch((e: unknown) => e)) as RotationError;
      expect(err.code).toBe('STATE');
      expect(err.message).toMatch(/has no value; refusing to move AWSCURRENT to it/);
      expect(logins).toEqual([]);
      expect(h.holderOf(arn, 'AWSCURRENT')).toBe(before.versionId);
    });
  });

  describe('AWSPENDING may differ from AWSCURRENT only in the password', () => {
    it('a pending value with ssl:false while AWSCURRENT verifies TLS: refused in every step, nothing sent, nothing promoted', async () => {
      const logins: LoginRecord[] = [];
      const h = harness(target, logins);
      const { arn, user, initial } = await singleUser(h, { ssl: 'verify-ca', sslCa: target.caPem });
      const before = await h.current(arn);
      const run = h.begin(arn);
      const forged = hostilePassword('forged');
      h.sensitive(forged);
      await h.client.send(new PutSecretValueCommand({
        SecretId: arn, ClientRequestToken: run.versionId, VersionStages: ['AWSPENDING'],
        SecretString: JSON.stringify({ ...before.json, password: forged, ssl: false }),
      }));
      for (const step of ['setSecret', 'testSecret', 'finishSecret'] as const) {
        const err = (await h.invoke(run.event(step)).catch((e: unknown) => e)) as RotationError;
        expect(err.code).toBe('STATE');
        expect(err.message).toContain('AWSPENDING\'s "ssl" field differs from AWSCURRENT\'s');
      }
      expect(logins).toEqual([]);
      expect(h.holderOf(arn, 'AWSCURRENT')).toBe(before.versionId);
      expect(await target.tryLogin(user, initial)).toBe('ok');
      expect(await target.tryLogin(user, forged)).not.toBe('ok');
    });

    it('a pending value with another port: refused in every step, the other port receives nothing', async () => {
      const listener = await recorder();
      try {
        const logins: LoginRecord[] = [];
        const h = harness(target, logins);
        const { arn, user, initial } = await singleUser(h);
        const before = await h.current(arn);
        const run = h.begin(arn);
        const forged = hostilePassword('forged');
        h.sensitive(forged);
        await h.client.send(new PutSecretValueCommand({
          SecretId: arn, ClientRequestToken: run.versionId, VersionStages: ['AWSPENDING'],
          SecretString: JSON.stringify({ ...before.json, password: forged, port: listener.port }),
        }));
        for (const step of ['setSecret', 'testSecret', 'finishSecret'] as const) {
          const err = (await h.invoke(run.event(step)).catch((e: unknown) => e)) as RotationError;
          expect(err.code).toBe('STATE');
          expect(err.message).toContain('AWSPENDING\'s "port" field differs from AWSCURRENT\'s');
        }
        expect(listener.connections).toBe(0);
        expect(listener.bytes().length).toBe(0);
        expect(logins).toEqual([]);
        expect(h.holderOf(arn, 'AWSCURRENT')).toBe(before.versionId);
        expect(await target.tryLogin(user, initial)).toBe('ok');
      } finally {
        await listener.close();
      }
    });
  });
});

