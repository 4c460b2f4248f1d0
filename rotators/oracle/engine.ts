import {
  type ConnectOptions,
  type DatabaseEngine,
  type DbSecret,
  defaultAlternateUsername,
  defineEngine,
  driverLoadError,
  type EngineContext,
  nodeErrorClass,
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
import { designated, MAX_PASSWORD_BYTES, oracleUserName, passwordProblem, RDS_DETECT_SQL } from './names';

export { MAX_PASSWORD_BYTES, oracleUserName, passwordProblem, RDS_DETECT_SQL };

/**
 * Oracle Database, through node-oracledb in Thin mode (pure JavaScript: no Instant Client, and
 * initOracleClient() is never called).
 *
 * Secret: `engine` (`oracle` or an RDS engine name), `host`, `port` (1521), `dbname` (REQUIRED:
 * the service name), `username`, `password`, optional `ssl`.
 *
 * User names follow ONE rule everywhere (SQL, DBA_USERS lookups, login, the alternate name):
 *  - a `username` wrapped in double quotes (`"\"App User\""` in JSON) is the exact,
 *    case-sensitive name, as created with CREATE USER "App User";
 *  - any other `username` is read the way Oracle reads an unquoted name: folded to upper case
 *    (`app` is the user APP), which is how CREATE USER app stored it, and what AWS's rotator does.
 * In SQL the resulting name is always sent as a quoted identifier. (Upper-casing uses JavaScript's
 * rules: give a non-ASCII name quoted, exactly as DBA_USERS shows it.)
 * The alternate user appends or strips `_CLONE`: `app` -> `APP_CLONE` -> `APP`;
 * `"App User"` -> `"App User_CLONE"` -> `"App User"`.
 *
 * Passwords cannot be bound in DDL, so they are sent as quoted identifiers (`IDENTIFIED BY
 * "..."`), after rejecting what a quoted identifier cannot hold (`"` and NUL) and anything over
 * 1024 bytes. Identifiers are quoted the same way: Oracle quoted identifiers have no escape
 * syntax, so rejecting `"` and NUL makes `"name"` exact. (The Thin driver does not scan DDL for
 * bind variables, so a `:` in a password is just a character.)
 *
 * Alternating users: the alternate user is created if missing, and on every rotation (and every
 * retry) receives every role, system and object grant of the current user, read with
 * DBMS_METADATA.GET_GRANTED_DDL and replayed statement by statement with only the grantee changed.
 */

export const ORACLE_ENGINES = ['oracle', 'oracle-ee', 'oracle-ee-cdb', 'oracle-se2', 'oracle-se2-cdb', 'custom-oracle-ee'] as const;
export const ORACLE_DEFAULT_PORT = 1521;
/** Oracle 12.2 and later: 128 bytes. Oracle 12.1 and earlier: 30 (set ORACLE_MAX_USERNAME_LENGTH=30). */
export const DEFAULT_MAX_USERNAME_BYTES = 128;
export const ORACLE_CLONE_SUFFIX = '_CLONE';
/** node-oracledb's OUT_FORMAT_ARRAY: rows as arrays, whatever the global default is. */
const OUT_FORMAT_ARRAY = 4001;
export const GRANT_TYPES = ['ROLE_GRANT', 'SYSTEM_GRANT', 'OBJECT_GRANT'] as const;

// ---------------------------------------------------------------------------------------------
// The part of node-oracledb the engine uses (the package ships no TypeScript types).

/** The object handed to `oracledb.getConnection()`. */
export interface OracleConnectConfig {
  user: string;
  password: string;
  connectString: string;
  /** Seconds, for the whole connection establishment. */
  connectTimeout: number;
  /** Seconds, for the TCP (and TLS) connection. */
  transportConnectTimeout: number;
  /** 0: statements carrying passwords are not kept in the connection's statement cache. */
  stmtCacheSize: number;
  /** TCPS only: check the server certificate names the host (verify-full). */
  sslServerDNMatch?: boolean;
}

/** A CLOB as node-oracledb returns it by default. */
export interface OracleLob {
  getData(): Promise<string | Buffer | null>;
  destroy?(): void;
}

export interface OracleResult {
  rows?: unknown[][];
}

/** The subset of a node-oracledb Connection the engine calls. */
export interface OracleConnectionLike {
  execute(sql: string, binds?: Record<string, string>, options?: { outFormat?: number }): Promise<OracleResult>;
  close(): Promise<void>;
  /** node-oracledb's per-connection round-trip limit in ms (0: none); the engine sets STATEMENT_TIMEOUT_MS. */
  callTimeout?: number;
}

/** After the driver's callTimeout, how long the engine still waits before abandoning the call itself. */
export const STATEMENT_TIMEOUT_GRACE_MS = 2_000;

function statementTimeoutError(ms: number, cause?: unknown): ConnectError {
  return new ConnectError(
    'NETWORK',
    `Oracle did not answer a statement within ${ms} ms (STATEMENT_TIMEOUT_MS); the session was abandoned. ` +
      'Check the server\'s load and blocking sessions, or raise STATEMENT_TIMEOUT_MS (keep it well below the Lambda timeout).',
    cause,
  );
}

/**
 * Every statement bounded twice: node-oracledb's callTimeout (NJS-123, set on the connection) and
 * a backstop STATEMENT_TIMEOUT_GRACE_MS later that abandons the call whatever the driver does.
 */
export class TimedOracleConnection implements OracleConnectionLike {
  constructor(private readonly inner: OracleConnectionLike, readonly statementTimeoutMs: number) {
    inner.callTimeout = statementTimeoutMs;
  }

  execute(sql: string, binds?: Record<string, string>, options?: { outFormat?: number }): Promise<OracleResult> {
    let timer: NodeJS.Timeout | undefined;
    const backstop = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(statementTimeoutError(this.statementTimeoutMs)), this.statementTimeoutMs + STATEMENT_TIMEOUT_GRACE_MS);
    });
    return Promise.race([this.inner.execute(sql, binds, options), backstop]).finally(() => clearTimeout(timer));
  }

  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.inner.close(), new Promise<void>((resolve) => { timer = setTimeout(resolve, STATEMENT_TIMEOUT_GRACE_MS); })]);
    clearTimeout(timer);
  }
}

