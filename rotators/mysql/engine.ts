/**
 * The MySQL-family engine: MySQL 5.7/8/9, Aurora MySQL and MariaDB (secret `engine` values
 * `mysql`, `aurora-mysql`, `mariadb`), with the mysql2 driver.
 *
 * - The server's flavour and version are read on every connection (`SELECT VERSION()`); the
 *   statements follow them, never the secret's `engine` value.
 * - Every name, host and password is quoted with mysql2's own escaping (`?` placeholders,
 *   formatted client-side: these account statements take no server-side parameters). That
 *   escaping uses backslashes, so a session running with NO_BACKSLASH_ESCAPES has it removed
 *   first. SHOW GRANTS output is re-targeted by grants.ts, which quotes the new grantee itself.
 * - The driver's own errors are never passed on: they carry the formatted SQL (passwords
 *   included). Errors keep the server's error code and, except for syntax errors (which quote
 *   the statement), its message.
 */
import { randomBytes } from 'node:crypto';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import type { ConnectionOptions } from 'mysql2/promise';
import {
  type AlternateUserChange,
  type ConnectOptions,
  type DatabaseEngine,
  type DbSecret,
  defaultTrustedCas,
  defineEngine,
  driverLoadError,
  type EngineContext,
  nodeErrorClass,
  type PasswordChange,
  portOf,
  type TlsOptions,
} from '../../src/db';
import {
  ConfigError,
  ConnectError,
  DatabaseError,
  type Env,
  type Logger,
  PrivilegeError,
  RotationError,
  RotationStateError,
  SecretFormatError,
} from '../../src/api';
import { capabilitiesOf, excessCapabilities } from './capabilities';
import { GrantParseError, parseGrant, retarget } from './grants';

/** The part of a mysql2/promise Connection the engine uses (a test fake implements just this). */
export interface MysqlSession {
  query(sql: string, values?: unknown[]): Promise<[unknown, unknown]>;
  end(): Promise<void>;
  /** Drops the connection at once (after a statement timed out: the server may never answer). */
  destroy?(): void;
}

export type MysqlConnectFn = (config: ConnectionOptions) => Promise<MysqlSession>;

/** What the server said it is. */
export interface MysqlServer {
  /** `SELECT VERSION()`, e.g. "8.0.36" or "10.11.6-MariaDB-log". */
  version: string;
  flavor: 'mysql' | 'mariadb';
  /** [major, minor, patch] */
  numbers: [number, number, number];
}

/** A connection as the engine hands it to the framework. */
export interface MysqlConnection {
  session: MysqlSession;
  server: MysqlServer;
  /** Who is logged in (for messages). */
  username: string;
  /** STATEMENT_TIMEOUT_MS: every statement is abandoned after this long (driver side). */
  statementTimeoutMs: number;
}

export interface MysqlEngineOptions {
  /** Opens a connection (default: mysql2/promise createConnection). Tests inject a fake. */
  connect?: MysqlConnectFn;
  /**
   * Where USERNAME_CHARACTER_LIMIT is read, instead of the handler's environment (which the
   * framework passes in). Tests use it; the packaged function does not.
   */
  env?: Env | (() => Env);
}

export const MYSQL_ENGINES = ['mysql', 'aurora-mysql', 'mariadb'] as const;

/**
 * The longest user name per `engine` value, used before anything touches the server (the
 * createSecret check). MySQL >= 5.7.8 and Aurora MySQL 2/3 allow 32 characters; MariaDB allows
 * 80 (128 in recent versions such as 10.11: set USERNAME_CHARACTER_LIMIT=128 to use them).
 * USERNAME_CHARACTER_LIMIT overrides them all (e.g. 16 for MySQL 5.6-era servers). At setSecret
 * the server's own limit (the width of mysql.user's User column) is checked again.
 */
export const USERNAME_LIMITS: Record<(typeof MYSQL_ENGINES)[number], number> = {
  mysql: 32,
  'aurora-mysql': 32,
  mariadb: 80,
};

const DEFAULT_PORT = 3306;

/** Server error numbers meaning "logged in, but not allowed to do this". */
const PRIVILEGE_ERRNOS = new Set([
  1044, // ER_DBACCESS_DENIED_ERROR
  1045, // ER_ACCESS_DENIED_ERROR (GRANT of a privilege the grantor lacks)
  1132, // ER_PASSWORD_NOT_ALLOWED
  1142, // ER_TABLEACCESS_DENIED_ERROR
  1143, // ER_COLUMNACCESS_DENIED_ERROR
  1227, // ER_SPECIFIC_ACCESS_DENIED_ERROR
  1370, // ER_PROCACCESS_DENIED_ERROR
  1410, // ER_CANT_CREATE_USER_WITH_GRANT
  1698, // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
  3530, // ER_ROLE_NOT_GRANTED (MySQL 8)
]);

/** Server error numbers whose message quotes the statement (and so a password). */
const ECHOING_ERRNOS = new Set([1064, 1149]);

/** mysql2's own codes for a TLS failure (Node's and OpenSSL's are nodeErrorClass's). */
const DRIVER_TLS_CODES = new Set(['HANDSHAKE_SSL_ERROR', 'HANDSHAKE_NO_SSL_SUPPORT']);

/** mysql2's own codes for a lost or stalled connection. */
const DRIVER_NETWORK_CODES = new Set(['PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT']);

/** Plugins whose passwords the server hashes from `IDENTIFIED WITH <plugin> BY '<password>'`. */
const MYSQL_PASSWORD_PLUGINS = new Set(['mysql_native_password', 'caching_sha2_password', 'sha256_password']);

