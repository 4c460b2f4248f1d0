/**
 * MongoDB / Amazon DocumentDB engine (secrets with engine `mongo` or `docdb`), driver `mongodb`.
 *
 * Secret fields. `host` (one host name or IP address, not a connection string), `port` (27017),
 * `dbname` = the user's authentication database (as in AWS's rotator; default `admin`, where
 * DocumentDB keeps every user), `authSource` (optional; overrides `dbname` as the
 * authentication database), `replicaSet` (optional; without it the client connects directly to
 * `host`), `ssl`/`sslCa` (TLS, on and verified by default: DocumentDB requires it).
 *
 * Nothing secret goes into a URI. The URI holds only the host and port (validated, so nothing
 * can be smuggled into it); the username and password travel in the driver's `auth` option, so
 * a password never needs URI escaping. Every command is a BSON document: names and passwords are
 * values, never spliced into text, so no quoting is involved.
 *
 * Single user: the user changes its own password with `updateUser: <user>, pwd: <new>` in its
 * authentication database. MongoDB allows that only with the `changeOwnPassword` action (a
 * custom role, see README), or with userAdmin rights on that database.
 *
 * Alternating users: on the admin connection, in the CHILD's authentication database (AWS's
 * rotator used the admin's, a bug): `usersInfo` of the current user (its roles), `usersInfo` of
 * the alternate user, then `createUser` (pwd + the current user's roles) or `updateUser` (pwd +
 * the current user's roles, so the clone mirrors the current user on every rotation: roles
 * granted or removed later reach it). Only roles are copied (not customData,
 * authenticationRestrictions or mechanisms). The admin user needs userAdmin on that database
 * (or userAdminAnyDatabase/root), and grant rights on the databases of the copied roles.
 */
import { MongoClient, type Document, type MongoClientOptions } from 'mongodb';
import type { AlternateUserChange, ConnectOptions, DatabaseEngine, PasswordChange } from '../../src/db/engine';
import { errorChain as sharedErrorChain, nodeErrorClass } from '../../src/db/net-errors';
import { portOf, type DbSecret } from '../../src/db/secret';
import { trustedCaOption } from '../../src/db/tls';
import { ConnectError, PrivilegeError, RotationStateError, SecretFormatError, VerificationError } from '../../src/errors';
import type { Logger } from '../../src/log';

/** The authentication database when the secret names none (DocumentDB keeps all users there). */
export const MONGO_DEFAULT_PORT = 27017;
export const DEFAULT_AUTH_DATABASE = 'admin';

/**
 * MongoDB documents no limit on user names; this is a sanity bound. DocumentDB's own limits are
 * enforced by its server (createUser fails with its message).
 */
export const MAX_USERNAME_LENGTH = 1024;

/** How long one command may take once connected (user management is quick). */
export const SOCKET_TIMEOUT_MS = 30_000;

/**
 * Characters a password must not contain to be usable unescaped in a `mongodb://user:pass@...`
 * URI (RFC 3986 gen-delims `:/?#[]@` and `%`), plus the quotes and backslash AWS's rotators
 * exclude. The engine itself never puts a password in a URI: this protects the applications.
 */
export const MONGO_EXCLUDE_CHARACTERS = '/@"\'\\:?#[]%';

/** What the engine needs from a connected client: `MongoClient` fits, and so does a test fake. */
export interface MongoClientLike {
  db(name: string): { command(command: Document): Promise<Document> };
  close(): Promise<void>;
}

/** Everything needed to construct the client; built by mongoClientConfig. */
export interface MongoConnectConfig {
  /** `mongodb://host:port/`: no credentials, no options. */
  url: string;
  options: MongoClientOptions;
  host: string;
  port: number;
  authSource: string;
  replicaSet?: string;
}

export type MongoConnectFn = (config: MongoConnectConfig) => Promise<MongoClientLike>;

export interface MongoConnection {
  client: MongoClientLike;
  username: string;
  /** The database the user authenticated against (where the user is defined). */
  authDb: string;
  address: string;
}

export interface MongoEngineOptions {
  /** Connection factory; defaults to a real MongoClient (connectWithDriver). */
  connect?: MongoConnectFn;
}

interface RoleRef {
  role: string;
  db: string;
}

/** The user's authentication database: `authSource`, else `dbname`, else admin. */
export function authDatabaseOf(secret: DbSecret): string {
  const authSource = secret.authSource;
  if (typeof authSource === 'string' && authSource) return authSource;
  return secret.dbname || DEFAULT_AUTH_DATABASE;
}

