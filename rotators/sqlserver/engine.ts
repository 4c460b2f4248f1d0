import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Connection, ConnectionConfiguration } from 'tedious';
import {
  type AlternateUserChange,
  CLONE_SUFFIX,
  type ConnectOptions,
  type DatabaseEngine,
  type DbSecret,
  defaultAlternateUsername,
  defineEngine,
  driverLoadError,
  type EngineContext,
  type EngineProfile,
  errorChain,
  nodeErrorClass,
  type PasswordChange,
  portOf,
  type TlsOptions,
  trustedCaOption,
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
import { SQL } from './catalog';

export { SQL };

/**
 * Microsoft SQL Server (and RDS for SQL Server), through tedious, the TDS driver under `mssql`.
 * One tedious Connection per login: no pool, so one login attempt is exactly one TDS login, and
 * nothing logs in again later with a password that has just been changed.
 *
 * Secret: `engine` (`sqlserver` or an RDS engine name), `host`, `port` (1433), `dbname`
 * (`master`), `username`, `password`, optional `ssl` / `sslCa`.
 *
 * Containment: a user of a contained database who authenticates with a database password
 * (`sys.database_principals.authentication_type` = 2) is changed with ALTER USER / CREATE USER
 * ... WITH PASSWORD; anyone else is a server login (ALTER LOGIN / CREATE LOGIN).
 *
 * Quoting. Identifiers go through `quoteName`, which is exactly T-SQL's QUOTENAME(name): `[`,
 * the name with every `]` doubled, `]`; at most 128 characters. T-SQL DDL takes no parameters
 * (ALTER LOGIN ... PASSWORD must be a literal, not a variable or an expression), so passwords are
 * sent as Unicode literals built by `nLiteral`: `N'`, the value with every `'` doubled, `'`.
 * Inside a T-SQL string only `'` ends the literal; the one other special sequence, a backslash
 * before a line break (line continuation), is ruled out by refusing CR and LF, and NUL is refused
 * too. Catalog lookups bind every value as an NVARCHAR parameter.
 */

export const SQLSERVER_ENGINES = ['sqlserver', 'sqlserver-ee', 'sqlserver-se', 'sqlserver-ex', 'sqlserver-web'] as const;
export const SQLSERVER_DEFAULT_PORT = 1433;
export const SQLSERVER_DEFAULT_DATABASE = 'master';
/** sysname: nvarchar(128). */
export const MAX_IDENTIFIER_LENGTH = 128;
/** SQL Server's limit for a SQL login's or contained user's password. */
export const MAX_PASSWORD_LENGTH = 128;
/** After a statement timed out, how long tedious waits for the server to acknowledge the cancel. */
export const CANCEL_TIMEOUT_MS = 2_000;
/**
 * The extended property on a clone's database user that marks it as the alternate of the user
 * its value names (set when this rotator creates the clone; see checkAlternateUser).
 */
export const MARKER_PROPERTY = 'rotation-lambdas:alternate-of';
/** Shown in sys.dm_exec_sessions.program_name, so DBAs can tell rotation sessions apart. */
export const APP_NAME = 'rotation-lambdas';

// ---------------------------------------------------------------------------------------------
// Quoting

/** T-SQL QUOTENAME(name): `[name]` with `]` doubled. Throws for what QUOTENAME would turn into NULL. */
export function quoteName(name: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_IDENTIFIER_LENGTH || name.includes('\u0000')) {
    throw new SecretFormatError(
      `The name "${String(name).slice(0, 40)}" cannot be a SQL Server identifier: it must be 1-${MAX_IDENTIFIER_LENGTH} characters without NUL.`,
    );
  }
  return `[${name.replace(/]/g, ']]')}]`;
}

/** A T-SQL Unicode string literal, `N'...'` with `'` doubled. `what` names the value in errors (never the value). */
export function nLiteral(value: string, what: string): string {
  if (/[\u0000\r\n]/.test(value)) {
    throw new SecretFormatError(
      `The ${what} contains a NUL or line-break character, which cannot be sent safely in a T-SQL password literal.`,
      'Set a password without control characters.',
    );
  }
  return `N'${value.replace(/'/g, "''")}'`;
}

// ---------------------------------------------------------------------------------------------
// The connection the engine works through (tedious in production, a fake in tests)

export type Row = Record<string, unknown>;

export interface SqlServerConnectionLike {
  /** Run one batch. `params` are bound as NVARCHAR parameters (`@name` in the text). */
  query(sql: string, params?: Record<string, string>): Promise<Row[]>;
  close(): Promise<void>;
}

/** Opens a connection from a tedious configuration; `tls` is the attempt's TLS policy. */
export type SqlServerConnectFn = (config: ConnectionConfiguration, tls: TlsOptions) => Promise<SqlServerConnectionLike>;

export interface SqlServerEngineOptions {
  /** Connection factory; defaults to `connectTedious`. Tests inject a fake. */
  connect?: SqlServerConnectFn;
}

/** The tedious configuration for one login attempt: host, port, database, TLS and timeouts from the secret. */
export function buildConnectionConfig(secret: DbSecret, options: Pick<ConnectOptions, 'tls' | 'connectTimeoutMs' | 'statementTimeoutMs'>): ConnectionConfiguration {
  const { tls } = options;
  return {
    server: secret.host,
    authentication: { type: 'default', options: { userName: secret.username, password: secret.password } },
    options: {
      port: portOf(secret, SQLSERVER_DEFAULT_PORT),
      database: typeof secret.dbname === 'string' && secret.dbname ? secret.dbname : SQLSERVER_DEFAULT_DATABASE,
      encrypt: tls.enabled,
      // tedious either verifies chain and host name together or nothing; verify-ca is checked by
      // connectTedious on the 'secure' event instead (see TlsLoginGuard).
      trustServerCertificate: !(tls.verifyChain && tls.verifyHostname),
      cryptoCredentialsDetails: { minVersion: 'TLSv1.2', ...trustedCaOption(tls) },
      connectTimeout: options.connectTimeoutMs,
      // STATEMENT_TIMEOUT_MS: tedious cancels a request that takes longer (ETIMEOUT); TimedConnection is the backstop.
      requestTimeout: options.statementTimeoutMs,
      cancelTimeout: Math.min(CANCEL_TIMEOUT_MS, options.statementTimeoutMs),
      appName: APP_NAME,
    },
  };
}

/** TDS packet type PRELOGIN: the only packets allowed before TLS is up (the TLS handshake travels inside them). */
const TDS_PRELOGIN = 0x12;

/** A TLS policy violation found by the guard, before any credential left the client. */
export class TlsGuardError extends Error {
  override name = 'TlsGuardError';
}