export function createMysqlEngine(options: MysqlEngineOptions = {}): DatabaseEngine<MysqlConnection> & {
  /** The limit for one `engine` value (USERNAME_CHARACTER_LIMIT of `env` applied). */
  usernameLimit(engine: string, env?: Env): number;
} {
  const connectFn: MysqlConnectFn = options.connect ?? defaultConnect;
  /** The `env` option if given, else the handler's environment the framework passed. */
  const envOf = (given: Env = {}): Env => (typeof options.env === 'function' ? options.env() : (options.env ?? given));
  const usernameLimit = (engineValue: string, env?: Env): number =>
    limitOverride(envOf(env)) ?? USERNAME_LIMITS[engineValue as keyof typeof USERNAME_LIMITS] ?? USERNAME_LIMITS.mysql;

  const engine = defineEngine<MysqlConnection, DatabaseEngine<MysqlConnection> & { usernameLimit: typeof usernameLimit }>({
    profile: {
      name: 'mysql',
      engines: MYSQL_ENGINES,
      defaultPort: DEFAULT_PORT,
      // Per `engine` value (USERNAME_CHARACTER_LIMIT overrides), in characters; setSecret checks
      // the server's own limit (the width of mysql.user's User column) again.
      username: {
        maxLength: (secret, env) => usernameLimit(secret.engine, env),
        raiseLimit: 'set USERNAME_CHARACTER_LIMIT if your server allows longer names',
      },
    },

    usernameLimit,

    preflight: () => import('./preflight').then((m) => m.mysqlPreflight),

    validateSecret(_secret: DbSecret, _label: string, env: Env): void {
      // The variables this engine reads, so a bad value fails createSecret before AWSPENDING exists.
      limitOverride(envOf(env));
      adoptUnmarked(env ?? {});
    },

    async connect(secret: DbSecret, opts: ConnectOptions): Promise<MysqlConnection> {
      const host = secret.host;
      const port = portOf(secret, DEFAULT_PORT);
      const config: ConnectionOptions = {
        host,
        port,
        user: secret.username,
        password: secret.password,
        connectTimeout: opts.connectTimeoutMs,
        ...(secret.dbname ? { database: secret.dbname } : {}),
        ...(opts.tls.enabled ? { ssl: sslOptions(opts.tls) } : {}),
        // mysql2 only checks the certificate's names for DNS hosts; for an IP it would check
        // "localhost". Give Node the IP to check (see hostSocket).
        ...(opts.tls.enabled && opts.tls.verifyHostname && isIP(host) ? { stream: () => hostSocket(host, port) } : {}),
      };
      let session: MysqlSession;
      try {
        session = await connectFn(config);
      } catch (err) {
        throw classifyConnectError(err, secret, port);
      }
      const conn: MysqlConnection = { session, server: parseServerVersion('0.0.0'), username: secret.username, statementTimeoutMs: opts.statementTimeoutMs };
      try {
        const row = firstRow(await run(conn, 'SELECT VERSION() AS version, @@SESSION.sql_mode AS sqlMode', [], 'reading the server version'));
        conn.server = parseServerVersion(text(row.version));
        const sqlMode = text(row.sqlMode);
        if (/(^|,)NO_BACKSLASH_ESCAPES(,|$)/i.test(sqlMode)) {
          // mysql2 escapes with backslashes; make the session read them as escapes. (The mode
          // names are letters, underscores and commas: this one value needs no escaping.)
          const kept = sqlMode.split(',').filter((m) => m.toUpperCase() !== 'NO_BACKSLASH_ESCAPES').join(',');
          await run(conn, 'SET SESSION sql_mode = ?', [kept], 'setting the session sql_mode');
        }
        // The server's own bounds, besides the driver-side timeout run() applies: MariaDB's
        // max_statement_time covers every statement, MySQL's max_execution_time only SELECTs;
        // lock_wait_timeout bounds the metadata locks account statements wait for.
        const seconds = Math.max(1, Math.ceil(opts.statementTimeoutMs / 1000));
        if (conn.server.flavor === 'mariadb') {
          await run(conn, 'SET SESSION max_statement_time = ?, lock_wait_timeout = ?', [opts.statementTimeoutMs / 1000, seconds], 'setting the statement timeout');
        } else if (atLeast(conn.server, 5, 7, 8)) {
          await run(conn, 'SET SESSION max_execution_time = ?, lock_wait_timeout = ?', [opts.statementTimeoutMs, seconds], 'setting the statement timeout');
        }
        return conn;
      } catch (err) {
        await endSession(session, opts.statementTimeoutMs);
        if (err instanceof RotationError && err.code === 'NETWORK') throw err;
        const n = serverErrno(err) ?? errno(err);
        if (n === 1820 || n === 1862) {
          throw new ConnectError('AUTH', `The password of "${secret.username}" has expired; the server allows no statement until it is changed.`);
        }
        const detail = err instanceof RotationError ? err.message : safeMessage(err, [secret.password]);
        throw new ConnectError('NETWORK', `Connected to ${host}:${port} but the first query failed: ${detail}`);
      }
    },

    async close(conn: MysqlConnection): Promise<void> {
      await endSession(conn.session, conn.statementTimeoutMs);
    },

    async setOwnPassword(conn: MysqlConnection, change: PasswordChange, { log }: EngineContext): Promise<void> {
      const { server } = conn;
      let sql: string;
      let values: unknown[];
      if (server.flavor === 'mariadb' || !atLeast(server, 5, 7, 6)) {
        // MariaDB (every version) and MySQL before 5.7.6. On MariaDB, ALTER USER CURRENT_USER()
        // is not a reliable way to change one's own password; SET PASSWORD is.
        sql = 'SET PASSWORD = PASSWORD(?)';
        values = [change.newPassword];
      } else if (atLeast(server, 8, 0, 13)) {
        // REPLACE proves the current password, which password_require_current demands.
        sql = 'ALTER USER CURRENT_USER() IDENTIFIED BY ? REPLACE ?';
        values = [change.newPassword, change.oldPassword];
      } else {
        sql = 'ALTER USER CURRENT_USER() IDENTIFIED BY ?';
        values = [change.newPassword];
      }
      await checkSingleAccount(conn, change.username, log);
      await run(conn, sql, values, `changing the password of "${change.username}"`, OWN_PASSWORD_REMEDY);
      log.debug('own password statement accepted', { username: change.username, server: server.version });
    },

    async checkAlternateUser(admin: MysqlConnection, change: AlternateUserChange, { log, env }: EngineContext): Promise<void> {
      requireAlternatingSupport(admin.server);
      await checkPair(admin, change, log, adoptUnmarked(env));
    },

    /** Pre-created pairs (`alternateUsername`): check both users, set only the alternate's password (precreated.ts). */
    setAlternatePassword: (admin: MysqlConnection, change: AlternateUserChange, { log }: EngineContext): Promise<void> => import('./precreated').then((m) => m.setPrecreatedPassword(admin, change, log, { checkPair, accounts, run, requireAlternatingSupport })),

    async upsertAlternateUser(admin: MysqlConnection, change: AlternateUserChange, { log }: EngineContext): Promise<void> {
      const { server } = admin;
      const { alternateUser } = change;
      requireAlternatingSupport(server);
      const limit = await serverUsernameLimit(admin);
      const length = [...alternateUser].length;
      if (length > limit) {
        throw new SecretFormatError(
          `The alternate user "${alternateUser}" is ${length} characters long; ${describeServer(server)} allows user names of at most ${limit}.`,
          'Use a shorter username for the alternating-users strategy.',
        );
      }
      try {
        await upsert(admin, change, log);
      } catch (err) {
        // A duplicate invocation of the same step running at the same time (Secrets Manager may
        // deliver one twice) can create or alter the same account under our feet: the upsert is
        // idempotent, so run it once more instead of failing.
        const n = serverErrno(err);
        if (n === undefined || !CONCURRENT_ERRNOS.has(n)) throw err;
        log.warn('an account statement collided with a concurrent change; running the upsert once more', { username: alternateUser, serverError: n });
        await upsert(admin, change, log);
      }
    },

    async check(conn: MysqlConnection): Promise<void> {
      await run(conn, 'SELECT 1', [], 'running the check query');
    },
  });
  return engine;
}