/** Build the MongoClient URL and options for a secret and one connection attempt. */
export function mongoClientConfig(secret: DbSecret, options: Pick<ConnectOptions, 'tls' | 'connectTimeoutMs'>): MongoConnectConfig {
  const host = secret.host.trim();
  const port = portOf(secret, MONGO_DEFAULT_PORT);
  const authSource = authDatabaseOf(secret);
  const replicaSet = typeof secret.replicaSet === 'string' && secret.replicaSet ? secret.replicaSet : undefined;
  const { tls } = options;
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const clientOptions: MongoClientOptions = {
    auth: { username: secret.username, password: secret.password },
    authSource,
    ...(replicaSet ? { replicaSet, directConnection: false } : { directConnection: true }),
    tls: tls.enabled,
    ...(tls.enabled
      ? {
          ...trustedCaOption(tls),
          tlsAllowInvalidCertificates: !tls.verifyChain,
          tlsAllowInvalidHostnames: !tls.verifyHostname,
        }
      : {}),
    connectTimeoutMS: options.connectTimeoutMs,
    serverSelectionTimeoutMS: options.connectTimeoutMs,
    socketTimeoutMS: SOCKET_TIMEOUT_MS,
    // DocumentDB does not support retryable writes; user management is not retried anyway.
    retryWrites: false,
    maxPoolSize: 1,
    appName: 'rotation-lambdas',
  };
  return { url: `mongodb://${hostPart}:${port}/`, options: clientOptions, host, port, authSource, ...(replicaSet ? { replicaSet } : {}) };
}

/** The default factory: a real MongoClient, connected (which authenticates), closed on failure. */
export const connectWithDriver: MongoConnectFn = async (config) => {
  const client = new MongoClient(config.url, config.options);
  try {
    await client.connect();
    return client;
  } catch (err) {
    await client.close().catch(() => undefined);
    throw err;
  }
};

export class MongoEngine implements DatabaseEngine<MongoConnection> {
  readonly name = 'mongodb';
  readonly engines = ['mongo', 'docdb'] as const;
  readonly defaultPort = MONGO_DEFAULT_PORT;
  /** dbname is the authentication database: the admin secret keeps its own (default admin). */
  readonly adminKeepsOwnDatabase = true;
  readonly defaultDatabase = DEFAULT_AUTH_DATABASE;
  readonly maxUsernameLength = MAX_USERNAME_LENGTH;
  readonly passwordDefaults = { ExcludeCharacters: MONGO_EXCLUDE_CHARACTERS };
  private readonly connectFn: MongoConnectFn;

  constructor(options: MongoEngineOptions = {}) {
    this.connectFn = options.connect ?? connectWithDriver;
  }

