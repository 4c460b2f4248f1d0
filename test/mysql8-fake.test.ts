/**
 * MySQL 8/9 (and 5.6/5.7) paths of the MySQL-family engine, which the real-server tests cannot
 * reach (they run MariaDB). The engine talks to a fake at the driver boundary: a tiny stateful
 * "server" that accepts exactly the statements a MySQL 8 server accepts for this job (no
 * PASSWORD(), caching_sha2_password accounts, backtick-quoted SHOW GRANTS), records every
 * (sql, values) pair, and refuses anything it does not know. Full rotations still go through the
 * framework and the Secrets Manager double with the real AWS SDK client.
 *
 * Also here: SHOW GRANTS parsing, version parsing, TLS option mapping, error classification and
 * the username limits, as pure functions.
 */
import { rootCertificates } from 'node:tls';
import type { ConnectionOptions } from 'mysql2';
import { afterEach, describe, expect, it } from 'vitest';
import { DatabaseRotator } from '../src/db/database-rotator';
import type { DbSecret } from '../src/db/secret';
import { ConfigError, RotationError, SecretFormatError } from '../src/errors';
import { createHandler } from '../src/handler';
import { Logger } from '../src/log';
import { STEPS } from '../src/rotator';
import {
  classifyConnectError,
  createMysqlEngine,
  type MysqlSession,
  parseServerVersion,
  sslOptions,
} from '../rotators/mysql/engine';
import { GrantParseError, parseGrant, retarget } from '../rotators/mysql/grants';
import { assertNoLeaksInAll, createRotationHarness } from './support/rotation-harness';

// ---------------------------------------------------------------------------------------------
// The fake server

interface Account {
  user: string;
  host: string;
  password: string;
  plugin: string;
  ssl: { type: string; cipher: string; issuer: string; subject: string };
  /** SHOW GRANTS output (MySQL 8 format). */
  grants: string[];
  admin?: boolean;
}

interface Call {
  session: number;
  user: string;
  sql: string;
  values?: unknown[];
}

type DriverError = Error & { code: string; errno: number; sqlMessage: string; sql?: string };

function driverError(code: string, errno: number, message: string, sql?: string): DriverError {
  return Object.assign(new Error(message), { code, errno, sqlMessage: message, sql });
}

const ACCOUNTS_SQL =
  'SELECT Host AS host, plugin, ssl_type AS sslType, ssl_cipher AS sslCipher, x509_issuer AS x509Issuer, x509_subject AS x509Subject FROM mysql.user WHERE User = ? ORDER BY Host';
const LIMIT_SQL =
  "SELECT CHARACTER_MAXIMUM_LENGTH AS len FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'user' AND COLUMN_NAME = 'User'";
const VERSION_SQL = 'SELECT VERSION() AS version, @@SESSION.sql_mode AS sqlMode';

class FakeMysql {
  readonly calls: Call[] = [];
  readonly configs: ConnectionOptions[] = [];
  /** GRANT/REVOKE statements replayed, per target account. */
  readonly replayed = new Map<string, string[]>();
  sqlMode = 'ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION';
  /** Return an error to make a statement fail. */
  failWith?: (sql: string, values: unknown[] | undefined) => DriverError | undefined;
  /** Width of mysql.user.User (MySQL 5.7.8+ / 8 / 9: 32). */
  userColumnWidth = 32;
  /** Successful logins. */
  connected = 0;

  constructor(
    readonly version: string,
    readonly accounts: Account[],
  ) {}

  private get numbers(): number[] {
    return parseServerVersion(this.version).numbers;
  }

  connect = async (config: ConnectionOptions): Promise<MysqlSession> => {
    this.configs.push(config);
    const acct = this.accounts.find((a) => a.user === config.user);
    if (!acct || acct.password !== config.password) {
      throw driverError('ER_ACCESS_DENIED_ERROR', 1045, `Access denied for user '${config.user}'@'10.0.0.5' (using password: YES)`);
    }
    const id = ++this.connected;
    return {
      query: async (sql: string, values?: unknown[]) => {
        this.calls.push({ session: id, user: acct.user, sql, ...(values !== undefined ? { values } : {}) });
        const err = this.failWith?.(sql, values);
        if (err) throw err;
        return [this.execute(acct, sql, values ?? []), []];
      },
      end: async () => undefined,
    };
  };

  /** Statements of one user's sessions, without the per-connection version query. */
  statements(user?: string): Array<{ sql: string; values?: unknown[] }> {
    return this.calls.filter((c) => (user === undefined || c.user === user) && c.sql !== VERSION_SQL).map(({ sql, values }) => ({ sql, ...(values ? { values } : {}) }));
  }

  account(user: string, host: string): Account | undefined {
    return this.accounts.find((a) => a.user === user && a.host === host);
  }

