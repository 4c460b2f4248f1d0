/**
 * Node-level connection failures, the same beneath every driver: the socket errors Node raises
 * (ECONNREFUSED, ENOTFOUND, ...) and the certificate and TLS errors of Node and OpenSSL
 * (DEPTH_ZERO_SELF_SIGNED_CERT, ERR_TLS_CERT_ALTNAME_INVALID, ERR_SSL_*, ...).
 *
 * Engines classify their driver's and server's own codes first (SQLSTATE, ER_*, ORA-/NJS-,
 * ELOGIN, MongoDB's code 18, ...) and ask nodeErrorClass about what is left.
 */

/** Node / OpenSSL codes of a certificate or TLS failure: anything naming a certificate, SSL, TLS, ... */
const TLS_CODE = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_|DEPTH_ZERO|HOSTNAME|ALTNAME|HANDSHAKE|^EPROTO$/i;

/** The host could not be reached at all: nothing of TLS happened yet, whatever a message says. */
const UNREACHABLE_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

/** The peer dropped the connection: a TLS failure when a message says TLS was being set up. */
const DROPPED_CODES: ReadonlySet<string> = new Set(['ECONNRESET']);

/** Messages of certificate and TLS failures (Node, OpenSSL, and the drivers' own wording). */
const TLS_MESSAGE =
  /certificate|self[- ]signed|unable to verify|unable to get (local )?issuer|altnames|hostname|handshake|wrong version number|\bssl\b|\btls\b/i;

/** Messages of timeouts and dropped or refused connections. */
const NETWORK_MESSAGE = /timeout|timed out|terminated|ECONNREFUSED|ENOTFOUND|ECONNRESET|getaddrinfo/i;

/** At most this many errors of a chain are looked at, this deep. */
const MAX_LINKS = 20;
const MAX_DEPTH = 8;

/** Driver-specific places an error keeps other errors (e.g. MongoDB's per-server errors). */
export type NestedErrors = (err: object) => Iterable<unknown> | undefined;

/**
 * The error and every error inside it: `cause` (recursively), AggregateError's `errors` (Node
 * reports a failed connection to each address of a host that way), and whatever `nested`
 * yields. Each object once, depth first, bounded.
 */
export function errorChain(err: unknown, nested?: NestedErrors): object[] {
  const out: object[] = [];
  const visit = (e: unknown, depth: number): void => {
    if (!e || typeof e !== 'object' || out.includes(e) || depth > MAX_DEPTH || out.length >= MAX_LINKS) return;
    out.push(e);
    visit((e as { cause?: unknown }).cause, depth + 1);
    const errors = (e as { errors?: unknown }).errors;
    if (Array.isArray(errors)) for (const inner of errors) visit(inner, depth + 1);
    if (nested) for (const inner of nested(e) ?? []) visit(inner, depth + 1);
  };
  visit(err, 0);
  return out;
}

/**
 * 'TLS' or 'NETWORK' when Node says so anywhere in the error chain, else undefined (for the
 * engine to decide: a server's refusal, a driver error, ...). In order: a TLS error code; a code
 * of an unreachable host; a TLS message; a dropped connection; a network message.
 */
export function nodeErrorClass(err: unknown, nested?: NestedErrors): 'TLS' | 'NETWORK' | undefined {
  const chain = errorChain(err, nested);
  const codes = chain.map((e) => (e as { code?: unknown }).code).filter((c): c is string => typeof c === 'string' && c !== '');
  const messages = chain.map((e) => (e as { message?: unknown }).message).filter((m): m is string => typeof m === 'string');
  if (chain.length === 0 && err !== undefined && err !== null) messages.push(String(err));
  if (codes.some((c) => TLS_CODE.test(c))) return 'TLS';
  if (codes.some((c) => UNREACHABLE_CODES.has(c))) return 'NETWORK';
  if (messages.some((m) => TLS_MESSAGE.test(m))) return 'TLS';
  if (codes.some((c) => DROPPED_CODES.has(c))) return 'NETWORK';
  if (messages.some((m) => NETWORK_MESSAGE.test(m))) return 'NETWORK';
  return undefined;
}