/** The engine with the default driver: what the Lambda bundle uses. */
export const mysqlEngine = createMysqlEngine();

// ---------------------------------------------------------------------------------------------

const OWN_PASSWORD_REMEDY = 'A user may always change its own password unless the server is read-only or the account is locked.';
const ADMIN_REMEDY =
  'The admin secret\'s user needs CREATE USER, SELECT on the mysql schema and GRANT OPTION together with every privilege the current user holds (the RDS master user has them).';

function requireAlternatingSupport(server: MysqlServer): void {
  if (server.flavor === 'mysql' ? !atLeast(server, 5, 7, 6) : !atLeast(server, 10, 2, 0)) {
    throw new RotationError('UNSUPPORTED', `The alternating-users strategy needs MySQL 5.7.6+ or MariaDB 10.2+; the server is ${server.version}.`);
  }
}

/** Server errors a concurrent duplicate of the same upsert can cause. */
const CONCURRENT_ERRNOS = new Set([
  1396, // ER_CANNOT_USER: CREATE USER of an account another invocation just created (or ALTER of one not yet there)
  1213, // ER_LOCK_DEADLOCK
]);

/** Where the pair marker lives on MySQL 8.0.21+: a key of the account's ATTRIBUTE JSON. */
export const MARKER_KEY = 'rotation_lambdas_alternate_of';

/** The marker's value for a clone of `original`, as ALTER USER ... ATTRIBUTE takes it. */
export function markerAttribute(original: string): string {
  return JSON.stringify({ [MARKER_KEY]: original });
}

/** True when the server can record the marker (MySQL 8.0.21+; not MariaDB, MySQL 5.7 or Aurora MySQL 2). */
function supportsMarker(server: MysqlServer): boolean {
  return server.flavor === 'mysql' && atLeast(server, 8, 0, 21);
}

function adoptUnmarked(env: Env): boolean {
  const raw = env.ADOPT_UNMARKED_ALTERNATE?.trim().toLowerCase();
  if (!raw) return false;
  if (['true', '1', 'y', 'yes'].includes(raw)) return true;
  if (['false', '0', 'n', 'no'].includes(raw)) return false;
  throw new ConfigError(`ADOPT_UNMARKED_ALTERNATE must be true or false (or 1/0, yes/no), got "${raw.slice(0, 20)}".`);
}

const GRANT_COPY_REMEDY =
  'The admin can give only privileges it holds WITH GRANT OPTION and roles it holds WITH ADMIN OPTION (or ROLE_ADMIN). ' +
  'The RDS/Aurora master user has no SUPER, FILE, SHUTDOWN, SYSTEM_USER and only the dynamic privileges AWS lists for it (MySQL 8.0.36+: through rds_superuser_role), ' +
  'and nobody on RDS but AWS holds those: revoke such a privilege from the current user if it does not need it, or use the single-user strategy for this user. ' +
  'For a role, grant it to the admin WITH ADMIN OPTION. On a self-managed server, give the admin the privilege WITH GRANT OPTION.';

interface AccountRow {
  host: string;
  plugin: string;
  sslType: string;
  sslCipher: string;
  x509Issuer: string;
  x509Subject: string;
  maxQuestions: number;
  maxUpdates: number;
  maxConnections: number;
  maxUserConnections: number;
  /** MariaDB only (seconds; 0: none). */
  maxStatementTime?: number;
  /** Days; undefined: the server default; 0: never. */
  passwordLifetime?: number;
  /** A MariaDB role (its Host is ''). */
  isRole: boolean;
  /** ACCOUNT LOCK (MySQL 5.7+, MariaDB 10.4+); MySQL 8 roles are locked accounts. */
  locked: boolean;
  /** MariaDB: the default role ('' for none). */
  defaultRole: string;
  /** MySQL 8.0.21+: the pair marker in the account's ATTRIBUTE JSON (undefined: none). */
  marker?: string;
}

function accountsSql(server: MysqlServer): string {
  const common =
    'u.Host AS host, u.plugin AS plugin, u.ssl_type AS sslType, u.ssl_cipher AS sslCipher, u.x509_issuer AS x509Issuer, u.x509_subject AS x509Subject, ' +
    'u.max_questions AS maxQuestions, u.max_updates AS maxUpdates, u.max_connections AS maxConnections, u.max_user_connections AS maxUserConnections';
  if (server.flavor === 'mariadb') {
    if (!atLeast(server, 10, 4, 0)) {
      return `SELECT ${common}, u.max_statement_time AS maxStatementTime, u.is_role AS isRole, u.default_role AS defaultRole, NULL AS locked, NULL AS lifetime FROM mysql.user u WHERE u.User = ? ORDER BY u.Host`;
    }
    return `SELECT ${common}, u.max_statement_time AS maxStatementTime, u.is_role AS isRole, u.default_role AS defaultRole, ` +
      "JSON_VALUE(g.Priv, '$.account_locked') AS locked, JSON_VALUE(g.Priv, '$.password_lifetime') AS lifetime " +
      'FROM mysql.user u LEFT JOIN mysql.global_priv g ON g.User = u.User AND g.Host = u.Host WHERE u.User = ? ORDER BY u.Host';
  }
  const marker = supportsMarker(server) ? `, JSON_UNQUOTE(JSON_EXTRACT(u.User_attributes, '$.metadata.${MARKER_KEY}')) AS marker` : '';
  return `SELECT ${common}, u.account_locked AS locked, u.password_lifetime AS lifetime${marker} FROM mysql.user u WHERE u.User = ? ORDER BY u.Host`;
}