  private execute(me: Account, sql: string, values: unknown[]): unknown {
    const [major, minor, patch] = this.numbers;
    const atLeast8011 = major > 8 || (major === 8 && (minor > 0 || patch >= 11));
    if (/PASSWORD\(/i.test(sql) && atLeast8011 && parseServerVersion(this.version).flavor === 'mysql') {
      throw driverError('ER_PARSE_ERROR', 1064, `You have an error in your SQL syntax; check the manual near '(${String(values[0])})' at line 1`, sql);
    }
    if (sql === VERSION_SQL) return [{ version: this.version, sqlMode: this.sqlMode }];
    if (sql === 'SELECT 1') return [{ 1: 1 }];
    if (sql === 'SET SESSION sql_mode = ?') {
      this.sqlMode = String(values[0]);
      return { affectedRows: 0 };
    }
    if (sql === 'ALTER USER CURRENT_USER() IDENTIFIED BY ? REPLACE ?') {
      if (values[1] !== me.password) throw driverError('ER_INCORRECT_CURRENT_PASSWORD', 3891, 'Incorrect current password.', sql);
      me.password = String(values[0]);
      return { affectedRows: 0 };
    }
    if (sql === 'ALTER USER CURRENT_USER() IDENTIFIED BY ?' || sql === 'SET PASSWORD = PASSWORD(?)') {
      me.password = String(values[0]);
      return { affectedRows: 0 };
    }
    if (!me.admin) throw driverError('ER_SPECIFIC_ACCESS_DENIED_ERROR', 1227, 'Access denied; you need (at least one of) the CREATE USER privilege(s) for this operation', sql);
    if (sql === LIMIT_SQL) return [{ len: this.userColumnWidth }];
    if (sql === ACCOUNTS_SQL) {
      return this.accounts
        .filter((a) => a.user === values[0])
        .map((a) => ({ host: a.host, plugin: a.plugin, sslType: a.ssl.type, sslCipher: Buffer.from(a.ssl.cipher), x509Issuer: Buffer.from(a.ssl.issuer), x509Subject: Buffer.from(a.ssl.subject) }));
    }
    if (sql === 'CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?') {
      const [user, host, password] = values.map(String);
      if (!this.account(user, host)) {
        this.accounts.push({ user, host, password, plugin: 'caching_sha2_password', ssl: { type: '', cipher: '', issuer: '', subject: '' }, grants: [`GRANT USAGE ON *.* TO \`${user}\`@\`${host}\``] });
      }
      return { affectedRows: 0 };
    }
    if (sql === 'SHOW GRANTS FOR ?@?') {
      const a = this.account(String(values[0]), String(values[1]));
      if (!a) throw driverError('ER_NONEXISTING_GRANT', 1141, 'There is no such grant defined', sql);
      return a.grants.map((g) => ({ [`Grants for ${a.user}@${a.host}`]: g }));
    }
    const replay = /^(?:GRANT|REVOKE) .* (?:TO|FROM) `((?:[^`]|``)+)`@`((?:[^`]|``)+)`(?: WITH .*)?$/.exec(sql);
    if (replay && values.length === 0) {
      const key = `${replay[1]}@${replay[2]}`;
      this.replayed.set(key, [...(this.replayed.get(key) ?? []), sql]);
      return { affectedRows: 0 };
    }
    const req = /^ALTER USER \?@\? REQUIRE (NONE|SSL|X509|(CIPHER \?|ISSUER \?|SUBJECT \?)( AND (CIPHER \?|ISSUER \?|SUBJECT \?))*)$/.exec(sql);
    if (req) {
      const a = this.account(String(values[0]), String(values[1]));
      if (!a) throw driverError('ER_CANNOT_USER', 1396, 'Operation ALTER USER failed', sql);
      const type = req[1] === 'NONE' ? '' : req[1] === 'SSL' ? 'ANY' : req[1] === 'X509' ? 'X509' : 'SPECIFIED';
      const rest = values.slice(2).map(String);
      const parts = [...req[1].matchAll(/(CIPHER|ISSUER|SUBJECT) \?/g)].map((m) => m[1]);
      const get = (k: string) => (parts.includes(k) ? rest[parts.indexOf(k)] : '');
      a.ssl = { type, cipher: get('CIPHER'), issuer: get('ISSUER'), subject: get('SUBJECT') };
      return { affectedRows: 0 };
    }
    const identified = /^ALTER USER \?@\? IDENTIFIED (?:WITH (\w+) )?BY \?$/.exec(sql);
    if (identified) {
      const a = this.account(String(values[0]), String(values[1]));
      if (!a) throw driverError('ER_CANNOT_USER', 1396, 'Operation ALTER USER failed', sql);
      a.password = String(values[2]);
      if (identified[1]) a.plugin = identified[1];
      return { affectedRows: 0 };
    }
    throw new Error(`fake MySQL: unexpected statement: ${sql}`);
  }
}

const noSsl = { type: '', cipher: '', issuer: '', subject: '' };
const INITIAL = `In'it"\\;--%?Ü fake-Pw9`;
const ADMIN_PASSWORD = `Adm'in"\\%?-Pw9`;

function account(user: string, password: string, extra: Partial<Account> = {}): Account {
  return { user, host: '%', password, plugin: 'caching_sha2_password', ssl: noSsl, grants: [`GRANT USAGE ON *.* TO \`${user}\`@\`%\``], ...extra };
}

function harnessFor(fake: FakeMysql, env: Record<string, string> = {}) {
  const engine = createMysqlEngine({ connect: fake.connect, env });
  const h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(engine), o) });
  h.sensitive(ADMIN_PASSWORD, INITIAL);
  return { h, engine };
}