  validateSecret(secret: DbSecret, label: string): void {
    const host = secret.host.trim();
    if (!/^[A-Za-z0-9._-]+$/.test(host) && !/^\[?[0-9A-Fa-f:.]+\]?$/.test(host)) {
      throw new SecretFormatError(
        `The ${label} secret's "host" field must be a single host name or IP address (not a connection string or a host list).`,
        'Put the cluster endpoint in "host", the port in "port" and the replica set name in "replicaSet".',
      );
    }
    for (const field of ['authSource', 'replicaSet'] as const) {
      const v = secret[field];
      if (v !== undefined && v !== null && (typeof v !== 'string' || v.length === 0)) {
        throw new SecretFormatError(`The ${label} secret's "${field}" field must be a non-empty string.`);
      }
    }
    const authDb = authDatabaseOf(secret);
    if (authDb.length > 63 || /[/\\. "$\u0000]/.test(authDb)) {
      const field = typeof secret.authSource === 'string' && secret.authSource ? 'authSource' : 'dbname';
      throw new SecretFormatError(
        `The ${label} secret's "${field}" field is not a valid MongoDB database name (at most 63 characters, none of / \\ . " $ or space).`,
      );
    }
    // The Node driver escapes only the first ',' and '=' of a SCRAM user name (RFC 5802 wants
    // all of them), so a name with two of either can never log in: say so instead of "auth failed".
    if ((secret.username.match(/,/g)?.length ?? 0) > 1 || (secret.username.match(/=/g)?.length ?? 0) > 1) {
      throw new SecretFormatError(
        `The ${label} secret's "username" field contains more than one "," or "="; the MongoDB Node.js driver cannot authenticate such a user.`,
      );
    }
  }

  async connect(secret: DbSecret, options: ConnectOptions): Promise<MongoConnection> {
    const config = mongoClientConfig(secret, options);
    options.log.debug('connecting to MongoDB', {
      host: config.host,
      port: config.port,
      authSource: config.authSource,
      replicaSet: config.replicaSet ?? null,
      tls: options.tls.enabled,
      verifyChain: options.tls.verifyChain,
      verifyHostname: options.tls.verifyHostname,
    });
    let client: MongoClientLike | undefined;
    try {
      client = await this.connectFn(config);
      // Proves the session is authenticated (the driver authenticates on the first command).
      await client.db(config.authSource).command({ ping: 1 });
      return { client, username: secret.username, authDb: config.authSource, address: `${config.host}:${config.port}` };
    } catch (err) {
      if (client) await client.close().catch(() => undefined);
      throw classifyConnectError(err, config, secret.username);
    }
  }

  async close(conn: MongoConnection): Promise<void> {
    await conn.client.close();
  }

  async setOwnPassword(conn: MongoConnection, change: PasswordChange, log: Logger): Promise<void> {
    await runUserCommand(conn, conn.authDb, { updateUser: change.username, pwd: change.newPassword }, `change the password of "${change.username}"`,
      `Give "${change.username}" a role with the changeOwnPassword action on database "${conn.authDb}" (see README), or use the alternating-users strategy.`);
    log.info('updateUser (own password) done', { username: change.username, authDb: conn.authDb });
  }

  async upsertAlternateUser(admin: MongoConnection, change: AlternateUserChange, log: Logger): Promise<void> {
    const db = authDatabaseOf(change.current);
    const { currentUser, alternateUser } = change;
    if (admin.authDb === db && (admin.username === alternateUser || admin.username === currentUser)) {
      throw new RotationStateError(
        `The admin secret's user "${admin.username}" is one of the rotated pair ("${currentUser}", "${alternateUser}") in database "${db}"; refusing to change its password or roles.`,
        'Use a separate admin user for the alternating-users strategy.',
      );
    }
    const adminRemedy = `The admin user "${admin.username}" needs userAdmin on database "${db}" (or userAdminAnyDatabase/root), and the right to grant the copied roles.`;
    const current = await findUser(admin, db, currentUser, adminRemedy);
    if (!current) {
      throw new RotationStateError(`The current user "${currentUser}" does not exist in database "${db}", so its roles cannot be copied.`,
        'Check "dbname"/"authSource" in the secret: it must be the database the user is defined in.');
    }
    const roles = current.roles;
    const existing = await findUser(admin, db, alternateUser, adminRemedy);
    if (existing) {
      await runUserCommand(admin, db, { updateUser: alternateUser, pwd: change.newPassword, roles }, `update user "${alternateUser}"`, adminRemedy);
    } else {
      await runUserCommand(admin, db, { createUser: alternateUser, pwd: change.newPassword, roles }, `create user "${alternateUser}"`, adminRemedy);
    }
    log.info(existing ? 'alternate user updated' : 'alternate user created', {
      username: alternateUser,
      authDb: db,
      roles: roles.map((r) => `${r.role}@${r.db}`),
    });
  }

  /** ping, then connectionStatus must show this user (usersInfo on oneself where connectionStatus is missing). */
  async check(conn: MongoConnection): Promise<void> {
    const db = conn.client.db(conn.authDb);
    await db.command({ ping: 1 });
    let ok: boolean;
    try {
      const status = await db.command({ connectionStatus: 1 });
      const users = (status.authInfo as { authenticatedUsers?: unknown } | undefined)?.authenticatedUsers;
      ok = Array.isArray(users) && users.some((u: { user?: unknown; db?: unknown }) => u?.user === conn.username && u?.db === conn.authDb);
    } catch (err) {
      if (serverError(err)?.code !== 59) throw err; // 59 = CommandNotFound (a MongoDB-compatible server without it)
      ok = (await findUser(conn, conn.authDb, conn.username, 'Any user may read its own usersInfo; check the server.')) !== undefined;
    }
    if (!ok) {
      throw new VerificationError(
        `connectionStatus does not show "${conn.username}" authenticated on database "${conn.authDb}".`,
        'The server accepted the login but does not report the user; check the server\'s authentication configuration.',
      );
    }
  }
}

/** usersInfo for one user in `db`; undefined when it does not exist. */
async function findUser(conn: MongoConnection, db: string, user: string, remedy: string): Promise<{ roles: RoleRef[] } | undefined> {
  const reply = await runUserCommand(conn, db, { usersInfo: { user, db } }, `read user "${user}"`, remedy);
  const users = reply.users;
  if (!Array.isArray(users)) throw new Error(`MongoDB's usersInfo reply for "${user}" on database "${db}" has no users array.`);
  const found = users.find((u: { user?: unknown; db?: unknown }) => u?.user === user && u?.db === db) as { roles?: unknown } | undefined;
  if (!found) return undefined;
  const roles = found.roles;
  if (!Array.isArray(roles) || !roles.every((r) => r && typeof r.role === 'string' && typeof r.db === 'string')) {
    throw new Error(`MongoDB's usersInfo reply for "${user}" on database "${db}" has no usable roles list.`);
  }
  return { roles: roles.map((r: RoleRef) => ({ role: r.role, db: r.db })) };
}

/** Run a user-management command; Unauthorized becomes a PrivilegeError with a remedy. */
async function runUserCommand(conn: MongoConnection, db: string, command: Document, what: string, privilegeRemedy: string): Promise<Document> {
  try {
    return await conn.client.db(db).command(command);
  } catch (err) {
    const e = serverError(err);
    if (e && (e.code === 13 || e.codeName === 'Unauthorized')) {
      throw new PrivilegeError(`MongoDB refused to ${what} on database "${db}" (Unauthorized).`, privilegeRemedy, err);
    }
    const detail = e ? `${e.message} (code ${e.code ?? '?'}${e.codeName ? ` ${e.codeName}` : ''})` : err instanceof Error ? err.message : String(err);
    throw new Error(`MongoDB could not ${what} on database "${db}": ${detail}`, { cause: err });
  }
}

interface ServerErrorLike {
  message: string;
  code?: number;
  codeName?: string;
}

function serverError(err: unknown): ServerErrorLike | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as Error & { code?: unknown; codeName?: unknown };
  if (typeof e.code !== 'number' && typeof e.codeName !== 'string') return undefined;
  return { message: e.message, code: typeof e.code === 'number' ? e.code : undefined, codeName: typeof e.codeName === 'string' ? e.codeName : undefined };
}

