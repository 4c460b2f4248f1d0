import type { Logger } from '../log';
import type { Env, PasswordPolicy } from '../password';
import type { DbSecret } from './secret';
import type { TlsOptions } from './tls';

/** How to reach the server: one connection attempt's settings, resolved by the framework. */
export interface ConnectOptions {
  tls: TlsOptions;
  connectTimeoutMs: number;
  /**
   * Longest time one statement (or server command) may run before the engine abandons it and
   * fails with a ConnectError('NETWORK'): STATEMENT_TIMEOUT_MS, default 30000. Apply it on the
   * server side where the server has a setting and on the driver side as well, so a server that
   * accepts the login and then never answers cannot hold the function until the Lambda timeout.
   */
  statementTimeoutMs: number;
  log: Logger;
  /** The handler's environment for this invocation (HandlerOptions.env): read it, never process.env. */
  env: Env;
}

/** What a single-user password change needs. */
export interface PasswordChange {
  /** The user whose password changes (the logged-in user). */
  username: string;
  /** The password that just logged in (AWSCURRENT's, or AWSPREVIOUS's on the recovery path). */
  oldPassword: string;
  newPassword: string;
  /** The handler's environment for this invocation. */
  env: Env;
}

/** What a multi-user (alternating users) setSecret asks the admin connection to do. */
export interface AlternateUserChange {
  /** The user AWSCURRENT names: the template whose privileges the alternate user gets. */
  currentUser: string;
  /** The user AWSPENDING names (`user` <-> `user_clone`): created if missing. */
  alternateUser: string;
  /** The alternate user's new password. */
  newPassword: string;
  /** The whole AWSCURRENT secret (engine-specific fields such as dbname). */
  current: DbSecret;
  /** The handler's environment for this invocation. */
  env: Env;
  /**
   * True when the secret names both users (`alternateUsername`): a DBA created them, so the
   * pair marker rule does not apply (checkAlternateUser skips it; the capability and login
   * checks still apply), and nothing is created or copied (setAlternatePassword only).
   */
  precreated?: boolean;
}

/**
 * A database engine, in the spirit of HashiCorp Vault's database plugin interface: it only
 * knows how to connect, change a password, create or update the alternate user, and run a
 * check. The strategies, the secret handling and the step protocol belong to the framework
 * (DatabaseRotator).
 *
 * Every identifier and password an engine sends to the server must be quoted or escaped with
 * the driver's or the server's own facilities.
 */
export interface DatabaseEngine<Conn = unknown> {
  /** Short name for logs and errors, e.g. "postgres". */
  readonly name: string;
  /** Values of the secret's `engine` field this engine accepts. */
  readonly engines: readonly string[];
  readonly defaultPort: number;
  /** Database to connect to when the secret has no `dbname` (undefined: none). */
  readonly defaultDatabase?: string;
  /** Longest username the server accepts, in the unit `usernameLength` measures (default: characters). */
  readonly maxUsernameLength: number;
  /**
   * The limit for one secret under the handler's environment (e.g. a limit set by an environment
   * variable); the framework uses it instead of `maxUsernameLength` when present.
   */
  maxUsernameLengthFor?(secret: DbSecret, env: Env): number;
  /** A username's length in bytes, for servers that limit bytes (PostgreSQL: UTF-8); default: characters. */
  usernameLength?(username: string): number;
  /** What usernameLength counts, for error messages (default "bytes" when usernameLength is set). */
  readonly usernameLengthUnit?: string;
  /**
   * True when the admin secret's own `dbname` names where the admin logs in (MongoDB's
   * authentication database). Otherwise the admin connects to the child's database, as AWS's
   * rotators do.
   */
  readonly adminKeepsOwnDatabase?: boolean;
  /** Overrides of the default password policy (before environment variables). */
  readonly passwordDefaults?: Partial<PasswordPolicy>;
  /**
   * The whole password policy from the environment, for an engine whose server has rules the
   * variables must not break (Redshift): it may refuse a setting with a ConfigError. Replaces
   * passwordDefaults + the documented variables.
   */
  passwordPolicy?(env: Env): PasswordPolicy;

  /** Open a connection as `secret.username`. Throw a ConnectError (AUTH/TLS/NETWORK) on failure. */
  connect(secret: DbSecret, options: ConnectOptions): Promise<Conn>;
  close(conn: Conn): Promise<void>;

  /** Single-user: change the logged-in user's own password. */
  setOwnPassword(conn: Conn, change: PasswordChange, log: Logger): Promise<void>;

  /**
   * Multi-user: on an admin connection, create the alternate user if it does not exist, give it
   * the current user's privileges (every rotation, so grants added later reach it), and set its
   * password.
   */
  upsertAlternateUser(adminConn: Conn, change: AlternateUserChange, log: Logger): Promise<void>;

  /**
   * Multi-user, read-only, called by the framework on the admin connection before
   * upsertAlternateUser (and alone by a preflight): prove that `change.alternateUser`, when it
   * already exists, is this pair's alternate and not someone else who happens to have that name.
   * It must be a login; it may hold no capability `change.currentUser` lacks (superuser /
   * sysadmin / DBA-like attributes, role-admin and replication-like attributes, memberships and
   * grants beyond the current user's); and where the engine can record one, the pair carries the
   * marker this framework sets when it creates a clone (see ADOPT_UNMARKED_ALTERNATE). Otherwise
   * throw a PrivilegeError or RotationStateError naming the user and the reason. Changes nothing.
   * A missing alternate user passes (upsertAlternateUser creates it, with the marker).
   */
  checkAlternateUser?(adminConn: Conn, change: AlternateUserChange, log: Logger): Promise<void>;

  /**
   * Pre-created pairs (the secret has `alternateUsername`; `change.precreated` is true): on the
   * admin connection, prove that both users exist and are logins and that the alternate user
   * holds no capability `change.currentUser` lacks (the checkAlternateUser proof without the
   * marker rule), then set only the alternate user's password. Nothing is created, granted or
   * copied, so the admin needs only the right to read the catalog and change these two users'
   * passwords. A missing user is a RotationStateError; an alternate that is more privileged a
   * PrivilegeError; both before anything changes. Engines without it refuse `alternateUsername`
   * (UNSUPPORTED).
   */
  setAlternatePassword?(adminConn: Conn, change: AlternateUserChange, log: Logger): Promise<void>;

  /** testSecret: run a trivial query proving the session works. */
  check(conn: Conn): Promise<void>;

  /** `user` <-> `user_clone` by default; Oracle uses `_CLONE`. */
  alternateUsername?(username: string): string;

  /** Reject a password the engine cannot carry safely (throw SecretFormatError/ConfigError). */
  validatePassword?(password: string): void;

  /** Extra secret checks (e.g. Oracle requires dbname). Throw SecretFormatError naming the field. */
  validateSecret?(secret: DbSecret, label: string, env: Env): void;
}