const secret = (extra: Record<string, unknown> = {}) => ({ engine: 'mysql', host: 'db.example.internal', port: 3306, username: 'app', password: INITIAL, ssl: false, ...extra });

afterEach(() => {
  assertNoLeaksInAll();
});

// ---------------------------------------------------------------------------------------------

describe('single user on MySQL 8 / 9 (fake server)', () => {
  it.each(['8.0.36', '9.1.0'])('%s: ALTER USER CURRENT_USER() IDENTIFIED BY ? REPLACE ?, the plain password bound (the server hashes it), never PASSWORD()', async (version) => {
    const fake = new FakeMysql(version, [account('app', INITIAL)]);
    const { h } = harnessFor(fake);
    const arn = await h.createSecret(secret());
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(r.steps).toEqual(STEPS);
    const pw = String((await h.current(arn)).json?.password);
    expect(fake.account('app', '%')?.password).toBe(pw);
    expect(fake.statements('app')).toEqual([
      { sql: 'ALTER USER CURRENT_USER() IDENTIFIED BY ? REPLACE ?', values: [pw, INITIAL] }, // setSecret
      { sql: 'SELECT 1', values: [] }, // testSecret
    ]);
    expect(fake.calls.some((c) => /PASSWORD\(/.test(c.sql))).toBe(false);
    // Every connection asked the server for its version before anything else.
    const firsts = new Map<number, string>();
    for (const c of fake.calls) if (!firsts.has(c.session)) firsts.set(c.session, c.sql);
    expect(firsts.size).toBe(fake.connected);
    expect([...firsts.values()].every((sql) => sql === VERSION_SQL)).toBe(true);
  });

  it.each([
    ['8.0.12', 'ALTER USER CURRENT_USER() IDENTIFIED BY ?', 1],
    ['8.0.13', 'ALTER USER CURRENT_USER() IDENTIFIED BY ? REPLACE ?', 2],
    ['5.7.44-log', 'ALTER USER CURRENT_USER() IDENTIFIED BY ?', 1],
    ['5.7.5', 'SET PASSWORD = PASSWORD(?)', 1],
    ['5.6.51', 'SET PASSWORD = PASSWORD(?)', 1],
    ['10.11.6-MariaDB-log', 'SET PASSWORD = PASSWORD(?)', 1],
    ['5.5.5-10.6.14-MariaDB', 'SET PASSWORD = PASSWORD(?)', 1],
    ['11.4.2-MariaDB', 'SET PASSWORD = PASSWORD(?)', 1],
  ] as const)('server %s: %s', async (version, statement, params) => {
    const fake = new FakeMysql(version, [account('app', INITIAL)]);
    const engine = createMysqlEngine({ connect: fake.connect, env: {} });
    const log = new Logger(() => undefined);
    const conn = await engine.connect(secret() as DbSecret, { tls: { enabled: false, verifyChain: false, verifyHostname: false }, connectTimeoutMs: 1000, statementTimeoutMs: 30_000, log, env: {} });
    await engine.setOwnPassword(conn, { username: 'app', oldPassword: INITIAL, newPassword: 'N3w-pass;word', env: {} }, log);
    expect(fake.statements()).toEqual([{ sql: statement, values: ['N3w-pass;word', INITIAL].slice(0, params) }]);
  });

  it('reports a read-only server (replica / reader endpoint) as a configuration error pointing at the writer', async () => {
    const fake = new FakeMysql('8.0.36', [account('app', INITIAL)]);
    fake.failWith = (sql) => (sql.startsWith('ALTER USER') ? driverError('ER_OPTION_PREVENTS_STATEMENT', 1290, 'The MySQL server is running with the --super-read-only option so it cannot execute this statement', sql) : undefined);
    const { h } = harnessFor(fake);
    const arn = await h.createSecret(secret());
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^ConfigError: changing the password of "app" failed: the server is read-only .*super-read-only.* writer \(primary\) endpoint/);
  });

  it('never passes on the driver error: neither its SQL text nor a syntax error quoting the password reach the message', async () => {
    const fake = new FakeMysql('8.0.36', [account('app', INITIAL)]);
    fake.failWith = (sql, values) =>
      sql.startsWith('ALTER USER') ? driverError('ER_PARSE_ERROR', 1064, `You have an error in your SQL syntax near '${String(values?.[0])}'`, `${sql} -- ${String(values?.[0])}`) : undefined;
    const { h } = harnessFor(fake);
    const arn = await h.createSecret(secret());
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/changing the password of "app" failed on MySQL 8\.0\.36: \[ER_PARSE_ERROR 1064\] the server rejected the statement's syntax/);
    // (the harness's afterEach check proves no password of any version is in any log line or error)
  });
});