/**
 * Enforces the TLS policy on one tedious connection, on the raw socket:
 *
 * - tedious with `encrypt: true` carries on in plaintext when the server's PRELOGIN answer says
 *   it does not support encryption, and then sends the LOGIN7 packet (the password, merely
 *   obfuscated) in clear. The guard lets only PRELOGIN packets through until TLS is up, so such a
 *   downgrade fails before the password is sent.
 * - verify-ca: tedious cannot check the chain without the host name, so the connection runs with
 *   trustServerCertificate and the guard rejects the certificate on the 'secure' event unless the
 *   only problem is the host name. Rejection destroys the socket before the LOGIN7 packet is
 *   written.
 */
export class TlsLoginGuard {
  private secured = false;
  private failure: Error | undefined;
  private socket: Socket | undefined;

  constructor(private readonly tls: TlsOptions) {}

  /** Wraps a new socket's writes (tedious opens another one on a redirect or a retry). Returns the socket. */
  attach(socket: Socket): Socket {
    this.socket = socket;
    this.secured = false;
    const write = socket.write;
    socket.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (this.failure) return false;
      if (!this.secured && !isPrelogin(chunk)) {
        this.fail(new TlsGuardError('The server did not negotiate TLS; refusing to send the login without encryption.'));
        return false;
      }
      return (write as (...args: unknown[]) => boolean).call(socket, chunk, ...rest);
    }) as Socket['write'];
    return socket;
  }

  /** tedious's 'secure' event: the TLS handshake finished; LOGIN7 has not been sent yet. */
  onSecure(cleartext: TLSSocket): void {
    if (this.tls.verifyChain && !cleartext.authorized) {
      const reason = String(cleartext.authorizationError ?? 'not authorized');
      const hostnameOnly = reason === 'ERR_TLS_CERT_ALTNAME_INVALID';
      if (this.tls.verifyHostname || !hostnameOnly) {
        this.fail(new TlsGuardError(`The server certificate was rejected (${reason}).`));
        return;
      }
    }
    this.secured = true;
  }

  get error(): Error | undefined {
    return this.failure;
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.socket?.destroy(err);
  }
}

function isPrelogin(chunk: unknown): boolean {
  return chunk instanceof Uint8Array && chunk.length > 0 && chunk[0] === TDS_PRELOGIN;
}

/**
 * The driver, loaded on the first connection rather than with the bundle: createSecret (and any
 * step that never logs in) does not pay for loading and compiling it in a cold container.
 */
function tediousDriver() {
  try {
    /* eslint-disable @typescript-eslint/no-require-imports */
    const { Connection, Request, TYPES } = require('tedious') as typeof import('tedious');
    const { connectInSequence } = require('tedious/lib/connector') as typeof import('tedious/lib/connector');
    /* eslint-enable @typescript-eslint/no-require-imports */
    return { Connection, Request, TYPES, connectInSequence };
  } catch (err) {
    throw driverLoadError('tedious', err);
  }
}

/** The production connection factory: one tedious Connection, TLS policy enforced by TlsLoginGuard. */
export async function connectTedious(config: ConnectionConfiguration, tls: TlsOptions): Promise<SqlServerConnectionLike> {
  const { Connection, Request, TYPES, connectInSequence } = tediousDriver();
  const guard = tls.enabled ? new TlsLoginGuard(tls) : undefined;
  const full: ConnectionConfiguration = guard
    ? {
      ...config,
      options: {
        ...config.options,
        connector: (async (...args: Parameters<typeof connectInSequence>) => guard.attach(await connectInSequence(...args))) as () => Promise<Socket>,
      },
    }
    : config;
  const conn = new Connection(full);
  // A socket error after login fails the running request; without a listener it would crash the process.
  conn.on('error', () => undefined);
  if (guard) conn.on('secure', (cleartext) => guard.onSecure(cleartext));
  await new Promise<void>((resolve, reject) => {
    conn.connect((err) => {
      if (!err) return resolve();
      // The guard's reason is the real one; tedious reports it as a lost socket.
      if (guard?.error && !errorChain(err).includes(guard.error)) (err as Error & { cause?: unknown }).cause = guard.error;
      reject(err);
    });
  });
  return new TediousConnection(conn, Request, TYPES.NVarChar);
}

class TediousConnection implements SqlServerConnectionLike {
  constructor(
    private readonly conn: Connection,
    private readonly Request: typeof import('tedious').Request,
    private readonly nvarchar: typeof import('tedious').TYPES.NVarChar,
  ) {}

  query(sql: string, params?: Record<string, string>): Promise<Row[]> {
    return new Promise((resolve, reject) => {
      const rows: Row[] = [];
      const request = new this.Request(sql, (err) => (err ? reject(err) : resolve(rows)));
      request.on('row', (columns: { value: unknown; metadata: { colName: string } }[]) => {
        rows.push(Object.fromEntries(columns.map((c) => [c.metadata.colName, c.value])));
      });
      if (params && Object.keys(params).length > 0) {
        for (const [name, value] of Object.entries(params)) request.addParameter(name, this.nvarchar, value);
        this.conn.execSql(request);
      } else {
        this.conn.execSqlBatch(request);
      }
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.conn.closed) return resolve();
      this.conn.once('end', () => resolve());
      this.conn.close();
    });
  }
}

/** What a statement timeout says, on every path (tedious's ETIMEOUT, the backstop, a dropped socket). */
function statementTimeoutError(ms: number | undefined, cause?: unknown): ConnectError {
  return new ConnectError(
    'NETWORK',
    `SQL Server did not answer a statement within ${ms === undefined ? 'the statement timeout' : `${ms} ms`} (STATEMENT_TIMEOUT_MS); the session was abandoned. ` +
      'Check the server\'s load and blocking sessions, or raise STATEMENT_TIMEOUT_MS (keep it well below the Lambda timeout).',
    cause,
  );
}

/**
 * Bounds every statement on the driver side as well: tedious's requestTimeout normally fails the
 * request (ETIMEOUT), but its cancel waits for the server; this fails the statement at most
 * CANCEL_TIMEOUT_MS later whatever the server does, and closes the session.
 */
export class TimedConnection implements SqlServerConnectionLike {
  constructor(private readonly inner: SqlServerConnectionLike, readonly statementTimeoutMs: number) {}

