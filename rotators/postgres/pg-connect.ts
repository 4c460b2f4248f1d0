/**
 * Logging in with the `pg` driver, shared by the PostgreSQL and Redshift engines (both speak the
 * PostgreSQL wire protocol): the Client built from a DbSecret and one attempt's TLS options and
 * timeout, and what a failed login means. The SQL dialects (quoting included) stay in each
 * engine.
 */
import type { Client } from 'pg';
import { type ConnectOptions, type DbSecret, driverLoadError, nodeErrorClass, nodeTlsOptions, portOf } from '../../src/db';
import { ConnectError } from '../../src/api';

export interface PgTarget {
  /** For log lines: "PostgreSQL", "Redshift". */
  product: string;
  defaultPort: number;
  /** The database when the secret has no `dbname`. */
  defaultDatabase: string;
  /** The engine's ConnectError for a failed login (see pgLoginFailure). */
  classify(err: unknown, secret: DbSecret, port: number): ConnectError;
  /**
   * How the server-side statement timeout is set: 'startup' sends `statement_timeout` in the
   * startup packet (PostgreSQL accepts any setting there); 'set' runs `SET statement_timeout`
   * right after the login (Redshift documents SET, not startup options).
   */
  serverTimeout: 'startup' | 'set';
}

/**
 * The driver, loaded on the first connection rather than with the bundle: createSecret (and any
 * step that never logs in) does not pay for loading and compiling it in a cold container.
 */
function pgDriver(): typeof import('pg') {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('pg') as typeof import('pg');
  } catch (err) {
    throw driverLoadError('pg', err);
  }
}

/** How the password travelled at login: what the server asked for, which says how it stores it. */
export type PgAuthMethod = 'md5' | 'scram-sha-256' | 'cleartext' | 'none';

interface SessionInfo {
  statementTimeoutMs: number;
  auth: PgAuthMethod;
}
const sessions = new WeakMap<Client, SessionInfo>();

/** The authentication exchange the server asked for when this client logged in. */
export function authMethodOf(client: Client): PgAuthMethod {
  return sessions.get(client)?.auth ?? 'none';
}

/** Extra time the driver waits past the server-side statement_timeout before it gives up itself. */
const DRIVER_TIMEOUT_GRACE_MS = 500;
/** Longest wait for a clean close before the socket is destroyed. */
const CLOSE_TIMEOUT_MS = 2000;

/** Open one connection as `secret.username`; a failure is thrown as `target.classify` says. */
export async function connectPg(secret: DbSecret, options: ConnectOptions, target: PgTarget): Promise<Client> {
  const port = portOf(secret, target.defaultPort);
  const client = new (pgDriver().Client)({
    host: secret.host,
    port,
    user: secret.username,
    password: secret.password,
    database: secret.dbname || target.defaultDatabase,
    ssl: nodeTlsOptions(options.tls, secret.host) ?? false,
    connectionTimeoutMillis: options.connectTimeoutMs,
    application_name: 'rotation-lambdas',
    // Server side: the server cancels a statement that runs longer (SQLSTATE 57014).
    ...(target.serverTimeout === 'startup' ? { statement_timeout: options.statementTimeoutMs } : {}),
    // Catalog names resolve in pg_catalog only, whatever search_path the database or role was
    // given (a startup option overrides ALTER DATABASE/ROLE ... SET). The owner of the secret's
    // database could otherwise put a schema of its own ahead of pg_catalog, and its views,
    // functions and operators named like the catalog's would run as the admin.
    ...(target.serverTimeout === 'startup' ? { options: '-c search_path=pg_catalog,pg_temp' } : {}),
    // Driver side: a server that never answers (stalled, black-holed) fails the query anyway.
    query_timeout: options.statementTimeoutMs + DRIVER_TIMEOUT_GRACE_MS,
  });
  const session: SessionInfo = { statementTimeoutMs: options.statementTimeoutMs, auth: 'none' };
  sessions.set(client, session);
  // Which exchange the server asks for tells how it stores this user's password (md5 servers
  // ask for md5 only when the stored verifier is md5). `connection` is pg's documented-in-source
  // protocol object; the events are its message names.
  const connection = (client as unknown as { connection?: { once(event: string, fn: () => void): void } }).connection;
  connection?.once('authenticationMD5Password', () => (session.auth = 'md5'));
  connection?.once('authenticationSASL', () => (session.auth = 'scram-sha-256'));
  connection?.once('authenticationCleartextPassword', () => (session.auth = 'cleartext'));
  // A connection that breaks while idle emits 'error'; unhandled, that would crash the process.
  client.on('error', (err) => {
    options.log.warn(`${target.product} connection error`, { username: secret.username, reason: scrub(describe(err), [secret.password]) });
  });
  try {
    await client.connect();
  } catch (err) {
    await closePg(client);
    throw target.classify(err, secret, port);
  }
  if (target.serverTimeout === 'set') {
    try {
      await client.query(`SET statement_timeout TO ${Math.floor(options.statementTimeoutMs)}`);
    } catch (err) {
      await closePg(client);
      throw timeoutError(err, client, 'set statement_timeout', target.product) ?? target.classify(err, secret, port);
    }
  }
  return client;
}