describe('alternating users on MySQL 8 / 9 (fake server)', () => {
  const MYSQL8_GRANTS = [
    'GRANT USAGE ON *.* TO `app`@`10.0.%`',
    'GRANT SELECT, INSERT ON `shop`.* TO `app`@`10.0.%` WITH GRANT OPTION',
    'GRANT SELECT (`id`, `na``me`), UPDATE (`state`) ON `shop`.`orders` TO `app`@`10.0.%`',
    'GRANT EXECUTE ON PROCEDURE `shop`.`p?1` TO `app`@`10.0.%`',
    'GRANT BACKUP_ADMIN,FLUSH_TABLES ON *.* TO `app`@`10.0.%`',
    'REVOKE INSERT ON `mysql`.* FROM `app`@`10.0.%`',
    'GRANT `reader`@`%`,`writer`@`%` TO `app`@`10.0.%` WITH ADMIN OPTION',
    'GRANT PROXY ON ``@`` TO `app`@`10.0.%`',
  ];
  const retargeted = (user: string) =>
    MYSQL8_GRANTS.filter((g) => !g.startsWith('GRANT PROXY')).map((g) => g.split('`app`@`10.0.%`').join(`\`${user}\`@\`10.0.%\``));
  const tlsRequirement = { type: 'SPECIFIED', cipher: 'ECDHE-RSA-AES128-GCM-SHA256', issuer: "/C=US/O=It's \\ CA", subject: '/CN=app' };

  function server(version: string) {
    return new FakeMysql(version, [
      account('app', INITIAL, { host: '10.0.%', grants: [...MYSQL8_GRANTS], ssl: tlsRequirement }),
      account('rds admin', ADMIN_PASSWORD, { admin: true }),
    ]);
  }

  it.each(['8.0.36', '9.1.0'])('%s: creates app_clone@10.0.% (not %), replays every grant with WITH GRANT/ADMIN OPTION, mirrors REQUIRE, keeps caching_sha2_password, sets the password last', async (version) => {
    const fake = server(version);
    const { h } = harnessFor(fake);
    const adminArn = await h.createSecret({ host: 'db.example.internal', port: 3306, ssl: false, username: 'rds admin', password: ADMIN_PASSWORD });
    const arn = await h.createSecret(secret({ masterarn: adminArn }));

    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const pending = (await h.current(arn)).json!;
    expect(pending.username).toBe('app_clone');

    const admin = fake.statements('rds admin');
    const throwaway = admin[3].values?.[2];
    expect(admin).toEqual([
      { sql: LIMIT_SQL, values: [] },
      { sql: ACCOUNTS_SQL, values: ['app'] },
      { sql: ACCOUNTS_SQL, values: ['app_clone'] },
      { sql: 'CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', values: ['app_clone', '10.0.%', throwaway] },
      { sql: 'SHOW GRANTS FOR ?@?', values: ['app', '10.0.%'] },
      ...retargeted('app_clone').map((sql) => ({ sql })),
      { sql: 'ALTER USER ?@? REQUIRE CIPHER ? AND ISSUER ? AND SUBJECT ?', values: ['app_clone', '10.0.%', tlsRequirement.cipher, tlsRequirement.issuer, tlsRequirement.subject] },
      { sql: 'ALTER USER ?@? IDENTIFIED WITH caching_sha2_password BY ?', values: ['app_clone', '10.0.%', pending.password] },
    ]);
    // The clone is created with a throwaway password, not the new one: until the last statement,
    // the new password does not log in.
    expect(throwaway).toEqual(expect.any(String));
    expect(throwaway).not.toBe(pending.password);
    expect(fake.account('app_clone', '%')).toBeUndefined();
    const clone = fake.account('app_clone', '10.0.%')!;
    expect(clone).toMatchObject({ password: pending.password, plugin: 'caching_sha2_password', ssl: tlsRequirement });
    expect(fake.replayed.get('app_clone@10.0.%')).toEqual(retargeted('app_clone'));
    // The AWSCURRENT user only logged in (confused-deputy guard) and never ran a statement.
    expect(fake.statements('app')).toEqual([]);

    // Rotation 2: back to app; the clone exists, so nothing is created; app gets app_clone's grants.
    clone.grants = retargeted('app_clone');
    const r2 = await h.rotate(arn);
    expect(r2.error).toBeUndefined();
    const second = (await h.current(arn)).json!;
    expect(second.username).toBe('app');
    expect(fake.calls.filter((c) => c.sql.startsWith('CREATE USER'))).toHaveLength(1);
    expect(fake.replayed.get('app@10.0.%')).toEqual(retargeted('app'));
    expect(fake.account('app', '10.0.%')?.password).toBe(second.password);
  });

  it('keeps mysql_native_password for an account that uses it', async () => {
    const fake = new FakeMysql('8.0.36', [
      account('app', INITIAL, { plugin: 'mysql_native_password' }),
      account('app_clone', 'Old-clone-pw1', { plugin: 'caching_sha2_password', ssl: { type: 'X509', cipher: '', issuer: '', subject: '' } }),
      account('rds admin', ADMIN_PASSWORD, { admin: true }),
    ]);
    const { h } = harnessFor(fake);
    h.sensitive('Old-clone-pw1');
    const adminArn = await h.createSecret({ host: 'db.example.internal', port: 3306, ssl: false, username: 'rds admin', password: ADMIN_PASSWORD });
    const arn = await h.createSecret(secret({ masterarn: adminArn }));
    expect((await h.rotate(arn)).error).toBeUndefined();
    const sqls = fake.statements('rds admin').map((s) => s.sql);
    expect(sqls).not.toContain('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?');
    expect(sqls).toContain('ALTER USER ?@? REQUIRE NONE');
    expect(sqls.at(-1)).toBe('ALTER USER ?@? IDENTIFIED WITH mysql_native_password BY ?');
    expect(fake.account('app_clone', '%')).toMatchObject({ plugin: 'mysql_native_password', ssl: noSsl });
  });

  it('a replayed setSecret whose password the password history refuses is decided by the login check', async () => {
    const fake = server('8.0.36');
    const { h } = harnessFor(fake);
    const adminArn = await h.createSecret({ host: 'db.example.internal', port: 3306, ssl: false, username: 'rds admin', password: ADMIN_PASSWORD });
    const arn = await h.createSecret(secret({ masterarn: adminArn }));
    const run = h.begin(arn);
    await h.invoke(run.event('createSecret'));
    await h.invoke(run.event('setSecret'));
    fake.failWith = (sql) =>
      /IDENTIFIED WITH/.test(sql) ? driverError('ER_CREDENTIALS_CONTRADICT_TO_HISTORY', 3638, "Cannot use these credentials for 'app_clone@10.0.%' because they contradict the password history policy", sql) : undefined;
    await h.invoke(run.event('setSecret'));
    expect(h.records().some((l) => l.level === 'WARN' && /password history refused/.test(String(l.message)))).toBe(true);
    await h.invoke(run.event('testSecret'));
    await h.invoke(run.event('finishSecret'));
  });

  it('a PrivilegeError with the remedy when the admin may not create users; the SQL and password stay out of it', async () => {
    const fake = server('8.0.36');
    fake.failWith = (sql) => (sql.startsWith('CREATE USER') ? driverError('ER_SPECIFIC_ACCESS_DENIED_ERROR', 1227, 'Access denied; you need (at least one of) the CREATE USER privilege(s) for this operation', sql) : undefined);
    const { h } = harnessFor(fake);
    const adminArn = await h.createSecret({ host: 'db.example.internal', port: 3306, ssl: false, username: 'rds admin', password: ADMIN_PASSWORD });
    const arn = await h.createSecret(secret({ masterarn: adminArn }));
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toBe(
      'PrivilegeError: "rds admin" is not allowed to do this: creating "app_clone"@"10.0.%" failed ([ER_SPECIFIC_ACCESS_DENIED_ERROR 1227] Access denied; you need (at least one of) the CREATE USER privilege(s) for this operation). ' +
        "The admin secret's user needs CREATE USER, SELECT on the mysql schema and GRANT OPTION together with every privilege the current user holds (the RDS master user has them).",
    );
    expect(fake.calls.some((c) => c.sql.startsWith('GRANT') || c.sql.includes('IDENTIFIED WITH'))).toBe(false);
  });

  it('checks the server\'s user name width (32 on MySQL 8) before creating anything', async () => {
    const long = 'a_service_account_name_28char'; // 29 + "_clone" = 35
    const fake = new FakeMysql('8.0.36', [account(long, INITIAL), account('rds admin', ADMIN_PASSWORD, { admin: true })]);
    const { h } = harnessFor(fake, { USERNAME_CHARACTER_LIMIT: '64' }); // let createSecret through
    const adminArn = await h.createSecret({ host: 'db.example.internal', port: 3306, ssl: false, username: 'rds admin', password: ADMIN_PASSWORD });
    const arn = await h.createSecret(secret({ username: long, masterarn: adminArn }));
    const r = await h.rotate(arn);
    expect(r.succeeded).toBe(false);
    expect(r.error).toBe(`SecretFormatError: The alternate user "${long}_clone" is 35 characters long; MySQL 8.0.36 allows user names of at most 32. Use a shorter username for the alternating-users strategy.`);
    expect(fake.statements('rds admin')).toEqual([{ sql: LIMIT_SQL, values: [] }]);
  });

  it('reads USERNAME_CHARACTER_LIMIT from the handler\'s env, never from process.env', async () => {
    const saved = process.env.USERNAME_CHARACTER_LIMIT;
    process.env.USERNAME_CHARACTER_LIMIT = '8'; // would refuse "app_clone" if it were read
    try {
      const long = 'a_service_account_name_28char'; // 29 + "_clone" = 35
      const fake = new FakeMysql('8.0.36', [account(long, INITIAL), account('rds admin', ADMIN_PASSWORD, { admin: true })]);
      const engine = createMysqlEngine({ connect: fake.connect }); // no env option: the packaged engine's shape
      const h = createRotationHarness({ handler: (o) => createHandler(new DatabaseRotator(engine), o), env: { USERNAME_CHARACTER_LIMIT: '64' } });
      h.sensitive(ADMIN_PASSWORD, INITIAL);
      const adminArn = await h.createSecret({ host: 'db.example.internal', port: 3306, ssl: false, username: 'rds admin', password: ADMIN_PASSWORD });
      // A secret per rotation: each one fails and leaves its AWSPENDING behind.
      const child = () => h.createSecret(secret({ username: long, masterarn: adminArn }));

      // 64 from the handler's env lets createSecret through; the server's own width (32) stops setSecret.
      const r = await h.rotate(await child());
      expect(r.error).toBe(`SecretFormatError: The alternate user "${long}_clone" is 35 characters long; MySQL 8.0.36 allows user names of at most 32. Use a shorter username for the alternating-users strategy.`);

      // The same function without it: the limit of the secret's engine value (mysql: 32) stops createSecret.
      h.env = {};
      const r2 = await h.rotate(await child());
      expect(r2.steps).toEqual(['createSecret']);
      expect(r2.error).toMatch(/^SecretFormatError: The AWSPENDING user ".*_clone" is 35 characters long; engine "mysql" allows 32\./);

      // A smaller limit in the handler's env is the framework's check, before any secret is written.
      h.env = { USERNAME_CHARACTER_LIMIT: '16' };
      const r3 = await h.rotate(await child());
      expect(r3.steps).toEqual(['createSecret']);
      expect(r3.error).toMatch(/^SecretFormatError: The alternate user ".*_clone" would be 35 characters long; mysql allows 16\./);
      expect(h.sm.countCalls('PutSecretValue')).toBe(1); // the first rotation's only
      expect(fake.statements('rds admin')).toEqual([{ sql: LIMIT_SQL, values: [] }]);
    } finally {
      if (saved === undefined) delete process.env.USERNAME_CHARACTER_LIMIT;
      else process.env.USERNAME_CHARACTER_LIMIT = saved;
    }
  });

  it('refuses the alternating strategy on MySQL before 5.7.6 (no CREATE USER IF NOT EXISTS / ALTER USER)', async () => {
    const fake = server('5.6.51-log');
    const { h } = harnessFor(fake, { USERNAME_CHARACTER_LIMIT: '16' });
    const adminArn = await h.createSecret({ host: 'db.example.internal', port: 3306, ssl: false, username: 'rds admin', password: ADMIN_PASSWORD });
    const arn = await h.createSecret(secret({ masterarn: adminArn }));
    const r = await h.rotate(arn);
    expect(r.error).toMatch(/needs MySQL 5\.7\.6\+ or MariaDB 10\.2\+; the server is 5\.6\.51-log/);
    expect(fake.statements('rds admin')).toEqual([]);
  });

  it('refuses to guess when a SHOW GRANTS row names another grantee', async () => {
    const fake = server('8.0.36');
    fake.account('app', '10.0.%')!.grants.push('GRANT SELECT ON `x`.* TO `someone`@`%`');
    const { h } = harnessFor(fake);
    const adminArn = await h.createSecret({ host: 'db.example.internal', port: 3306, ssl: false, username: 'rds admin', password: ADMIN_PASSWORD });
    const arn = await h.createSecret(secret({ masterarn: adminArn }));
    const r = await h.rotate(arn);
    expect(r.error).toMatch(/A SHOW GRANTS row of "app"@"10\.0\.%" could not be read \(its grantee is not the account asked for\); no grant was guessed/);
    expect(fake.calls.some((c) => c.sql.includes('IDENTIFIED WITH'))).toBe(false);
  });
});