export type OracleConnectFn = (config: OracleConnectConfig) => Promise<OracleConnectionLike>;

export interface OracleEngineOptions {
  /** Connection factory; defaults to node-oracledb Thin mode `getConnection`. Tests inject a fake. */
  connect?: OracleConnectFn;
  /**
   * Longest user name in bytes, instead of ORACLE_MAX_USERNAME_LENGTH in the handler's
   * environment (default 128; 30 before Oracle 12.2).
   */
  maxUsernameLength?: number;
}

/** The production connection factory: node-oracledb, Thin mode (its default; Thick mode is never initialised). */
export const oracledbConnect: OracleConnectFn = (config) => {
  // Loaded lazily so that importing the engine (e.g. in tests with a fake) does not load the driver.
  let driver: { getConnection(c: OracleConnectConfig): Promise<OracleConnectionLike> };
  try {
    driver = require('oracledb') as typeof driver;
  } catch (err) {
    return Promise.reject(driverLoadError('oracledb', err));
  }
  return driver.getConnection(config);
};

// ---------------------------------------------------------------------------------------------
// Names, quoting, validation.

/** `"` + name + `"`, for a name a quoted identifier can hold. */
export function quoteIdentifier(name: string): string {
  if (name.length === 0 || name.includes('"') || name.includes('\u0000')) {
    throw new SecretFormatError('An Oracle identifier cannot be empty or contain a double quote (") or a NUL character.');
  }
  return `"${name}"`;
}


/** The password as a quoted identifier, or a SecretFormatError naming the secret's field (never the value). */
export function quotePassword(password: string, where: string): string {
  const problem = passwordProblem(password);
  if (problem) {
    throw new SecretFormatError(
      `The ${where}'s "password" field ${problem}.`,
      'Exclude " from generated passwords (EXCLUDE_CHARACTERS keeps /@"\'\\ by default) and keep PASSWORD_LENGTH at most 1024.',
    );
  }
  return `"${password}"`;
}


/** The name to log in with: bare when Oracle would read it back unchanged, else quoted (exact; also keeps `[` away from the driver's proxy-user syntax). */
export function loginName(exactName: string): string {
  return /^[A-Z][A-Z0-9_]*$/.test(exactName) ? exactName : quoteIdentifier(exactName);
}

/** `app` <-> `APP_CLONE` (unquoted names are folded to upper case); `"Mixed"` <-> `"Mixed_CLONE"`. */
export function oracleAlternateUsername(username: string): string {
  const { quoted, name } = designated(username);
  const alt = defaultAlternateUsername(name, ORACLE_CLONE_SUFFIX);
  return quoted ? `"${alt}"` : alt;
}


/** Host name or IP address: letters, digits, `.`, `-`, `_`, and `:` for IPv6 (brackets allowed around it). */
function checkedHost(host: string, where: string): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (!/^[A-Za-z0-9._:-]+$/.test(bare)) {
    throw new SecretFormatError(
      `The ${where}'s "host" field must be a host name or IP address (letters, digits, ".", "-", "_", ":").`,
    );
  }
  return bare;
}

/** Service name: letters, digits, `_`, `.`, `-`, `$` (never `(`, `)`, `=`, `#` (a comment in descriptors), `/`, spaces). */
function checkedService(dbname: unknown, where: string): string {
  if (typeof dbname !== 'string' || dbname.length === 0) {
    throw new SecretFormatError(
      `The ${where} is missing the "dbname" field; Oracle needs the service name to connect to (e.g. "ORCL", or the PDB's service name).`,
    );
  }
  if (!/^[A-Za-z0-9_.$-]+$/.test(dbname)) {
    throw new SecretFormatError(`The ${where}'s "dbname" field must be an Oracle service name (letters, digits, "_", ".", "-", "$").`);
  }
  return dbname;
}

