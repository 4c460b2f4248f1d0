/**
 * A small MongoDB server, at the wire level, for tests: the REAL `mongodb` driver connects to it
 * over TCP (optionally TLS) and speaks OP_QUERY (first handshake) and OP_MSG with BSON.
 *
 * It is a stateful model, not a script: it holds users (SCRAM-SHA-256 keys, never the password),
 * their roles and a simple authorization model, authenticates with a real SCRAM-SHA-256 server
 * conversation (RFC 5802/7677 as MongoDB runs it: saslStart/saslContinue, BSON Binary payloads,
 * conversationId, speculative authentication inside the handshake), applies createUser and
 * updateUser to its state and answers usersInfo/connectionStatus from it. Every command is
 * recorded (name, database, authenticated user, arguments, outcome); the arguments include `pwd`,
 * so tests must compare it with the expected secret and never print it. Unknown commands and
 * unknown fields are rejected the way the server rejects them, so unexpected traffic fails tests.
 *
 * Authorization model (a subset of MongoDB's):
 * - `root` or `userAdminAnyDatabase` (in admin): manage users and grant roles in every database;
 * - `userAdmin` or `dbOwner` in database D: manage users of D and grant roles of D;
 * - a custom role created with `addRole(db, name, ['changeOwnPassword'])`: change one's own
 *   password (updateUser on oneself with `pwd` only);
 * - anyone authenticated may read their own usersInfo.
 *
 * Two personalities (option `personality`):
 * - `mongodb` (default): MongoDB 7 as self-managed. Users live in any database; `customData` is
 *   stored and returned by usersInfo; unknown commands fail with 59 CommandNotFound, unknown
 *   fields with 40415.
 * - `documentdb`: Amazon DocumentDB as its developer guide documents it (role_based_access_control,
 *   security.managing-users): every user is stored in and authenticates against `admin`, whatever
 *   database a command or a SASL conversation names ("all user and role operations are implicitly
 *   performed in the admin database"); a role given without `db` belongs to the command's
 *   database; only DocumentDB's built-in roles exist (no `userAdmin`, no `enableSharding`); usersInfo
 *   answers `{_id: <user>, user, db: "admin", roles}`; the primary user has `root` and the
 *   `serviceadmin` user (root) exists, cannot log in and cannot be changed; lack of privilege is
 *   code 13 "Authorization failure"; an unsupported command is code 303 "Feature not supported";
 *   an argument it does not take is code 2 `"<field>" is not a valid argument to <command>` (the
 *   form DocumentDB returns for `authenticationRestrictions`). createUser/updateUser take only
 *   `pwd`, `roles` and `writeConcern`: DocumentDB documents no `customData`, `mechanisms` or
 *   `authenticationRestrictions` for users and shows none in its usersInfo output, so the fake
 *   refuses them (UNVERIFIED against a live cluster: if DocumentDB accepts customData, the fake
 *   is stricter than the service, never more permissive). The duplicate-user error (51003) and
 *   the changeOwnPassword custom-role action are MongoDB's, also unverified on DocumentDB.
 *
 * Of the user-management commands only usersInfo, createUser and updateUser (the ones the engine
 * sends) are modelled; any other command is refused as unknown (59, or 303 as DocumentDB), so
 * traffic the engine should not send fails the tests.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { BSON } from 'mongodb';

type Doc = Record<string, unknown>;

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_COMPRESSED = 2012;
const OP_MSG = 2013;
const MAX_MESSAGE_BYTES = 48_000_000;
const SCRAM_ITERATIONS = 4096; // the driver refuses fewer

export interface RoleRef {
  role: string;
  db: string;
}

export interface FakeUser {
  user: string;
  db: string;
  roles: RoleRef[];
  customData?: Record<string, unknown>;
}

export type FakePersonality = 'mongodb' | 'documentdb';

export type FakeAction = 'changeOwnPassword';

interface StoredUser extends FakeUser {
  userId: BSON.UUID;
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** One command as the fake received it. `args` excludes $db, lsid, $clusterTime, $readPreference. */
export interface RecordedCommand {
  connectionId: number;
  name: string;
  db: string;
  /** "db.user" authenticated on the connection when the command arrived; undefined if none. */
  user?: string;
  args: Doc;
  ok: boolean;
  code?: number;
  codeName?: string;
}

export interface LoginAttempt {
  connectionId: number;
  db: string;
  user: string;
  ok: boolean;
}

export interface ServerFailure {
  code: number;
  codeName: string;
  errmsg: string;
}

export interface MongoWireFakeOptions {
  /** Listen with TLS using this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Answer hello as the primary of this replica set. */
  replicaSet?: string;
  /** Which server to behave like (default mongodb). */
  personality?: FakePersonality;
}

class CommandError extends Error {
  constructor(readonly code: number, readonly codeName: string | undefined, message: string) {
    super(message);
  }
}

interface Conversation {
  id: number;
  db: string;
  user: string;
  clientFirstBare: string;
  serverFirst: string;
  nonce: string;
  done: boolean;
}

interface ConnState {
  id: number;
  socket: net.Socket;
  buffer: Buffer;
  auth?: { db: string; user: string };
  conversations: Map<number, Conversation>;
}