describe('connections (fake driver)', () => {
  const log = new Logger(() => undefined);
  const full = { enabled: true, verifyChain: true, verifyHostname: true, ca: 'PEM-CA' };

  it('maps the TLS mode to mysql2 options; an IP host gets a socket that makes Node check the IP', async () => {
    const fake = new FakeMysql('8.0.36', [account('app', INITIAL)]);
    const engine = createMysqlEngine({ connect: fake.connect, env: {} });
    for (const [tls, host] of [
      [full, 'db.example.internal'],
      [{ ...full, verifyHostname: false }, 'db.example.internal'],
      [{ enabled: true, verifyChain: false, verifyHostname: false, ca: undefined }, 'db.example.internal'],
      [{ enabled: false, verifyChain: false, verifyHostname: false }, 'db.example.internal'],
      [full, '10.1.2.3'],
    ] as const) {
      await engine.connect(secret({ host, dbname: 'shop' }) as DbSecret, { tls, connectTimeoutMs: 1234, statementTimeoutMs: 30_000, log, env: {} });
    }
    const [a, b, c, d, e] = fake.configs;
    expect(a).toEqual({ host: 'db.example.internal', port: 3306, user: 'app', password: INITIAL, database: 'shop', connectTimeout: 1234, ssl: { ca: 'PEM-CA', rejectUnauthorized: true, verifyIdentity: true } });
    expect(b.ssl).toEqual({ ca: 'PEM-CA', rejectUnauthorized: true, verifyIdentity: false });
    expect(c.ssl).toMatchObject({ rejectUnauthorized: false, verifyIdentity: false });
    expect(d.ssl).toBeUndefined();
    expect(a.stream).toBeUndefined();
    expect(typeof e.stream).toBe('function');
  });

  it('without a configured CA, trusts Node\'s roots plus the Amazon RDS CA bundle', () => {
    const opts = sslOptions({ enabled: true, verifyChain: true, verifyHostname: true });
    expect(Array.isArray(opts.ca)).toBe(true);
    const ca = opts.ca as string[];
    expect(ca.length).toBeGreaterThan(rootCertificates.length);
    expect(ca.slice(0, rootCertificates.length)).toEqual([...rootCertificates]);
    expect(ca.slice(rootCertificates.length).every((pem) => pem.includes('BEGIN CERTIFICATE'))).toBe(true);
    expect(sslOptions({ enabled: true, verifyChain: true, verifyHostname: true, ca: 'MINE' }).ca).toBe('MINE');
  });

  it('removes NO_BACKSLASH_ESCAPES from the session (mysql2 escapes with backslashes)', async () => {
    const fake = new FakeMysql('8.0.36', [account('app', INITIAL)]);
    fake.sqlMode = 'STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES,ANSI_QUOTES';
    const engine = createMysqlEngine({ connect: fake.connect, env: {} });
    await engine.connect(secret() as DbSecret, { tls: { enabled: false, verifyChain: false, verifyHostname: false }, connectTimeoutMs: 1000, statementTimeoutMs: 30_000, log, env: {} });
    expect(fake.statements()).toEqual([{ sql: 'SET SESSION sql_mode = ?', values: ['STRICT_TRANS_TABLES,ANSI_QUOTES'] }]);
  });

  it.each([
    [{ code: 'ER_ACCESS_DENIED_ERROR', errno: 1045, message: "Access denied for user 'app'@'10.0.0.5' (using password: YES)" }, 'AUTH'],
    [{ code: 'ER_HOST_NOT_PRIVILEGED', errno: 1130, message: "Host '10.0.0.5' is not allowed to connect" }, 'AUTH'],
    [{ code: 'ER_ACCOUNT_HAS_BEEN_LOCKED', errno: 3118, message: 'Access denied. Account is locked.' }, 'AUTH'],
    [{ code: 'ER_SECURE_TRANSPORT_REQUIRED', errno: 3159, message: 'Connections using insecure transport are prohibited' }, 'TLS'],
    [{ code: 'HANDSHAKE_NO_SSL_SUPPORT', message: 'Server does not support secure connection' }, 'TLS'],
    [{ code: 'ERR_TLS_CERT_ALTNAME_INVALID', message: "Hostname/IP does not match certificate's altnames" }, 'TLS'],
    [{ code: 'HANDSHAKE_SSL_ERROR', message: 'self-signed certificate in certificate chain' }, 'TLS'],
    [{ code: 'ER_DBACCESS_DENIED_ERROR', errno: 1044, message: "Access denied for user 'app'@'%' to database 'shop'" }, 'PRIVILEGE'],
    [{ code: 'ER_BAD_DB_ERROR', errno: 1049, message: "Unknown database 'shop'" }, 'CONFIG'],
    [{ code: 'ETIMEDOUT', errno: -110, message: 'connect ETIMEDOUT' }, 'NETWORK'],
    [{ code: 'ENOTFOUND', errno: -3008, message: 'getaddrinfo ENOTFOUND db.example.internal' }, 'NETWORK'],
    [{ code: 'ER_CON_COUNT_ERROR', errno: 1040, message: 'Too many connections' }, 'NETWORK'],
  ] as const)('classifies %o as %s', (e, code) => {
    const err = classifyConnectError(Object.assign(new Error(e.message), e), { username: 'app', host: 'db.example.internal', password: INITIAL }, 3306);
    expect(err.code).toBe(code);
    expect(err.message).toContain(e.message);
  });
});