/** ORACLE_MAX_USERNAME_LENGTH (bytes), for Oracle 12.1 and earlier (30). */
export function maxUsernameLengthFromEnv(env: Env): number {
  const raw = env.ORACLE_MAX_USERNAME_LENGTH?.trim();
  if (!raw) return DEFAULT_MAX_USERNAME_BYTES;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > DEFAULT_MAX_USERNAME_BYTES) {
    throw new ConfigError(`ORACLE_MAX_USERNAME_LENGTH must be a whole number from 1 to 128, got "${raw.slice(0, 20)}".`);
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// Connecting.

/**
 * The getConnection() configuration for one attempt: a connect descriptor, with PROTOCOL=TCP for
 * plaintext and TCPS for TLS. (Not Easy Connect `host:port/service` for plaintext: node-oracledb's
 * Easy Connect grammar rejects valid service names such as `X` or `DB$1`.) Everything placed in
 * the descriptor has been checked against a strict character set, so a secret cannot add
 * descriptor parameters.
 *
 * Thin mode always verifies the certificate chain, against Node's trust store (bundled roots plus
 * NODE_EXTRA_CA_CERTS): its walletContent option is loaded as a client wallet (certificate AND
 * private key), so a CA-only bundle cannot be passed per connection. A configured CA (`sslCa`,
 * SSL_CA_BUNDLE) is therefore refused rather than silently ignored.
 */
export function buildConnectConfig(secret: DbSecret, tls: TlsOptions, connectTimeoutMs: number, where = 'secret'): OracleConnectConfig {
  let host: string, service: string, user: string;
  try {
    host = checkedHost(secret.host, where);
    service = checkedService(secret.dbname, where);
    user = loginName(oracleUserName(secret.username, where));
  } catch (err) {
    throw new ConnectError('CONFIG', (err as Error).message, err);
  }
  const port = portOf(secret, ORACLE_DEFAULT_PORT);
  const seconds = Math.max(1, Math.ceil(connectTimeoutMs / 1000));
  const base = { user, password: secret.password, connectTimeout: seconds, transportConnectTimeout: seconds, stmtCacheSize: 0 };
  const address = (protocol: 'TCP' | 'TCPS') =>
    `(DESCRIPTION=(ADDRESS=(PROTOCOL=${protocol})(HOST=${host})(PORT=${port}))(CONNECT_DATA=(SERVICE_NAME=${service}))`;
  if (!tls.enabled) {
    return { ...base, connectString: `${address('TCP')})` };
  }
  if (tls.ca !== undefined) {
    throw new ConnectError(
      'CONFIG',
      'node-oracledb Thin mode cannot use a CA bundle given per connection (the secret\'s "sslCa" field or SSL_CA_BUNDLE): ' +
        'it verifies the server against Node\'s trust store. Remove sslCa/SSL_CA_BUNDLE for this function and set ' +
        'NODE_EXTRA_CA_CERTS to the CA bundle file (e.g. the RDS global bundle) instead.',
    );
  }
  return {
    ...base,
    connectString: `${address('TCPS')}(SECURITY=(SSL_SERVER_DN_MATCH=${tls.verifyHostname ? 'yes' : 'no'})))`,
    sslServerDNMatch: tls.verifyHostname,
  };
}

/** The driver's error code: `ORA-01017`, `NJS-503`, `ECONNREFUSED`, ... */
export function oracleErrorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object') {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code) return code;
    const m = /^((?:ORA|NJS|DPI)-\d{3,5})/.exec(String((err as { message?: unknown }).message ?? ''));
    if (m) return m[1];
  }
  return undefined;
}

/** The driver's message on one line, without its "Help:" links, shortened. */
function driverMessage(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const text = msg
    .split(/\r?\n/)
    .filter((l) => l.trim() && !/^Help:/i.test(l.trim()))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}

/** node-oracledb's codes for an unreachable or dropped listener (Node's own are nodeErrorClass's). */
const NETWORK_CODES = new Set(['NJS-500', 'NJS-501', 'NJS-503', 'NJS-504', 'NJS-510', 'NJS-511', 'NJS-521', 'NJS-530']);
const TLS_CODES = new Set(['NJS-505', 'NJS-506', 'NJS-507', 'NJS-508']);

/** A connect() failure, classified for the framework (AUTH / TLS / NETWORK / PRIVILEGE / CONFIG). */
export function classifyConnectError(err: unknown, service: string): ConnectError {
  if (err instanceof ConnectError) return err;
  const code = oracleErrorCode(err) ?? '';
  const detail = driverMessage(err);
  switch (code) {
    case 'ORA-01017':
    case 'ORA-01005':
      return new ConnectError('AUTH', `Oracle rejected the user name or password (${detail}).`, err);
    case 'ORA-28000':
      return new ConnectError('AUTH', `The Oracle account is locked (${detail}). Find out why (FAILED_LOGIN_ATTEMPTS in its profile), then ALTER USER ... ACCOUNT UNLOCK.`, err);
    case 'ORA-28001':
      return new ConnectError('AUTH', `The Oracle password has expired (${detail}). Set a new one with ALTER USER ... IDENTIFIED BY and store it in the secret.`, err);
    case 'ORA-01045':
      return new ConnectError('PRIVILEGE', `The Oracle user lacks the CREATE SESSION privilege (${detail}).`, err);
    case 'ORA-12514':
    case 'ORA-12505':
    case 'NJS-518':
    case 'NJS-519':
      return new ConnectError('CONFIG', `The listener knows no service "${service}" (${detail}). Check the secret's "dbname" (the service name, e.g. the PDB's).`, err);
    case 'NJS-512':
    case 'NJS-514':
    case 'NJS-515':
      return new ConnectError('CONFIG', `node-oracledb rejected the connect string built from "host", "port" and "dbname" (${detail}).`, err);
    case 'NJS-531':
    case 'NJS-532':
    case 'NJS-533':
    case 'ORA-12660':
      return new ConnectError('CONFIG', `The server requires Oracle Native Network Encryption, which node-oracledb Thin mode does not support (${detail}). Use TLS (TCPS) instead, or allow unencrypted NNE negotiation (SQLNET.ENCRYPTION_SERVER=ACCEPTED).`, err);
  }
  const node = code.startsWith('ORA-') || TLS_CODES.has(code) || NETWORK_CODES.has(code) ? undefined : nodeErrorClass(err);
  if (TLS_CODES.has(code) || node === 'TLS') {
    return new ConnectError('TLS', `TLS to Oracle failed (${detail}). The port must be the listener's TCPS port (2484 with the RDS SSL option) and the server certificate must chain to a CA in Node's trust store (NODE_EXTRA_CA_CERTS); or set the secret's "ssl" to false for a plaintext listener.`, err);
  }
  if (NETWORK_CODES.has(code) || node === 'NETWORK') return new ConnectError('NETWORK', `Cannot reach the Oracle listener (${detail}).`, err);
  if (code.startsWith('ORA-')) return new ConnectError('CONFIG', `Oracle refused the connection (${detail}).`, err);
  return new ConnectError('NETWORK', `Connecting to Oracle failed (${detail}).`, err);
}