/** DocumentDB's built-in roles (developer guide, "Database access using Role-Based Access Control"). */
const DOCDB_ROLES_ANY_DB = ['read', 'readWrite', 'dbAdmin', 'dbOwner'];
const DOCDB_ROLES_ADMIN = [
  'root', 'readAnyDatabase', 'readWriteAnyDatabase', 'userAdminAnyDatabase', 'dbAdminAnyDatabase',
  'clusterAdmin', 'clusterManager', 'clusterMonitor', 'hostManager', 'backup', 'restore',
];
const DOCDB_USER_FIELDS = new Set(['pwd', 'roles', 'writeConcern']);
const DOCDB_SERVICE_USER = 'serviceadmin';

const BUILTIN_ROLES_ANY_DB = ['read', 'readWrite', 'dbAdmin', 'userAdmin', 'dbOwner', 'enableSharding'];
const BUILTIN_ROLES_ADMIN = [
  'root', 'readAnyDatabase', 'readWriteAnyDatabase', 'userAdminAnyDatabase', 'dbAdminAnyDatabase',
  'clusterAdmin', 'clusterManager', 'clusterMonitor', 'hostManager', 'backup', 'restore',
];
/** Fields the server attaches to any command; not recorded in `args`. */
const GENERIC_FIELDS = new Set(['$db', 'lsid', '$clusterTime', '$readPreference', 'txnNumber', 'autocommit', 'apiVersion', 'apiStrict', 'apiDeprecationErrors']);
const USER_FIELDS = new Set(['pwd', 'roles', 'customData', 'writeConcern', 'mechanisms', 'digestPassword', 'authenticationRestrictions', 'comment']);
const USERSINFO_FIELDS = new Set(['showCredentials', 'showPrivileges', 'showAuthenticationRestrictions', 'showCustomData', 'filter', 'comment']);
/** The actions of the built-in userAdmin role on its database (MongoDB's built-in roles reference). */
const USER_ADMIN_ACTIONS = ['changeCustomData', 'changePassword', 'createRole', 'createUser', 'dropRole', 'dropUser', 'grantRole', 'revokeRole', 'setAuthenticationRestriction', 'viewRole', 'viewUser'];
const READ_ACTIONS = ['changeStream', 'collStats', 'dbHash', 'dbStats', 'find', 'killCursors', 'listCollections', 'listIndexes'];
const WRITE_ACTIONS = ['convertToCapped', 'createCollection', 'createIndex', 'dropCollection', 'dropIndex', 'insert', 'remove', 'renameCollectionSameDB', 'update'];
const NO_AUTH_COMMANDS = new Set(['hello', 'isMaster', 'ismaster', 'saslStart', 'saslContinue', 'ping', 'buildInfo', 'buildinfo', 'connectionStatus', 'endSessions', 'logout']);

export class MongoWireFake {
  /** Every command received, in order. */
  readonly commands: RecordedCommand[] = [];
  /** Every completed SCRAM login (successful or not). */
  readonly logins: LoginAttempt[] = [];
  /** Malformed traffic (e.g. a TLS ClientHello sent to the plaintext port). */
  readonly protocolErrors: string[] = [];
  /** Failed TLS handshakes on the TLS port. */
  readonly tlsErrors: string[] = [];

  private readonly users = new Map<string, StoredUser>();
  private readonly customRoles = new Map<string, FakeAction[]>();
  private readonly failures = new Map<string, ServerFailure[]>();
  private readonly ignored = new Map<string, number>();
  private readonly hooks = new Map<string, Array<() => void>>();
  private stall?: { user?: string };
  private readonly conns = new Set<ConnState>();
  private server?: net.Server;
  private nextConnId = 1;
  private nextRequestId = 1;
  private nextConversationId = 1;
  host = '127.0.0.1';
  port = 0;

  readonly personality: FakePersonality;

  constructor(private readonly options: MongoWireFakeOptions = {}) {
    this.personality = options.personality ?? 'mongodb';
    this.addServiceUsers();
  }

  private get docdb(): boolean {
    return this.personality === 'documentdb';
  }

  /** DocumentDB's `serviceadmin` (root) exists on every cluster; nobody knows its password. */
  private addServiceUsers(): void {
    if (!this.docdb) return;
    this.users.set(userKey('admin', DOCDB_SERVICE_USER), {
      user: DOCDB_SERVICE_USER, db: 'admin', roles: [{ role: 'root', db: 'admin' }], userId: new BSON.UUID(),
      ...scramCredentials(randomBytes(24).toString('base64')),
    });
  }