async function accounts(conn: MysqlConnection, user: string): Promise<AccountRow[]> {
  const rows = await run(conn, accountsSql(conn.server), [user], `reading the accounts of "${user}" from mysql.user`, ADMIN_REMEDY);
  const num = (v: unknown) => (v === null || v === undefined || text(v) === '' ? 0 : Number(text(v)));
  return asRows(rows).map((r) => {
    const lifetime = r.lifetime === null || r.lifetime === undefined || text(r.lifetime) === '' ? undefined : Number(text(r.lifetime));
    const marker = r.marker === null || r.marker === undefined ? undefined : text(r.marker);
    return {
      host: text(r.host),
      plugin: text(r.plugin),
      sslType: text(r.sslType).toUpperCase(),
      sslCipher: text(r.sslCipher),
      x509Issuer: text(r.x509Issuer),
      x509Subject: text(r.x509Subject),
      maxQuestions: num(r.maxQuestions),
      maxUpdates: num(r.maxUpdates),
      maxConnections: num(r.maxConnections),
      maxUserConnections: num(r.maxUserConnections),
      ...(conn.server.flavor === 'mariadb' ? { maxStatementTime: num(r.maxStatementTime) } : {}),
      ...(lifetime !== undefined && lifetime >= 0 ? { passwordLifetime: lifetime } : {}),
      isRole: /^y/i.test(text(r.isRole)),
      locked: /^(y|true|1)/i.test(text(r.locked)),
      defaultRole: text(r.defaultRole),
      ...(marker !== undefined && marker !== 'null' ? { marker } : {}),
    };
  });
}

/** `SHOW GRANTS FOR user@host`, one statement per row. */
async function showGrants(admin: MysqlConnection, user: string, host: string): Promise<string[]> {
  const rows = asRows(await run(admin, 'SHOW GRANTS FOR ?@?', [user, host], `reading the grants of "${user}"@"${host}"`, ADMIN_REMEDY));
  return rows.map((row) => text(Object.values(row)[0]));
}

/** `app@%`-like, for messages. */
const acct = (user: string, host: string) => `"${user}"@"${host}"`;

/**
 * The pair proof, before anything changes: every existing account of the alternate user, on a
 * host the current user has (the only ones the upsert touches), must be a login, hold nothing
 * the current user's account on that host lacks, and (MySQL 8.0.21+) the clone side must carry
 * the marker naming the original user.
 */
async function checkPair(admin: MysqlConnection, change: AlternateUserChange, log: Logger, adopt: boolean): Promise<void> {
  const { currentUser, alternateUser } = change;
  const alternates = await accounts(admin, alternateUser);
  if (alternates.length === 0) return;
  const role = alternates.find((a) => a.isRole);
  if (role) {
    throw new RotationStateError(
      `The alternate user "${alternateUser}" exists as a role, not a login; refusing to give it a password.`,
      `Rename the child secret's user, or drop the role "${alternateUser}" if it is not used.`,
    );
  }
  const currents = new Map((await accounts(admin, currentUser)).map((a) => [a.host, a]));
  const pairs: Array<[AccountRow, AccountRow]> = [];
  for (const alt of alternates) {
    const cur = currents.get(alt.host);
    if (!cur) {
      // A pair has the same hosts (the upsert creates the clone's from the current user's). An
      // account of that name on another host is someone else's, or the current user's host
      // changed: either way the pair is not provable, and an account the upsert would create
      // beside it would be a login of that name with borrowed privileges.
      throw new RotationStateError(
        `The alternate user has the account ${acct(alternateUser, alt.host)} but the current user has no account on host "${alt.host}" (it has ${[...currents.keys()].map((h) => `"${h}"`).join(', ') || 'none'}); the two are not provably a pair.`,
        `If ${acct(alternateUser, alt.host)} is a leftover of this pair, drop it (or give "${currentUser}" an account on that host); otherwise rename the child secret's user.`,
      );
    }
    if (admin.server.flavor === 'mysql' && atLeast(admin.server, 8, 0, 0)) {
      const edges = asRows(await run(admin, 'SELECT COUNT(*) AS n FROM mysql.role_edges WHERE FROM_USER = ? AND FROM_HOST = ?', [alternateUser, alt.host],
        `reading the role grants of ${acct(alternateUser, alt.host)}`, ADMIN_REMEDY));
      if (Number(edges[0]?.n ?? 0) > 0) {
        throw new RotationStateError(
          `The alternate user ${acct(alternateUser, alt.host)} is a role granted to other accounts, not this pair's login; refusing to give it a password.`,
          'Rename the child secret\'s user.',
        );
      }
    }
    if (alt.locked) {
      throw new RotationStateError(
        `The alternate user ${acct(alternateUser, alt.host)} is locked (ACCOUNT LOCK, or a MySQL role), not a login of this pair; refusing to unlock it or give it a password.`,
        'Rename the child secret\'s user, or unlock the account yourself if it really is this pair\'s alternate.',
      );
    }
    const excess = excessCapabilities(capabilitiesOf(await showGrants(admin, alternateUser, alt.host)), capabilitiesOf(await showGrants(admin, currentUser, alt.host)));
    if (excess.length > 0) {
      throw new PrivilegeError(
        `The alternate user ${acct(alternateUser, alt.host)} holds what the current user ${acct(currentUser, alt.host)} does not: ${excess.join('; ')}. ` +
          'It is not provably this pair\'s alternate user; refusing to change its password.',
        `If it is, revoke those privileges from "${alternateUser}" (or grant them to "${currentUser}"), then rotate again; otherwise rename the child secret's user.`,
      );
    }
    pairs.push([alt, cur]);
  }
  if (change.precreated || !supportsMarker(admin.server)) {
    log.debug('no place for a pair marker on this server: capability check only', { server: admin.server.version });
    return;
  }
  const { clone, original } = cloneSide(currentUser, alternateUser);
  for (const [alt, cur] of pairs) {
    const side = clone === alternateUser ? alt : cur;
    if (side.marker === original) continue;
    if (side.marker !== undefined) {
      throw new PrivilegeError(
        `${acct(clone, side.host)} is marked as the alternate of another user, not of "${original}"; refusing to change "${alternateUser}".`,
        'Rename the child secret\'s user.',
      );
    }
    if (!adopt) {
      throw new PrivilegeError(
        `${acct(clone, side.host)} does not carry this project's pair marker (ATTRIBUTE ${MARKER_KEY}), so "${alternateUser}" is not provably the alternate of "${currentUser}"; refusing to change its password.`,
        'If this pair was created by AWS\'s rotation functions or an earlier version of this one, set ADOPT_UNMARKED_ALTERNATE=true for one rotation: a pair that passes the privilege comparison is then marked.',
      );
    }
    log.warn('adopting an unmarked alternate user (ADOPT_UNMARKED_ALTERNATE=true); it will be marked', { username: clone, host: side.host });
  }
}

