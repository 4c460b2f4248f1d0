/**
 * Logging in with the `pg` driver, shared by the PostgreSQL and Redshift engines (both speak the
 * PostgreSQL wire protocol): the Client built from a DbSecret and one attempt's TLS options and
 * timeout, and what a failed login means. The SQL dialects (quoting included) stay in each
 * engine.
 */
import type { Client } from 'pg';
import type { ConnectOptions } from '../../src/db/engine';
import { nodeErrorClass } from '../../src/db/net-errors';
import { portOf, type DbSecret } from '../../src/db/secret';
import { nodeTlsOptions } from '../../src/db/tls';
import type { ConnectError } from '../../src/errors';

export interface PgTarget {
  /** For log lines: "PostgreSQL", "Redshift". */
  product: string;
  defaultPort: number;
  /** The database when the secret has no `dbname`. */
  defaultDatabase: string;
  /** The engine's ConnectError for a failed login (see pgLoginFailure). */
  classify(err: unknown, secret: DbSecret, port: number): ConnectError;
}

/**
 * The driver, loaded on the first connection rather than with the bundle: createSecret (and any
 * step that never logs in) does not pay for loading and compiling it in a cold container.
 */
function pgDriver(): typeof import('pg') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('pg') as typeof import('pg');
}

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
  });
  // A connection that breaks while idle emits 'error'; unhandled, that would crash the process.
  client.on('error', (err) => {
    options.log.warn(`${target.product} connection error`, { username: secret.username, reason: scrub(describe(err), [secret.password]) });
  });
  try {
    await client.connect();
    return client;
  } catch (err) {
    await client.end().catch(() => undefined);
    throw target.classify(err, secret, port);
  }
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