  async start(): Promise<{ host: string; port: number }> {
    const onSocket = (socket: net.Socket) => this.accept(socket);
    if (this.options.tls) {
      const server = tls.createServer({ cert: this.options.tls.cert, key: this.options.tls.key }, onSocket);
      server.on('tlsClientError', (err) => this.tlsErrors.push(err.message));
      this.server = server;
    } else {
      this.server = net.createServer(onSocket);
    }
    const host = this.options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(0, host, () => resolve());
    });
    this.host = host;
    this.port = (this.server.address() as net.AddressInfo).port;
    return { host: this.host, port: this.port };
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    this.conns.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Open client connections right now. */
  get openConnections(): number {
    return this.conns.size;
  }

  /** Forget users, roles, records and injected faults (connections stay open). */
  reset(): void {
    this.users.clear();
    this.customRoles.clear();
    this.failures.clear();
    this.ignored.clear();
    this.hooks.clear();
    this.stall = undefined;
    this.addServiceUsers();
    this.resetRecords();
  }

  /**
   * From now on, authenticated connections (of `user` only, when given) get no answer at all:
   * the command is recorded and the socket stays open and silent, like a server that accepted
   * the login and then hangs. Handshakes and logins are still answered.
   */
  stallAfterLogin(user?: string): void {
    this.stall = { ...(user !== undefined ? { user } : {}) };
  }

  /** Run `hook` just before the next `name` command is applied (e.g. a concurrent invocation's write). */
  beforeNext(name: string, hook: () => void): void {
    const list = this.hooks.get(name) ?? [];
    list.push(hook);
    this.hooks.set(name, list);
  }

  /** Set a user's customData directly, as someone with changeCustomData would (undefined removes it). */
  setCustomData(db: string, user: string, data: Record<string, unknown> | undefined): void {
    const u = this.mustUser(db, user);
    if (data === undefined) delete u.customData;
    else u.customData = structuredClone(data);
  }

  /** Forget the recorded commands, logins and errors; keep users and roles. */
  resetRecords(): void {
    this.commands.length = 0;
    this.logins.length = 0;
    this.protocolErrors.length = 0;
    this.tlsErrors.length = 0;
  }

  /** Create a user directly (as an operator would have). Roles given as "role@db" or objects. */
  addUser(db: string, user: string, password: string, roles: (RoleRef | string)[] = [], customData?: Record<string, unknown>): void {
    if (this.docdb && db !== 'admin') throw new Error(`fake: DocumentDB keeps every user in admin, not ${db}`);
    const parsed = roles.map((r) => (typeof r === 'string' ? parseRoleString(r) : r));
    for (const r of parsed) this.requireRole(r);
    this.users.set(userKey(db, user), {
      user, db, roles: parsed, userId: new BSON.UUID(), ...scramCredentials(password),
      ...(customData ? { customData: structuredClone(customData) } : {}),
    });
  }

  /** A custom role in `db` granting the given actions (on every database, for simplicity). */
  addRole(db: string, role: string, actions: FakeAction[]): void {
    this.customRoles.set(`${role}@${db}`, actions);
  }

  /** Add a role to an existing user (as an operator running grantRolesToUser would). */
  grantRole(db: string, user: string, role: RoleRef | string): void {
    const u = this.mustUser(db, user);
    const r = typeof role === 'string' ? parseRoleString(role) : role;
    this.requireRole(r);
    if (!u.roles.some((x) => x.role === r.role && x.db === r.db)) u.roles.push(r);
  }

  /** Set a user's password directly (e.g. to simulate a restored backup). */
  setPassword(db: string, user: string, password: string): void {
    Object.assign(this.mustUser(db, user), scramCredentials(password));
  }

  getUser(db: string, user: string): FakeUser | undefined {
    const u = this.users.get(userKey(db, user));
    return u ? publicUser(u) : undefined;
  }

  /** Every user, DocumentDB's serviceadmin excepted. */
  listUsers(): FakeUser[] {
    return [...this.users.values()].filter((u) => !(this.docdb && u.user === DOCDB_SERVICE_USER && u.db === 'admin')).map(publicUser);
  }

  /** Whether `password` is the user's password (checked against the stored SCRAM keys). */
  checkPassword(db: string, user: string, password: string): boolean {
    const u = this.users.get(userKey(db, user));
    if (!u) return false;
    const keys = scramCredentials(password, u.salt, u.iterations);
    return timingSafeEqual(keys.storedKey, u.storedKey);
  }

  /** Make the next `name` command fail with this server error (queued, one per call). */
  failNext(name: string, failure: ServerFailure): void {
    const list = this.failures.get(name) ?? [];
    list.push(failure);
    this.failures.set(name, list);
  }

  /** Answer the next `name` command with ok:1 without applying it (a server that silently does nothing). */
  ignoreNext(name: string): void {
    this.ignored.set(name, (this.ignored.get(name) ?? 0) + 1);
  }

  /** Commands that touch users (usersInfo, createUser, updateUser, ...). */
  userCommands(): RecordedCommand[] {
    return this.commands.filter((c) => ['usersInfo', 'createUser', 'updateUser', 'dropUser', 'grantRolesToUser'].includes(c.name));
  }

  // --- connection handling -------------------------------------------------------------------

  private accept(socket: net.Socket): void {
    const conn: ConnState = { id: this.nextConnId++, socket, buffer: Buffer.alloc(0), conversations: new Map() };
    this.conns.add(conn);
    socket.on('data', (chunk: Buffer) => {
      conn.buffer = Buffer.concat([conn.buffer, chunk]);
      this.drain(conn);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => this.conns.delete(conn));
  }

  private drain(conn: ConnState): void {
    while (conn.buffer.length >= 4) {
      const length = conn.buffer.readInt32LE(0);
      if (length < 16 || length > MAX_MESSAGE_BYTES) {
        this.protocolError(conn, `invalid message length ${length}`);
        return;
      }
      // As soon as a header is in, check the opcode: a TLS ClientHello on the plaintext port (or
      // any other stray protocol) is refused at once instead of waiting for a huge "message".
      if (conn.buffer.length >= 16 && ![OP_QUERY, OP_MSG, OP_COMPRESSED].includes(conn.buffer.readInt32LE(12))) {
        this.protocolError(conn, `unsupported opCode ${conn.buffer.readInt32LE(12)}`);
        return;
      }
      if (conn.buffer.length < length) return;
      const message = conn.buffer.subarray(0, length);
      conn.buffer = conn.buffer.subarray(length);
      try {
        this.onMessage(conn, message);
      } catch (err) {
        this.protocolError(conn, (err as Error).message);
        return;
      }
    }
  }

  private protocolError(conn: ConnState, message: string): void {
    this.protocolErrors.push(message);
    conn.socket.destroy();
  }

  private onMessage(conn: ConnState, message: Buffer): void {
    const requestId = message.readInt32LE(4);
    const opCode = message.readInt32LE(12);
    if (opCode === OP_MSG) {
      const flags = message.readUInt32LE(16);
      if (flags & ~0x1_0003) throw new Error(`unsupported OP_MSG flags ${flags}`);
      const end = flags & 0x1 ? message.length - 4 : message.length;
      let body: Doc | undefined;
      const sequences: Record<string, Doc[]> = {};
      let i = 20;
      while (i < end) {
        const kind = message[i++];
        const size = message.readInt32LE(i);
        if (kind === 0) {
          body = BSON.deserialize(message.subarray(i, i + size)) as Doc;
        } else if (kind === 1) {
          const idEnd = message.indexOf(0, i + 4);
          const identifier = message.toString('utf8', i + 4, idEnd);
          const docs: Doc[] = [];
          for (let j = idEnd + 1; j < i + size; ) {
            const docSize = message.readInt32LE(j);
            docs.push(BSON.deserialize(message.subarray(j, j + docSize)) as Doc);
            j += docSize;
          }
          sequences[identifier] = docs;
        } else {
          throw new Error(`unknown OP_MSG section kind ${kind}`);
        }
        i += size;
      }
      if (!body) throw new Error('OP_MSG without a body section');
      Object.assign(body, sequences);
      const db = typeof body.$db === 'string' ? body.$db : '';
      const reply = this.execute(conn, db, body);
      if (reply === undefined) return; // stalled: never answer
      if (flags & 0x2) return; // moreToCome: the client expects no reply
      const doc = BSON.serialize(reply);
      const out = Buffer.alloc(16 + 4 + 1 + doc.length);
      this.header(out, requestId, OP_MSG);
      out.writeUInt32LE(0, 16);
      out[20] = 0;
      Buffer.from(doc).copy(out, 21);
      conn.socket.write(out);
    } else if (opCode === OP_QUERY) {
      const nameEnd = message.indexOf(0, 20);
      const collection = message.toString('utf8', 20, nameEnd);
      if (!collection.endsWith('.$cmd')) throw new Error(`OP_QUERY on ${collection} is not a command`);
      const docStart = nameEnd + 1 + 8;
      const size = message.readInt32LE(docStart);
      let query = BSON.deserialize(message.subarray(docStart, docStart + size)) as Doc;
      if (query.$query && typeof query.$query === 'object') query = query.$query as Doc;
      const reply = this.execute(conn, collection.slice(0, -'.$cmd'.length), query);
      if (reply === undefined) return;
      const doc = BSON.serialize(reply);
      const out = Buffer.alloc(16 + 20 + doc.length);
      this.header(out, requestId, OP_REPLY);
      out.writeInt32LE(0, 16); // responseFlags
      out.writeBigInt64LE(0n, 20); // cursorID
      out.writeInt32LE(0, 28); // startingFrom
      out.writeInt32LE(1, 32); // numberReturned
      Buffer.from(doc).copy(out, 36);
      conn.socket.write(out);
    } else if (opCode === OP_COMPRESSED) {
      throw new Error('OP_COMPRESSED received, but no compressor was negotiated');
    } else {
      throw new Error(`unsupported opCode ${opCode}`);
    }
  }

  private header(out: Buffer, responseTo: number, opCode: number): void {
    out.writeInt32LE(out.length, 0);
    out.writeInt32LE(this.nextRequestId++, 4);
    out.writeInt32LE(responseTo, 8);
    out.writeInt32LE(opCode, 12);
  }

  // --- commands --------------------------------------------------------------------------------

  private execute(conn: ConnState, db: string, body: Doc): Doc | undefined {
    const name = Object.keys(body)[0] ?? '';
    const args: Doc = {};
    for (const [k, v] of Object.entries(body)) if (!GENERIC_FIELDS.has(k)) args[k] = v;
    const record: RecordedCommand = {
      connectionId: conn.id, name, db, args, ok: true,
      ...(conn.auth ? { user: `${conn.auth.db}.${conn.auth.user}` } : {}),
    };
    this.commands.push(record);
    if (this.stall && conn.auth && (this.stall.user === undefined || this.stall.user === conn.auth.user)) {
      record.ok = false;
      record.codeName = 'NoReply';
      return undefined;
    }
    try {
      if (!db) throw new CommandError(40571, 'Location40571', 'OP_MSG requests require a $db argument');
      const failure = this.failures.get(name)?.shift();
      if (failure) throw new CommandError(failure.code, failure.codeName, failure.errmsg);
      if (!NO_AUTH_COMMANDS.has(name) && !conn.auth) {
        throw this.unauthorized(`Command ${name} requires authentication`);
      }
      for (const hook of this.hooks.get(name)?.splice(0) ?? []) hook();
      const result = this.dispatch(conn, db, name, body);
      return { ...result, ok: 1 };
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
      record.ok = false;
      record.code = err.code;
      if (err.codeName) record.codeName = err.codeName;
      return { ok: 0, errmsg: err.message, code: err.code, ...(err.codeName ? { codeName: err.codeName } : {}) };
    }
  }

  private dispatch(conn: ConnState, db: string, name: string, body: Doc): Doc {
    switch (name) {
      case 'hello':
      case 'isMaster':
      case 'ismaster':
        return this.hello(conn, name, body);
      case 'saslStart':
        return this.saslStart(conn, db, body);
      case 'saslContinue':
        return this.saslContinue(conn, body);
      case 'ping':
        return {};
      case 'buildInfo':
      case 'buildinfo':
        return { version: '7.0.14', versionArray: [7, 0, 14, 0], maxBsonObjectSize: 16 * 1024 * 1024 };
      case 'connectionStatus': {
        // DocumentDB documents connectionStatus without arguments: the fake refuses showPrivileges there.
        if (this.docdb) this.rejectUnsupportedFields('connectionStatus', body, new Set());
        else this.rejectUnknownFields('connectionStatus', body, new Set(['showPrivileges']));
        const roles = conn.auth ? (this.users.get(userKey(conn.auth.db, conn.auth.user))?.roles ?? []) : [];
        return {
          authInfo: {
            authenticatedUsers: conn.auth ? [{ user: conn.auth.user, db: conn.auth.db }] : [],
            authenticatedUserRoles: roles,
            ...(body.showPrivileges === true ? { authenticatedUserPrivileges: this.privilegesOf(roles) } : {}),
          },
        };
      }
      case 'endSessions':
        return {};
      case 'killCursors':
        return { cursorsKilled: body.cursors ?? [], cursorsNotFound: [], cursorsAlive: [], cursorsUnknown: [] };
      case 'logout':
        conn.auth = undefined;
        return {};
      case 'usersInfo':
        return this.usersInfo(conn, db, body);
      case 'createUser':
        return this.createUser(conn, db, body);
      case 'updateUser':
        return this.updateUser(conn, db, body);
      default:
        if (this.docdb) throw new CommandError(303, undefined, `Feature not supported: ${name}`);
        throw new CommandError(59, 'CommandNotFound', `no such command: '${name}'`);
    }
  }

  private hello(conn: ConnState, name: string, body: Doc): Doc {
    const reply: Doc = {
      ...(name === 'hello' ? { isWritablePrimary: true } : { ismaster: true }),
      helloOk: true,
      maxBsonObjectSize: 16 * 1024 * 1024,
      maxMessageSizeBytes: MAX_MESSAGE_BYTES,
      maxWriteBatchSize: 100_000,
      localTime: new Date(),
      logicalSessionTimeoutMinutes: 30,
      connectionId: conn.id,
      minWireVersion: 0,
      maxWireVersion: 21,
      readOnly: false,
    };
    if (this.options.replicaSet) {
      const me = `${this.host}:${this.port}`;
      Object.assign(reply, {
        setName: this.options.replicaSet, setVersion: 1, hosts: [me], primary: me, me,
        secondary: false, electionId: new BSON.ObjectId('7fffffff0000000000000001'),
      });
    }
    if (typeof body.saslSupportedMechs === 'string') {
      const dot = body.saslSupportedMechs.indexOf('.');
      const db = body.saslSupportedMechs.slice(0, dot);
      const user = body.saslSupportedMechs.slice(dot + 1);
      if (dot > 0 && this.users.has(userKey(this.userDb(db), user))) reply.saslSupportedMechs = ['SCRAM-SHA-256'];
    }
    const spec = body.speculativeAuthenticate as Doc | undefined;
    if (spec && spec.saslStart !== undefined && typeof spec.db === 'string') {
      try {
        // As the server does: a failed speculative start is not an error, the client starts over.
        reply.speculativeAuthenticate = this.saslStart(conn, spec.db, spec, true);
      } catch (err) {
        if (!(err instanceof CommandError)) throw err;
      }
    }
    return reply;
  }

  private saslStart(conn: ConnState, db: string, body: Doc, speculative = false): Doc {
    if (body.mechanism !== 'SCRAM-SHA-256') {
      throw new CommandError(334, 'MechanismUnavailable', `Received authentication for mechanism ${String(body.mechanism)} which is not enabled`);
    }
    const message = payloadString(body.payload);
    if (!message.startsWith('n,,')) throw new CommandError(17, 'ProtocolError', 'SCRAM: channel binding is not supported');
    const clientFirstBare = message.slice(3);
    const attrs = parseScram(clientFirstBare);
    const nonce = attrs.get('r');
    const rawName = attrs.get('n');
    if (!nonce || rawName === undefined) throw new CommandError(17, 'ProtocolError', 'SCRAM: malformed client-first-message');
    if (/=(?!2C|3D)/.test(rawName)) throw new CommandError(17, 'ProtocolError', 'SCRAM: invalid escape in user name');
    const user = rawName.replace(/=2C/g, ',').replace(/=3D/g, '=');
    // DocumentDB authenticates every user against admin, whatever database the client names.
    db = this.userDb(db);
    const stored = this.docdb && user === DOCDB_SERVICE_USER ? undefined : this.users.get(userKey(db, user));
    if (!stored) {
      if (!speculative) this.logins.push({ connectionId: conn.id, db, user, ok: false });
      throw new CommandError(18, 'AuthenticationFailed', 'Authentication failed.');
    }
    const combined = nonce + randomBytes(24).toString('base64');
    const serverFirst = `r=${combined},s=${stored.salt.toString('base64')},i=${stored.iterations}`;
    const id = this.nextConversationId++;
    conn.conversations.set(id, { id, db, user, clientFirstBare, serverFirst, nonce: combined, done: false });
    return { conversationId: id, done: false, payload: new BSON.Binary(Buffer.from(serverFirst, 'utf8')) };
  }

  private saslContinue(conn: ConnState, body: Doc): Doc {
    const conv = conn.conversations.get(Number(body.conversationId));
    if (!conv) throw new CommandError(17, 'ProtocolError', 'No SASL session state found');
    if (conv.done) return { conversationId: conv.id, done: true, payload: new BSON.Binary(Buffer.alloc(0)) };
    const fail = (): never => {
      conn.conversations.delete(conv.id);
      this.logins.push({ connectionId: conn.id, db: conv.db, user: conv.user, ok: false });
      throw new CommandError(18, 'AuthenticationFailed', 'Authentication failed.');
    };
    const clientFinal = payloadString(body.payload);
    const proofAt = clientFinal.lastIndexOf(',p=');
    if (proofAt < 0) return fail();
    const withoutProof = clientFinal.slice(0, proofAt);
    const attrs = parseScram(withoutProof);
    if (attrs.get('c') !== 'biws' || attrs.get('r') !== conv.nonce) return fail();
    const stored = this.users.get(userKey(conv.db, conv.user));
    if (!stored) return fail();
    const authMessage = `${conv.clientFirstBare},${conv.serverFirst},${withoutProof}`;
    const proof = Buffer.from(clientFinal.slice(proofAt + 3), 'base64');
    const signature = hmac(stored.storedKey, authMessage);
    if (proof.length !== signature.length) return fail();
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i] ^ signature[i];
    if (!timingSafeEqual(sha256(clientKey), stored.storedKey)) return fail();
    conv.done = true;
    conn.auth = { db: conv.db, user: conv.user };
    this.logins.push({ connectionId: conn.id, db: conv.db, user: conv.user, ok: true });
    const verifier = hmac(stored.serverKey, authMessage).toString('base64');
    return { conversationId: conv.id, done: true, payload: new BSON.Binary(Buffer.from(`v=${verifier}`, 'utf8')) };
  }

  private usersInfo(conn: ConnState, db: string, body: Doc): Doc {
    if (this.docdb) this.rejectUnsupportedFields('usersInfo', body, new Set());
    else this.rejectUnknownFields('usersInfo', body, USERSINFO_FIELDS);
    const spec = body.usersInfo;
    let targets: { db: string; user?: string }[];
    if (spec === 1) targets = [{ db }];
    else if (Array.isArray(spec)) targets = spec.map((s) => userSpec(s, db));
    else targets = [userSpec(spec, db)];
    const users: Doc[] = [];
    for (const target of targets) {
      const t = { ...target, db: this.userDb(target.db) };
      const self = conn.auth && t.user !== undefined && conn.auth.db === t.db && conn.auth.user === t.user;
      if (!self && !this.canManageUsers(conn, t.db)) {
        throw this.unauthorized(`not authorized on ${db} to execute command { usersInfo: ... }`);
      }
      for (const u of this.users.values()) {
        if (u.db !== t.db || (t.user !== undefined && u.user !== t.user)) continue;
        const roles = u.roles.map((r) => ({ ...r }));
        if (this.docdb) {
          users.push({ _id: u.user, user: u.user, db: u.db, roles });
        } else {
          users.push({
            _id: `${u.db}.${u.user}`, userId: u.userId, user: u.user, db: u.db, roles,
            ...(u.customData !== undefined && body.showCustomData !== false ? { customData: structuredClone(u.customData) } : {}),
            mechanisms: ['SCRAM-SHA-256'],
          });
        }
      }
    }
    return { users };
  }

  private createUser(conn: ConnState, db: string, body: Doc): Doc {
    this.checkUserFields('createUser', body);
    const user = body.createUser;
    if (typeof user !== 'string' || user.length === 0) throw new CommandError(2, 'BadValue', 'User name must be a non-empty string');
    const userDb = this.userDb(db);
    if (!this.canManageUsers(conn, userDb)) throw this.unauthorized(`not authorized on ${db} to execute command { createUser: ... }`);
    if (body.roles === undefined) throw new CommandError(40414, 'Location40414', "BSON field 'createUser.roles' is missing but a required field");
    const roles = this.parseRoles(conn, body.roles, db);
    const pwd = requirePassword(body.pwd);
    const customData = parseCustomData(body.customData);
    if (this.docdb && user === 'admin') throw new CommandError(2, 'BadValue', 'The user name "admin" is reserved');
    if (this.users.has(userKey(userDb, user))) throw new CommandError(51003, 'Location51003', `User "${user}@${userDb}" already exists`);
    if (this.consumeIgnore('createUser')) return {};
    this.users.set(userKey(userDb, user), {
      user, db: userDb, roles, userId: new BSON.UUID(), ...scramCredentials(pwd), ...(customData ? { customData } : {}),
    });
    return {};
  }

  private updateUser(conn: ConnState, db: string, body: Doc): Doc {
    this.checkUserFields('updateUser', body);
    const user = body.updateUser;
    if (typeof user !== 'string' || user.length === 0) throw new CommandError(2, 'BadValue', 'User name must be a non-empty string');
    const userDb = this.userDb(db);
    const changes = ['pwd', 'roles', 'customData', 'mechanisms', 'authenticationRestrictions'].filter((f) => body[f] !== undefined);
    if (changes.length === 0) throw new CommandError(2, 'BadValue', 'Must specify at least one field to update in updateUser');
    const self = conn.auth?.db === userDb && conn.auth.user === user;
    const ownPasswordOnly = self && changes.length === 1 && changes[0] === 'pwd' && this.hasAction(conn, 'changeOwnPassword');
    if (!ownPasswordOnly && !this.canManageUsers(conn, userDb)) {
      throw this.unauthorized(`not authorized on ${db} to execute command { updateUser: ... }`);
    }
    if (this.docdb && userDb === 'admin' && user === DOCDB_SERVICE_USER) {
      throw this.unauthorized('The serviceadmin user cannot be modified');
    }
    const roles = body.roles === undefined ? undefined : this.parseRoles(conn, body.roles, db);
    const pwd = body.pwd === undefined ? undefined : requirePassword(body.pwd);
    const customData = parseCustomData(body.customData);
    const stored = this.users.get(userKey(userDb, user));
    if (!stored) throw new CommandError(11, 'UserNotFound', `Could not find user "${user}" for db "${userDb}"`);
    if (this.consumeIgnore('updateUser')) return {};
    if (pwd !== undefined) Object.assign(stored, scramCredentials(pwd));
    if (roles !== undefined) stored.roles = roles;
    if (customData !== undefined) stored.customData = customData;
    return {};
  }

  // --- helpers ---------------------------------------------------------------------------------

  /** Where a user named in database `db` lives: DocumentDB keeps every user in admin. */
  private userDb(db: string): string {
    return this.docdb ? 'admin' : db;
  }

  private unauthorized(mongoMessage: string): CommandError {
    return this.docdb ? new CommandError(13, 'Unauthorized', 'Authorization failure') : new CommandError(13, 'Unauthorized', mongoMessage);
  }

  private checkUserFields(command: string, body: Doc): void {
    if (this.docdb) this.rejectUnsupportedFields(command, body, DOCDB_USER_FIELDS);
    else this.rejectUnknownFields(command, body, USER_FIELDS);
  }

  /** DocumentDB's answer to an argument it does not take. */
  private rejectUnsupportedFields(command: string, body: Doc, allowed: Set<string>): void {
    for (const k of Object.keys(body)) {
      if (k === command || GENERIC_FIELDS.has(k) || allowed.has(k)) continue;
      throw new CommandError(2, 'BadValue', `"${k}" is not a valid argument to ${command}`);
    }
  }

  private rejectUnknownFields(command: string, body: Doc, allowed: Set<string>): void {
    for (const k of Object.keys(body)) {
      if (k === command || GENERIC_FIELDS.has(k) || allowed.has(k)) continue;
      throw new CommandError(40415, 'Location40415', `BSON field '${command}.${k}' is an unknown field.`);
    }
  }

  private parseRoles(conn: ConnState, value: unknown, db: string): RoleRef[] {
    if (!Array.isArray(value)) throw new CommandError(14, 'TypeMismatch', "BSON field 'roles' is the wrong type, expected type 'array'");
    return value.map((r) => {
      let ref: RoleRef;
      if (typeof r === 'string') ref = { role: r, db };
      else if (r && typeof r === 'object' && typeof (r as Doc).role === 'string' && typeof (r as Doc).db === 'string' && Object.keys(r).length === 2) {
        ref = { role: (r as RoleRef).role, db: (r as RoleRef).db };
      } else {
        throw new CommandError(2, 'BadValue', 'Role names must be strings or documents with exactly "role" and "db" fields');
      }
      this.requireRole(ref);
      if (!this.canManageUsers(conn, ref.db)) {
        throw this.unauthorized(`not authorized to grant role ${ref.role}@${ref.db}`);
      }
      return ref;
    });
  }

  private requireRole(r: RoleRef): void {
    const [anyDb, adminOnly] = this.docdb ? [DOCDB_ROLES_ANY_DB, DOCDB_ROLES_ADMIN] : [BUILTIN_ROLES_ANY_DB, BUILTIN_ROLES_ADMIN];
    const builtin = anyDb.includes(r.role) || (r.db === 'admin' && adminOnly.includes(r.role));
    if (!builtin && !this.customRoles.has(`${r.role}@${r.db}`)) {
      throw new CommandError(31, 'RoleNotFound', `Could not find role: ${r.role}@${r.db}`);
    }
  }

  private rolesOf(conn: ConnState): RoleRef[] {
    if (!conn.auth) return [];
    return this.users.get(userKey(conn.auth.db, conn.auth.user))?.roles ?? [];
  }

  /** connectionStatus's authenticatedUserPrivileges for these roles (the user-administration and data actions MongoDB's built-in roles list). */
  private privilegesOf(roles: RoleRef[]): Doc[] {
    const out: Doc[] = [];
    for (const r of roles) {
      const custom = this.customRoles.get(`${r.role}@${r.db}`);
      if (custom) out.push({ resource: { db: '', collection: '' }, actions: [...custom] });
      else if (r.db === 'admin' && (r.role === 'root' || r.role === 'userAdminAnyDatabase')) out.push({ resource: { db: '', collection: '' }, actions: [...USER_ADMIN_ACTIONS] });
      else if (r.role === 'userAdmin') out.push({ resource: { db: r.db, collection: '' }, actions: [...USER_ADMIN_ACTIONS] });
      else if (r.role === 'dbOwner') out.push({ resource: { db: r.db, collection: '' }, actions: [...USER_ADMIN_ACTIONS, ...READ_ACTIONS, ...WRITE_ACTIONS] });
      else if (r.role === 'read') out.push({ resource: { db: r.db, collection: '' }, actions: [...READ_ACTIONS] });
      else if (r.role === 'readWrite') out.push({ resource: { db: r.db, collection: '' }, actions: [...READ_ACTIONS, ...WRITE_ACTIONS] });
    }
    return out;
  }

  private canManageUsers(conn: ConnState, db: string): boolean {
    return this.rolesOf(conn).some(
      (r) => (r.db === 'admin' && (r.role === 'root' || r.role === 'userAdminAnyDatabase')) ||
        (r.db === db && (r.role === 'userAdmin' || r.role === 'dbOwner')),
    );
  }

  private hasAction(conn: ConnState, action: FakeAction): boolean {
    return this.rolesOf(conn).some((r) => this.customRoles.get(`${r.role}@${r.db}`)?.includes(action));
  }

  private consumeIgnore(name: string): boolean {
    const n = this.ignored.get(name) ?? 0;
    if (n === 0) return false;
    this.ignored.set(name, n - 1);
    return true;
  }

  private mustUser(db: string, user: string): StoredUser {
    const u = this.users.get(userKey(db, user));
    if (!u) throw new Error(`fake: no user ${user}@${db}`);
    return u;
  }
}