/** Which user of the pair is the `_clone` one, and the original it names. */
function cloneSide(currentUser: string, alternateUser: string): { clone: string; original: string } {
  return alternateUser === `${currentUser}_clone` ? { clone: alternateUser, original: currentUser } : { clone: currentUser, original: alternateUser };
}

/** The idempotent body of upsertAlternateUser. */
async function upsert(admin: MysqlConnection, change: AlternateUserChange, log: Logger): Promise<void> {
  const { server } = admin;
  const { currentUser, alternateUser, newPassword } = change;
  const templates = await accounts(admin, currentUser);
  if (templates.length === 0) {
    throw new RotationStateError(
      `The current user "${currentUser}" has no account on the server (mysql.user has no row for it), so there is nothing to copy.`,
      'Check the username in AWSCURRENT.',
    );
  }
  const existing = new Set((await accounts(admin, alternateUser)).map((a) => a.host));
  const marking = supportsMarker(server);
  const { clone, original } = cloneSide(currentUser, alternateUser);
  const marker = markerAttribute(original);

  // Grants, account settings and the marker first, the password last: the new password never
  // logs in to an account whose privileges are still being copied (testSecret would pass on
  // it). A new account gets a random throwaway password meanwhile. Every statement is
  // idempotent: the framework runs this again on a retried setSecret.
  for (const t of templates) {
    const target = acct(alternateUser, t.host);
    if (!existing.has(t.host)) {
      // The marker goes in with CREATE USER itself: a concurrent invocation never sees the clone unmarked.
      const withMarker = marking && clone === alternateUser;
      await run(admin, `CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?${withMarker ? ' ATTRIBUTE ?' : ''}`,
        [alternateUser, t.host, throwawayPassword(), ...(withMarker ? [marker] : [])], `creating ${target}`, ADMIN_REMEDY);
      log.info('created the alternate user', { username: alternateUser, host: t.host });
    }
    if (server.flavor === 'mariadb' && t.defaultRole === '') {
      // SHOW GRANTS replays a default role; none must be none on the alternate too.
      await run(admin, 'SET DEFAULT ROLE NONE FOR ?@?', [alternateUser, t.host], `clearing the default role of ${target}`, ADMIN_REMEDY);
    }
    const copied = await copyGrants(admin, currentUser, alternateUser, t.host, log);
    const settings = accountSettings(server, t);
    await run(admin, `ALTER USER ?@? ${settings.sql}`, [alternateUser, t.host, ...settings.values],
      `setting the TLS requirement, resource limits and password expiry of ${target}`, ADMIN_REMEDY);
    const defaultRoles = server.flavor === 'mysql' && atLeast(server, 8, 0, 0) ? await copyDefaultRoles(admin, currentUser, alternateUser, t.host) : undefined;
    if (marking) {
      await run(admin, 'ALTER USER ?@? ATTRIBUTE ?', [clone, t.host, marker], `marking ${acct(clone, t.host)} as the alternate of "${original}"`, ADMIN_REMEDY);
    }
    log.info('copied privileges and account settings to the alternate user', {
      username: alternateUser, host: t.host, grantStatements: copied, tlsRequirement: t.sslType || 'NONE',
      ...(defaultRoles !== undefined ? { defaultRoles } : {}), marked: marking,
    });
  }
  for (const t of templates) {
    const plugin = server.flavor === 'mysql' && MYSQL_PASSWORD_PLUGINS.has(t.plugin) ? t.plugin : undefined;
    // A replayed setSecret sets the same password again, which a MySQL password history
    // (password_history / password_reuse_interval) refuses with 3638. The framework's login
    // with the new password, which follows, tells whether it is in place.
    const outcome = await run(admin, `ALTER USER ?@? IDENTIFIED ${plugin ? `WITH ${plugin} ` : ''}BY ?`, [alternateUser, t.host, newPassword],
      `setting the password of ${acct(alternateUser, t.host)}`, ADMIN_REMEDY, [ER_CREDENTIALS_CONTRADICT_TO_HISTORY]);
    if (outcome === TOLERATED) {
      log.warn('the password history refused setting the password again; the login check decides', { username: alternateUser, host: t.host });
    }
  }
}

/**
 * `REQUIRE ... WITH <resource limits> [PASSWORD EXPIRE ...]`: what SHOW CREATE USER holds and
 * SHOW GRANTS (on MySQL) does not, and what decides whether and how often the account logs in.
 */
function accountSettings(server: MysqlServer, t: AccountRow): { sql: string; values: unknown[] } {
  const values: unknown[] = [...requireValues(t)];
  let sql = requireClause(t);
  sql += ' WITH MAX_QUERIES_PER_HOUR ? MAX_UPDATES_PER_HOUR ? MAX_CONNECTIONS_PER_HOUR ? MAX_USER_CONNECTIONS ?';
  values.push(t.maxQuestions, t.maxUpdates, t.maxConnections, t.maxUserConnections);
  if (server.flavor === 'mariadb') {
    sql += ' MAX_STATEMENT_TIME ?';
    values.push(t.maxStatementTime ?? 0);
  }
  if (server.flavor === 'mysql' || atLeast(server, 10, 4, 0)) {
    if (t.passwordLifetime === undefined) sql += ' PASSWORD EXPIRE DEFAULT';
    else if (t.passwordLifetime === 0) sql += ' PASSWORD EXPIRE NEVER';
    else {
      sql += ' PASSWORD EXPIRE INTERVAL ? DAY';
      values.push(t.passwordLifetime);
    }
  }
  return { sql, values };
}

