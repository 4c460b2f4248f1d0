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
 * granted or removed later reach it). Only roles are copied (not authenticationRestrictions or
 * mechanisms). The admin user needs userAdmin on that database (or userAdminAnyDatabase/root),
 * and grant rights on the databases of the copied roles.
 *
 * Pair proof (checkAlternateUser, before anything changes): an existing alternate user may hold
 * no role (role name + database) the current user lacks, must have a password (SCRAM) login
 * where the server lists mechanisms, and, where the server has a place for it, the `_clone`
 * side carries the marker `customData.rotationLambdas = {alternateOf: <user>, db: <db>}` that
 * upsertAlternateUser writes when it creates the clone. Amazon DocumentDB documents no
 * customData for users, so on DocumentDB (MONGODB_ALTERNATE_MARKER=none, chosen automatically
 * for *.docdb.amazonaws.com endpoints) the capability check stands alone.
 *
 * Amazon DocumentDB keeps every user in `admin` and runs every user command there, whatever
 * database it is sent to; a usersInfo reply naming `admin` for a user asked for in another
 * database is taken as that (DocumentDB's) answer.
 *
 * Timeouts: every command after the login is bounded by the driver's socketTimeoutMS =
 * STATEMENT_TIMEOUT_MS (a stalled server fails the step with NETWORK). The driver in
 * package.json (mongodb 7) has deprecated the client-side operation timeout `timeoutMS` (no
 * effect), and the server-side `maxTimeMS` is not sent: user-management commands are quick and
 * DocumentDB does not document maxTimeMS for them.
 */
import type { Document, MongoClientOptions } from 'mongodb';
import {
  type AlternateUserChange,
  type ConnectOptions,
  type DatabaseEngine,
  type DbSecret,
  defineEngine,
  driverLoadError,
  type EngineContext,
  type EngineProfile,
  errorChain as sharedErrorChain,
  nodeErrorClass,
  type PasswordChange,
  portOf,
  type PreflightHooks,
  trustedCaOption,
} from '../../src/db';
import {
  ConfigError,
  ConnectError,
  type Env,
  envFlag,
  type Logger,
  PrivilegeError,
  RotationError,
  RotationStateError,
  SecretFormatError,
  VerificationError,
} from '../../src/api';
import { authDatabaseOf, DEFAULT_AUTH_DATABASE, MARKER_ENV, type MarkerMode, markerModeFor } from './settings';

export { authDatabaseOf, DEFAULT_AUTH_DATABASE, MARKER_ENV, type MarkerMode, markerModeFor };

/** The authentication database when the secret names none (DocumentDB keeps all users there). */
export const MONGO_DEFAULT_PORT = 27017;
/** STATEMENT_TIMEOUT_MS's default, for callers that build a config without one. */
const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;

/**
 * MongoDB documents no limit on user names; this is a sanity bound. DocumentDB's own limits are
 * enforced by its server (createUser fails with its message).
 */
export const MAX_USERNAME_LENGTH = 1024;

/** The customData field holding this framework's pair marker. */
export const MARKER_FIELD = 'rotationLambdas';
/** Where the pair marker goes: customData (MongoDB), none (DocumentDB), or auto (by endpoint). */
export const ADOPT_ENV = 'ADOPT_UNMARKED_ALTERNATE';
const FLAG_VALUES = new Set(['true', 'false', '1', '0', 'y', 'n', 'yes', 'no']);
/** Built-in roles that administer users, databases or the cluster: named in refusals. */
const ADMIN_ROLES = new Set([
  'root', 'userAdminAnyDatabase', 'userAdmin', 'dbOwner', 'dbAdmin', 'dbAdminAnyDatabase', 'clusterAdmin',
  'clusterManager', 'hostManager', 'restore', 'backup', '__system',
]);

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
  /** The endpoint's host name (chooses the pair-marker mode on the admin connection). */
  host: string;
  /** STATEMENT_TIMEOUT_MS: named when a command is not answered in time. */
  statementTimeoutMs: number;
  /** The last checkAlternateUser result, reused by the upsert that follows it on this connection. */
  pairCheck?: PairCheck;
}


interface UserInfo {
  user: string;
  /** The database the server reports the user in (admin on DocumentDB). */
  db: string;
  roles: RoleRef[];
  customData?: Document;
  mechanisms?: string[];
}

