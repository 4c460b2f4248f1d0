import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Connection, type ConnectionConfiguration, Request, TYPES } from 'tedious';
import { connectInSequence } from 'tedious/lib/connector';
import type { AlternateUserChange, ConnectOptions, DatabaseEngine, PasswordChange } from '../../src/db/engine';
import { errorChain, nodeErrorClass } from '../../src/db/net-errors';
import { type DbSecret, defaultAlternateUsername, portOf } from '../../src/db/secret';
import { type TlsOptions, trustedCaOption } from '../../src/db/tls';
import { ConfigError, ConnectError, PrivilegeError, RotationError, RotationStateError, SecretFormatError } from '../../src/errors';
import type { Logger } from '../../src/log';

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
/** How long one statement may run. */
export const REQUEST_TIMEOUT_MS = 30_000;
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
export function buildConnectionConfig(secret: DbSecret, options: Pick<ConnectOptions, 'tls' | 'connectTimeoutMs'>): ConnectionConfiguration {
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
      requestTimeout: REQUEST_TIMEOUT_MS,
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

/** The production connection factory: one tedious Connection, TLS policy enforced by TlsLoginGuard. */
export async function connectTedious(config: ConnectionConfiguration, tls: TlsOptions): Promise<SqlServerConnectionLike> {
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
  return new TediousConnection(conn);
}

class TediousConnection implements SqlServerConnectionLike {
  constructor(private readonly conn: Connection) {}

  query(sql: string, params?: Record<string, string>): Promise<Row[]> {
    return new Promise((resolve, reject) => {
      const rows: Row[] = [];
      const request = new Request(sql, (err) => (err ? reject(err) : resolve(rows)));
      request.on('row', (columns: { value: unknown; metadata: { colName: string } }[]) => {
        rows.push(Object.fromEntries(columns.map((c) => [c.metadata.colName, c.value])));
      });
      if (params && Object.keys(params).length > 0) {
        for (const [name, value] of Object.entries(params)) request.addParameter(name, TYPES.NVarChar, value);
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
export class SqlServerStatementError extends RotationError {
  override name = 'SqlServerStatementError';

  constructor(message: string, readonly number?: number, cause?: unknown) {
    super('UNSUPPORTED', message, { cause });
  }
}

/** Runs a statement; `label` describes it in errors (it never contains a password). */
async function run(conn: SqlServerConnectionLike, sql: string, label: string, params?: Record<string, string>): Promise<Row[]> {
  try {
    return await conn.query(sql, params);
  } catch (err) {
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

export const SQL = {
  check: 'SELECT 1 AS ok',
  version: "SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)) AS productVersion, DB_NAME() AS databaseName",
  /** The session's database containment and how the session's database principal authenticates (SQL Server 2012+). */
  session:
    'SELECT d.containment AS containment, p.authentication_type AS authenticationType ' +
    'FROM sys.databases AS d LEFT JOIN sys.database_principals AS p ON p.principal_id = DATABASE_PRINCIPAL_ID() ' +
    'WHERE d.name = DB_NAME()',
  /**
   * A database principal by name, with the login it belongs to (NULL: contained, orphaned or a
   * role); isSelf = 1 when it is the session's own principal (the server resolves the name).
   */
  dbPrincipal:
    'SELECT dp.name AS name, dp.type AS type, dp.authentication_type AS authenticationType, ' +
    'dp.default_schema_name AS defaultSchema, sp.name AS loginName, ' +
    'CASE WHEN dp.principal_id = DATABASE_PRINCIPAL_ID() THEN 1 ELSE 0 END AS isSelf ' +
    'FROM sys.database_principals AS dp LEFT JOIN sys.server_principals AS sp ON sp.sid = dp.sid ' +
    'WHERE dp.name = @name',
  /**
   * A server principal (login or server role) by name; isSelf = 1 when it is the session's own
   * login. Without ALTER ANY LOGIN (or VIEW ANY DEFINITION) only one's own login is visible.
   */
  login:
    'SELECT sp.name AS name, sp.type AS type, sp.default_database_name AS defaultDatabase, ' +
    'CASE WHEN sp.sid = SUSER_SID() THEN 1 ELSE 0 END AS isSelf ' +
    'FROM sys.server_principals AS sp WHERE sp.name = @name',
  /** The database user a login maps to in the current database (by SID). */
  loginUser:
    'SELECT dp.name AS name, dp.default_schema_name AS defaultSchema ' +
    'FROM sys.database_principals AS dp JOIN sys.server_principals AS sp ON sp.sid = dp.sid ' +
    'WHERE sp.name = @name',
  dbRoles:
    'SELECT r.name AS roleName FROM sys.database_role_members AS m ' +
    'JOIN sys.database_principals AS r ON r.principal_id = m.role_principal_id ' +
    'JOIN sys.database_principals AS u ON u.principal_id = m.member_principal_id ' +
    'WHERE u.name = @name',
  dbPermissions:
    'SELECT p.class AS class, p.state AS state, p.permission_name AS permissionName, ' +
    'CASE p.class WHEN 1 THEN OBJECT_SCHEMA_NAME(p.major_id) WHEN 6 THEN SCHEMA_NAME(t.schema_id) END AS schemaName, ' +
    'CASE p.class WHEN 1 THEN OBJECT_NAME(p.major_id) WHEN 3 THEN SCHEMA_NAME(p.major_id) WHEN 4 THEN tp.name WHEN 6 THEN t.name END AS objectName, ' +
    'CASE WHEN p.class = 1 AND p.minor_id <> 0 THEN COL_NAME(p.major_id, p.minor_id) END AS columnName, ' +
    'tp.type AS principalType ' +
    'FROM sys.database_permissions AS p ' +
    'JOIN sys.database_principals AS u ON u.principal_id = p.grantee_principal_id ' +
    'LEFT JOIN sys.database_principals AS tp ON p.class = 4 AND tp.principal_id = p.major_id ' +
    'LEFT JOIN sys.types AS t ON p.class = 6 AND t.user_type_id = p.major_id ' +
    'WHERE u.name = @name',
  serverRoles:
    'SELECT r.name AS roleName FROM sys.server_role_members AS m ' +
    'JOIN sys.server_principals AS r ON r.principal_id = m.role_principal_id ' +
    'JOIN sys.server_principals AS u ON u.principal_id = m.member_principal_id ' +
    'WHERE u.name = @name',
  serverPermissions:
    'SELECT p.class AS class, p.state AS state, p.permission_name AS permissionName, ' +
    'CASE p.class WHEN 101 THEN tp.name WHEN 105 THEN e.name END AS objectName, tp.type AS principalType ' +
    'FROM sys.server_permissions AS p ' +
    'JOIN sys.server_principals AS u ON u.principal_id = p.grantee_principal_id ' +
    'LEFT JOIN sys.server_principals AS tp ON p.class = 101 AND tp.principal_id = p.major_id ' +
    'LEFT JOIN sys.endpoints AS e ON p.class = 105 AND e.endpoint_id = p.major_id ' +
    'WHERE u.name = @name',
} as const;

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
    default:
      return undefined;
  }
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
    try {
      return await connectFn(config, opts.tls);
    } catch (err) {
      throw classifyConnectError(err, where);
    }
  }

  async function setOwnPassword(conn: SqlServerConnectionLike, change: PasswordChange, log: Logger): Promise<void> {
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

  async function upsertAlternateUser(conn: SqlServerConnectionLike, change: AlternateUserChange, log: Logger): Promise<void> {
    const info = await sessionInfo(conn, { containment: false });
    if (info.majorVersion < 11) {
      throw new RotationError('UNSUPPORTED', 'The alternating-users strategy needs SQL Server 2012 or later (ALTER ROLE ... ADD MEMBER, containment metadata).');
    }
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
    const [existing] = await run(conn, SQL.dbPrincipal, 'the database principal lookup', { name: alt });
    const password = nLiteral(change.newPassword, 'new password');
    const schema = str(template.defaultSchema);
    if (!existing) {
      await run(conn, `CREATE USER ${quoteName(alt)} WITH PASSWORD = ${password}${schema ? `, DEFAULT_SCHEMA = ${quoteName(schema)}` : ''}`,
        `CREATE USER ${quoteName(alt)}`);
      log.info('created contained database user', { username: alt, database: info.databaseName });
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
    }
    await copyDatabaseAccess(conn, change.currentUser, alt, info, log);
  }

  /** The current user is a server login: the alternate is a login, with a database user if the current login has one. */
  async function upsertLogin(conn: SqlServerConnectionLike, change: AlternateUserChange, info: SessionInfo, log: Logger): Promise<void> {
    const { currentUser, alternateUser: alt } = change;
    const [current] = await run(conn, SQL.login, 'the login lookup', { name: currentUser });
    if (!current || current.type !== 'S') {
      throw new RotationStateError(
        `"${currentUser}" is neither a SQL Server login nor a contained user of database ${info.databaseName}, or the admin user cannot see it.`,
        'The alternating-users strategy rotates SQL logins and contained database users; the admin needs ALTER ANY LOGIN.',
      );
    }
    const [existing] = await run(conn, SQL.login, 'the login lookup', { name: alt });
    const password = nLiteral(change.newPassword, 'new password');
    if (!existing) {
      const defaultDb = str(current.defaultDatabase);
      await run(conn, `CREATE LOGIN ${quoteName(alt)} WITH PASSWORD = ${password}${defaultDb ? `, DEFAULT_DATABASE = ${quoteName(defaultDb)}` : ''}`,
        `CREATE LOGIN ${quoteName(alt)}`);
      log.info('created login', { login: alt });
    } else {
      refuseSelf(existing, alt);
      if (existing.type !== 'S') {
        throw new RotationStateError(`The server principal "${alt}" exists but is not a SQL login; refusing to take it over.`,
          'Rename or drop it, or use another username.');
      }
      await run(conn, `ALTER LOGIN ${quoteName(alt)} WITH PASSWORD = ${password}`, `ALTER LOGIN ${quoteName(alt)}`);
      log.info('set login password', { login: alt });
    }

    if (info.databaseName.toLowerCase() === 'master') await copyServerAccess(conn, currentUser, alt, log);

    const [templateUser] = await run(conn, SQL.loginUser, 'the database user lookup', { name: currentUser });
    if (!templateUser) {
      log.info('the current login has no user in this database; only the login was copied', { login: currentUser, database: info.databaseName });
      return;
    }
    const templateName = String(templateUser.name);
    const schema = str(templateUser.defaultSchema);
    const [mapped] = await run(conn, SQL.loginUser, 'the database user lookup', { name: alt });
    let altUser: string;
    if (mapped) {
      altUser = String(mapped.name);
      await syncDefaultSchema(conn, altUser, str(mapped.defaultSchema), schema, log);
    } else {
      altUser = defaultAlternateUsername(templateName);
      const [other] = await run(conn, SQL.dbPrincipal, 'the database principal lookup', { name: altUser });
      if (!other) {
        await run(conn, `CREATE USER ${quoteName(altUser)} FOR LOGIN ${quoteName(alt)}${schema ? ` WITH DEFAULT_SCHEMA = ${quoteName(schema)}` : ''}`,
          `CREATE USER ${quoteName(altUser)}`);
        log.info('created database user', { username: altUser, login: alt, database: info.databaseName });
      } else if (other.type === 'S' && other.loginName == null && Number(other.authenticationType) !== 2) {
        // An orphaned user (its login was dropped and recreated, or the database was restored elsewhere).
        await run(conn, `ALTER USER ${quoteName(altUser)} WITH LOGIN = ${quoteName(alt)}`, `ALTER USER ${quoteName(altUser)} WITH LOGIN`);
        log.info('remapped orphaned database user to the login', { username: altUser, login: alt, database: info.databaseName });
        await syncDefaultSchema(conn, altUser, str(other.defaultSchema), schema, log);
      } else {
        throw new RotationStateError(
          `The database principal "${altUser}" in ${info.databaseName} exists and does not belong to login "${alt}"; refusing to take it over.`,
          'Rename or drop it, or map it to the login yourself.',
        );
      }
    }
    await copyDatabaseAccess(conn, templateName, altUser, info, log);
  }

  async function syncDefaultSchema(conn: SqlServerConnectionLike, user: string, has: string | undefined, wanted: string | undefined, log: Logger): Promise<void> {
    if (!wanted || has === wanted) return;
    await run(conn, `ALTER USER ${quoteName(user)} WITH DEFAULT_SCHEMA = ${quoteName(wanted)}`, `ALTER USER ${quoteName(user)} WITH DEFAULT_SCHEMA`);
    log.info('set default schema', { username: user, schema: wanted });
  }

  /** Database role memberships and permissions of `from`, added to `to` (additive; nothing is revoked). */
  async function copyDatabaseAccess(conn: SqlServerConnectionLike, from: string, to: string, info: SessionInfo, log: Logger): Promise<void> {
    await copyRoles(conn, { query: SQL.dbRoles, label: 'the role membership query', alter: 'ALTER ROLE' }, from, to, (role) =>
      log.info('added database role membership', { username: to, role, database: info.databaseName }),
    );
    await copyPermissions(conn, SQL.dbPermissions, from, to, 'database', log);
  }

  /** Server role memberships and server permissions of login `from`, added to login `to`. */
  async function copyServerAccess(conn: SqlServerConnectionLike, from: string, to: string, log: Logger): Promise<void> {
    await copyRoles(conn, { query: SQL.serverRoles, label: 'the server role membership query', alter: 'ALTER SERVER ROLE' }, from, to, (role) =>
      log.info('added server role membership', { login: to, role }),
    );
    await copyPermissions(conn, SQL.serverPermissions, from, to, 'server', log);
  }

  /** Adds `to` to every role of `from` it is not a member of yet. */
  async function copyRoles(
    conn: SqlServerConnectionLike,
    kind: { query: string; label: string; alter: 'ALTER ROLE' | 'ALTER SERVER ROLE' },
    from: string,
    to: string,
    added: (role: string) => void,
  ): Promise<void> {
    const has = new Set(names(await run(conn, kind.query, kind.label, { name: to }), 'roleName'));
    for (const role of names(await run(conn, kind.query, kind.label, { name: from }), 'roleName')) {
      if (has.has(role)) continue;
      const statement = `${kind.alter} ${quoteName(role)} ADD MEMBER ${quoteName(to)}`;
      await run(conn, statement, statement);
      added(role);
    }
  }

  async function copyPermissions(conn: SqlServerConnectionLike, query: string, from: string, to: string, scope: 'database' | 'server', log: Logger): Promise<void> {
    const label = `the ${scope} permission query`;
    const has = new Set((await run(conn, query, label, { name: to }) as unknown as PermissionRow[]).map(permissionKey));
    for (const p of await run(conn, query, label, { name: from }) as unknown as PermissionRow[]) {
      if (p.state === 'R' || has.has(permissionKey(p))) continue;
      const stmt = permissionStatement(p, to, scope);
      if (!stmt) {
        log.warn('skipped a permission this rotator cannot replay; grant it to the alternate user yourself', {
          scope, class: Number(p.class), permission: String(p.permissionName).slice(0, 60), username: to,
        });
        continue;
      }
      await run(conn, stmt, `${STATES[p.state]} ${p.permissionName} TO ${quoteName(to)}`);
      log.info(`copied ${scope} permission`, { username: to, permission: p.permissionName, state: STATES[p.state] });
    }
  }

  return {
    name: 'sqlserver',
    engines: SQLSERVER_ENGINES,
    defaultPort: SQLSERVER_DEFAULT_PORT,
    defaultDatabase: SQLSERVER_DEFAULT_DATABASE,
    maxUsernameLength: MAX_IDENTIFIER_LENGTH,
    // sysname is nvarchar(128): UTF-16 code units, as quoteName counts them.
    usernameLength: (username) => username.length,
    usernameLengthUnit: 'UTF-16 code units',
    connect,
    close: (conn) => conn.close(),
    setOwnPassword,
    upsertAlternateUser,
    async check(conn) {
      const [row] = await run(conn, SQL.check, 'the check query');
      if (Number(row?.ok) !== 1) throw new SqlServerStatementError('The check query SELECT 1 returned no row.');
    },
    validatePassword(password) {
      if ([...password].length > MAX_PASSWORD_LENGTH) {
        throw new ConfigError(`SQL Server passwords are at most ${MAX_PASSWORD_LENGTH} characters.`, `Set PASSWORD_LENGTH to ${MAX_PASSWORD_LENGTH} or less.`);
      }
      nLiteral(password, 'generated password');
    },
  };
}