/** MySQL 8: the current account's default roles (active at login), made the alternate's. */
async function copyDefaultRoles(admin: MysqlConnection, user: string, alternate: string, host: string): Promise<number> {
  const rows = asRows(await run(admin,
    'SELECT DEFAULT_ROLE_USER AS user, DEFAULT_ROLE_HOST AS host FROM mysql.default_roles WHERE USER = ? AND HOST = ? ORDER BY DEFAULT_ROLE_USER, DEFAULT_ROLE_HOST',
    [user, host], `reading the default roles of ${acct(user, host)}`, ADMIN_REMEDY));
  const target = acct(alternate, host);
  if (rows.length === 0) {
    await run(admin, 'SET DEFAULT ROLE NONE TO ?@?', [alternate, host], `clearing the default roles of ${target}`, ADMIN_REMEDY);
    return 0;
  }
  const roles = rows.map(() => '?@?').join(', ');
  await run(admin, `SET DEFAULT ROLE ${roles} TO ?@?`, [...rows.flatMap((r) => [text(r.user), text(r.host)]), alternate, host],
    `setting the default roles of ${target}`,
    'Every default role of the current user must be granted to the alternate user first (the grant copy does it) and the admin needs CREATE USER.');
  return rows.length;
}

/** The logins of a user name (not MariaDB roles of that name, not locked MySQL accounts or roles). */
export function otherAccountsSql(server: MysqlServer): string {
  const filter = server.flavor === 'mariadb' ? " AND is_role = 'N'" : atLeast(server, 5, 7, 6) ? " AND account_locked = 'N'" : '';
  return `SELECT Host AS host FROM mysql.user WHERE User = ?${filter} ORDER BY Host`;
}

/**
 * Single user: SET PASSWORD / ALTER USER CURRENT_USER() change only the account the session
 * matched. If the user can see that its name has accounts on other hosts (mysql.user is
 * readable: SELECT on mysql or globally), refuse before changing anything: those accounts
 * would keep the old password. An application user usually cannot read mysql.user: then this
 * cannot be seen and the rotation goes on (the README says so).
 */
async function checkSingleAccount(conn: MysqlConnection, username: string, log: Logger): Promise<void> {
  const who = text(firstRow(await run(conn, 'SELECT CURRENT_USER() AS account', [], 'reading the account this session matched')).account);
  const at = who.lastIndexOf('@');
  const matchedHost = at >= 0 ? who.slice(at + 1) : '%';
  let hosts: string[];
  try {
    hosts = asRows(await run(conn, otherAccountsSql(conn.server), [username], 'reading the accounts of this user')).map((r) => text(r.host));
  } catch (err) {
    if (!(err instanceof PrivilegeError)) throw err;
    log.info('mysql.user is not readable by this user: accounts of the same name on other hosts cannot be seen', { username, matchedHost });
    return;
  }
  const others = hosts.filter((h) => h !== matchedHost);
  if (others.length === 0) return;
  throw new RotationStateError(
    `The user "${username}" has accounts on several hosts (${hosts.map((h) => acct(username, h)).join(', ')}); changing its own password changes only ${acct(username, matchedHost)}, the account this session matched, and the others would keep the old password.`,
    'Drop the accounts that are not used, or rotate this user with the alternating-users strategy (masterarn), which sets the password of the alternate user on every host the current user has.',
  );
}

/** Replays SHOW GRANTS of user@host onto alternate@host; returns the number of statements run. */
async function copyGrants(admin: MysqlConnection, user: string, alternate: string, host: string, log: Logger): Promise<number> {
  const rows = asRows(await run(admin, 'SHOW GRANTS FOR ?@?', [user, host], `reading the grants of "${user}"@"${host}"`, ADMIN_REMEDY));
  let count = 0;
  for (const row of rows) {
    const statement = text(Object.values(row)[0]);
    let grant;
    try {
      grant = parseGrant(statement);
      if (grant.kind !== 'skip' && (grant.user !== user || grant.host !== host)) {
        throw new GrantParseError('its grantee is not the account asked for');
      }
    } catch (err) {
      throw new RotationError('UNSUPPORTED', `A SHOW GRANTS row of "${user}"@"${host}" could not be read (${(err as Error).message}); no grant was guessed.`, {
        remedy: 'Report the server version; grant the alternate user its privileges by hand meanwhile.',
      });
    }
    if (grant.kind === 'skip') {
      log.debug('grant not copied', { username: user, host, reason: grant.reason });
      continue;
    }
    // The server's text goes through unformatted (no values): a `?` in an object name stays as is.
    const shown = grant.head.length > 200 ? `${grant.head.slice(0, 200)}...` : grant.head;
    try {
      await run(admin, retarget(grant, alternate, host), undefined, `copying "${shown} ..." of ${acct(user, host)} to "${alternate}"`);
    } catch (err) {
      if (!(err instanceof PrivilegeError)) throw err;
      throw new PrivilegeError(
        `${err.message.replace(/\.$/, '')}. Grants before this one were copied, nothing after it; the alternate user's password was not changed.`,
        GRANT_COPY_REMEDY,
      );
    }
    count++;
  }
  return count;
}

/** `REQUIRE ...` mirroring mysql.user's ssl_type / ssl_cipher / x509_issuer / x509_subject. */
function requireClause(a: AccountRow): string {
  switch (a.sslType) {
    case 'ANY':
      return 'REQUIRE SSL';
    case 'X509':
      return 'REQUIRE X509';
    case 'SPECIFIED': {
      const parts = [a.sslCipher && 'CIPHER ?', a.x509Issuer && 'ISSUER ?', a.x509Subject && 'SUBJECT ?'].filter(Boolean);
      return parts.length ? `REQUIRE ${parts.join(' AND ')}` : 'REQUIRE SSL';
    }
    default:
      return 'REQUIRE NONE';
  }
}

function requireValues(a: AccountRow): string[] {
  return a.sslType === 'SPECIFIED' ? [a.sslCipher, a.x509Issuer, a.x509Subject].filter((v) => v !== '') : [];
}