/** A server-selection failure keeps each server's error in `reason.servers`. */
const serverSelectionErrors = (e: object): unknown[] | undefined => {
  const servers = (e as { reason?: { servers?: unknown } }).reason?.servers;
  return servers instanceof Map ? [...servers.values()].map((d) => (d as { error?: unknown })?.error) : undefined;
};

/** The error, its causes, and for a server-selection failure the per-server errors. */
function errorChain(err: unknown): Error[] {
  return sharedErrorChain(err, serverSelectionErrors).filter((e): e is Error => e instanceof Error);
}

const CONFIG_ERRORS = new Set(['MongoParseError', 'MongoInvalidArgumentError', 'MongoAPIError', 'MongoMissingCredentialsError', 'MongoCompatibilityError']);

/** Classify a driver error raised while connecting. Messages name the host and user, never the password. */
export function classifyConnectError(err: unknown, config: Pick<MongoConnectConfig, 'host' | 'port' | 'authSource' | 'replicaSet'>, username: string): ConnectError {
  if (err instanceof ConnectError) return err;
  const where = `${config.host}:${config.port}`;
  const chain = errorChain(err);
  const top = chain[0];
  const reason = (chain.find((e) => e !== top && e.message)?.message ?? top?.message ?? String(err)).slice(0, 300);
  const server = serverError(err);
  if (server && (server.code === 18 || server.codeName === 'AuthenticationFailed')) {
    return new ConnectError('AUTH', `MongoDB authentication failed for user "${username}" (authentication database "${config.authSource}") at ${where}.`, err);
  }
  if (chain.some((e) => CONFIG_ERRORS.has(e.name))) {
    return new ConnectError('CONFIG', `The MongoDB connection settings for ${where} are invalid: ${top?.message ?? reason}`, err);
  }
  if (nodeErrorClass(err, serverSelectionErrors) === 'TLS') {
    return new ConnectError('TLS', `TLS connection to MongoDB at ${where} failed: ${reason}`, err);
  }
  if (server && (server.code === 13 || server.codeName === 'Unauthorized')) {
    return new ConnectError('PRIVILEGE', `MongoDB refused a command to user "${username}" at ${where} while connecting: ${server.message}`, err);
  }
  if (server) {
    return new ConnectError('AUTH', `MongoDB refused the login of user "${username}" at ${where}: ${server.message} (${server.codeName ?? server.code}).`, err);
  }
  const rs = config.replicaSet ? ` as a member of replica set "${config.replicaSet}"` : '';
  return new ConnectError('NETWORK', `Could not reach MongoDB at ${where}${rs}: ${reason}. Check host, port, network access and the "ssl" setting.`, err);
}

export function createMongoEngine(options: MongoEngineOptions = {}): MongoEngine {
  return new MongoEngine(options);
}

export const mongoEngine = createMongoEngine();