describe('user name limits', () => {
  it('per engine value, overridable with USERNAME_CHARACTER_LIMIT', () => {
    const engine = createMysqlEngine({ env: {} });
    expect([engine.usernameLimit('mysql'), engine.usernameLimit('aurora-mysql'), engine.usernameLimit('mariadb')]).toEqual([32, 32, 80]);
    expect(engine.maxUsernameLength).toBe(80);
    const env: Record<string, string> = { USERNAME_CHARACTER_LIMIT: '16' };
    const limited = createMysqlEngine({ env: () => env });
    expect(limited.maxUsernameLength).toBe(16);
    expect(limited.usernameLimit('mariadb')).toBe(16);
    env.USERNAME_CHARACTER_LIMIT = 'lots';
    expect(() => limited.maxUsernameLength).toThrow(ConfigError);
  });

  it('validateSecret rejects an over-long AWSPENDING user of the alternating strategy only', () => {
    const engine = createMysqlEngine({ env: {} });
    const s = (username: string, extra: Record<string, unknown> = {}) => ({ engine: 'mysql', host: 'h', username, password: 'p', masterarn: 'arn:x', ...extra }) as DbSecret;
    const long = 'x'.repeat(33);
    expect(() => engine.validateSecret!(s(long), 'AWSPENDING')).toThrow(SecretFormatError);
    expect(() => engine.validateSecret!(s(long), 'AWSPENDING')).toThrow(/is 33 characters long; engine "mysql" allows 32/);
    expect(() => engine.validateSecret!(s(long, { engine: 'mariadb' }), 'AWSPENDING')).not.toThrow();
    expect(() => engine.validateSecret!(s(long), 'AWSCURRENT')).not.toThrow();
    expect(() => engine.validateSecret!(s(long, { masterarn: undefined }), 'AWSPENDING')).not.toThrow();
    expect(() => engine.validateSecret!(s('ü'.repeat(32)), 'AWSPENDING')).not.toThrow(); // characters, not bytes
  });
});