// ---------------------------------------------------------------------------------------------
// Grant copying (DBMS_METADATA.GET_GRANTED_DDL output).

interface Token {
  kind: 'word' | 'quoted' | 'string' | 'other';
  text: string;
  start: number;
  end: number;
  /** First token on its line. */
  lineStart: boolean;
}

/** A small SQL tokenizer: quoted identifiers and string literals are single tokens. */
function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  const wordChar = /[\p{L}\p{N}_$#]/u;
  let i = 0;
  let lineStart = true;
  while (i < sql.length) {
    const ch = sql[i];
    if (ch === '\n' || ch === '\r') {
      lineStart = true;
      i++;
      continue;
    }
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    let end: number;
    let kind: Token['kind'];
    if (ch === '"' || ch === "'") {
      end = sql.indexOf(ch, i + 1);
      // In string literals '' is an escaped quote; quoted identifiers have no escapes.
      while (ch === "'" && end >= 0 && sql[end + 1] === "'") end = sql.indexOf(ch, end + 2);
      if (end < 0) throw new RotationError('UNSUPPORTED', 'The grant DDL returned by DBMS_METADATA has an unterminated quote.');
      end += 1;
      kind = ch === '"' ? 'quoted' : 'string';
    } else if (wordChar.test(ch)) {
      end = i + 1;
      while (end < sql.length && wordChar.test(sql[end])) end++;
      kind = 'word';
    } else {
      end = i + 1;
      kind = 'other';
    }
    out.push({ kind, text: sql.slice(i, end), start: i, end, lineStart });
    lineStart = false;
    i = end;
  }
  return out;
}

const isWord = (t: Token | undefined, w: string) => t?.kind === 'word' && t.text.toUpperCase() === w;

/**
 * Split GET_GRANTED_DDL output into statements: each GRANT starts a line (leading whitespace and
 * blank lines between them); a `;` terminator (SQLTERMINATOR) also ends one. Newlines inside
 * quoted names do not split, and `WITH GRANT OPTION` does not start a statement.
 */
export function splitGrantStatements(ddl: string): string[] {
  const tokens = tokenize(ddl);
  const statements: string[] = [];
  let first: Token | undefined;
  let last: Token | undefined;
  const flush = () => {
    if (first && last) statements.push(ddl.slice(first.start, last.end));
    first = last = undefined;
  };
  tokens.forEach((t, i) => {
    if (t.kind === 'other' && t.text === ';') {
      flush();
      return;
    }
    if (isWord(t, 'GRANT') && t.lineStart && !isWord(tokens[i - 1], 'WITH')) flush();
    first ??= t;
    last = t;
  });
  flush();
  return statements;
}

/**
 * Point one GRANT statement at another grantee: the quoted name right after the keyword TO (the
 * grantee position) must be the current user, exactly once; nothing else in the statement changes.
 */
export function rewriteGrantee(statement: string, fromUser: string, toUser: string): string {
  const tokens = tokenize(statement);
  if (!isWord(tokens[0], 'GRANT')) {
    throw new RotationError('UNSUPPORTED', `DBMS_METADATA returned a statement that is not a GRANT: ${statement.slice(0, 200)}`);
  }
  const from = quoteIdentifier(fromUser);
  const hits = tokens.filter((t, i) => t.kind === 'quoted' && t.text === from && isWord(tokens[i - 1], 'TO'));
  if (hits.length !== 1) {
    throw new RotationError('UNSUPPORTED', `Cannot find the grantee ${from} in the granted DDL: ${statement.slice(0, 200)}`);
  }
  const [hit] = hits;
  return statement.slice(0, hit.start) + quoteIdentifier(toUser) + statement.slice(hit.end);
}

async function lobText(value: unknown): Promise<string> {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && typeof (value as OracleLob).getData === 'function') {
    const lob = value as OracleLob;
    try {
      const data = await lob.getData();
      return data === null ? '' : data.toString();
    } finally {
      lob.destroy?.();
    }
  }
  throw new RotationError('UNSUPPORTED', 'DBMS_METADATA.GET_GRANTED_DDL returned a value that is neither text nor a CLOB.');
}