/** A password nobody knows, for a freshly created account until its real one is set. */
function throwawayPassword(): string {
  return `${randomBytes(24).toString('base64url')}Aa1!`;
}

/**
 * The server's own limit: the width of mysql.user's User column (MySQL 5.7.8+: 32, MariaDB
 * 10.11: 128), else what the version implies.
 */
async function serverUsernameLimit(admin: MysqlConnection): Promise<number> {
  const rows = asRows(await run(
    admin,
    "SELECT CHARACTER_MAXIMUM_LENGTH AS len FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'user' AND COLUMN_NAME = 'User'",
    [],
    'reading the user name length limit',
    ADMIN_REMEDY,
  ));
  const len = Number(rows[0]?.len);
  if (Number.isInteger(len) && len > 0) return len;
  const { server } = admin;
  if (server.flavor === 'mariadb') return atLeast(server, 10, 0, 0) ? 80 : 16;
  return atLeast(server, 5, 7, 8) ? 32 : 16;
}

function describeServer(server: MysqlServer): string {
  if (server.version === '0.0.0') return 'the server'; // before SELECT VERSION() answered
  return `${server.flavor === 'mariadb' ? 'MariaDB' : 'MySQL'} ${server.numbers.join('.')}`;
}

/** Parses `SELECT VERSION()`: "8.0.36", "5.7.44-log", "10.11.6-MariaDB-log", "5.5.5-10.6.14-MariaDB". */
export function parseServerVersion(version: string): MysqlServer {
  const flavor = /mariadb/i.test(version) ? 'mariadb' : 'mysql';
  const v = flavor === 'mariadb' ? version.replace(/^5\.5\.5-/, '') : version;
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(v);
  if (!m) throw new ConnectError('CONFIG', `The server reported an unrecognised version "${version.slice(0, 60)}".`);
  return { version, flavor, numbers: [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] };
}

function atLeast(server: MysqlServer, major: number, minor: number, patch: number): boolean {
  const [a, b, c] = server.numbers;
  return a !== major ? a > major : b !== minor ? b > minor : c >= patch;
}

function limitOverride(env: Env): number | undefined {
  const raw = env.USERNAME_CHARACTER_LIMIT?.trim();
  if (!raw) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > 255) {
    throw new ConfigError(`USERNAME_CHARACTER_LIMIT must be a whole number between 1 and 255, got "${raw.slice(0, 20)}".`);
  }
  return n;
}

const ER_CREDENTIALS_CONTRADICT_TO_HISTORY = 3638;
const TOLERATED = Symbol('tolerated');

/** Server errors that mean a statement ran past its time: the server's own statement timeouts. */
const STATEMENT_TIMEOUT_ERRNOS = new Set([
  1969, // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
  3024, // ER_QUERY_TIMEOUT (MySQL max_execution_time)
  1205, // ER_LOCK_WAIT_TIMEOUT (lock_wait_timeout)
]);

/**
 * Runs one statement; driver errors become typed errors without the SQL text. Server errors
 * whose number is in `tolerate` return TOLERATED instead. A statement that has no answer after
 * STATEMENT_TIMEOUT_MS is abandoned, its connection destroyed, and the step fails with NETWORK.
 */
async function run(
  conn: MysqlConnection,
  sql: string,
  values: unknown[] | undefined,
  what: string,
  remedy?: string,
  tolerate: number[] = [],
): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = Symbol('timeout');
  try {
    const query = values === undefined ? conn.session.query(sql) : conn.session.query(sql, values);
    const timeout = new Promise<typeof timedOut>((resolve) => {
      timer = setTimeout(() => resolve(timedOut), conn.statementTimeoutMs);
    });
    const outcome = await Promise.race([query, timeout]);
    if (outcome === timedOut) {
      query.catch(() => undefined);
      conn.session.destroy?.();
      throw new ConnectError('NETWORK', statementTimeoutMessage(conn, what));
    }
    return outcome[0];
  } catch (err) {
    if (err instanceof RotationError) throw err;
    const n = errno(err);
    if (n !== undefined && tolerate.includes(n)) return TOLERATED;
    throw statementError(err, conn, what, remedy, values ?? []);
  } finally {
    clearTimeout(timer);
  }
}

function statementTimeoutMessage(conn: MysqlConnection, what: string): string {
  return `${what} failed: the statement timed out after ${conn.statementTimeoutMs} ms (STATEMENT_TIMEOUT_MS) on ${describeServer(conn.server)}; the server accepted the login but did not answer.`;
}

const STATEMENT_TIMEOUT_REMEDY =
  'Check the server\'s load and locks (a long transaction holding account or metadata locks), or raise STATEMENT_TIMEOUT_MS (and the Lambda timeout with it).';

/** The server's error number a typed error was made from, if any. */
export function serverErrno(err: unknown): number | undefined {
  const n = (err as { serverErrno?: unknown })?.serverErrno;
  return typeof n === 'number' ? n : undefined;
}

function statementError(err: unknown, conn: MysqlConnection, what: string, remedy: string | undefined, values: unknown[]): RotationError {
  const n = errno(err);
  return Object.assign(classifyStatementError(err, n, conn, what, remedy, values), { serverErrno: n });
}

function classifyStatementError(err: unknown, n: number | undefined, conn: MysqlConnection, what: string, remedy: string | undefined, values: unknown[]): RotationError {
  const detail = safeMessage(err, values);
  if (n !== undefined && STATEMENT_TIMEOUT_ERRNOS.has(n)) {
    return new ConnectError('NETWORK', `${statementTimeoutMessage(conn, what)} (${detail}) ${STATEMENT_TIMEOUT_REMEDY}`);
  }
  const code = String((err as { code?: unknown })?.code ?? '');
  if (n === undefined && (DRIVER_NETWORK_CODES.has(code) || nodeErrorClass(err) === 'NETWORK')) {
    return new ConnectError('NETWORK', `${what} failed: the connection was lost (${detail}).`);
  }
  if (n !== undefined && PRIVILEGE_ERRNOS.has(n)) {
    return new PrivilegeError(`"${conn.username}" is not allowed to do this: ${what} failed (${detail}).`, remedy);
  }
  if (n === 1290 || n === 1836) {
    return new ConfigError(`${what} failed: the server is read-only (${detail}).`, 'Point the secret\'s host at the writer (primary) endpoint, not a replica or reader endpoint.');
  }
  if (n === 1819) {
    return new ConfigError(`${what} failed: the new password does not satisfy the server's password policy (${detail}).`,
      'Adjust PASSWORD_LENGTH / EXCLUDE_* so generated passwords meet validate_password (or simple_password_check).');
  }
  if (n === ER_CREDENTIALS_CONTRADICT_TO_HISTORY) {
    return new ConfigError(`${what} failed: the server's password history rejects the new password (${detail}).`);
  }
  const message = `${what} failed on ${describeServer(conn.server)}: ${detail}.`;
  return n === undefined ? new RotationError('NETWORK', message) : new DatabaseError(message);
}

