/**
 * Typed errors. Every message is written for the operator reading CloudWatch: it says what is
 * wrong and what to do about it. No message ever contains a secret value: callers pass field
 * names, usernames, hosts and ARNs only, and the handler scrubs every secret string it has seen
 * from messages before they leave the function (see redact.ts).
 */

/** A stable, machine-readable failure class (the failure taxonomy). */
export type ErrorCode =
  | 'EVENT' // the Lambda event is malformed
  | 'STATE' // the secret's versions/labels are not in a state rotation can proceed from
  | 'CONFIG' // environment or secret configuration is wrong
  | 'SECRET_FORMAT' // a secret value is missing a field or has an invalid one
  | 'AUTH' // could not log in to the target
  | 'TLS' // TLS negotiation or certificate verification failed
  | 'NETWORK' // target unreachable
  | 'PRIVILEGE' // logged in but not allowed to do what rotation needs
  | 'VERIFY' // the target reported success but the new credential does not work
  | 'UNSUPPORTED';

export class RotationError extends Error {
  // Names are string literals, not `new.target.name`: a minified bundle (SAM's esbuild build
  // cannot keep class names) would otherwise report errors as "t" or "o".
  override name = 'RotationError';
  readonly code: ErrorCode;
  /** What the operator should do about it. */
  readonly remedy?: string;

  constructor(code: ErrorCode, message: string, options?: { remedy?: string; cause?: unknown }) {
    super(options?.remedy ? `${message} ${options.remedy}` : message, { cause: options?.cause });
    this.code = code;
    this.remedy = options?.remedy;
  }
}

/**
 * The database refused or failed a statement for a reason the engine does not classify (not a
 * privilege, password-policy, network or TLS failure): the same code, STATE, on every engine,
 * with the server's own code and message (scrubbed) in the message and the driver's error as
 * the cause. Engines may throw it; the framework wraps any other error an engine operation throws
 * into it (src/db/middleware.ts). An idempotent operation that fails with it may be retried.
 */
export class DatabaseError extends RotationError {
  override name = 'DatabaseError';
  constructor(message: string, cause?: unknown, remedy?: string) {
    super('STATE', /[.!?]$/.test(message) ? message : `${message}.`, {
      remedy: remedy ?? 'The database refused a statement for a reason this rotator does not classify (its own code is above); fix the cause and let the rotation retry.',
      cause,
    });
  }
}

export class EventError extends RotationError {
  override name = 'EventError';
  constructor(message: string) {
    super('EVENT', message);
  }
}

export class RotationStateError extends RotationError {
  override name = 'RotationStateError';
  constructor(message: string, remedy?: string) {
    super('STATE', message, { remedy });
  }
}

export class ConfigError extends RotationError {
  override name = 'ConfigError';
  constructor(message: string, remedy?: string) {
    super('CONFIG', message, { remedy });
  }
}

export class SecretFormatError extends RotationError {
  override name = 'SecretFormatError';
  constructor(message: string, remedy?: string) {
    super('SECRET_FORMAT', message, { remedy });
  }
}

/** One login attempt that failed, kept so the final error can say why each credential failed. */
export interface LoginFailure {
  /** Which credential: 'AWSPENDING', 'AWSCURRENT', 'AWSPREVIOUS', 'master', ... */
  label: string;
  username: string;
  host: string;
  code: ErrorCode;
  reason: string;
}

export class LoginError extends RotationError {
  override name = 'LoginError';
  readonly attempts: LoginFailure[];

  constructor(message: string, attempts: LoginFailure[], remedy?: string) {
    const detail = attempts.map((a) => `${a.label} (${a.username}@${a.host}): [${a.code}] ${a.reason}`).join('; ');
    super(worstCode(attempts), detail ? `${message} Attempts: ${detail}.` : message, { remedy });
    this.attempts = attempts;
  }
}

function worstCode(attempts: LoginFailure[]): ErrorCode {
  const codes = attempts.map((a) => a.code);
  for (const c of ['TLS', 'NETWORK', 'PRIVILEGE'] as const) if (codes.includes(c)) return c;
  return 'AUTH';
}

/** The target accepted a change but the new credential does not work (e.g. MariaDB no-op ALTER). */
export class VerificationError extends RotationError {
  override name = 'VerificationError';
  constructor(message: string, remedy?: string) {
    super('VERIFY', message, { remedy });
  }
}

/**
 * An error raised by a driver while connecting, classified. Engines throw this from connect()
 * so the framework can report AUTH vs TLS vs NETWORK without knowing the driver.
 */
export class ConnectError extends RotationError {
  override name = 'ConnectError';
  constructor(code: 'AUTH' | 'TLS' | 'NETWORK' | 'PRIVILEGE' | 'CONFIG', message: string, cause?: unknown) {
    super(code, message, { cause });
  }
}

export class PrivilegeError extends RotationError {
  override name = 'PrivilegeError';
  constructor(message: string, remedy?: string, cause?: unknown) {
    super('PRIVILEGE', message, { remedy, cause });
  }
}

/**
 * Returns a short description of any thrown value, safe to log once scrubbed. An error without a
 * message (Node's AggregateError for a host with several addresses has none) is described by the
 * errors inside it, else by its code, else by its name.
 */
export function describeError(err: unknown, depth = 0): string {
  if (!(err instanceof Error)) return String(err);
  if (err.message) return err.message;
  const inner = (err as { errors?: unknown }).errors;
  if (Array.isArray(inner) && inner.length > 0 && depth < 3) {
    return [...new Set(inner.map((e) => describeError(e, depth + 1)))].join('; ');
  }
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code ? code : err.name;
}

/** AWS SDK service exception name (e.g. ResourceNotFoundException), if any. */
export function awsErrorName(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'name' in err && typeof (err as { name: unknown }).name === 'string') {
    return (err as { name: string }).name;
  }
  return undefined;
}