function publicUser(u: StoredUser): FakeUser {
  return {
    user: u.user, db: u.db, roles: u.roles.map((r) => ({ ...r })),
    ...(u.customData !== undefined ? { customData: structuredClone(u.customData) } : {}),
  };
}

function parseCustomData(value: unknown): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new CommandError(14, 'TypeMismatch', "BSON field 'customData' is the wrong type, expected type 'object'");
  }
  return structuredClone(value as Record<string, unknown>);
}

function userKey(db: string, user: string): string {
  return `${db}\u0000${user}`;
}

function parseRoleString(s: string): RoleRef {
  const at = s.lastIndexOf('@');
  if (at <= 0) throw new Error(`fake: role "${s}" must be written role@db`);
  return { role: s.slice(0, at), db: s.slice(at + 1) };
}

function userSpec(spec: unknown, db: string): { db: string; user: string } {
  if (typeof spec === 'string') return { db, user: spec };
  if (spec && typeof spec === 'object' && typeof (spec as Doc).user === 'string' && typeof (spec as Doc).db === 'string') {
    return { db: (spec as { db: string }).db, user: (spec as { user: string }).user };
  }
  throw new CommandError(2, 'BadValue', 'User name must be a string or a document with "user" and "db" fields');
}

function requirePassword(pwd: unknown): string {
  if (typeof pwd !== 'string' || pwd.length === 0) throw new CommandError(2, 'BadValue', 'Password must be a non-empty string');
  return pwd;
}