interface PairCheck {
  key: string;
  current: UserInfo;
  alternate?: UserInfo;
  /** The `_clone` side of the pair and the user its marker names. */
  cloneSide: 'current' | 'alternate';
  original: string;
  marker: MarkerMode;
  /** The clone side carries the marker naming the original user. */
  marked: boolean;
}

export interface MongoEngineOptions {
  /** Connection factory; defaults to a real MongoClient (connectWithDriver). */
  connect?: MongoConnectFn;
}

interface RoleRef {
  role: string;
  db: string;
}



/** Build the MongoClient URL and options for a secret and one connection attempt. */
export function mongoClientConfig(secret: DbSecret, options: Pick<ConnectOptions, 'tls' | 'connectTimeoutMs'> & { statementTimeoutMs?: number }): MongoConnectConfig {
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
    // Every command after the login: a server that stops answering fails the step (NETWORK).
    socketTimeoutMS: options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS,
    // DocumentDB does not support retryable writes; user management is not retried anyway.
    retryWrites: false,
    maxPoolSize: 1,
    appName: 'rotation-lambdas',
  };
  return { url: `mongodb://${hostPart}:${port}/`, options: clientOptions, host, port, authSource, ...(replicaSet ? { replicaSet } : {}) };
}

/**
 * The default factory: a real MongoClient, connected, closed on failure. `connect()` checks a
 * connection out of the pool, which runs the handshake and the SCRAM conversation: a returned
 * client is authenticated (an injected factory must return one that is, too).
 */
export const connectWithDriver: MongoConnectFn = async (config) => {
  // The driver, loaded on the first connection rather than with the bundle: createSecret (and any
  // step that never logs in) does not pay for loading and compiling it in a cold container.
  let MongoClient: typeof import('mongodb').MongoClient;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    ({ MongoClient } = require('mongodb') as typeof import('mongodb'));
  } catch (err) {
    throw driverLoadError('mongodb', err);
  }
  const client = new MongoClient(config.url, config.options);
  try {
    await client.connect();
    return client;
  } catch (err) {
    await client.close().catch(() => undefined);
    throw err;
  }
};

export const MONGO_PROFILE: EngineProfile = {
  name: 'mongodb',
  engines: ['mongo', 'docdb'],
  defaultPort: MONGO_DEFAULT_PORT,
  defaultDatabase: DEFAULT_AUTH_DATABASE,
  username: { maxLength: MAX_USERNAME_LENGTH },
  password: { defaults: { ExcludeCharacters: MONGO_EXCLUDE_CHARACTERS } },
  /** dbname is the authentication database: the admin secret keeps its own (default admin). */
  adminDatabase: 'own',
};

/** The Mongo engine, as `createMongoEngine` builds it. */
export type MongoEngine = DatabaseEngine<MongoConnection>;

