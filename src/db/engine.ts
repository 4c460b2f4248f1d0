import type { Logger } from '../log';
import type { Env, PasswordPolicy } from '../password';
import type { PreflightHooks } from '../ops/hooks';
import type { DbSecret } from './secret';
import type { TlsOptions } from './tls';

/**
 * A database engine, in the spirit of HashiCorp Vault's database plugin interface
 * (sdk/database/dbplugin/v5): a profile of facts the framework applies, and six operations.
 * Everything else — the step protocol, both strategies, reading and comparing secrets, the
 * admin endpoint, TLS modes, defaults, the username-length check, retries, label-aware
 * messages, timing logs around every call, scrubbing — belongs to the framework
 * (DatabaseRotator and src/db/middleware.ts). Build one with `defineEngine`.
 *
 * Every identifier and password an engine sends to the server must be quoted or escaped with
 * the driver's or the server's own facilities. An operation reports a failure by throwing a
 * RotationError with the framework's code for it (see "Errors" in the README): a refused login
 * AUTH, an unreachable or stalled server NETWORK, a certificate TLS, a statement refused for
 * lack of privilege PRIVILEGE, a state the rotation cannot fix (a user that is not a login, a
 * clone that is not this pair's) STATE. Any other error leaves the operation as a DatabaseError
 * (STATE, the engine's message kept, the driver's error as its cause): the framework wraps it.
 */
export interface DatabaseEngine<Conn = unknown> {
  readonly profile: EngineProfile;

  /** Open a connection as `target.username` to the resolved target. Throw a ConnectError (AUTH/TLS/NETWORK/CONFIG) on failure. */
  connect(target: DbSecret, options: ConnectOptions): Promise<Conn>;
  close(conn: Conn): Promise<void>;

  /** testSecret, finishSecret: run a trivial query proving the session works. */
  check(conn: Conn, ctx: EngineContext): Promise<void>;

  /** Single user: change the logged-in user's own password. */
  setOwnPassword(conn: Conn, change: PasswordChange, ctx: EngineContext): Promise<void>;

  /**
   * Alternating users, read-only, on the admin connection, called by the framework before
   * upsertAlternateUser (and alone by a preflight): prove that `change.alternateUser`, when it
   * already exists, is this pair's alternate and not someone else who happens to have that name.
   * It must be a login; it may hold no capability `change.currentUser` lacks (superuser /
   * sysadmin / DBA-like attributes, role-admin and replication-like attributes, memberships and
   * grants beyond the current user's); and where the engine can record one, the pair carries the
   * marker this framework sets when it creates a clone (see ADOPT_UNMARKED_ALTERNATE). Otherwise
   * throw a PrivilegeError or RotationStateError naming the user and the reason. Changes nothing.
   * A missing alternate user passes (upsertAlternateUser creates it, with the marker).
   */
  checkAlternateUser(adminConn: Conn, change: AlternateUserChange, ctx: EngineContext): Promise<void>;

  /**
   * Alternating users, on the admin connection: create the alternate user if it does not exist
   * (with the pair marker), give it the current user's privileges (every rotation, so grants
   * added later reach it), and set its password. Idempotent: a retry must finish what an earlier
   * attempt left half done.
   */
  upsertAlternateUser(adminConn: Conn, change: AlternateUserChange, ctx: EngineContext): Promise<void>;

  /**
   * Optional. Pre-created pairs (the secret has `alternateUsername`; `change.precreated`): on
   * the admin connection, prove both users exist and are logins and that the alternate holds no
   * capability `change.currentUser` lacks (checkAlternateUser without the marker rule), then set
   * only the alternate user's password. Nothing is created, granted or copied. Engines without
   * it refuse `alternateUsername` (UNSUPPORTED).
   */
  setAlternatePassword?(adminConn: Conn, change: AlternateUserChange, ctx: EngineContext): Promise<void>;

  /**
   * Optional. The engine's own rules for a secret (e.g. Oracle requires dbname, MongoDB's
   * username characters), beyond what the framework checks (required fields, port, TLS
   * settings, the username-length limit). Throw a SecretFormatError naming the field, never its
   * value, or a ConfigError for a bad environment variable the engine reads.
   */
  validateSecret?(secret: DbSecret, label: string, env: Env): void;

  /** Optional read-only preflight checks (rotators/<engine>/preflight.ts), loaded only by a preflight. */
  preflight?(): Promise<PreflightHooks<Conn>>;
}

/** Facts about an engine. The framework applies them; no engine code re-checks them. */
export interface EngineProfile {
  /** Short name for logs and errors, e.g. "postgres". */
  readonly name: string;
  /** Values of the secret's `engine` field this engine accepts. */
  readonly engines: readonly string[];
  /** Port when a secret (or the admin endpoint) has none. */
  readonly defaultPort: number;
  /** Database to connect to when the secret has no `dbname` (undefined: the server's default). */
  readonly defaultDatabase?: string;
  readonly username: UsernameRule;
  readonly password?: PasswordRule;
  /**
   * Where the admin secret's user logs in: `child` (default, as AWS's rotators: the database
   * the rotated secret names) or `own` (its own `dbname`: MongoDB's authentication database;
   * the admin is then a different user from the pair's even when the names are equal).
   */
  readonly adminDatabase?: 'child' | 'own';
}