// ---------------------------------------------------------------------------------------------
// Statements.

/** Run one statement; `what` describes it for errors and never contains a password. */
async function run(conn: OracleConnectionLike, sql: string, what: string, binds?: Record<string, string>): Promise<OracleResult> {
  try {
    return await conn.execute(sql, binds ?? {}, { outFormat: OUT_FORMAT_ARRAY });
  } catch (err) {
    throw statementError(err, what);
  }
}

const PRIVILEGE_CODES = new Set(['ORA-01031', 'ORA-01749', 'ORA-01927', 'ORA-00942', 'ORA-04043', 'ORA-01952', 'ORA-01932', 'ORA-01924', 'ORA-31603']);
const PASSWORD_POLICY_CODES = new Set(['ORA-28003', 'ORA-28007', 'ORA-28008', 'ORA-00988', 'ORA-28221']);

function statementError(err: unknown, what: string): Error {
  if (err instanceof RotationError) return err;
  const code = oracleErrorCode(err) ?? '';
  const detail = driverMessage(err);
  if (code === 'NJS-123' || code === 'DPI-1067') {
    const ms = Number(/call timeout of (\d+) ms/.exec(detail)?.[1]);
    return statementTimeoutError(Number.isFinite(ms) ? ms : Number.NaN, err);
  }
  if (NETWORK_CODES.has(code) || (!code.startsWith('ORA-') && nodeErrorClass(err) === 'NETWORK')) {
    return new ConnectError('NETWORK', `The Oracle session was lost while trying to ${what} (${detail}).`, err);
  }
  if (PRIVILEGE_CODES.has(code)) {
    return new PrivilegeError(`Oracle refused to ${what}: ${detail}.`, 'Grant the missing privilege to the user this step runs as (see the Oracle section of the README).', err);
  }
  if (PASSWORD_POLICY_CODES.has(code) || /^ORA-20\d{3}$/.test(code)) {
    // A password verify function's text (ORA-20000..20999 from raise_application_error, often
    // after ORA-28003) is the function author's and may quote the password it rejected: only the
    // error codes are kept, and not the driver error either.
    const codes = [...new Set(detail.match(/ORA-\d{5}/g) ?? [code])].join(', ');
    return new ConfigError(
      `Oracle refused to ${what}: ${codes} (the password profile's message is not shown: a verify function may quote the password).`,
      "The user's profile (password verify function, reuse rules) rejected the change; align PASSWORD_LENGTH / EXCLUDE_* with the profile.",
    );
  }
  return new DatabaseError(`Oracle failed to ${what}: ${detail}.`, err);
}

/** What one GRANT statement of GET_GRANTED_DDL gives. */
export type GrantKind =
  | { kind: 'role'; role: string }
  | { kind: 'system'; privilege: string }
  | { kind: 'object'; privilege: string; owner: string; name: string; directory: boolean; columns: boolean; grantOption: boolean };

/** Classifies a GRANT statement as DBMS_METADATA prints it (names quoted, keywords bare). */
export function classifyGrant(statement: string): GrantKind {
  const t = tokenize(statement);
  const toAt = t.findIndex((x, i) => i > 0 && isWord(x, 'TO'));
  const onAt = t.findIndex((x, i) => i > 0 && i < toAt && isWord(x, 'ON'));
  const unquote = (x: Token) => (x.kind === 'quoted' ? x.text.slice(1, -1) : x.text);
  if (onAt > 0) {
    const priv = t.slice(1, onAt);
    const obj = t.slice(onAt + 1, toAt);
    const privilege = priv.filter((x) => x.kind === 'word').map((x) => x.text.toUpperCase()).join(' ');
    const columns = priv.some((x) => x.kind !== 'word');
    const grantOption = isWord(t.at(-3), 'WITH') && isWord(t.at(-2), 'GRANT') && isWord(t.at(-1), 'OPTION');
    if (obj.length === 2 && isWord(obj[0], 'DIRECTORY') && obj[1].kind === 'quoted') {
      return { kind: 'object', privilege, owner: 'SYS', name: unquote(obj[1]), directory: true, columns, grantOption };
    }
    if (obj.length === 3 && obj[1].text === '.') {
      return { kind: 'object', privilege, owner: unquote(obj[0]), name: unquote(obj[2]), directory: false, columns, grantOption };
    }
    return { kind: 'object', privilege, owner: '?', name: obj.map((x) => x.text).join(' '), directory: false, columns, grantOption };
  }
  if (toAt === 2 && t[1].kind === 'quoted') return { kind: 'role', role: unquote(t[1]) };
  return { kind: 'system', privilege: t.slice(1, toAt).map((x) => x.text.toUpperCase()).join(' ') };
}

/** Who may give a grant the admin could not, for the error message. */
function whoCanGive(g: GrantKind): string {
  switch (g.kind) {
    case 'role':
      return `a user holding role ${quoteIdentifier(g.role)} WITH ADMIN OPTION (its creator has it), or one with GRANT ANY ROLE (which the RDS master lacks)`;
    case 'system':
      return `a user holding ${g.privilege} WITH ADMIN OPTION, or one with GRANT ANY PRIVILEGE (which the RDS master lacks)`;
    case 'object':
      if (g.owner === 'SYS') {
        return g.columns
          ? 'SYS only (a column privilege on a SYS object cannot go through rdsadmin.rdsadmin_util.grant_sys_object)'
          : `on RDS, a user holding ${g.privilege} on it WITH GRANT OPTION (directly, or through a role held WITH ADMIN OPTION) through rdsadmin.rdsadmin_util.grant_sys_object; elsewhere SYS`;
      }
      return `its owner ${quoteIdentifier(g.owner)}, or a user holding the privilege WITH GRANT OPTION or GRANT ANY OBJECT PRIVILEGE`;
  }
}

