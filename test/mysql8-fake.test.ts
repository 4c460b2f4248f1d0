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
  otherAccountsSql,
  parseServerVersion,
  sslOptions,
} from '../rotators/mysql/engine';
import { capabilitiesOf, excessCapabilities } from '../rotators/mysql/capabilities';
import { GrantParseError, parseGrant, retarget } from '../rotators/mysql/grants';
import { type Account, driverError, FakeMysql, LIMIT_SQL, NO_SSL as noSsl, VERSION_SQL } from './fakes/mysql8-fake';
import { assertNoLeaksInAll, createRotationHarness } from './support/rotation-harness';

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

/** What single-user setSecret asks first: which account matched, and can the user see others (here: no, 1142). */
const singlePrelude = (version = '8.0.36') => [
  { sql: 'SELECT CURRENT_USER() AS account', values: [] },
  { sql: otherAccountsSql(parseServerVersion(version)), values: ['app'] },
];

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
      ...singlePrelude(version), // setSecret
      { sql: 'ALTER USER CURRENT_USER() IDENTIFIED BY ? REPLACE ?', values: [pw, INITIAL] },
      { sql: 'SELECT 1', values: [] }, // testSecret
      { sql: 'SELECT 1', values: [] }, // finishSecret
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
    await engine.setOwnPassword(conn, { username: 'app', oldPassword: INITIAL, newPassword: 'N3w-pass;word' }, { env: {}, log });
    expect(fake.statements()).toEqual([...singlePrelude(version), { sql: statement, values: ['N3w-pass;word', INITIAL].slice(0, params) }]);
  });

  it('a server that accepts the login and never answers the first statement: NETWORK naming STATEMENT_TIMEOUT_MS, quickly', async () => {
    const fake = new FakeMysql('8.0.36', [account('app', INITIAL)]);
    fake.stallOn = (sql) => sql === VERSION_SQL;
    const { h } = harnessFor(fake);
    h.env = { STATEMENT_TIMEOUT_MS: '250' };
    const arn = await h.createSecret(secret());
    const before = await h.current(arn);
    const started = Date.now();
    const r = await h.rotate(arn);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(r.succeeded).toBe(false);
    expect(r.error).toMatch(/^LoginError: .*AWSCURRENT \(app@db\.example\.internal\): \[NETWORK\] reading the server version failed: the statement timed out after 250 ms \(STATEMENT_TIMEOUT_MS\) on the server/);
    expect(await h.current(arn)).toEqual(before);
    expect(fake.destroyed).toBeGreaterThanOrEqual(1);
  });

  it('a user that can read mysql.user (here the RDS master rotating itself) and has an unlocked account on another host: STATE before any change; a locked one does not count', async () => {
    const fake = new FakeMysql('8.0.36', [
      account('rds admin', ADMIN_PASSWORD, { admin: true }),
      account('rds admin', 'Other-host-pw1', { host: '10.%' }),
    ]);
    const { h } = harnessFor(fake);
    h.sensitive('Other-host-pw1');
    const arn = await h.createSecret(secret({ username: 'rds admin', password: ADMIN_PASSWORD }));
    const r = await h.rotate(arn);
    expect(r.error).toMatch(/^RotationStateError: The user "rds admin" has accounts on several hosts \("rds admin"@"%", "rds admin"@"10\.%"\); changing its own password changes only "rds admin"@"%", the account this session matched.*alternating-users strategy/);
    expect(fake.account('rds admin', '%')?.password).toBe(ADMIN_PASSWORD);
    expect(fake.calls.some((c) => c.sql.startsWith('ALTER USER'))).toBe(false);

    fake.account('rds admin', '10.%')!.locked = true;
    const arn2 = await h.createSecret(secret({ username: 'rds admin', password: ADMIN_PASSWORD }));
    const r2 = await h.rotate(arn2);
    expect(r2.error).toBeUndefined();
    expect(fake.account('rds admin', '%')?.password).toBe((await h.credentials(arn2)).password);
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

/** The engine's mysql.user query on MySQL 8.0.21+ (with the marker column). */
const ACCOUNTS_SQL =
  'SELECT u.Host AS host, u.plugin AS plugin, u.ssl_type AS sslType, u.ssl_cipher AS sslCipher, u.x509_issuer AS x509Issuer, u.x509_subject AS x509Subject, ' +
  'u.max_questions AS maxQuestions, u.max_updates AS maxUpdates, u.max_connections AS maxConnections, u.max_user_connections AS maxUserConnections, ' +
  "u.account_locked AS locked, u.password_lifetime AS lifetime, JSON_UNQUOTE(JSON_EXTRACT(u.User_attributes, '$.metadata.rotation_lambdas_alternate_of')) AS marker " +
  'FROM mysql.user u WHERE u.User = ? ORDER BY u.Host';
const DEFAULT_ROLES_SQL =
  'SELECT DEFAULT_ROLE_USER AS user, DEFAULT_ROLE_HOST AS host FROM mysql.default_roles WHERE USER = ? AND HOST = ? ORDER BY DEFAULT_ROLE_USER, DEFAULT_ROLE_HOST';
const SETTINGS_SQL = (require: string, expiry = 'DEFAULT') =>
  `ALTER USER ?@? ${require} WITH MAX_QUERIES_PER_HOUR ? MAX_UPDATES_PER_HOUR ? MAX_CONNECTIONS_PER_HOUR ? MAX_USER_CONNECTIONS ? PASSWORD EXPIRE ${expiry}`;
const marker = (original: string) => JSON.stringify({ rotation_lambdas_alternate_of: original });
const role = (name: string): Account => ({ user: name, host: '%', password: '', plugin: 'caching_sha2_password', ssl: noSsl, locked: true, grants: [`GRANT USAGE ON *.* TO \`${name}\`@\`%\``] });

describe('alternating users on MySQL 8 / 9 (fake server, RDS master)', () => {
  // What an application user on RDS may hold that the RDS master can copy.
  const MYSQL8_GRANTS = [
    'GRANT USAGE ON *.* TO `app`@`10.0.%`',
    'GRANT SELECT, INSERT ON `shop`.* TO `app`@`10.0.%` WITH GRANT OPTION',
    'GRANT SELECT (`id`, `na``me`), UPDATE (`state`) ON `shop`.`orders` TO `app`@`10.0.%`',
    'GRANT EXECUTE ON PROCEDURE `shop`.`p?1` TO `app`@`10.0.%`',
    'GRANT XA_RECOVER_ADMIN ON *.* TO `app`@`10.0.%`',
    'REVOKE INSERT ON `mysql`.* FROM `app`@`10.0.%`',
    'GRANT `reader`@`%`,`writer`@`%` TO `app`@`10.0.%` WITH ADMIN OPTION',
  ];
  const retargeted = (user: string) =>
    MYSQL8_GRANTS.filter((g) => !g.startsWith('GRANT PROXY')).map((g) => g.split('`app`@`10.0.%`').join(`\`${user}\`@\`10.0.%\``));
  const tlsRequirement = { type: 'SPECIFIED', cipher: 'ECDHE-RSA-AES128-GCM-SHA256', issuer: "/C=US/O=It's \\ CA", subject: '/CN=app' };
  const limits = { questions: 0, updates: 100, connections: 0, userConnections: 7 };

  function server(version: string, extra: Account[] = []) {
    return new FakeMysql(version, [
      account('app', INITIAL, { host: '10.0.%', grants: [...MYSQL8_GRANTS], ssl: tlsRequirement, limits, lifetime: 90, defaultRoles: ['reader@%'] }),
      role('reader'),
      role('writer'),
      account('rds admin', ADMIN_PASSWORD, { admin: true }),
      ...extra,
    ]);
  }

  async function alternating(fake: FakeMysql, env: Record<string, string> = {}, username = 'app') {
    const { h } = harnessFor(fake);
    h.env = env;
    const adminArn = await h.createSecret({ host: 'db.example.internal', port: 3306, ssl: false, username: 'rds admin', password: ADMIN_PASSWORD });
    const arn = await h.createSecret(secret({ masterarn: adminArn, username }));
    return { h, arn };
  }

  it.each(['8.0.36', '9.1.0'])('%s: creates app_clone@10.0.% (marked), replays every grant, mirrors REQUIRE, limits and expiry, copies the default roles, keeps caching_sha2_password, sets the password last', async (version) => {
    const fake = server(version);
    const { h, arn } = await alternating(fake);

    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    const pending = (await h.current(arn)).json!;
    expect(pending.username).toBe('app_clone');

    const admin = fake.statements('rds admin');
    const throwaway = admin[4].values?.[2];
    expect(admin).toEqual([
      { sql: ACCOUNTS_SQL, values: ['app_clone'] }, // checkAlternateUser: none yet
      { sql: LIMIT_SQL, values: [] },
      { sql: ACCOUNTS_SQL, values: ['app'] },
      { sql: ACCOUNTS_SQL, values: ['app_clone'] },
      { sql: 'CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ? ATTRIBUTE ?', values: ['app_clone', '10.0.%', throwaway, marker('app')] },
      { sql: 'SHOW GRANTS FOR ?@?', values: ['app', '10.0.%'] },
      ...retargeted('app_clone').map((sql) => ({ sql })),
      {
        sql: SETTINGS_SQL('REQUIRE CIPHER ? AND ISSUER ? AND SUBJECT ?', 'INTERVAL ? DAY'),
        values: ['app_clone', '10.0.%', tlsRequirement.cipher, tlsRequirement.issuer, tlsRequirement.subject, 0, 100, 0, 7, 90],
      },
      { sql: DEFAULT_ROLES_SQL, values: ['app', '10.0.%'] },
      { sql: 'SET DEFAULT ROLE ?@? TO ?@?', values: ['reader', '%', 'app_clone', '10.0.%'] },
      { sql: 'ALTER USER ?@? ATTRIBUTE ?', values: ['app_clone', '10.0.%', marker('app')] },
      { sql: 'ALTER USER ?@? IDENTIFIED WITH caching_sha2_password BY ?', values: ['app_clone', '10.0.%', pending.password] },
    ]);
    // The clone is created with a throwaway password, not the new one: until the last statement,
    // the new password does not log in.
    expect(throwaway).toEqual(expect.any(String));
    expect(throwaway).not.toBe(pending.password);
    expect(fake.account('app_clone', '%')).toBeUndefined();
    const clone = fake.account('app_clone', '10.0.%')!;
    expect(clone).toMatchObject({
      password: pending.password, plugin: 'caching_sha2_password', ssl: tlsRequirement, limits, lifetime: 90,
      defaultRoles: ['reader@%'], attributes: { rotation_lambdas_alternate_of: 'app' },
    });
    expect(fake.replayed.get('app_clone@10.0.%')).toEqual(retargeted('app_clone'));
    // Everything SHOW CREATE USER holds is the same but the name, the password and the marker.
    const normalised = (user: string) =>
      fake.showCreateUser(fake.account(user, '10.0.%')!).replace(`\`${user}\``, '`<user>`').replace(/ AS 'hash\(\d+\)'/, '').replace(/ ATTRIBUTE '.*'$/, '');
    expect(normalised('app_clone')).toBe(normalised('app'));
    expect(normalised('app')).toMatch(/DEFAULT ROLE `reader`@`%` REQUIRE ISSUER .* WITH MAX_UPDATES_PER_HOUR 100 MAX_USER_CONNECTIONS 7 PASSWORD EXPIRE INTERVAL 90 DAY ACCOUNT UNLOCK/);
    // The AWSCURRENT user only logged in (confused-deputy guard) and never ran a statement.
    expect(fake.statements('app')).toEqual([]);

    // Rotation 2: back to app, whose clone side (app_clone, the current user) carries the marker.
    const r2 = await h.rotate(arn);
    expect(r2.error).toBeUndefined();
    const second = (await h.current(arn)).json!;
    expect(second.username).toBe('app');
    expect(fake.calls.filter((c) => c.sql.startsWith('CREATE USER'))).toHaveLength(1);
    expect(fake.replayed.get('app@10.0.%')).toEqual(retargeted('app'));
    expect(fake.account('app', '10.0.%')?.password).toBe(second.password);
    expect(fake.account('app', '10.0.%')?.attributes).toBeUndefined(); // the original is never marked
    // Rotation 3: app -> app_clone again.
    expect((await h.rotate(arn)).error).toBeUndefined();
    expect((await h.current(arn)).json?.username).toBe('app_clone');
  });

  it('8.0.20 / 5.7 (no ATTRIBUTE): no marker, capability check only; the fake refuses User_attributes there', async () => {
    for (const version of ['8.0.20', '5.7.44-log']) {
      const fake = new FakeMysql(version, [account('app', INITIAL, { grants: ['GRANT USAGE ON *.* TO `app`@`%`', 'GRANT SELECT ON `shop`.* TO `app`@`%`'] }), account('rds admin', ADMIN_PASSWORD, { admin: true })]);
      const { h, arn } = await alternating(fake);
      const r = await h.rotate(arn);
      expect(r.error).toBeUndefined();
      expect(fake.calls.some((c) => /ATTRIBUTE|User_attributes/.test(c.sql))).toBe(false);
      expect(fake.calls.some((c) => /DEFAULT ROLE|default_roles/.test(c.sql))).toBe(version.startsWith('8'));
      expect((await h.rotate(arn)).error).toBeUndefined();
    }
  });

  describe('attacks: the alternate user must be this pair\'s', () => {
    /** Asserts the rotation failed at setSecret, the victim keeps its password and nothing was altered. */
    async function refused(fake: FakeMysql, victim: string, victimPassword: string, current: string, env: Record<string, string> = {}) {
      const { h, arn } = await alternating(fake, env, current);
      h.sensitive(victimPassword);
      const before = await h.current(arn);
      const r = await h.rotate(arn);
      expect(r.succeeded).toBe(false);
      expect(r.steps).toEqual(['createSecret', 'setSecret']);
      expect(await h.current(arn)).toEqual(before);
      expect(fake.accounts.filter((a) => a.user === victim).every((a) => a.password === victimPassword)).toBe(true);
      expect(fake.calls.some((c) => /^(ALTER USER \?@\?|CREATE USER|GRANT|REVOKE|SET DEFAULT)/.test(c.sql))).toBe(false);
      return r;
    }

    it('a privileged X (SUPER, SYSTEM_USER, created by rdsadmin) and a child secret naming X_clone: PRIVILEGE', async () => {
      const fake = server('8.0.36', [
        account('ops', 'Ops-old-pw1', { grants: ['GRANT SELECT, SUPER ON *.* TO `ops`@`%` WITH GRANT OPTION', 'GRANT SYSTEM_USER ON *.* TO `ops`@`%`'] }),
        account('ops_clone', INITIAL),
      ]);
      const r = await refused(fake, 'ops', 'Ops-old-pw1', 'ops_clone');
      expect(r.error).toMatch(/^PrivilegeError: The alternate user "ops"@"%" holds what the current user "ops_clone"@"%" does not: SELECT, SUPER, SYSTEM_USER ON \*\.\*; GRANT OPTION ON \*\.\*/);
    });

    it('an unrelated application user X with the same privileges but no marker on X_clone: PRIVILEGE naming ADOPT_UNMARKED_ALTERNATE', async () => {
      const fake = server('8.0.36', [account('billing', 'Billing-pw1'), account('billing_clone', INITIAL)]);
      const r = await refused(fake, 'billing', 'Billing-pw1', 'billing_clone');
      expect(r.error).toMatch(/"billing_clone"@"%" does not carry this project's pair marker .* ADOPT_UNMARKED_ALTERNATE=true/);
    });

    it('a clone marked for another user is refused even with ADOPT_UNMARKED_ALTERNATE=true', async () => {
      const fake = server('8.0.36', [account('billing', 'Billing-pw1'), account('billing_clone', INITIAL, { attributes: { rotation_lambdas_alternate_of: 'someone' } })]);
      const r = await refused(fake, 'billing', 'Billing-pw1', 'billing_clone', { ADOPT_UNMARKED_ALTERNATE: 'true' });
      expect(r.error).toMatch(/is marked as the alternate of another user, not of "billing"/);
    });

    it('a MySQL 8 role named X_clone (a locked account granted to others): STATE', async () => {
      const fake = server('8.0.36', [
        account('svc', INITIAL),
        role('svc_clone'),
        account('other', 'Other-pw1', { grants: ['GRANT USAGE ON *.* TO `other`@`%`', 'GRANT `svc_clone`@`%` TO `other`@`%`'] }),
      ]);
      const r = await refused(fake, 'svc_clone', '', 'svc');
      expect(r.error).toMatch(/^RotationStateError: The alternate user "svc_clone"@"%" is a role granted to other accounts/);
    });

    it('a locked X_clone: STATE', async () => {
      const fake = server('8.0.36', [account('svc', INITIAL), account('svc_clone', 'Locked-pw1', { locked: true, attributes: { rotation_lambdas_alternate_of: 'svc' } })]);
      const r = await refused(fake, 'svc_clone', 'Locked-pw1', 'svc');
      expect(r.error).toMatch(/^RotationStateError: The alternate user "svc_clone"@"%" is locked/);
    });

    it('an unmarked pair (AWS\'s rotators, or this project before the marker) rotates only with ADOPT_UNMARKED_ALTERNATE=true, which marks it', async () => {
      const fake = server('8.0.36', [account('svc', INITIAL), account('svc_clone', 'Old-clone-pw1')]);
      const { h, arn } = await alternating(fake, {}, 'svc');
      h.sensitive('Old-clone-pw1');
      const r = await h.rotate(arn);
      expect(r.error).toMatch(/ADOPT_UNMARKED_ALTERNATE/);
      expect(fake.account('svc_clone', '%')?.password).toBe('Old-clone-pw1');

      const adopted = await alternating(fake, { ADOPT_UNMARKED_ALTERNATE: 'true' }, 'svc');
      adopted.h.sensitive('Old-clone-pw1');
      const r2 = await adopted.h.rotate(adopted.arn);
      expect(r2.error).toBeUndefined();
      expect(adopted.h.records().some((l) => l.level === 'WARN' && /adopting an unmarked alternate user/.test(String(l.message)))).toBe(true);
      expect(fake.account('svc_clone', '%')?.attributes).toEqual({ rotation_lambdas_alternate_of: 'svc' });
      // Marked now: the next rotations need no opt-in.
      adopted.h.env = {};
      expect((await adopted.h.rotate(adopted.arn)).error).toBeUndefined();
      expect((await adopted.h.rotate(adopted.arn)).error).toBeUndefined();
    });
  });

  it('a concurrent duplicate created the account first (ER_CANNOT_USER 1396): the upsert runs once more and converges', async () => {
    const fake = server('8.0.36');
    let collisions = 0;
    fake.failWith = (sql) =>
      sql.startsWith('SHOW GRANTS') && collisions++ === 0 ? driverError('ER_CANNOT_USER', 1396, "Operation CREATE USER failed for 'app_clone'@'10.0.%'", sql) : undefined;
    const { h, arn } = await alternating(fake);
    const r = await h.rotate(arn);
    expect(r.error).toBeUndefined();
    expect(h.records().some((l) => l.level === 'WARN' && /collided with a concurrent change/.test(String(l.message)))).toBe(true);
    expect(fake.account('app_clone', '10.0.%')?.password).toBe((await h.credentials(arn)).password);
  });

  it('a server that never answers a statement: NETWORK naming STATEMENT_TIMEOUT_MS after about that long, the session destroyed', async () => {
    const fake = server('8.0.36');
    fake.stallOn = (sql) => sql.startsWith('SHOW GRANTS');
    const { h, arn } = await alternating(fake, { STATEMENT_TIMEOUT_MS: '300' });
    const started = Date.now();
    const r = await h.rotate(arn);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(r.error).toMatch(/^ConnectError: reading the grants of "app"@"10\.0\.%" failed: the statement timed out after 300 ms \(STATEMENT_TIMEOUT_MS\) on MySQL 8\.0\.36/);
    expect(fake.destroyed).toBe(1);
  });

  describe('what the RDS master may grant', () => {
    it('a grant the master cannot give (BACKUP_ADMIN) fails naming the grant and a remedy true for RDS; the clone\'s password is not set', async () => {
      const fake = server('8.0.36');
      fake.account('app', '10.0.%')!.grants.push('GRANT BACKUP_ADMIN,FLUSH_TABLES ON *.* TO `app`@`10.0.%`');
      const { h, arn } = await alternating(fake);
      const r = await h.rotate(arn);
      expect(r.succeeded).toBe(false);
      expect(r.error).toMatch(/^PrivilegeError: "rds admin" is not allowed to do this: copying "GRANT BACKUP_ADMIN,FLUSH_TABLES ON \*\.\* TO \.\.\." of "app"@"10\.0\.%" to "app_clone" failed \(\[ER_SPECIFIC_ACCESS_DENIED_ERROR 1227\]/);
      expect(r.error).toMatch(/the alternate user's password was not changed\. .*RDS\/Aurora master user has no SUPER, FILE, SHUTDOWN, SYSTEM_USER .*revoke such a privilege from the current user/);
      expect(fake.calls.some((c) => c.sql.includes('IDENTIFIED WITH'))).toBe(false);
    });

    it('before 8.0.36 (no rds_superuser_role, no ROLE_ADMIN) a role the master does not hold WITH ADMIN OPTION cannot be copied', async () => {
      const fake = server('8.0.35');
      const app = fake.account('app', '10.0.%')!;
      app.grants = app.grants.filter((g) => !g.includes('XA_RECOVER_ADMIN'));
      const { h, arn } = await alternating(fake);
      const r = await h.rotate(arn);
      expect(r.error).toMatch(/copying "GRANT `reader`@`%`,`writer`@`%` TO \.\.\." .*1227\] Access denied; you need \(at least one of\) the WITH ADMIN, ROLE_ADMIN, SUPER privilege.*For a role, grant it to the admin WITH ADMIN OPTION/);
    });

    it('the fake rejects GRANT text it does not know and privileges the master lacks', async () => {
      const fake = server('8.0.36');
      const engine = createMysqlEngine({ connect: fake.connect, env: {} });
      const conn = await engine.connect(secret({ username: 'rds admin', password: ADMIN_PASSWORD }) as DbSecret, { tls: { enabled: false, verifyChain: false, verifyHostname: false }, connectTimeoutMs: 1000, statementTimeoutMs: 1000, log: new Logger(() => undefined), env: {} });
      await expect(conn.session.query('GRANT SELEKT ON *.* TO `app`@`10.0.%`')).rejects.toMatchObject({ errno: 1064 });
      await expect(conn.session.query('GRANT FILE ON *.* TO `app`@`10.0.%`')).rejects.toMatchObject({ errno: 1045 });
      await expect(conn.session.query('GRANT ALL PRIVILEGES ON *.* TO `app`@`10.0.%`')).rejects.toMatchObject({ errno: 1045 });
      await expect(conn.session.query('GRANT ALL PRIVILEGES ON `shop`.* TO `app`@`10.0.%`')).resolves.toBeDefined();
      await expect(conn.session.query('GRANT SELECT ON `shop`.* TO `nobody`@`%`')).rejects.toMatchObject({ errno: 1410 });
    });
  });

  it('keeps mysql_native_password for an account that uses it', async () => {
    const fake = new FakeMysql('8.0.36', [
      account('app', INITIAL, { plugin: 'mysql_native_password' }),
      account('app_clone', 'Old-clone-pw1', { plugin: 'caching_sha2_password', ssl: { type: 'X509', cipher: '', issuer: '', subject: '' }, attributes: { rotation_lambdas_alternate_of: 'app' } }),
      account('rds admin', ADMIN_PASSWORD, { admin: true }),
    ]);
    const { h } = harnessFor(fake);
    h.sensitive('Old-clone-pw1');
    const adminArn = await h.createSecret({ host: 'db.example.internal', port: 3306, ssl: false, username: 'rds admin', password: ADMIN_PASSWORD });
    const arn = await h.createSecret(secret({ masterarn: adminArn }));
    expect((await h.rotate(arn)).error).toBeUndefined();
    const sqls = fake.statements('rds admin').map((s) => s.sql);
    expect(sqls).not.toContain('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?');
    expect(sqls).toContain(SETTINGS_SQL('REQUIRE NONE'));
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
    expect(fake.statements('rds admin')).toEqual([{ sql: ACCOUNTS_SQL, values: [`${long}_clone`] }, { sql: LIMIT_SQL, values: [] }]);
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
      expect(r2.error).toMatch(/^SecretFormatError: The alternate user ".*_clone" would be 35 characters long; mysql allows 32\./);

      // A smaller limit in the handler's env is the framework's check, before any secret is written.
      h.env = { USERNAME_CHARACTER_LIMIT: '16' };
      const r3 = await h.rotate(await child());
      expect(r3.steps).toEqual(['createSecret']);
      expect(r3.error).toMatch(/^SecretFormatError: The alternate user ".*_clone" would be 35 characters long; mysql allows 16\./);
      expect(h.sm.countCalls('PutSecretValue')).toBe(1); // the first rotation's only
      expect(fake.statements('rds admin')).toEqual([{ sql: ACCOUNTS_SQL, values: [`${long}_clone`] }, { sql: LIMIT_SQL, values: [] }]);
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
    const env: Record<string, string> = { USERNAME_CHARACTER_LIMIT: '16' };
    const limited = createMysqlEngine({ env: () => env });
    expect(limited.usernameLimit('mariadb')).toBe(16);
    env.USERNAME_CHARACTER_LIMIT = 'lots';
    expect(() => limited.usernameLimit('mariadb')).toThrow(ConfigError);
    expect(() => limited.validateSecret!({ engine: 'mysql', host: 'h', username: 'u', password: 'p' }, 'AWSCURRENT', {})).toThrow(ConfigError);
  });

  it('the framework\'s one username check applies the limit of the secret\'s engine value to the alternate user, in characters', () => {
    const rotator = new DatabaseRotator(createMysqlEngine({ env: {} }));
    const s = (username: string, extra: Record<string, unknown> = {}) => ({ engine: 'mysql', host: 'h', username, password: 'p', masterarn: 'arn:x', ...extra }) as DbSecret;
    const long = 'x'.repeat(33);
    expect(() => rotator.checkUsernameLength(s(long), {})).toThrow(SecretFormatError);
    expect(() => rotator.checkUsernameLength(s(long), {})).toThrow(/would be 33 characters long; mysql allows 32\. .*USERNAME_CHARACTER_LIMIT/);
    expect(() => rotator.checkUsernameLength(s(long, { engine: 'mariadb' }), {})).not.toThrow();
    expect(() => new DatabaseRotator(createMysqlEngine()).checkUsernameLength(s(long), { USERNAME_CHARACTER_LIMIT: '40' })).not.toThrow();
    expect(() => rotator.checkUsernameLength(s('ü'.repeat(32)), {})).not.toThrow(); // characters, not bytes
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

describe('capability comparison (SHOW GRANTS of the alternate vs the current user)', () => {
  const excess = (alt: string[], cur: string[]) => excessCapabilities(capabilitiesOf(alt), capabilitiesOf(cur));
  it.each([
    // covered: same, narrower level, column of a granted table, ALL at a wider level
    [['GRANT SELECT ON `d`.* TO `a`@`%`'], ['GRANT SELECT, INSERT ON `d`.* TO `c`@`%`'], []],
    [['GRANT SELECT ON `d`.`t` TO `a`@`%`'], ['GRANT SELECT ON `d`.* TO `c`@`%`'], []],
    [['GRANT SELECT (`x`) ON `d`.`t` TO `a`@`%`'], ['GRANT SELECT ON `d`.`t` TO `c`@`%`'], []],
    [['GRANT EXECUTE ON PROCEDURE `d`.`p` TO `a`@`%`'], ['GRANT ALL PRIVILEGES ON *.* TO `c`@`%`'], []],
    [["GRANT USAGE ON *.* TO `a`@`%` IDENTIFIED BY PASSWORD '*AB' WITH MAX_USER_CONNECTIONS 3"], ['GRANT USAGE ON *.* TO `c`@`%`'], []],
    [['SET DEFAULT ROLE `r` FOR `a`@`%`', 'GRANT `r` TO `a`@`%`'], ['GRANT `r` TO `c`@`%` WITH ADMIN OPTION'], []],
    // not covered
    [['GRANT SELECT ON *.* TO `a`@`%`'], ['GRANT SELECT ON `d`.* TO `c`@`%`'], ['SELECT ON *.*']],
    [['GRANT SELECT (`y`) ON `d`.`t` TO `a`@`%`'], ['GRANT SELECT (`x`) ON `d`.`t` TO `c`@`%`'], ['SELECT(y) ON `d`.`t`']],
    [['GRANT SELECT ON `d`.* TO `a`@`%` WITH GRANT OPTION'], ['GRANT SELECT ON `d`.* TO `c`@`%`'], ['GRANT OPTION ON `d`.*']],
    [['GRANT `r`@`%` TO `a`@`%` WITH ADMIN OPTION'], ['GRANT `r`@`%` TO `c`@`%`'], ['ADMIN OPTION on role `r`@`%`']],
    [['GRANT `r`@`%` TO `a`@`%`'], [], ['role `r`@`%`']],
    [["GRANT PROXY ON 'x'@'%' TO 'a'@'%'"], [], ["GRANT PROXY ON 'x'@'%'"]],
    [['GRANT SELECT ON *.* TO `a`@`%`'], ['GRANT SELECT ON *.* TO `c`@`%`', 'REVOKE SELECT ON `mysql`.* FROM `c`@`%`'], ['SELECT ON `mysql`.* (revoked from the current user only)']],
    [['GRANT SELECT ON `d%`.* TO `a`@`%`'], ['GRANT SELECT ON `d`.* TO `c`@`%`'], ['SELECT ON `d%`.*']],
    [['GRANT FROBNICATE ON ???'], [], ['a grant this check cannot read (GRANT FROBNICATE ON ???)']],
    // An unreadable MariaDB row carries the alternate's password hash: it is not quoted.
    [["GRANT FROBNICATE ON ??? TO `a`@`%` IDENTIFIED BY PASSWORD '*0123456789ABCDEF0123456789ABCDEF01234567'"], [], ['a grant this check cannot read (GRANT FROBNICATE ON ??? TO `a`@`%` IDENTIFIED ...)']],
    [["GRANT FROBNICATE ON ??? TO `a`@`%` identified via ed25519 using 'c2VjcmV0aGFzaA'"], [], ['a grant this check cannot read (GRANT FROBNICATE ON ??? TO `a`@`%` IDENTIFIED ...)']],
  ] as const)('%j vs %j', (alt, cur, expected) => {
    expect(excess([...alt], [...cur])).toEqual(expected);
  });
});