export interface UsernameRule {
  /** The longest username the server accepts; a function when it depends on the secret's engine value or the environment. */
  readonly maxLength: number | ((secret: DbSecret, env: Env) => number);
  /** What maxLength counts (default `characters`: code points). */
  readonly unit?: UsernameUnit;
  /** The name as the server stores and limits it, when that differs from the secret's (Oracle: an unquoted name upper-cased, a quoted one without its quotes). */
  storedAs?(username: string): string;
  /** How a user may raise the limit, for the error's remedy (e.g. "set USERNAME_CHARACTER_LIMIT ..."). */
  readonly raiseLimit?: string;
  /** The other user of the pair: default `user` <-> `user_clone`. */
  alternate?(username: string): string;
}

export type UsernameUnit = 'characters' | 'UTF-8 bytes' | 'UTF-16 code units';

export interface PasswordRule {
  /** Overrides of the default password policy, applied before the documented variables. */
  readonly defaults?: Partial<PasswordPolicy>;
  /**
   * The whole policy from the environment, for a server whose rules the variables must not
   * break (Redshift): refuse a setting with a ConfigError. Replaces defaults + variables.
   */
  policy?(env: Env): PasswordPolicy;
  /** Reject a password the engine cannot carry safely (SecretFormatError): every generated one, and every AWSPENDING value read. */
  validate?(password: string): void;
}

/** What every operation gets from the framework: this invocation's environment and logger. */
export interface EngineContext {
  /** The handler's environment (HandlerOptions.env): read it, never process.env. */
  env: Env;
  log: Logger;
}

/** How to reach the server: one connection attempt's settings, resolved by the framework. */
export interface ConnectOptions extends EngineContext {
  tls: TlsOptions;
  connectTimeoutMs: number;
  /**
   * Longest time one statement (or server command) may run before the engine abandons it and
   * fails with a ConnectError('NETWORK'): STATEMENT_TIMEOUT_MS, default 30000. Apply it on the
   * server side where the server has a setting and on the driver side as well, so a server that
   * accepts the login and then never answers cannot hold the function until the Lambda timeout.
   */
  statementTimeoutMs: number;
}

/** What a single-user password change needs. */
export interface PasswordChange {
  /** The user whose password changes (the logged-in user). */
  username: string;
  /** The password that just logged in (AWSCURRENT's, or an older version's on the recovery path). */
  oldPassword: string;
  newPassword: string;
}

/** What an alternating-users setSecret asks the admin connection to do. */
export interface AlternateUserChange {
  /** The user AWSCURRENT names: the template whose privileges the alternate user gets. */
  currentUser: string;
  /** The user AWSPENDING names (`user` <-> `user_clone`): created if missing. */
  alternateUser: string;
  /** The alternate user's new password. */
  newPassword: string;
  /** The whole AWSCURRENT secret (engine-specific fields such as dbname). */
  current: DbSecret;
  /**
   * True when the secret names both users (`alternateUsername`): a DBA created them, so the
   * pair marker rule does not apply and nothing is created or copied (setAlternatePassword).
   */
  precreated?: boolean;
}

/**
 * The one way to build an engine: checks the profile once, at module load, so a mistake in a new
 * engine fails its first test rather than a rotation.
 */
export function defineEngine<Conn, E extends DatabaseEngine<Conn> = DatabaseEngine<Conn>>(engine: E & DatabaseEngine<Conn>): E {
  const p = engine.profile;
  const problems: string[] = [];
  if (!p || typeof p.name !== 'string' || !/^[a-z][a-z0-9-]*$/.test(p.name)) problems.push('profile.name must be a short lower-case name');
  if (!p?.engines?.length) problems.push('profile.engines must list the secret "engine" values it accepts');
  if (!Number.isInteger(p?.defaultPort) || p.defaultPort < 1 || p.defaultPort > 65535) problems.push('profile.defaultPort must be a port number');
  const max = p?.username?.maxLength;
  if (typeof max !== 'function' && !(Number.isInteger(max) && (max as number) > 0)) problems.push('profile.username.maxLength must be a positive whole number or a function');
  for (const op of ['connect', 'close', 'check', 'setOwnPassword', 'checkAlternateUser', 'upsertAlternateUser'] as const) {
    if (typeof engine[op] !== 'function') problems.push(`${op} must be a function`);
  }
  if (problems.length) throw new TypeError(`Invalid database engine ${p?.name ?? '(no name)'}: ${problems.join('; ')}.`);
  return engine;
}

/** A username's length in the unit the engine's limit counts (of the name as the server stores it). */
export function usernameLength(username: string, unit: UsernameUnit = 'characters'): number {
  if (unit === 'UTF-8 bytes') return Buffer.byteLength(username, 'utf8');
  if (unit === 'UTF-16 code units') return username.length;
  return [...username].length;
}

/** The username limit for one secret under the handler's environment. */
export function maxUsernameLength(profile: EngineProfile, secret: DbSecret, env: Env): number {
  const max = profile.username.maxLength;
  return typeof max === 'function' ? max(secret, env) : max;
}