  query(sql: string, params?: Record<string, string>): Promise<Row[]> {
    let timer: NodeJS.Timeout | undefined;
    const backstop = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.inner.close().catch(() => undefined);
        reject(statementTimeoutError(this.statementTimeoutMs));
      }, this.statementTimeoutMs + CANCEL_TIMEOUT_MS);
    });
    return Promise.race([this.inner.query(sql, params), backstop]).finally(() => clearTimeout(timer));
  }

  async close(): Promise<void> {
    // A session abandoned after a timeout may never answer a close either.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.inner.close(), new Promise<void>((resolve) => { timer = setTimeout(resolve, CANCEL_TIMEOUT_MS); })]);
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Error classification

/** tedious's error for a failed login attempt, classified for the framework (AUTH / TLS / NETWORK / CONFIG). */
export function classifyConnectError(err: unknown, where: string): ConnectError {
  if (err instanceof ConnectError) return err;
  const chain = errorChain(err);
  const codes = chain.map((e) => (e as { code?: unknown }).code).filter((c): c is string => typeof c === 'string');
  const message = `SQL Server login to ${where} failed: ${err instanceof Error ? err.message : String(err)}`;
  if (chain.some((e) => e instanceof TlsGuardError)) return new ConnectError('TLS', message, err);
  if (codes.includes('ELOGIN')) return new ConnectError('AUTH', message, err);
  if (codes.includes('EENCRYPT')) return new ConnectError('TLS', `${message} (the server requires encryption; do not set "ssl": false)`, err);
  if (nodeErrorClass(err) === 'TLS') return new ConnectError('TLS', message, err);
  if (err instanceof TypeError || err instanceof RangeError) return new ConnectError('CONFIG', message, err);
  return new ConnectError('NETWORK', message, err);
}

/** SQL Server errors meaning "not allowed". */
const PRIVILEGE_ERRORS = new Set([229, 230, 262, 297, 300, 916, 1088, 4604, 4613, 15007, 15151, 15247, 15404]);
/** CHECK_POLICY rejected the password. */
const PASSWORD_POLICY_ERRORS = new Set([15114, 15115, 15116, 15118, 15119]);

/** A statement failed for a reason other than privileges or the password policy. */
export class SqlServerStatementError extends DatabaseError {
  override name = 'SqlServerStatementError';

  constructor(message: string, readonly number?: number, cause?: unknown) {
    super(message, cause);
  }
}

/** tedious codes for a session that broke while a statement ran. */
const SESSION_LOST_CODES = new Set(['ESOCKET', 'ECLOSE', 'ECONNRESET', 'EPIPE']);

/** Runs a statement; `label` describes it in errors (it never contains a password). */
async function run(conn: SqlServerConnectionLike, sql: string, label: string, params?: Record<string, string>): Promise<Row[]> {
  try {
    return await conn.query(sql, params);
  } catch (err) {
    if (err instanceof RotationError) throw err;
    const code = (err as { code?: unknown }).code;
    if (code === 'ETIMEOUT') {
      throw statementTimeoutError(conn instanceof TimedConnection ? conn.statementTimeoutMs : undefined, err);
    }
    if (typeof code === 'string' && SESSION_LOST_CODES.has(code)) {
      throw new ConnectError('NETWORK', `The SQL Server session was lost while running ${label}: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    const number = (err as { number?: unknown }).number;
    const reason = err instanceof Error ? err.message : String(err);
    const detail = `SQL Server refused ${label}: ${reason}${typeof number === 'number' ? ` (error ${number})` : ''}`;
    if (typeof number === 'number' && PRIVILEGE_ERRORS.has(number)) {
      throw new PrivilegeError(detail, 'Give the user in the secret the permissions the rotation needs (see the README).', err);
    }
    if (typeof number === 'number' && PASSWORD_POLICY_ERRORS.has(number)) {
      throw new ConfigError(detail, 'Generated passwords must satisfy the password policy: adjust PASSWORD_LENGTH and the EXCLUDE_* variables.');
    }
    throw new SqlServerStatementError(detail, typeof number === 'number' ? number : undefined, err);
  }
}

// ---------------------------------------------------------------------------------------------
// Catalog queries (every value is a bound NVARCHAR parameter)


/** A row of SQL.dbPermissions or SQL.serverPermissions. */
export interface PermissionRow {
  class: number;
  state: string;
  permissionName: string;
  schemaName?: string | null;
  objectName?: string | null;
  columnName?: string | null;
  principalType?: string | null;
}

interface SessionInfo {
  majorVersion: number;
  databaseName: string;
  /** The session's principal is a contained database user with a password. */
  containedUser: boolean;
}

/**
 * Version, database and (unless `containment` is false) whether the session's principal is a
 * contained user. The admin path decides containment from the current user instead, so it skips
 * that query.
 */
async function sessionInfo(conn: SqlServerConnectionLike, { containment = true } = {}): Promise<SessionInfo> {
  const [v] = await run(conn, SQL.version, 'the version query');
  const productVersion = String(v?.productVersion ?? '');
  const majorVersion = Number.parseInt(productVersion.split('.')[0] ?? '', 10);
  const databaseName = String(v?.databaseName ?? '');
  let containedUser = false;
  // sys.databases.containment and authentication_type exist from SQL Server 2012 (11.x).
  if (containment && majorVersion >= 11) {
    const [s] = await run(conn, SQL.session, 'the containment query');
    containedUser = Number(s?.containment ?? 0) !== 0 && Number(s?.authenticationType) === 2;
  }
  return { majorVersion: Number.isNaN(majorVersion) ? 0 : majorVersion, databaseName, containedUser };
}

// ---------------------------------------------------------------------------------------------
// Statements

const PERMISSION_NAME = /^[A-Z]+( [A-Z]+)*$/;
const STATES: Record<string, string> = { G: 'GRANT', W: 'GRANT', D: 'DENY' };

/** ON clause of a database permission, by sys.database_permissions.class; undefined: not supported. */
function dbSecurable(p: PermissionRow): string | null | undefined {
  switch (Number(p.class)) {
    case 0: // DATABASE
      return null;
    case 1: // OBJECT_OR_COLUMN
      if (!p.schemaName || !p.objectName) return undefined;
      return `OBJECT::${quoteName(p.schemaName)}.${quoteName(p.objectName)}${p.columnName ? ` (${quoteName(p.columnName)})` : ''}`;
    case 3: // SCHEMA
      return p.objectName ? `SCHEMA::${quoteName(p.objectName)}` : undefined;
    case 4: { // DATABASE_PRINCIPAL
      if (!p.objectName) return undefined;
      const kind = p.principalType === 'R' ? 'ROLE' : p.principalType === 'A' ? 'APPLICATION ROLE' : 'USER';
      return `${kind}::${quoteName(p.objectName)}`;
    }
    case 6: // TYPE
      return p.schemaName && p.objectName ? `TYPE::${quoteName(p.schemaName)}.${quoteName(p.objectName)}` : undefined;
    case 10: // XML_SCHEMA_COLLECTION
      return p.schemaName && p.objectName ? `XML SCHEMA COLLECTION::${quoteName(p.schemaName)}.${quoteName(p.objectName)}` : undefined;
    default: {
      const kind = SINGLE_NAME_DB_SECURABLES[Number(p.class)];
      return kind && p.objectName ? `${kind}::${quoteName(p.objectName)}` : undefined;
    }
  }
}

/** sys.database_permissions classes whose securable is one name, and their GRANT ... ON keyword. */
export const SINGLE_NAME_DB_SECURABLES: Record<number, string> = {
  5: 'ASSEMBLY',
  15: 'MESSAGE TYPE',
  16: 'CONTRACT',
  17: 'SERVICE',
  18: 'REMOTE SERVICE BINDING',
  19: 'ROUTE',
  23: 'FULLTEXT CATALOG',
  24: 'SYMMETRIC KEY',
  25: 'CERTIFICATE',
  26: 'ASYMMETRIC KEY',
  29: 'FULLTEXT STOPLIST',
  31: 'SEARCH PROPERTY LIST',
};

/** What a permission row is, for messages: `CONTROL on class 25 "signing_cert"` (names only, never values). */
export function describePermission(p: PermissionRow): string {
  const on = [p.schemaName, p.objectName, p.columnName].filter((x): x is string => typeof x === 'string' && x.length > 0).map((x) => quoteName(x)).join('.');
  return `${STATES[p.state] ?? p.state} ${String(p.permissionName).slice(0, 60)}${p.state === 'W' ? ' (WITH GRANT OPTION)' : ''} on ${Number(p.class) === 0 || Number(p.class) === 100 ? (Number(p.class) === 0 ? 'the database' : 'the server') : `securable class ${Number(p.class)}${on ? ` ${on}` : ''}`}`;
}

/** ON clause of a server permission, by sys.server_permissions.class; undefined: not supported. */
function serverSecurable(p: PermissionRow): string | null | undefined {
  switch (Number(p.class)) {
    case 100: // SERVER
      return null;
    case 101: // SERVER_PRINCIPAL
      if (!p.objectName) return undefined;
      return `${p.principalType === 'R' ? 'SERVER ROLE' : 'LOGIN'}::${quoteName(p.objectName)}`;
    case 105: // ENDPOINT
      return p.objectName ? `ENDPOINT::${quoteName(p.objectName)}` : undefined;
    default:
      return undefined;
  }
}

/** The GRANT / DENY statement replaying `p` for `grantee`, or undefined if it cannot be replayed. */
export function permissionStatement(p: PermissionRow, grantee: string, scope: 'database' | 'server'): string | undefined {
  const verb = STATES[p.state];
  if (!verb || !PERMISSION_NAME.test(p.permissionName)) return undefined;
  const on = scope === 'database' ? dbSecurable(p) : serverSecurable(p);
  if (on === undefined) return undefined;
  return `${verb} ${p.permissionName}${on ? ` ON ${on}` : ''} TO ${quoteName(grantee)}${p.state === 'W' ? ' WITH GRANT OPTION' : ''}`;
}

function permissionKey(p: PermissionRow): string {
  return JSON.stringify([Number(p.class), p.permissionName, p.schemaName ?? null, p.objectName ?? null, p.columnName ?? null, p.principalType ?? null, p.state]);
}

/**
 * The alternate user must never be the admin's own principal. The server decides (SUSER_SID,
 * DATABASE_PRINCIPAL_ID): its collation also equates names a string comparison keeps apart
 * (case, width, trailing spaces).
 */
function refuseSelf(principal: Row, alt: string): void {
  if (Number(principal.isSelf) === 1) {
    throw new RotationStateError(
      `The alternate user "${alt}" is the admin secret's own principal on this server; refusing to change the admin's password.`,
      'Use a child secret whose users differ from the admin user.',
    );
  }
}

/** ADOPT_UNMARKED_ALTERNATE: true/false (1/0, yes/no); anything else is a ConfigError. */
export function adoptUnmarked(env: Env): boolean {
  const raw = env.ADOPT_UNMARKED_ALTERNATE?.trim().toLowerCase();
  if (!raw) return false;
  if (['true', '1', 'yes', 'y'].includes(raw)) return true;
  if (['false', '0', 'no', 'n'].includes(raw)) return false;
  throw new ConfigError(`ADOPT_UNMARKED_ALTERNATE must be true or false, got "${raw.slice(0, 20)}".`);
}

interface PairSides {
  current: string;
  alternate: string;
  /** The `_clone` side, which carries the marker. */
  clone: string;
  /** The original user the marker names. */
  origin: string;
  contained: boolean;
}

function pairSides(current: string, alternate: string, contained = false): PairSides {
  const cloneIsAlternate = alternate === current + CLONE_SUFFIX;
  return { current, alternate, contained, clone: cloneIsAlternate ? alternate : current, origin: cloneIsAlternate ? current : alternate };
}

function capabilityKey(p: PermissionRow): string {
  return JSON.stringify([Number(p.class), p.permissionName, p.schemaName ?? null, p.objectName ?? null, p.columnName ?? null, p.principalType ?? null]);
}

/** Permissions `alt` holds that `current` does not (a GRANT, or a grant option `current` lacks); DENYs restrict and are ignored. */
function beyond(current: PermissionRow[], alt: PermissionRow[]): PermissionRow[] {
  const held = new Map<string, string>();
  for (const p of current) {
    if (p.state === 'G' || p.state === 'W') held.set(capabilityKey(p), held.get(capabilityKey(p)) === 'W' ? 'W' : p.state);
  }
  return alt.filter((p) => (p.state === 'G' && !held.has(capabilityKey(p))) || (p.state === 'W' && held.get(capabilityKey(p)) !== 'W'));
}

function extrasError(alt: string, current: string, where: string, roles: string[], permissions: PermissionRow[]): PrivilegeError {
  const what = [...roles, ...permissions.map(describePermission)];
  return new PrivilegeError(
    `The alternate user "${alt}" holds ${what.length} capabilit${what.length === 1 ? 'y' : 'ies'} ${where} that "${current}" lacks (${what.slice(0, 10).join('; ')}${what.length > 10 ? '; ...' : ''}); it is not this pair's alternate. Refusing to change its password.`,
    'Use another username for this secret, or remove those memberships/permissions if it really is the alternate of the current user.',
  );
}

/** SQL Server's facts: sysname is nvarchar(128), counted in UTF-16 code units (as quoteName counts them). */
export const SQLSERVER_PROFILE: EngineProfile = {
  name: 'sqlserver',
  engines: SQLSERVER_ENGINES,
  defaultPort: SQLSERVER_DEFAULT_PORT,
  defaultDatabase: SQLSERVER_DEFAULT_DATABASE,
  username: { maxLength: MAX_IDENTIFIER_LENGTH, unit: 'UTF-16 code units' },
  password: {
    validate(password: string): void {
      if ([...password].length > MAX_PASSWORD_LENGTH) {
        throw new ConfigError(`SQL Server passwords are at most ${MAX_PASSWORD_LENGTH} characters.`, `Set PASSWORD_LENGTH to ${MAX_PASSWORD_LENGTH} or less.`);
      }
      nLiteral(password, 'generated password');
    },
  },
};

/** Runs a statement; a privilege refusal is recorded in `refused` (reported together at the end) instead of thrown. */
async function runOrCollect(conn: SqlServerConnectionLike, sql: string, label: string, refused: string[]): Promise<boolean> {
  try {
    await run(conn, sql, label);
    return true;
  } catch (err) {
    if (!(err instanceof PrivilegeError)) throw err;
    refused.push(`${label}: ${err.message.replace(/^SQL Server refused [^:]*: /, '').replace(/ Give the user.*$/, '')}`);
    return false;
  }
}

function failIfRefused(refused: string[], to: string, where: string): void {
  if (refused.length === 0) return;
  throw new PrivilegeError(
    `The admin user may not give ${quoteName(to)} ${refused.length} of the current user's memberships/permissions in ${where}, so the alternate user would lack them: ${refused.join('; ')}.`,
    'Have a login that may give them (a member of the role for a fixed server role, CONTROL SERVER/sysadmin for server-level grants the RDS master lacks) grant them to the alternate user, then rotate again; the rotation did not switch users.',
  );
}

function names(rows: Row[], column: string): string[] {
  return rows.map((r) => r[column]).filter((v): v is string => typeof v === 'string');
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v ? v : undefined;
}

// ---------------------------------------------------------------------------------------------
// The engine

export function createSqlServerEngine(options: SqlServerEngineOptions = {}): DatabaseEngine<SqlServerConnectionLike> {
  const connectFn = options.connect ?? connectTedious;

  async function connect(secret: DbSecret, opts: ConnectOptions): Promise<SqlServerConnectionLike> {
    const config = buildConnectionConfig(secret, opts);
    const where = `${secret.host}:${config.options?.port} (database ${config.options?.database})`;
    opts.log.debug('connecting to SQL Server', {
      host: secret.host,
      port: config.options?.port,
      database: config.options?.database,
      username: secret.username,
      encrypt: opts.tls.enabled,
      verifyChain: opts.tls.verifyChain,
      verifyHostname: opts.tls.verifyHostname,
      customCa: opts.tls.ca !== undefined,
    });
    let conn: SqlServerConnectionLike;
    try {
      conn = await connectFn(config, opts.tls);
    } catch (err) {
      throw classifyConnectError(err, where);
    }
    return new TimedConnection(conn, opts.statementTimeoutMs);
  }

  async function setOwnPassword(conn: SqlServerConnectionLike, change: PasswordChange, { log }: EngineContext): Promise<void> {
    const info = await sessionInfo(conn);
    const kind = info.containedUser ? 'USER' : 'LOGIN';
    const target = `${kind} ${quoteName(change.username)}`;
    // OLD_PASSWORD is the password that just logged in (AWSCURRENT's, or AWSPREVIOUS's on the recovery path).
    await run(
      conn,
      `ALTER ${target} WITH PASSWORD = ${nLiteral(change.newPassword, 'new password')} OLD_PASSWORD = ${nLiteral(change.oldPassword, 'current password')}`,
      `ALTER ${target}`,
    );
    log.info('changed own password', { username: change.username, principal: info.containedUser ? 'contained database user' : 'login', database: info.databaseName });
  }

  // ---- the pair proof (read-only) -----------------------------------------------------------

  /**
   * Before anything changes: an existing alternate user must be a login (or contained user) that
   * can log in, hold nothing the current user lacks, and (where the pair has a database user in
   * this database) carry the marker naming the original user. See README "Alternating users".
   */
  async function checkAlternateUser(conn: SqlServerConnectionLike, change: AlternateUserChange, { log, env }: EngineContext): Promise<void> {
    const { currentUser, alternateUser: alt } = change;
    const adopt = adoptUnmarked(env);
    const info = await sessionInfo(conn, { containment: false });
    await refuseDdlTriggers(conn, info);
    const [template] = await run(conn, SQL.dbPrincipal, 'the database principal lookup', { name: currentUser });
    const contained = template !== undefined && Number(template.authenticationType) === 2;
    const sides = pairSides(currentUser, alt, contained);

    if (contained) {
      const [existing] = await run(conn, SQL.dbPrincipal, 'the database principal lookup', { name: alt });
      if (!existing) return;
      refuseSelf(existing, alt);
      if (existing.type !== 'S' || Number(existing.authenticationType) !== 2) {
        throw new RotationStateError(
          `The database principal "${alt}" in ${info.databaseName} exists but is not a contained user with a password; refusing to take it over.`,
          'Rename or drop it, or use another username.',
        );
      }
      await refuseDatabaseExtras(conn, currentUser, alt, alt, info);
      if (!change.precreated) await requireMarker(conn, sides, sides.clone, info, adopt, log);
      return;
    }

    const [current] = await run(conn, SQL.login, 'the login lookup', { name: currentUser });
    if (!current || current.type !== 'S') return; // upsertAlternateUser explains this one
    const [templateUser] = await run(conn, SQL.loginUser, 'the database user lookup', { name: currentUser });
    const templateName = templateUser ? String(templateUser.name) : undefined;
    const [existing] = await run(conn, SQL.login, 'the login lookup', { name: alt });
    if (!existing) {
      // A new login: the database user it will get must not be someone else's (an orphan with privileges).
      if (templateName) {
        const userName = defaultAlternateUsername(templateName);
        const [other] = await run(conn, SQL.dbPrincipal, 'the database principal lookup', { name: userName });
        if (other) await refuseDatabaseExtras(conn, templateName, userName, alt, info);
      }
      return;
    }
    refuseSelf(existing, alt);
    if (existing.type !== 'S') {
      throw new RotationStateError(`The server principal "${alt}" exists but is not a SQL login; refusing to take it over.`,
        'Rename or drop it, or use another username.');
    }
    if (Number(existing.disabled) === 1) {
      throw new RotationStateError(`The login "${alt}" exists but is disabled; refusing to take it over (a disabled login is not this pair's alternate).`,
        `If it is, enable it (ALTER LOGIN ${quoteName(alt)} ENABLE) and rotate again; otherwise use another username.`);
    }
    const serverRoles = new Set(names(await run(conn, SQL.serverRoles, 'the server role membership query', { name: currentUser }), 'roleName'));
    const extraRoles = names(await run(conn, SQL.serverRoles, 'the server role membership query', { name: alt }), 'roleName').filter((r) => !serverRoles.has(r));
    const extraPermissions = beyond(
      await run(conn, SQL.serverPermissions, 'the server permission query', { name: currentUser }) as unknown as PermissionRow[],
      await run(conn, SQL.serverPermissions, 'the server permission query', { name: alt }) as unknown as PermissionRow[],
    );
    if (extraRoles.length > 0 || extraPermissions.length > 0) {
      throw extrasError(alt, currentUser, 'on the server', extraRoles.map((r) => `server role ${quoteName(r)}`), extraPermissions);
    }
    const [altUser] = await run(conn, SQL.loginUser, 'the database user lookup', { name: alt });
    if (altUser) await refuseDatabaseExtras(conn, templateName, String(altUser.name), alt, info);
    if (!change.precreated) await requireMarker(conn, sides, sides.clone, info, adopt, log);
  }

  /**
   * Refuses, before anything changes, when an enabled DDL trigger would fire on the admin's
   * statements: a database DDL trigger in the secret's database (any db_owner there, often the
   * rotated user, can create one) or a server DDL trigger. A trigger runs as the caller, so it
   * would run with the admin's rights. Only names are reported, each quoted with quoteName.
   */
  async function refuseDdlTriggers(conn: SqlServerConnectionLike, info: SessionInfo): Promise<void> {
    const [visibility] = await run(conn, SQL.triggerVisibility, 'the trigger visibility query');
    if (Number(visibility?.canSee) !== 1) {
      throw new PrivilegeError(
        `The admin user lacks VIEW DEFINITION on database ${quoteName(info.databaseName)}, so it cannot see whether a database DDL trigger would run with its rights when it creates, alters or grants there. Nothing was changed.`,
        `Grant the admin VIEW DEFINITION in ${quoteName(info.databaseName)} (db_owner and VIEW ANY DEFINITION on the server include it), then rotate again.`,
      );
    }
    const inDatabase = names(await run(conn, SQL.databaseTriggers, 'the database DDL trigger query'), 'name');
    const onServer = names(await run(conn, SQL.serverTriggers, 'the server DDL trigger query'), 'name');
    if (inDatabase.length === 0 && onServer.length === 0) return;
    const found = [
      ...inDatabase.map((n) => `database DDL trigger ${quoteName(n)} in ${quoteName(info.databaseName)}`),
      ...onServer.map((n) => `server DDL trigger ${quoteName(n)}`),
    ];
    throw new PrivilegeError(
      `Refusing to create, alter or grant anything as the admin user: ${found.join(', ')} ${found.length === 1 ? 'is' : 'are'} enabled and would run with the admin's rights (a DDL trigger runs as the user whose statement fires it; any db_owner of the database can create a database DDL trigger). Nothing was changed.`,
      `Inspect and drop the trigger(s) (DROP TRIGGER ${quoteName(inDatabase[0] ?? onServer[0])} ON ${inDatabase.length > 0 ? 'DATABASE' : 'ALL SERVER'}), or disable them (DISABLE TRIGGER ... ON DATABASE / ALL SERVER) for the rotation, then rotate again; or rotate with the single-user strategy (no masterarn), whose statements run with the rotated user's own rights.`,
    );
  }

  /** The alternate's database user `altUser` may hold no role or permission `fromUser` (absent: none) lacks. */
  async function refuseDatabaseExtras(conn: SqlServerConnectionLike, fromUser: string | undefined, altUser: string, alt: string, info: SessionInfo): Promise<void> {
    const roles = new Set(fromUser ? names(await run(conn, SQL.dbRoles, 'the role membership query', { name: fromUser }), 'roleName') : []);
    const extraRoles = names(await run(conn, SQL.dbRoles, 'the role membership query', { name: altUser }), 'roleName').filter((r) => !roles.has(r));
    const extraPermissions = beyond(
      fromUser ? await run(conn, SQL.dbPermissions, 'the database permission query', { name: fromUser }) as unknown as PermissionRow[] : [],
      await run(conn, SQL.dbPermissions, 'the database permission query', { name: altUser }) as unknown as PermissionRow[],
    );
    if (extraRoles.length > 0 || extraPermissions.length > 0) {
      throw extrasError(alt, fromUser ?? '(no database user)', `in database ${info.databaseName} (database user ${quoteName(altUser)})`,
        extraRoles.map((r) => `database role ${quoteName(r)}`), extraPermissions);
    }
  }

  /** The clone side's database user carries the marker naming the original, or ADOPT_UNMARKED_ALTERNATE allows an unmarked pair. */
  async function requireMarker(conn: SqlServerConnectionLike, sides: PairSides, cloneLoginOrUser: string, info: SessionInfo, adopt: boolean, log: Logger): Promise<void> {
    const cloneUser = sides.contained ? cloneLoginOrUser : await loginUserName(conn, cloneLoginOrUser);
    const marker = cloneUser ? await markerOf(conn, cloneUser) : undefined;
    if (marker === sides.origin) return;
    const where = cloneUser
      ? `the database user ${quoteName(cloneUser)} in ${info.databaseName} carries ${marker === undefined ? 'no' : 'another'} extended property ${MARKER_PROPERTY} naming "${sides.origin}"`
      : `"${sides.clone}" has no database user in ${info.databaseName}, where the marker would be`;
    if (adopt) {
      log.warn('adopting an unmarked alternate user (ADOPT_UNMARKED_ALTERNATE=true): it holds nothing the current user lacks; the marker is added now', {
        alternateUser: sides.alternate, clone: sides.clone, database: info.databaseName,
      });
      return;
    }
    throw new PrivilegeError(
      `The alternate user "${sides.alternate}" already exists but is not marked as this pair's alternate: ${where}. Refusing to change its password.`,
      `If "${sides.alternate}" really is the alternate of "${sides.current}" (e.g. created by AWS's rotation function or an older version of this one), set ADOPT_UNMARKED_ALTERNATE=true for one rotation; otherwise use another username.`,
    );
  }

  async function loginUserName(conn: SqlServerConnectionLike, login: string): Promise<string | undefined> {
    const [u] = await run(conn, SQL.loginUser, 'the database user lookup', { name: login });
    return u ? String(u.name) : undefined;
  }

  async function markerOf(conn: SqlServerConnectionLike, user: string): Promise<string | undefined> {
    const [row] = await run(conn, SQL.marker, 'the marker lookup', { name: user, property: MARKER_PROPERTY });
    return typeof row?.value === 'string' ? row.value : undefined;
  }

  /** The statement (and its parameters) that sets the marker on `user`, or nothing when it is already there. */
  async function markerStatement(conn: SqlServerConnectionLike, user: string, origin: string, userExists: boolean): Promise<{ sql: string; params: Record<string, string> } | undefined> {
    const has = userExists ? await markerOf(conn, user) : undefined;
    if (has === origin) return undefined;
    const proc = has === undefined ? 'sp_addextendedproperty' : 'sp_updateextendedproperty';
    return {
      sql: `EXEC sys.${proc} @name = @markerName, @value = @markerValue, @level0type = N'USER', @level0name = @markerUser`,
      params: { markerName: MARKER_PROPERTY, markerValue: origin, markerUser: user },
    };
  }

  /** Runs statements as one batch in one transaction: all of them happen, or none (XACT_ABORT rolls back on any error). */
  async function atomically(conn: SqlServerConnectionLike, statements: string[], params: Record<string, string>, label: string): Promise<void> {
    if (statements.length === 1 && Object.keys(params).length === 0) {
      await run(conn, statements[0], label);
      return;
    }
    await run(conn, ['SET XACT_ABORT ON', 'BEGIN TRANSACTION', ...statements, 'COMMIT TRANSACTION'].join(';\n'), label, params);
  }

  // ---- create or update ----------------------------------------------------------------------

  /**
   * A concurrent duplicate of this step (Secrets Manager may invoke it twice) can create the
   * login or user between our lookup and our CREATE: SQL Server answers 15025/15023, the
   * transaction rolls back, and one more pass finds the (marked) user and converges.
   */
  async function upsertAlternateUser(conn: SqlServerConnectionLike, change: AlternateUserChange, { log }: EngineContext): Promise<void> {
    try {
      await upsertOnce(conn, change, log);
    } catch (err) {
      if (!(err instanceof SqlServerStatementError) || (err.number !== 15025 && err.number !== 15023)) throw err;
      log.info('the alternate user was created concurrently (another invocation of this step); updating it instead', { username: change.alternateUser, error: err.number });
      await upsertOnce(conn, change, log);
    }
  }

  async function upsertOnce(conn: SqlServerConnectionLike, change: AlternateUserChange, log: Logger): Promise<void> {
    const info = await sessionInfo(conn, { containment: false });
    if (info.majorVersion < 11) {
      throw new RotationError('UNSUPPORTED', 'The alternating-users strategy needs SQL Server 2012 or later (ALTER ROLE ... ADD MEMBER, containment metadata).');
    }
    await refuseDdlTriggers(conn, info);
    const [template] = await run(conn, SQL.dbPrincipal, 'the database principal lookup', { name: change.currentUser });
    if (template && Number(template.authenticationType) === 2) {
      await upsertContainedUser(conn, change, template, info, log);
    } else {
      await upsertLogin(conn, change, info, log);
    }
  }

  /** The current user is a contained database user: the alternate is one too. */
  async function upsertContainedUser(conn: SqlServerConnectionLike, change: AlternateUserChange, template: Row, info: SessionInfo, log: Logger): Promise<void> {
    const alt = change.alternateUser;
    const sides = pairSides(change.currentUser, alt, true);
    const [existing] = await run(conn, SQL.dbPrincipal, 'the database principal lookup', { name: alt });
    const password = nLiteral(change.newPassword, 'new password');
    const schema = str(template.defaultSchema);
    if (!existing) {
      // The user and its marker together: a retry never finds an unmarked clone of its own making.
      const marker = await markerStatement(conn, sides.clone, sides.origin, sides.clone !== alt);
      await atomically(conn, [
        `CREATE USER ${quoteName(alt)} WITH PASSWORD = ${password}${schema ? `, DEFAULT_SCHEMA = ${quoteName(schema)}` : ''}`,
        ...(marker ? [marker.sql] : []),
      ], marker?.params ?? {}, `CREATE USER ${quoteName(alt)}`);
      log.info('created contained database user', { username: alt, database: info.databaseName, marked: sides.clone });
    } else {
      refuseSelf(existing, alt);
      if (existing.type !== 'S' || Number(existing.authenticationType) !== 2) {
        throw new RotationStateError(
          `The database principal "${alt}" in ${info.databaseName} exists but is not a contained user with a password; refusing to take it over.`,
          'Rename or drop it, or use another username.',
        );
      }
      await run(conn, `ALTER USER ${quoteName(alt)} WITH PASSWORD = ${password}`, `ALTER USER ${quoteName(alt)}`);
      log.info('set contained database user password', { username: alt, database: info.databaseName });
      await syncDefaultSchema(conn, alt, str(existing.defaultSchema), schema, log);
      await ensureMarker(conn, sides.clone, sides.origin, log);
    }
    await copyDatabaseAccess(conn, change.currentUser, alt, info, log);
  }

  async function ensureMarker(conn: SqlServerConnectionLike, user: string, origin: string, log: Logger): Promise<void> {
    const marker = await markerStatement(conn, user, origin, true);
    if (!marker) return;
    await run(conn, marker.sql, `the marker on ${quoteName(user)}`, marker.params);
    log.info('marked the alternate user pair', { username: user, alternateOf: origin });
  }

  /** The current user is a server login: the alternate is a login, with a database user if the current login has one. */
  async function upsertLogin(conn: SqlServerConnectionLike, change: AlternateUserChange, info: SessionInfo, log: Logger): Promise<void> {
    const { currentUser, alternateUser: alt } = change;
    const sides = pairSides(currentUser, alt);
    const [current] = await run(conn, SQL.login, 'the login lookup', { name: currentUser });
    if (!current || current.type !== 'S') {
      throw new RotationStateError(
        `"${currentUser}" is neither a SQL Server login nor a contained user of database ${info.databaseName}, or the admin user cannot see it.`,
        'The alternating-users strategy rotates SQL logins and contained database users; the admin needs ALTER ANY LOGIN.',
      );
    }
    const [templateUser] = await run(conn, SQL.loginUser, 'the database user lookup', { name: currentUser });
    const templateName = templateUser ? String(templateUser.name) : undefined;
    const schema = templateUser ? str(templateUser.defaultSchema) : undefined;
    const [existing] = await run(conn, SQL.login, 'the login lookup', { name: alt });
    const password = nLiteral(change.newPassword, 'new password');
    let altUser: string | undefined;
    if (!existing) {
      // The login, its database user and the marker in one transaction, so that a retry after
      // any failure finds either nothing or a marked pair.
      const defaultDb = str(current.defaultDatabase);
      const statements = [`CREATE LOGIN ${quoteName(alt)} WITH PASSWORD = ${password}${defaultDb ? `, DEFAULT_DATABASE = ${quoteName(defaultDb)}` : ''}`];
      let params: Record<string, string> = {};
      if (templateName) {
        altUser = defaultAlternateUsername(templateName);
        const [other] = await run(conn, SQL.dbPrincipal, 'the database principal lookup', { name: altUser });
        statements.push(mapUserStatement(other, altUser, alt, schema, info));
        const cloneUser = sides.clone === alt ? altUser : templateName;
        const marker = await markerStatement(conn, cloneUser, sides.origin, cloneUser !== altUser || other !== undefined);
        if (marker) {
          statements.push(marker.sql);
          params = marker.params;
        }
      }
      await atomically(conn, statements, params, `CREATE LOGIN ${quoteName(alt)}`);
      log.info('created login', { login: alt, databaseUser: altUser, database: info.databaseName });
    } else {
      refuseSelf(existing, alt);
      if (existing.type !== 'S') {
        throw new RotationStateError(`The server principal "${alt}" exists but is not a SQL login; refusing to take it over.`,
          'Rename or drop it, or use another username.');
      }
      await run(conn, `ALTER LOGIN ${quoteName(alt)} WITH PASSWORD = ${password}`, `ALTER LOGIN ${quoteName(alt)}`);
      log.info('set login password', { login: alt });
      if (templateName) {
        const [mapped] = await run(conn, SQL.loginUser, 'the database user lookup', { name: alt });
        if (mapped) {
          altUser = String(mapped.name);
          await syncDefaultSchema(conn, altUser, str(mapped.defaultSchema), schema, log);
        } else {
          altUser = defaultAlternateUsername(templateName);
          const [other] = await run(conn, SQL.dbPrincipal, 'the database principal lookup', { name: altUser });
          await run(conn, mapUserStatement(other, altUser, alt, schema, info), `the database user ${quoteName(altUser)} for login ${quoteName(alt)}`);
          log.info('created or mapped database user', { username: altUser, login: alt, database: info.databaseName });
          if (other) await syncDefaultSchema(conn, altUser, str(other.defaultSchema), schema, log);
        }
        await ensureMarker(conn, sides.clone === alt ? altUser : templateName, sides.origin, log);
      }
    }

    if (info.databaseName.toLowerCase() === 'master') await copyServerAccess(conn, currentUser, alt, log);
    if (!templateName || !altUser) {
      log.info('the current login has no user in this database; only the login was copied (no marker: see ADOPT_UNMARKED_ALTERNATE)', { login: currentUser, database: info.databaseName });
      return;
    }
    await copyDatabaseAccess(conn, templateName, altUser, info, log);
  }

  /** CREATE USER for the login, or remap an orphaned user of that name; anything else is someone else's. */
  function mapUserStatement(other: Row | undefined, altUser: string, login: string, schema: string | undefined, info: SessionInfo): string {
    if (!other) return `CREATE USER ${quoteName(altUser)} FOR LOGIN ${quoteName(login)}${schema ? ` WITH DEFAULT_SCHEMA = ${quoteName(schema)}` : ''}`;
    if (other.type === 'S' && other.loginName == null && Number(other.authenticationType) !== 2) {
      // An orphaned user (its login was dropped and recreated, or the database was restored elsewhere).
      return `ALTER USER ${quoteName(altUser)} WITH LOGIN = ${quoteName(login)}`;
    }
    throw new RotationStateError(
      `The database principal "${altUser}" in ${info.databaseName} exists and does not belong to login "${login}"; refusing to take it over.`,
      'Rename or drop it, or map it to the login yourself.',
    );
  }

  async function syncDefaultSchema(conn: SqlServerConnectionLike, user: string, has: string | undefined, wanted: string | undefined, log: Logger): Promise<void> {
    if (!wanted || has === wanted) return;
    await run(conn, `ALTER USER ${quoteName(user)} WITH DEFAULT_SCHEMA = ${quoteName(wanted)}`, `ALTER USER ${quoteName(user)} WITH DEFAULT_SCHEMA`);
    log.info('set default schema', { username: user, schema: wanted });
  }

  /** Database role memberships and permissions of `from`, added to `to` (additive; nothing is revoked). */
  async function copyDatabaseAccess(conn: SqlServerConnectionLike, from: string, to: string, info: SessionInfo, log: Logger): Promise<void> {
    const refused: string[] = [];
    await copyRoles(conn, { query: SQL.dbRoles, label: 'the role membership query', alter: 'ALTER ROLE' }, from, to, refused, (role) =>
      log.info('added database role membership', { username: to, role, database: info.databaseName }),
    );
    await copyPermissions(conn, SQL.dbPermissions, from, to, 'database', refused, log);
    failIfRefused(refused, to, `database ${info.databaseName}`);
  }

  /** Server role memberships and server permissions of login `from`, added to login `to`. */
  async function copyServerAccess(conn: SqlServerConnectionLike, from: string, to: string, log: Logger): Promise<void> {
    const refused: string[] = [];
    await copyRoles(conn, { query: SQL.serverRoles, label: 'the server role membership query', alter: 'ALTER SERVER ROLE' }, from, to, refused, (role) =>
      log.info('added server role membership', { login: to, role }),
    );
    await copyPermissions(conn, SQL.serverPermissions, from, to, 'server', refused, log);
    failIfRefused(refused, to, 'the server');
  }

  /** Adds `to` to every role of `from` it is not a member of yet; a refusal is collected, not thrown. */
  async function copyRoles(
    conn: SqlServerConnectionLike,
    kind: { query: string; label: string; alter: 'ALTER ROLE' | 'ALTER SERVER ROLE' },
    from: string,
    to: string,
    refused: string[],
    added: (role: string) => void,
  ): Promise<void> {
    const has = new Set(names(await run(conn, kind.query, kind.label, { name: to }), 'roleName'));
    for (const role of names(await run(conn, kind.query, kind.label, { name: from }), 'roleName')) {
      if (has.has(role)) continue;
      const statement = `${kind.alter} ${quoteName(role)} ADD MEMBER ${quoteName(to)}`;
      if (await runOrCollect(conn, statement, statement, refused)) added(role);
    }
  }

  /**
   * Replays every permission of `from` that `to` lacks. A permission on a securable class this
   * rotator cannot name fails the copy before any of them is replayed; a statement the server
   * refuses for lack of privilege is collected and reported with the others.
   */
  async function copyPermissions(conn: SqlServerConnectionLike, query: string, from: string, to: string, scope: 'database' | 'server', refused: string[], log: Logger): Promise<void> {
    const label = `the ${scope} permission query`;
    const has = new Set((await run(conn, query, label, { name: to }) as unknown as PermissionRow[]).map(permissionKey));
    const missing = (await run(conn, query, label, { name: from }) as unknown as PermissionRow[]).filter((p) => p.state !== 'R' && !has.has(permissionKey(p)));
    const planned = missing.map((p) => ({ p, stmt: permissionStatement(p, to, scope) }));
    const unknown = planned.filter((x) => x.stmt === undefined).map((x) => describePermission(x.p));
    if (unknown.length > 0) {
      throw new RotationError('UNSUPPORTED',
        `Cannot copy ${unknown.length} ${scope} permission(s) of "${from}" to "${to}": ${unknown.join('; ')} (a securable class this rotator cannot name, or a securable it cannot see). Nothing was granted.`,
        { remedy: `Grant them to ${quoteName(to)} yourself (then rotate again), or remove them from "${from}".` });
    }
    for (const { p, stmt } of planned) {
      if (await runOrCollect(conn, stmt!, stmt!, refused)) log.info(`copied ${scope} permission`, { username: to, permission: p.permissionName, state: STATES[p.state] });
    }
  }

  return defineEngine<SqlServerConnectionLike>({
    profile: SQLSERVER_PROFILE,
    preflight: () => import('./preflight').then((m) => m.sqlServerPreflight),
    connect,
    close: (conn) => conn.close(),
    setOwnPassword,
    checkAlternateUser,
    /** Pre-created pairs (`alternateUsername`): check both users, set only the alternate's password (precreated.ts). */
    setAlternatePassword: (conn, change, ctx) => import('./precreated').then((m) => m.setPrecreatedPassword(conn, change, ctx, { checkAlternateUser, run })),
    upsertAlternateUser,
    validateSecret(_secret: DbSecret, _label: string, env: Env) {
      adoptUnmarked(env);
    },
    async check(conn, _ctx) {
      const [row] = await run(conn, SQL.check, 'the check query');
      if (Number(row?.ok) !== 1) throw new SqlServerStatementError('The check query SELECT 1 returned no row.');
    },
  });
}