describe('SHOW GRANTS parsing', () => {
  it.each([
    // MariaDB: password and TLS parts dropped, resource limits kept
    [
      "GRANT USAGE ON *.* TO `a'b\\c\"d%e``f ü`@`%` IDENTIFIED BY PASSWORD '*D821809F681A40A6E379B50D0463EFAE20BDD122' REQUIRE SUBJECT 'CN=a\\\\b''c' CIPHER 'AES' WITH MAX_USER_CONNECTIONS 5",
      { kind: 'grant', head: 'GRANT USAGE ON *.* TO', user: "a'b\\c\"d%e`f ü", host: '%', tail: 'WITH MAX_USER_CONNECTIONS 5' },
    ],
    [
      'GRANT USAGE ON *.* TO `app`@`localhost` IDENTIFIED VIA ed25519 USING \'pAsS hash WITH x\' OR unix_socket',
      { kind: 'grant', head: 'GRANT USAGE ON *.* TO', user: 'app', host: 'localhost', tail: '' },
    ],
    // an object name holding " TO ", a quote and a placeholder
    [
      'GRANT SELECT ON `a TO b`.`x?\'y` TO `app`@`10.0.%` WITH GRANT OPTION',
      { kind: 'grant', head: 'GRANT SELECT ON `a TO b`.`x?\'y` TO', user: 'app', host: '10.0.%', tail: 'WITH GRANT OPTION' },
    ],
    // MySQL 5.7 quoting
    ["GRANT SELECT ON `shop`.* TO 'app'@'%'", { kind: 'grant', head: 'GRANT SELECT ON `shop`.* TO', user: 'app', host: '%', tail: '' }],
    ["GRANT ALL PRIVILEGES ON *.* TO 'o''neil'@'%' WITH GRANT OPTION", { kind: 'grant', head: 'GRANT ALL PRIVILEGES ON *.* TO', user: "o'neil", host: '%', tail: 'WITH GRANT OPTION' }],
    // roles, partial revokes, default roles
    ['GRANT `r1`@`%` TO `app`@`%` WITH ADMIN OPTION', { kind: 'grant', head: 'GRANT `r1`@`%` TO', user: 'app', host: '%', tail: 'WITH ADMIN OPTION' }],
    ['REVOKE INSERT ON `mysql`.* FROM `app`@`%`', { kind: 'revoke', head: 'REVOKE INSERT ON `mysql`.* FROM', user: 'app', host: '%', tail: '' }],
    ['SET DEFAULT ROLE `r1` FOR `app`@`%`', { kind: 'default-role', head: 'SET DEFAULT ROLE `r1` FOR', user: 'app', host: '%', tail: '' }],
    // skipped
    ['GRANT PROXY ON ``@`%` TO `root`@`localhost` WITH GRANT OPTION', { kind: 'skip', reason: 'GRANT PROXY' }],
    ['CREATE USER `x`@`%`', { kind: 'skip', reason: 'unknown statement CREATE' }],
  ] as const)('%s', (sql, expected) => {
    expect(parseGrant(sql)).toEqual(expected);
  });

  it('re-targets with backtick quoting', () => {
    const g = parseGrant('GRANT SELECT ON `d`.* TO `app`@`%` WITH GRANT OPTION');
    if (g.kind === 'skip') throw new Error('unexpected skip');
    expect(retarget(g, 'we`ird\'\\ name', '10.%')).toBe("GRANT SELECT ON `d`.* TO `we``ird'\\ name`@`10.%` WITH GRANT OPTION");
    expect(() => retarget(g, 'nul\0', '%')).toThrow(GrantParseError);
  });

  it.each(['GRANT SELECT ON `d`.* TO `unterminated', 'GRANT SELECT ON `d`.*', "GRANT SELECT ON d.* TO 'app'@"])('rejects malformed %s', (sql) => {
    expect(() => parseGrant(sql)).toThrow(GrantParseError);
  });
});

describe('server versions', () => {
  it.each([
    ['8.0.36', 'mysql', [8, 0, 36]],
    ['9.1.0', 'mysql', [9, 1, 0]],
    ['5.7.44-log', 'mysql', [5, 7, 44]],
    ['8.0.28-0ubuntu0.20.04.3', 'mysql', [8, 0, 28]],
    ['10.11.6-MariaDB-log', 'mariadb', [10, 11, 6]],
    ['5.5.5-10.6.14-MariaDB', 'mariadb', [10, 6, 14]],
    ['11.4', 'mariadb-less', [11, 4, 0]],
  ] as const)('%s', (version, flavor, numbers) => {
    const parsed = parseServerVersion(version);
    expect(parsed.numbers).toEqual(numbers);
    expect(parsed.flavor).toBe(flavor === 'mariadb-less' ? 'mysql' : flavor);
  });

  it('rejects a version it cannot read', () => {
    expect(() => parseServerVersion('unknown')).toThrow(RotationError);
  });
});