/** The one way to build it: `defineEngine` checks the profile and the operations. */
export function createMongoEngine(options: MongoEngineOptions = {}): MongoEngine {
  const connectFn: MongoConnectFn = options.connect ?? connectWithDriver;

  async function provePair(admin: MongoConnection, change: AlternateUserChange, { log, env }: EngineContext): Promise<PairCheck> {
    const db = authDatabaseOf(change.current);
    const { currentUser, alternateUser } = change;
    const remedy = adminRemedy(admin, db);
    const current = await findUser(admin, db, currentUser, remedy);
    if (!current) {
      throw new RotationStateError(`The current user "${currentUser}" does not exist in database "${db}", so its roles cannot be copied.`,
        'Check "dbname"/"authSource" in the secret: it must be the database the user is defined in.');
    }
    // The admin never changes itself: compare with the identity the server reports for the admin.
    const me = (await whoAmI(admin).catch((err: unknown) => {
      const code = serverError(err)?.code;
      if (code === 59 || code === 303) return undefined; // no connectionStatus: the secret says who the admin is
      throw classifyCommandError(err, admin, 'run connectionStatus', remedy);
    })) ?? { user: admin.username, db: admin.authDb };
    if (me.db === current.db && (me.user === alternateUser || me.user === currentUser)) {
      throw new RotationStateError(
        `The admin secret's user "${me.user}" is one of the rotated pair ("${currentUser}", "${alternateUser}") in database "${current.db}"; refusing to change its password or roles.`,
        'Use a separate admin user for the alternating-users strategy.',
      );
    }
    const cloneSide = alternateUser.endsWith(CLONE_SUFFIX) && alternateUser.slice(0, -CLONE_SUFFIX.length) === currentUser ? 'alternate' : 'current';
    const original = cloneSide === 'alternate' ? currentUser : alternateUser;
    const marker = markerModeFor(env, admin.host);
    const alternate = await findUser(admin, db, alternateUser, remedy);
    const cloneInfo = cloneSide === 'alternate' ? alternate : current;
    const marked = marker === 'customData' && cloneInfo !== undefined && carriesMarker(cloneInfo, original, current.db);
    const check: PairCheck = { key: pairKey(change), current, alternate, cloneSide, original, marker, marked };
    if (!alternate) {
      log.info('alternate user does not exist yet; it will be created', { username: alternateUser, authDb: current.db });
      return check;
    }
    if (alternate.db !== current.db) {
      throw new RotationStateError(`The alternate user "${alternateUser}" is defined in database "${alternate.db}", not in "${current.db}" with "${currentUser}".`);
    }
    if (alternate.mechanisms && !alternate.mechanisms.some((m) => /^SCRAM-/i.test(m))) {
      throw new RotationStateError(
        `The existing user "${alternateUser}" in database "${current.db}" has no password login (mechanisms: ${alternate.mechanisms.join(', ') || 'none'}); refusing to give it one.`,
        `Rename the child secret's user, or drop "${alternateUser}" if it is a leftover of this rotation.`,
      );
    }
    const has = new Set(current.roles.map(roleKey));
    const extra = alternate.roles.filter((r) => !has.has(roleKey(r)));
    if (extra.length > 0) {
      const admins = extra.filter((r) => ADMIN_ROLES.has(r.role));
      throw new PrivilegeError(
        `The existing user "${alternateUser}" in database "${current.db}" holds role(s) that "${currentUser}" does not: ${extra.map(roleKey).join(', ')}` +
          `${admins.length ? ` (administrative: ${admins.map(roleKey).join(', ')})` : ''}; it is not this pair's alternate, refusing to change its password or roles.`,
        `If "${alternateUser}" really is the alternate of "${currentUser}", give both users the same roles; otherwise use another user name in the secret.`,
      );
    }
    if (marker === 'none' || change.precreated) {
      log.info('alternate user exists and holds no role beyond the current user\'s (no pair marker on this server)', { username: alternateUser });
      return check;
    }
    if (!marked) {
      const cloneName = cloneSide === 'alternate' ? alternateUser : currentUser;
      if (!envFlag(env, ADOPT_ENV, false)) {
        throw new RotationStateError(
          `The users "${currentUser}" and "${alternateUser}" in database "${current.db}" are not marked as a rotation pair: "${cloneName}" has no customData.${MARKER_FIELD} naming "${original}" (it was not created by this function, or was created before the marker existed).`,
          `If they are one pair (e.g. created by AWS's rotation function), set ${ADOPT_ENV}=true for one rotation and the marker is added; otherwise use another user name in the secret.`,
        );
      }
      log.warn(`adopting an unmarked pair (${ADOPT_ENV}=true): the marker will be added`, { username: cloneName, original });
    }
    return check;
  }

  async function applyPair(admin: MongoConnection, change: AlternateUserChange, pair: PairCheck, log: Logger): Promise<void> {
    const db = authDatabaseOf(change.current);
    const { currentUser, alternateUser } = change;
    const remedy = adminRemedy(admin, db);
    const roles = pair.current.roles;
    const markerDoc = { alternateOf: pair.original, db: pair.current.db };
    const useMarker = pair.marker === 'customData';
    // The marker goes on first when the clone side is the current user, so that an interrupted
    // upsert is retried as a marked pair.
    if (useMarker && pair.cloneSide === 'current' && !pair.marked) {
      await runUserCommand(admin, db, { updateUser: currentUser, customData: withMarker(pair.current.customData, markerDoc) },
        `mark "${currentUser}" as the alternate of "${pair.original}"`, remedy);
    }
    const marker = useMarker && pair.cloneSide === 'alternate' ? { customData: withMarker(pair.alternate?.customData, markerDoc) } : {};
    if (pair.alternate) {
      await runUserCommand(admin, db, { updateUser: alternateUser, pwd: change.newPassword, roles, ...marker }, `update user "${alternateUser}"`, remedy);
    } else {
      await runUserCommand(admin, db, { createUser: alternateUser, pwd: change.newPassword, roles, ...marker }, `create user "${alternateUser}"`, remedy);
    }
    log.info(pair.alternate ? 'alternate user updated' : 'alternate user created', {
      username: alternateUser,
      authDb: pair.current.db,
      roles: roles.map(roleKey),
      marker: useMarker ? `customData.${MARKER_FIELD} on "${pair.cloneSide === 'alternate' ? alternateUser : currentUser}"` : 'none',
    });
  }

  const engine: MongoEngine = defineEngine<MongoConnection>({
    profile: MONGO_PROFILE,

    preflight: (): Promise<PreflightHooks<MongoConnection>> => import('./preflight').then((m) => m.mongoPreflight),

    validateSecret(secret: DbSecret, label: string, env: Env = {}): void {
      // The variables this engine reads: a bad value fails createSecret, before AWSPENDING exists.
      markerModeFor(env, secret.host);
      const adopt = env[ADOPT_ENV]?.trim().toLowerCase() ?? '';
      if (adopt !== '' && !FLAG_VALUES.has(adopt)) {
        throw new ConfigError(`${ADOPT_ENV} must be true or false, got "${adopt.slice(0, 40)}".`);
      }
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
    },

    async connect(secret: DbSecret, options: ConnectOptions): Promise<MongoConnection> {
      const config = mongoClientConfig(secret, options);
      const statementTimeoutMs = options.statementTimeoutMs;
      options.log.debug('connecting to MongoDB', {
        host: config.host,
        port: config.port,
        authSource: config.authSource,
        replicaSet: config.replicaSet ?? null,
        tls: options.tls.enabled,
        verifyChain: options.tls.verifyChain,
        verifyHostname: options.tls.verifyHostname,
      });
      try {
        // Authenticated once this returns (see connectWithDriver): no extra round trip to prove it.
        const client = await connectFn(config);
        return {
          client, username: secret.username, authDb: config.authSource, address: `${config.host}:${config.port}`,
          host: config.host, statementTimeoutMs: statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS,
        };
      } catch (err) {
        throw classifyConnectError(err, config, secret.username);
      }
    },

    async close(conn: MongoConnection): Promise<void> {
      await conn.client.close();
    },

    async setOwnPassword(conn: MongoConnection, change: PasswordChange, { log }: EngineContext): Promise<void> {
      await runUserCommand(conn, conn.authDb, { updateUser: change.username, pwd: change.newPassword }, `change the password of "${change.username}"`,
        `Give "${change.username}" a role with the changeOwnPassword action on database "${conn.authDb}" (see README), or use the alternating-users strategy.`);
      log.info('updateUser (own password) done', { username: change.username, authDb: conn.authDb });
    },

    /**
     * Read-only proof that an existing alternate user is this pair's (see the file comment).
     * Refuses with PrivilegeError (capabilities beyond the current user's, or the admin itself)
     * or RotationStateError (missing current user, not a password login, unmarked pair).
     */
    async checkAlternateUser(admin: MongoConnection, change: AlternateUserChange, ctx: EngineContext): Promise<void> {
      admin.pairCheck = await provePair(admin, change, ctx);
    },

    /** Pre-created pairs (`alternateUsername`): check both users, set only the alternate's password (precreated.ts). */
    setAlternatePassword: (admin: MongoConnection, change: AlternateUserChange, ctx: EngineContext): Promise<void> => import('./precreated').then((m) => m.setPrecreatedPassword(admin, change, ctx, { provePair: (a, c, x) => provePair(a, c, x), runUserCommand })),

    async upsertAlternateUser(admin: MongoConnection, change: AlternateUserChange, ctx: EngineContext): Promise<void> {
      const { log } = ctx;
      const key = pairKey(change);
      let pair = admin.pairCheck?.key === key ? admin.pairCheck : await provePair(admin, change, ctx);
      admin.pairCheck = undefined;
      try {
        await applyPair(admin, change, pair, log);
      } catch (err) {
        // Another invocation of the same step created the clone between our read and our
        // createUser: prove the pair again (it must carry that invocation's marker), then update.
        const e = serverError(err);
        if (pair.alternate || !e || (e.code !== 51003 && e.code !== 11000)) throw err;
        log.info('alternate user was created concurrently; checking it again and updating it', { username: change.alternateUser });
        pair = await provePair(admin, change, ctx);
        await applyPair(admin, change, pair, log);
      }
    },

    /** connectionStatus must show this user (usersInfo on oneself where connectionStatus is missing). */
    async check(conn: MongoConnection, _ctx: EngineContext): Promise<void> {
      let ok: boolean;
      try {
        const me = await whoAmI(conn);
        // DocumentDB authenticates every user against admin, whatever database the client named.
        ok = me !== undefined && me.user === conn.username && (me.db === conn.authDb || me.db === DEFAULT_AUTH_DATABASE);
      } catch (err) {
        const code = serverError(err)?.code;
        if (code !== 59 && code !== 303) throw classifyCommandError(err, conn, 'run connectionStatus', 'Any user may run connectionStatus; check the server.');
        ok = (await findUser(conn, conn.authDb, conn.username, 'Any user may read its own usersInfo; check the server.')) !== undefined;
      }
      if (!ok) {
        throw new VerificationError(
          `connectionStatus does not show "${conn.username}" authenticated on database "${conn.authDb}".`,
          'The server accepted the login but does not report the user; check the server\'s authentication configuration.',
        );
      }
    },
  });
  return engine;
}

