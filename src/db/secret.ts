import { SecretFormatError } from '../errors';

/**
 * The JSON shape of a database secret, as AWS's rotators define it. Unknown keys are kept and
 * carried forward to the new version untouched.
 */
export interface DbSecret {
  engine: string;
  host: string;
  username: string;
  password: string;
  port?: number;
  dbname?: string;
  /** TLS mode, see tls.ts. */
  ssl?: boolean | string;
  /** PEM CA bundle to verify the server with (optional; see tls.ts). */
  sslCa?: string;
  /** ARN of the admin secret: selects the alternating multi-user strategy. */
  masterarn?: string;
  /** Explicit strategy: "single" or "alternating" (default: alternating iff masterarn is set). */
  rotationStrategy?: string;
  /**
   * Alternating users created in advance by a DBA: the other user of the pair. Each rotation
   * swaps `username` and `alternateUsername`, and the admin only sets the inactive user's
   * password (nothing is created or copied). Needs `masterarn`.
   */
  alternateUsername?: string;
  [key: string]: unknown;
}

export type Strategy = 'single' | 'alternating';

/** Parse a secret string without ever echoing it (JSON.parse errors quote the input). */
export function parseJsonSecret(secretString: string, label: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(secretString);
  } catch {
    throw new SecretFormatError(`The ${label} secret value is not valid JSON.`, 'Store the secret as a JSON object.');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) {
    throw new SecretFormatError(`The ${label} secret value must be a JSON object.`);
  }
  return v as Record<string, unknown>;
}

/**
 * Validate a database secret: required string fields, a known engine, a valid port. Messages
 * name the field and the secret's label, never a value (except `engine`, which is not secret).
 */
export function parseDbSecret(secretString: string, label: string, engines: readonly string[]): DbSecret {
  const o = parseJsonSecret(secretString, label);
  for (const field of ['engine', 'host', 'username', 'password'] as const) {
    if (typeof o[field] !== 'string' || (o[field] as string).length === 0) {
      throw new SecretFormatError(
        `The ${label} secret is missing the "${field}" field (or it is not a non-empty string).`,
        'A database secret needs engine, host, username and password.',
      );
    }
  }
  const engine = o.engine as string;
  if (!engines.includes(engine)) {
    throw new SecretFormatError(
      `The ${label} secret has engine "${engine.slice(0, 40)}", which this function does not rotate; expected one of ${engines.join(', ')}.`,
      'Point the secret at the rotation function for its engine.',
    );
  }
  checkPort(o, label);
  if (o.dbname !== undefined && o.dbname !== null && typeof o.dbname !== 'string') {
    throw new SecretFormatError(`The ${label} secret's "dbname" field must be a string.`);
  }
  if (o.masterarn !== undefined && (typeof o.masterarn !== 'string' || o.masterarn.length === 0)) {
    throw new SecretFormatError(`The ${label} secret's "masterarn" field must be the ARN of the admin secret.`);
  }
  if (o.rotationStrategy !== undefined && !['single', 'alternating'].includes(o.rotationStrategy as string)) {
    throw new SecretFormatError(`The ${label} secret's "rotationStrategy" field must be "single" or "alternating".`);
  }
  if (o.rotationStrategy === 'alternating' && o.masterarn === undefined) {
    throw new SecretFormatError(
      `The ${label} secret asks for the alternating-users strategy but has no "masterarn" field.`,
      'Add the ARN of the admin secret as "masterarn", or remove "rotationStrategy".',
    );
  }
  checkAlternateUsername(o, label);
  return o as DbSecret;
}

/**
 * `alternateUsername`, when present: a non-empty string, with the alternating strategy, naming
 * another user than `username` (compared case-insensitively: several servers fold case).
 */