function payloadString(payload: unknown): string {
  if (payload instanceof BSON.Binary) return Buffer.from(payload.buffer.subarray(0, payload.position)).toString('utf8');
  if (payload instanceof Uint8Array) return Buffer.from(payload).toString('utf8');
  if (typeof payload === 'string') return payload;
  throw new CommandError(17, 'ProtocolError', 'SASL payload must be binary');
}

function parseScram(message: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq !== 1) throw new CommandError(17, 'ProtocolError', 'SCRAM: malformed attribute');
    attrs.set(part[0], part.slice(2));
  }
  return attrs;
}

function hmac(key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text, 'utf8').digest();
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

/** SCRAM-SHA-256 keys for a password, as MongoDB stores them (salt and iteration count included). */
function scramCredentials(password: string, salt: Buffer = randomBytes(28), iterations = SCRAM_ITERATIONS) {
  const salted = pbkdf2Sync(Buffer.from(saslPrep(password), 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return { salt, iterations, storedKey: sha256(clientKey), serverKey: createHmac('sha256', salted).update('Server Key').digest() };
}

/**
 * SASLprep (RFC 4013), enough for a test server: non-ASCII spaces become spaces, "mapped to
 * nothing" characters are removed, the result is NFKC-normalised, control and private-use
 * characters are refused.
 */
export function saslPrep(input: string): string {
  const mapped = input
    .replace(/[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g, ' ')
    .replace(/[\u00AD\u034F\u1806\u180B-\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/g, '')
    .normalize('NFKC');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001F\u007F-\u009F\uE000-\uF8FF\uFFF9-\uFFFF]/.test(mapped)) {
    throw new CommandError(2, 'BadValue', 'Password contains prohibited characters (SASLprep)');
  }
  return mapped;
}