const CLONE_SUFFIX = '_clone';

function pairKey(change: AlternateUserChange): string {
  return JSON.stringify([authDatabaseOf(change.current), change.currentUser, change.alternateUser]);
}

function roleKey(r: RoleRef): string {
  return `${r.role}@${r.db}`;
}

function adminRemedy(admin: MongoConnection, db: string): string {
  return `The admin user "${admin.username}" needs userAdmin on database "${db}" (or userAdminAnyDatabase/root), and the right to grant the copied roles.`;
}

function carriesMarker(user: UserInfo, original: string, db: string): boolean {
  const marker = user.customData?.[MARKER_FIELD] as { alternateOf?: unknown; db?: unknown } | undefined;
  return !!marker && typeof marker === 'object' && marker.alternateOf === original && marker.db === db;
}

/** The user's customData with the marker set (other fields kept: updateUser replaces customData). */
function withMarker(customData: Document | undefined, marker: { alternateOf: string; db: string }): Document {
  return { ...(customData ?? {}), [MARKER_FIELD]: marker };
}

/** The user and database the server says this connection is authenticated as. */
async function whoAmI(conn: MongoConnection): Promise<{ user: string; db: string } | undefined> {
  const status = await conn.client.db(conn.authDb).command({ connectionStatus: 1 });
  const users = (status.authInfo as { authenticatedUsers?: unknown } | undefined)?.authenticatedUsers;
  if (!Array.isArray(users) || users.length !== 1) return undefined;
  const u = users[0] as { user?: unknown; db?: unknown };
  return typeof u?.user === 'string' && typeof u.db === 'string' ? { user: u.user, db: u.db } : undefined;
}