function checkAlternateUsername(o: Record<string, unknown>, label: string): void {
  if (o.alternateUsername === undefined) return;
  if (typeof o.alternateUsername !== 'string' || o.alternateUsername.length === 0) {
    throw new SecretFormatError(`The ${label} secret's "alternateUsername" field must be a non-empty string (the other user of a pre-created pair).`);
  }
  if (o.masterarn === undefined || o.rotationStrategy === 'single') {
    throw new SecretFormatError(
      `The ${label} secret has "alternateUsername" but does not use the alternating-users strategy.`,
      'Add the ARN of the admin secret as "masterarn" (the admin sets the inactive user\'s password), or remove "alternateUsername".',
    );
  }
  if (o.alternateUsername.toLowerCase() === (o.username as string).toLowerCase()) {
    throw new SecretFormatError(
      `The ${label} secret's "alternateUsername" names the same user as "username".`,
      'Name the two different users of the pre-created pair in "username" and "alternateUsername".',
    );
  }
}

/** Admin (master) secrets only need the credentials; host/port/engine are checked by the caller. */
export function parseAdminSecret(secretString: string, label: string): Record<string, unknown> {
  const o = parseJsonSecret(secretString, label);
  for (const field of ['username', 'password'] as const) {
    if (typeof o[field] !== 'string' || (o[field] as string).length === 0) {
      throw new SecretFormatError(`The ${label} secret is missing the "${field}" field.`);
    }
  }
  checkPort(o, label);
  if (o.host !== undefined && (typeof o.host !== 'string' || o.host.length === 0)) {
    throw new SecretFormatError(`The ${label} secret's "host" field must be a non-empty string.`);
  }
  return o;
}

/**
 * A `port`, when present, must be a whole number 1-65535 (a JSON number or a string of digits):
 * a driver given "abc" (NaN) or 0 silently connects to its default port instead.
 */
function checkPort(o: Record<string, unknown>, label: string): void {
  if (o.port === undefined) return;
  const port = typeof o.port === 'string' && /^\d{1,5}$/.test(o.port) ? Number(o.port) : o.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new SecretFormatError(`The ${label} secret's "port" field must be a port number (a whole number from 1 to 65535).`);
  }
}

/**
 * The first field in which AWSPENDING differs from AWSCURRENT where the strategy allows no
 * difference, or undefined. Only `password` may differ (and `username` for alternating users):
 * anything else (host, port, dbname, engine, masterarn, ssl, sslCa, any engine-specific field)
 * chooses where and how the new password is sent, and a forged pending value must not change it.
 * Hosts are compared as DNS names, ports as numbers; everything else exactly.
 */
export function pendingDifference(current: DbSecret, pending: DbSecret, strategy: Strategy): string | undefined {
  // For alternating users the pair's names swap (checkPending compares them itself).
  const free = new Set(strategy === 'alternating' ? ['password', 'username', 'alternateUsername'] : ['password']);
  const keys = [...new Set([...Object.keys(current), ...Object.keys(pending)])].sort();
  for (const key of keys) {
    if (free.has(key)) continue;
    const a = current[key];
    const b = pending[key];
    if (key === 'host' && typeof a === 'string' && typeof b === 'string') {
      if (!sameHost(a, b)) return key;
    } else if (key === 'port' && a !== undefined && b !== undefined) {
      if (Number(a) !== Number(b)) return key;
    } else if (canonical(a) !== canonical(b)) {
      return key;
    }
  }
  return undefined;
}

/** JSON with sorted object keys, so a reordered object compares equal. */
function canonical(v: unknown): string {
  if (v === undefined) return 'undefined';
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(Object.entries(val as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))
      : val,
  );
}

export function portOf(secret: DbSecret, defaultPort: number): number {
  return secret.port === undefined ? defaultPort : Number(secret.port);
}

export function strategyOf(secret: DbSecret): Strategy {
  if (secret.rotationStrategy === 'single') return 'single';
  if (secret.rotationStrategy === 'alternating') return 'alternating';
  return secret.masterarn ? 'alternating' : 'single';
}

export const CLONE_SUFFIX = '_clone';

/** `user` -> `user_clone`, `user_clone` -> `user`. */
export function defaultAlternateUsername(username: string, suffix = CLONE_SUFFIX): string {
  return username.endsWith(suffix) && username.length > suffix.length
    ? username.slice(0, -suffix.length)
    : username + suffix;
}

/** Same host, compared the way DNS does (case-insensitive, trailing dot ignored). */
export function sameHost(a: string, b: string): boolean {
  const norm = (h: string) => h.trim().toLowerCase().replace(/\.$/, '');
  return norm(a) === norm(b);
}