export const GRANT_SYS_OBJECT_SQL = 'BEGIN rdsadmin.rdsadmin_util.grant_sys_object(p_obj_name => :obj, p_grantee => :grantee, p_privilege => :priv, p_grant_option => %OPTION%); END;';

/** True on RDS for Oracle: the RDSADMIN package is there to grant SYS objects. */
async function onRds(conn: OracleConnectionLike): Promise<boolean> {
  const r = await run(conn, RDS_DETECT_SQL, 'look for the RDSADMIN_UTIL package in DBA_OBJECTS');
  return Number(r.rows?.[0]?.[0]) > 0;
}

/**
 * Copy every role, system and object grant of `fromUser` to `toUser`. A grant on a SYS object goes
 * through rdsadmin.rdsadmin_util.grant_sys_object on RDS (the master may not GRANT on SYS
 * objects directly). A grant the server refuses for lack of privilege does not stop the copy;
 * every refused grant is then reported at once, naming who can give it, and the rotation stops
 * before the alternate user's password is set. Returns how many grants were given.
 */
async function copyGrants(conn: OracleConnectionLike, fromUser: string, toUser: string, log: Logger): Promise<number> {
  let count = 0;
  let rds: boolean | undefined;
  const refused: string[] = [];
  for (const type of GRANT_TYPES) {
    let ddl: string;
    try {
      const result = await conn.execute(
        'SELECT DBMS_METADATA.GET_GRANTED_DDL(:t, :u) AS ddl FROM DUAL',
        { t: type, u: fromUser },
        { outFormat: OUT_FORMAT_ARRAY },
      );
      ddl = await lobText(result.rows?.[0]?.[0]);
    } catch (err) {
      if (oracleErrorCode(err) === 'ORA-31608') continue; // no grants of this type
      throw statementError(err, `read the ${type}s of ${quoteIdentifier(fromUser)} with DBMS_METADATA.GET_GRANTED_DDL`);
    }
    for (const statement of splitGrantStatements(ddl)) {
      const grant = rewriteGrantee(statement, fromUser, toUser);
      const kind = classifyGrant(grant);
      try {
        if (kind.kind === 'object' && kind.owner === 'SYS' && !kind.columns && (rds ??= await onRds(conn))) {
          if (!/^[A-Z][A-Z0-9_$#]*$/.test(toUser) || !/^[A-Z][A-Z0-9_$#]*$/.test(kind.name)) {
            // Whether grant_sys_object upper-cases its arguments is not documented: a mixed-case
            // name could reach another user, so such a grant is reported instead of attempted.
            refused.push(`${grant} (not attempted: rdsadmin.rdsadmin_util.grant_sys_object is only used for upper-case names; give it with grant_sys_object yourself)`);
            continue;
          }
          await run(conn, GRANT_SYS_OBJECT_SQL.replace('%OPTION%', kind.grantOption ? 'TRUE' : 'FALSE'),
            `grant ${kind.privilege} on SYS.${kind.name} to ${quoteIdentifier(toUser)} with rdsadmin.rdsadmin_util.grant_sys_object`,
            { obj: kind.name, grantee: toUser, priv: kind.privilege });
        } else {
          await run(conn, grant, `run "${grant}"`);
        }
        count++;
      } catch (err) {
        if (!(err instanceof PrivilegeError)) throw err;
        const code = oracleErrorCode((err as { cause?: unknown }).cause) ?? 'refused';
        refused.push(`${grant} (${code}; can be given by ${whoCanGive(kind)})`);
      }
    }
  }
  if (refused.length > 0) {
    throw new PrivilegeError(
      `The admin user could not give ${quoteIdentifier(toUser)} ${refused.length} of ${quoteIdentifier(fromUser)}'s grants, so the alternate user would lack them; the rotation stopped before switching users: ${refused.join('; ')}.`,
      'Have someone who can give them grant them to the alternate user (or to the admin WITH ADMIN/GRANT OPTION), then rotate again; or remove them from the current user.',
    );
  }
  if (count === 0) {
    log.warn('no grants found to copy; the admin user needs SELECT_CATALOG_ROLE to read another user\'s grants', {
      fromUser,
      toUser,
    });
  }
  return count;
}

/** One user's system privileges, roles and object privileges as the dictionary reports them: key -> admin/grant option. */
async function capabilities(conn: OracleConnectionLike, user: string): Promise<Map<string, boolean>> {
  const caps = new Map<string, boolean>();
  const add = (key: string, option: unknown) => caps.set(key, caps.get(key) === true || option === 'YES');
  const q = (sql: string, what: string) => run(conn, sql, what, { u: user });
  for (const [p, a] of (await q('SELECT privilege, admin_option FROM dba_sys_privs WHERE grantee = :u', `read the system privileges of ${quoteIdentifier(user)} in DBA_SYS_PRIVS`)).rows ?? []) {
    add(`system privilege ${String(p)}`, a);
  }
  for (const [r, a] of (await q('SELECT granted_role, admin_option FROM dba_role_privs WHERE grantee = :u', `read the roles of ${quoteIdentifier(user)} in DBA_ROLE_PRIVS`)).rows ?? []) {
    add(`role ${quoteIdentifier(String(r))}`, a);
  }
  for (const [o, t, p, g] of (await q('SELECT owner, table_name, privilege, grantable FROM dba_tab_privs WHERE grantee = :u', `read the object privileges of ${quoteIdentifier(user)} in DBA_TAB_PRIVS`)).rows ?? []) {
    add(`${String(p)} on ${quoteIdentifier(String(o))}.${quoteIdentifier(String(t))}`, g);
  }
  return caps;
}

// ---------------------------------------------------------------------------------------------
// The engine.

export function createOracleEngine(options: OracleEngineOptions = {}): DatabaseEngine<OracleConnectionLike> & {
  readonly connectFn: OracleConnectFn;
} {
  const connectFn = options.connect ?? oracledbConnect;

  const maxBytes = (env: Env): number => options.maxUsernameLength ?? maxUsernameLengthFromEnv(env);

  return defineEngine<OracleConnectionLike, DatabaseEngine<OracleConnectionLike> & { readonly connectFn: OracleConnectFn }>({
    profile: {
      name: 'oracle',
      engines: ORACLE_ENGINES,
      defaultPort: ORACLE_DEFAULT_PORT,
      username: {
        // Oracle limits the stored name in bytes (ORACLE_MAX_USERNAME_LENGTH for 12.1 and older):
        // the quotes of an exact name are not part of it, and an unquoted name is stored upper-case.
        maxLength: (_secret: DbSecret, env: Env) => maxBytes(env),
        storedAs: (username: string) => oracleUserName(username),
        unit: 'UTF-8 bytes',
        raiseLimit: 'unset ORACLE_MAX_USERNAME_LENGTH if the server is Oracle 12.2 or newer (128 bytes)',
        alternate: oracleAlternateUsername,
      },
      password: {
        defaults: { PasswordLength: 30, ExcludeCharacters: '/@"\'\\' },
        validate(password: string): void {
          quotePassword(password, 'AWSPENDING secret');
        },
      },
    },
    connectFn,
    preflight: () => import('./preflight').then((m) => m.oraclePreflight),

    validateSecret(secret: DbSecret, label: string, env: Env): void {
      maxBytes(env);
      const where = `${label} secret`;
      checkedService(secret.dbname, where);
      checkedHost(secret.host, where);
      oracleUserName(secret.username, where);
    },

    async connect(secret: DbSecret, { tls, connectTimeoutMs, statementTimeoutMs, log }: ConnectOptions): Promise<OracleConnectionLike> {
      const config = buildConnectConfig(secret, tls, connectTimeoutMs);
      if (tls.enabled && !tls.verifyChain) {
        log.warn('ssl "require": node-oracledb Thin mode always verifies the server certificate chain; only the host name check is skipped');
      }
      log.debug('connecting to Oracle', {
        host: secret.host,
        port: portOf(secret, ORACLE_DEFAULT_PORT),
        service: String(secret.dbname),
        protocol: tls.enabled ? 'TCPS' : 'TCP',
        hostnameCheck: tls.enabled && tls.verifyHostname,
      });
      let conn: OracleConnectionLike;
      try {
        conn = await connectFn(config);
      } catch (err) {
        throw classifyConnectError(err, String(secret.dbname));
      }
      return new TimedOracleConnection(conn, statementTimeoutMs);
    },

    async close(conn: OracleConnectionLike): Promise<void> {
      await conn.close();
    },

    async setOwnPassword(conn, { username, oldPassword, newPassword }, { log }): Promise<void> {
      const user = quoteIdentifier(oracleUserName(username, 'AWSPENDING secret'));
      let sql = `ALTER USER ${user} IDENTIFIED BY ${quotePassword(newPassword, 'AWSPENDING secret')}`;
      // REPLACE <old> is what a profile's password verify function needs for a user changing its own password.
      if (passwordProblem(oldPassword) === undefined) {
        sql += ` REPLACE "${oldPassword}"`;
      } else {
        log.warn('the password that logged in cannot be quoted for REPLACE; changing the password without REPLACE', { username });
      }
      await run(conn, sql, `change the password of ${user}`);
    },

    /**
     * Read-only: an existing alternate user must be an unlocked user (not a role), and hold no
     * system privilege, role or object privilege (nor ADMIN/GRANT OPTION) the current user lacks,
     * as DBA_SYS_PRIVS, DBA_ROLE_PRIVS and DBA_TAB_PRIVS report them. Oracle has no place for a
     * marker (no comment on a user), so this capability check is all the pair proof there is.
     */
    async checkAlternateUser(admin, { currentUser, alternateUser }, { log }): Promise<void> {
      const from = oracleUserName(currentUser, 'AWSCURRENT secret');
      const to = oracleUserName(alternateUser, 'AWSPENDING secret');
      const user = quoteIdentifier(to);
      const found = await run(admin, 'SELECT username, account_status, USER FROM dba_users WHERE username = :u', `look up ${user} in DBA_USERS`, { u: to });
      const row = found.rows?.[0];
      if (!row) {
        const role = await run(admin, 'SELECT role FROM dba_roles WHERE role = :u', `look up ${user} in DBA_ROLES`, { u: to });
        if ((role.rows?.length ?? 0) > 0) {
          throw new RotationStateError(`The alternate user ${user} is a role, not a user; refusing to take it over.`, 'Use another username for this secret.');
        }
        return;
      }
      if (row[0] === row[2]) {
        throw new RotationStateError(
          `The alternate user ${user} is the admin secret's own user; refusing to change the admin's password.`,
          'Use a child secret whose users differ from the admin user.',
        );
      }
      const status = String(row[1] ?? '');
      if (status.includes('LOCKED')) {
        throw new RotationStateError(
          `The alternate user ${user} exists but its account is ${status}; refusing to take it over (a locked account is not this pair's alternate).`,
          `If it is, find out why it was locked, unlock it (ALTER USER ${user} ACCOUNT UNLOCK) and rotate again; otherwise use another username.`,
        );
      }
      const mine = await capabilities(admin, from);
      const extra = [...(await capabilities(admin, to))].filter(([key, option]) => !mine.has(key) || (option && !mine.get(key))).map(([key, option]) => `${key}${option ? ' (with ADMIN/GRANT OPTION)' : ''}`);
      if (extra.length > 0) {
        throw new PrivilegeError(
          `The alternate user ${user} holds ${extra.length} privilege(s) ${quoteIdentifier(from)} lacks (${extra.slice(0, 10).join('; ')}${extra.length > 10 ? '; ...' : ''}); it is not this pair's alternate. Refusing to change its password.`,
          'Use another username for this secret, or revoke those privileges if it really is the alternate of the current user.',
        );
      }
      log.info('the existing alternate user holds nothing the current user lacks (Oracle has no marker; capability check only)', { username: to, fromUser: from, status });
    },

    /** Pre-created pairs (`alternateUsername`): check both users, set only the alternate's password (precreated.ts). */
    setAlternatePassword(admin, change, ctx) { return import('./precreated').then((m) => m.setPrecreatedPassword(this, admin, change, ctx, { run, statementError })); },

    async upsertAlternateUser(admin, { currentUser, alternateUser, newPassword }, { log }): Promise<void> {
      const from = oracleUserName(currentUser, 'AWSCURRENT secret');
      const to = oracleUserName(alternateUser, 'AWSPENDING secret');
      const user = quoteIdentifier(to);
      const password = quotePassword(newPassword, 'AWSPENDING secret');
      // USER is the admin's own name as Oracle resolved it at login: never trust a string
      // comparison of secret fields for this (`"ADMIN"` and `admin` are the same user).
      const found = await run(admin, 'SELECT username, account_status, USER FROM dba_users WHERE username = :u', `look up ${user} in DBA_USERS`, { u: to });
      const row = found.rows?.[0];
      if (row && row[0] === row[2]) {
        throw new RotationStateError(
          `The alternate user ${user} is the admin secret's own user; refusing to change the admin's password.`,
          'Use a child secret whose users differ from the admin user.',
        );
      }

      if (!row) {
        let created = true;
        try {
          await run(admin, `CREATE USER ${user} IDENTIFIED BY ${password}`, `create the user ${user}`);
        } catch (err) {
          // A concurrent duplicate of this step created it between the lookup and here: update it instead.
          const again = oracleErrorCode((err as { cause?: unknown }).cause) === 'ORA-01920'
            ? (await run(admin, 'SELECT username, account_status, USER FROM dba_users WHERE username = :u', `look up ${user} in DBA_USERS`, { u: to })).rows?.[0]
            : undefined;
          if (!again) throw err;
          log.info('the alternate user was created concurrently (another invocation of this step); updating it instead', { username: to });
          created = false;
        }
        if (created) {
          const copied = await copyGrants(admin, from, to, log);
          log.info('created the alternate user and copied grants', { username: to, fromUser: from, grants: copied });
          return;
        }
      }

      if (String(row?.[1] ?? '').includes('LOCKED')) {
        log.warn('the alternate user is locked; its new password will not log in until it is unlocked', { username: to });
      }
      const copied = await copyGrants(admin, from, to, log);
      try {
        await admin.execute(`ALTER USER ${user} IDENTIFIED BY ${password}`, {}, { outFormat: OUT_FORMAT_ARRAY });
      } catch (err) {
        // A retried setSecret sets the same password again; a profile that forbids reuse answers
        // ORA-28007. The password is then already in place, which the verification login proves.
        if (oracleErrorCode(err) !== 'ORA-28007') throw statementError(err, `set the password of ${user}`);
        log.info('the alternate user already has this password (ORA-28007 on setting it again); the verification login will confirm', { username: to });
      }
      log.info('updated the alternate user and re-synced grants', { username: to, fromUser: from, grants: copied });
    },

    async check(conn: OracleConnectionLike, _ctx: EngineContext): Promise<void> {
      const result = await run(conn, 'SELECT 1 FROM DUAL', 'run SELECT 1 FROM DUAL');
      if (Number(result.rows?.[0]?.[0]) !== 1) {
        throw new RotationError('VERIFY', 'SELECT 1 FROM DUAL did not return 1.');
      }
    },
  });
}