/**
 * "[CODE errno] message" without anything that may quote the statement; the statement's values
 * (passwords) are blanked out of the message too, should a server ever echo one.
 */
function safeMessage(err: unknown, values: unknown[] = []): string {
  const e = err as { code?: unknown; errno?: unknown; sqlMessage?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : 'ERROR';
  const n = errno(err);
  const label = n !== undefined ? `${code} ${n}` : code;
  if (n !== undefined && ECHOING_ERRNOS.has(n)) return `[${label}] the server rejected the statement's syntax`;
  let msg = typeof e?.sqlMessage === 'string' ? e.sqlMessage : typeof e?.message === 'string' ? e.message : String(err);
  for (const v of values) if (typeof v === 'string' && v.length >= 4) msg = msg.split(v).join('***');
  return `[${label}] ${msg}`;
}

function errno(err: unknown): number | undefined {
  const n = (err as { errno?: unknown })?.errno;
  // Node system errors carry negative errnos; server errors are positive.
  return typeof n === 'number' && n > 0 ? n : undefined;
}

/** Connect failures -> AUTH / TLS / NETWORK / CONFIG / PRIVILEGE. */
export function classifyConnectError(err: unknown, secret: Pick<DbSecret, 'username' | 'host' | 'password'>, port: number): ConnectError {
  if (err instanceof ConnectError) return err;
  const { username, host } = secret;
  const code = String((err as { code?: unknown })?.code ?? '');
  const n = errno(err);
  const where = `"${username}"@${host}:${port}`;
  const detail = safeMessage(err, [secret.password]);
  if (n === 1045 || n === 1698 || n === 1130 || n === 1129 || n === 1862 || n === 1820 || n === 3118 || n === 4151) {
    return new ConnectError('AUTH', `Login as ${where} was refused: ${detail}`);
  }
  if (n === 3159 || /secure transport|insecure transport/i.test(detail)) {
    return new ConnectError('TLS', `Login as ${where} needs TLS: ${detail}`);
  }
  if (n === 1044) return new ConnectError('PRIVILEGE', `${where} may not use the secret's database: ${detail}`);
  if (n === 1049) return new ConnectError('CONFIG', `The secret's database does not exist on ${host}:${port}: ${detail}`);
  if (n === 1040) return new ConnectError('NETWORK', `${host}:${port} has too many connections: ${detail}`);
  // Without a server error number the failure is the driver's or Node's.
  const node = n === undefined && !DRIVER_NETWORK_CODES.has(code) ? nodeErrorClass(err) : undefined;
  if (DRIVER_TLS_CODES.has(code) || node === 'TLS') {
    return new ConnectError('TLS', `TLS with ${host}:${port} failed: ${detail}`);
  }
  if (DRIVER_NETWORK_CODES.has(code) || n === undefined) {
    return new ConnectError('NETWORK', `Cannot reach ${host}:${port}: ${detail}`);
  }
  return new ConnectError('AUTH', `Login as ${where} failed: ${detail}`);
}

// ---------------------------------------------------------------------------------------------
// TLS

/**
 * mysql2 `ssl` options. Without a configured CA (secret `sslCa` or SSL_CA_BUNDLE) the server is
 * verified against defaultTrustedCas(): Node's public roots plus the Amazon RDS CA bundle.
 */
export function sslOptions(tls: TlsOptions): { ca: string | string[]; rejectUnauthorized: boolean; verifyIdentity: boolean } {
  return { ca: tls.ca ?? defaultTrustedCas(), rejectUnauthorized: tls.verifyChain, verifyIdentity: tls.verifyHostname };
}

/**
 * A TCP socket to an IP host that tells Node's TLS layer which address to verify the certificate
 * against. mysql2 sends no servername for an IP (SNI forbids it), and Node then checks the
 * certificate against `socket._host`, which net leaves empty for IP connections, falling back to
 * "localhost": any certificate for localhost would pass.
 */
function hostSocket(host: string, port: number): Socket {
  const socket = netConnect({ host, port });
  socket.setNoDelay(true);
  (socket as unknown as { _host: string })._host = host;
  return socket;
}

/**
 * The driver, loaded on the first connection rather than with the bundle: createSecret (and any
 * step that never logs in) does not pay for loading and compiling it in a cold container.
 */
function mysqlDriver(): typeof import('mysql2/promise') {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('mysql2/promise') as typeof import('mysql2/promise');
  } catch (err) {
    throw driverLoadError('mysql2', err);
  }
}

async function defaultConnect(config: ConnectionOptions): Promise<MysqlSession> {
  const conn = await mysqlDriver().createConnection(config);
  // A connection the server dropped or that was destroyed emits 'error' with no query waiting.
  conn.on('error', () => undefined);
  return {
    query: (sql, values) => (values === undefined ? conn.query(sql) : conn.query(sql, values)) as Promise<[unknown, unknown]>,
    end: () => conn.end(),
    destroy: () => conn.destroy(),
  };
}

/** Ends a session politely, but never waits longer than a statement may: a stalled server never answers QUIT. */
async function endSession(session: MysqlSession, timeoutMs = 5000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), timeoutMs);
  });
  try {
    const outcome = await Promise.race([session.end().then(() => 'ended' as const), late]);
    if (outcome === 'late') session.destroy?.();
  } catch {
    session.destroy?.();
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// rows

type Row = Record<string, unknown>;

function asRows(rows: unknown): Row[] {
  return Array.isArray(rows) ? (rows as Row[]) : [];
}

function firstRow(rows: unknown): Row {
  const r = asRows(rows)[0];
  if (!r) throw new Error('the server returned no row');
  return r;
}

/** Column values arrive as strings or, for BLOB columns, Buffers. */
function text(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return String(v);
}