/**
 * usersInfo for one user in `db`; undefined when it does not exist. DocumentDB answers with the
 * user in admin whatever database was asked: that answer is taken when it is the only match.
 */
async function findUser(conn: MongoConnection, db: string, user: string, remedy: string): Promise<UserInfo | undefined> {
  const reply = await runUserCommand(conn, db, { usersInfo: { user, db } }, `read user "${user}"`, remedy);
  const users = reply.users;
  if (!Array.isArray(users)) throw new Error(`MongoDB's usersInfo reply for "${user}" on database "${db}" has no users array.`);
  const named = users.filter((u: { user?: unknown }) => u?.user === user) as Array<Record<string, unknown>>;
  const found = named.find((u) => u.db === db) ?? (named.length === 1 && named[0].db === DEFAULT_AUTH_DATABASE ? named[0] : undefined);
  if (!found) return undefined;
  const roles = found.roles;
  if (!Array.isArray(roles) || !roles.every((r) => r && typeof r.role === 'string' && typeof r.db === 'string')) {
    throw new Error(`MongoDB's usersInfo reply for "${user}" on database "${db}" has no usable roles list.`);
  }
  const customData = found.customData && typeof found.customData === 'object' ? (found.customData as Document) : undefined;
  const mechanisms = Array.isArray(found.mechanisms) ? found.mechanisms.filter((m): m is string => typeof m === 'string') : undefined;
  return {
    user, db: found.db as string, roles: roles.map((r: RoleRef) => ({ role: r.role, db: r.db })),
    ...(customData ? { customData } : {}), ...(mechanisms ? { mechanisms } : {}),
  };
}