/**
 * Close a connection without waiting forever: a server that stopped answering never completes
 * the goodbye, so after CLOSE_TIMEOUT_MS the socket is destroyed.
 */
export async function closePg(client: Client): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ended = client.end().then(() => true, () => true);
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), CLOSE_TIMEOUT_MS);
  });
  const clean = await Promise.race([ended, late]);
  clearTimeout(timer);
  if (!clean) (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

/**
 * A statement that did not finish in time, or a connection lost under it, as a NETWORK
 * ConnectError naming STATEMENT_TIMEOUT_MS; undefined for any other error.
 */
export function timeoutError(err: unknown, client: Client, what: string, product: string): ConnectError | undefined {
  const ms = sessions.get(client)?.statementTimeoutMs;
  const message = describe(err);
  const limit = ms ? `${ms} ms` : 'the configured time';
  const remedy =
    'Check that the server is healthy and not blocked (locks, a failover, a network appliance that drops idle packets); ' +
    'raise STATEMENT_TIMEOUT_MS if the statement legitimately needs longer.';
  if (message === 'Query read timeout') {
    return new ConnectError('NETWORK', `${product} did not answer while trying to ${what}: the statement timed out after ${limit} (STATEMENT_TIMEOUT_MS). ${remedy}`, err);
  }
  if (pgErrorCode(err) === '57014' && /statement timeout/i.test(message)) {
    return new ConnectError('NETWORK', `${product} cancelled the statement to ${what}: it ran longer than ${limit} (statement_timeout, from STATEMENT_TIMEOUT_MS). ${remedy}`, err);
  }
  if (/Connection terminated|connection is closed|Client was closed/i.test(message) || nodeErrorClass(err) === 'NETWORK') {
    return new ConnectError('NETWORK', `The connection to ${product} was lost while trying to ${what}: ${message}.`, err);
  }
  return undefined;
}

/** The server's message with its DETAIL and HINT (when it sent them), scrubbed of `secrets`. */
export function describePg(err: unknown, secrets: string[] = []): string {
  const e = (err ?? {}) as { detail?: unknown; hint?: unknown };
  let text = describe(err);
  if (typeof e.detail === 'string' && e.detail) text += ` DETAIL: ${e.detail}`;
  if (typeof e.hint === 'string' && e.hint) text += ` HINT: ${e.hint}`;
  return scrub(text, secrets);
}

/** Why a pg login failed. */
export type PgLoginFailure =
  /** 28P01: wrong password. */
  | 'password'
  /** 28000 (or another class 28 state): the server refused this login. */
  | 'refused'
  /** 28000 "no encryption" / "SSL off": pg_hba.conf or require_ssl wants TLS. */
  | 'tls-required'
  /** 3D000: the database does not exist. */
  | 'no-database'
  /** 42501: no CONNECT on the database. */
  | 'privilege'
  /** 53300 too many connections, 57P03 starting up or shutting down. */
  | 'unavailable'
  /** Node-level failures (nodeErrorClass). */
  | 'tls'
  | 'network'
  /** Any other error the server sent (it has a severity). */
  | 'server'
  | 'unknown';

/** Classify a `pg` connect failure: the server's SQLSTATE first, then what Node says. */
export function pgLoginFailure(err: unknown): PgLoginFailure {
  const code = pgErrorCode(err);
  if (code === '28000' && /no encryption|SSL off/i.test(describe(err))) return 'tls-required';
  if (code === '28P01') return 'password';
  if (code === '28000') return 'refused';
  if (code === '3D000') return 'no-database';
  if (code === '42501') return 'privilege';
  if (code === '53300' || code === '57P03') return 'unavailable';
  const node = nodeErrorClass(err);
  if (node) return node === 'TLS' ? 'tls' : 'network';
  if (/^28/.test(code)) return 'refused';
  return typeof (err as { severity?: unknown } | null)?.severity === 'string' ? 'server' : 'unknown';
}

/** The error's `code` (a SQLSTATE from the server, or a Node code), or ''. */
export function pgErrorCode(err: unknown): string {
  const code = err && typeof err === 'object' ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : '';
}

export function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Remove secret values (4 characters or more) from a driver message (the handler scrubs again; this keeps an engine safe alone). */
export function scrub(text: string, secrets: string[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('***');
  return out;
}