/** Run a user-management command; failures are classified (classifyCommandError). */
async function runUserCommand(conn: MongoConnection, db: string, command: Document, what: string, privilegeRemedy: string): Promise<Document> {
  try {
    return await conn.client.db(db).command(command);
  } catch (err) {
    const pwd = typeof command.pwd === 'string' ? command.pwd : undefined;
    throw classifyCommandError(pwd ? withoutSecret(err, pwd) : err, conn, `${what} on database "${db}"`, privilegeRemedy);
  }
}

/**
 * A server or driver error that quotes the password it was sent (a server that echoes the
 * command in its message) is replaced by a copy without it, and without its cause chain: the
 * password must not reach a message or a cause.
 */
function withoutSecret(err: unknown, secret: string): unknown {
  const forms = [secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)];
  const chain = sharedErrorChain(err);
  const leaks = chain.some((e) => {
    const text = `${(e as { message?: unknown }).message ?? ''} ${(e as { errmsg?: unknown }).errmsg ?? ''} ${(e as { stack?: unknown }).stack ?? ''}`;
    return forms.some((f) => text.includes(f));
  });
  if (!leaks || !(err instanceof Error)) return err;
  let message = err.message;
  for (const f of forms) message = message.split(f).join('<password>');
  const e = err as Error & { code?: unknown; codeName?: unknown };
  return Object.assign(new Error(message), {
    name: err.name,
    ...(typeof e.code === 'number' ? { code: e.code } : {}),
    ...(typeof e.codeName === 'string' ? { codeName: e.codeName } : {}),
  });
}

/**
 * A failed command, in the shared codes: Unauthorized (13) -> PRIVILEGE; a field or command the
 * server does not support (DocumentDB 303, or 2 "... is not a valid argument") -> UNSUPPORTED;
 * no answer within STATEMENT_TIMEOUT_MS, or a lost connection -> NETWORK. Server errors keep
 * their own code and message (a server message never holds the password). Duplicate-user errors
 * (51003/11000) stay as they are for the caller to converge.
 */
export function classifyCommandError(err: unknown, conn: Pick<MongoConnection, 'address' | 'statementTimeoutMs'>, what: string, privilegeRemedy: string): Error {
  if (err instanceof RotationError) return err;
  const e = serverError(err);
  if (e && (e.code === 13 || e.codeName === 'Unauthorized')) {
    return new PrivilegeError(`MongoDB refused to ${what}: ${e.message.slice(0, 200)} (code 13 Unauthorized).`, privilegeRemedy, err);
  }
  if (e && (e.code === 303 || (e.code === 2 && /is not a valid argument/.test(e.message)))) {
    return new RotationError('UNSUPPORTED', `The server does not support what it takes to ${what}: ${e.message.slice(0, 200)} (code ${e.code}).`, {
      remedy: /customData/.test(e.message)
        ? `This server (Amazon DocumentDB?) has no customData for users: set ${MARKER_ENV}=none so the pair is proved by its roles alone.`
        : 'Check that the server supports MongoDB user management (createUser, updateUser, usersInfo).',
      cause: err,
    });
  }
  if (!e) {
    const name = err instanceof Error ? err.name : '';
    const timedOut = name === 'MongoNetworkTimeoutError' || (err instanceof Error && /timed out|timeout/i.test(err.message));
    if (timedOut) {
      return new ConnectError('NETWORK',
        `MongoDB at ${conn.address} did not answer within ${conn.statementTimeoutMs} ms while trying to ${what}: the statement timed out (STATEMENT_TIMEOUT_MS=${conn.statementTimeoutMs}). Check the server's health and load, or raise STATEMENT_TIMEOUT_MS.`, err);
    }
    if (/^MongoNetwork|^MongoServerSelection|^MongoTopologyClosed/.test(name) || nodeErrorClass(err, serverSelectionErrors)) {
      return new ConnectError('NETWORK', `The connection to MongoDB at ${conn.address} failed while trying to ${what}: ${(err as Error).message.slice(0, 200)}`, err);
    }
  }
  const detail = e ? `${e.message} (code ${e.code ?? '?'}${e.codeName ? ` ${e.codeName}` : ''})` : err instanceof Error ? err.message : String(err);
  return Object.assign(new Error(`MongoDB could not ${what}: ${detail.slice(0, 300)}`, { cause: err }), e ? { code: e.code, codeName: e.codeName } : {});
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


export const mongoEngine = createMongoEngine();
