/**
 * An in-process model of the parts of SQL Server the SQL Server rotator touches. No SQL Server
 * can run on the test machine, so this fake stands in for the engine's connection factory
 * (tedious in production).
 *
 * It is a small stateful model, not a script: it holds server logins (password, SID, default
 * database, server roles and permissions) and databases (containment, users mapped to logins by
 * SID or contained users with their own password, roles, role memberships, permissions). A
 * session logs in only with the right password; each statement is recorded with its parameters
 * and applied to the state. DDL is parsed by the fake's own T-SQL lexer (`[...]` identifiers
 * with `]]`, `N'...'` literals with `''`), independent of the engine's quoting, so a quoting
 * mistake shows up as a wrong name, a wrong password or a syntax error. Unquoted names,
 * non-Unicode literals and anything the fake does not know are rejected loudly. Catalog queries
 * are recognised by their exact text (the engine's SQL constants) and answered from the state;
 * whether that SQL is right for a real server is not something this fake can prove.
 *
 * Errors look like tedious's: ConnectionError (code ELOGIN / ESOCKET / EENCRYPT) from connect,
 * RequestError (code EREQUEST, `number`) from statements. No error echoes statement text.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { createSecureContext, TLSSocket } from 'node:tls';
import { ConnectionError, RequestError, type ConnectionConfiguration } from 'tedious';
import { type PermissionRow, type Row, SQL, type SqlServerConnectionLike } from '../../rotators/sqlserver/engine';
import { PREFLIGHT_SQL } from '../../rotators/sqlserver/preflight';
import type { TlsOptions } from '../../src/db/tls';

export interface FakeLogin {
  name: string;
  /** 'S' SQL login, 'U' Windows login, 'R' server role. */
  type: 'S' | 'U' | 'R';
  sid: string;
  password?: string;
  defaultDatabase: string;
  disabled: boolean;
}

export interface FakeDbPrincipal {
  name: string;
  /** 'S' SQL user, 'U' Windows user, 'R' database role, 'A' application role. */
  type: 'S' | 'U' | 'R' | 'A';
  /** The login's SID for a mapped user; a SID of its own otherwise. */
  sid: string;
  /** 0 NONE (roles, users without login), 1 INSTANCE (mapped to a login), 2 DATABASE (contained, with password). */
  authenticationType: 0 | 1 | 2;
  password?: string;
  defaultSchema?: string;
  /** Extended properties (sys.extended_properties, class 4): name -> value. */
  properties?: Map<string, string>;
}

/** A permission as sys.*_permissions describes it (plus the grantee). */
export interface FakePermission extends PermissionRow {
  grantee: string;
}

export interface FakeDatabase {
  name: string;
  /** sys.databases.containment: 0 NONE, 1 PARTIAL. */
  containment: 0 | 1;
  principals: Map<string, FakeDbPrincipal>;
  /** role name -> member names */
  roleMembers: Map<string, Set<string>>;
  permissions: FakePermission[];
}

/** A DDL trigger (database or server level): events as sys.*trigger_events.type_desc names them. */
export interface FakeTrigger {
  name: string;
  events: string[];
  disabled: boolean;
}

export interface FakeStatement {
  sql: string;
  params?: Record<string, string>;
  /** Who ran it: the login or contained user name. */
  principal: string;
  database: string;
}

/** What connect() saw (no password). */
export interface FakeConnectAttempt {
  server: string;
  port?: number;
  user: string;
  database?: string;
  encrypt: unknown;
  trustServerCertificate?: boolean;
  ca: boolean;
  connectTimeout?: number;
  requestTimeout?: number;
  tls: TlsOptions;
  outcome: 'ok' | string;
}

interface Session {
  /** tedious's requestTimeout for this connection (ms), as the engine configured it. */
  requestTimeout?: number;
  principal: string;
  contained: boolean;
  database: string;
  /** The login, for a login session. */
  login?: FakeLogin;
}

/**
 * The RDS for SQL Server master user's server permissions, as AWS documents them
 * (UsingWithRDS.MasterAccounts.html, CHAP_SQLServer.html). The fake holds them WITH GRANT OPTION
 * (state W), so the master may pass them on; AWS does not document the grant option (unverified).
 */
export const RDS_MASTER_SERVER_PERMISSIONS = [
  'ADMINISTER BULK OPERATIONS', 'ALTER ANY CONNECTION', 'ALTER ANY CREDENTIAL', 'ALTER ANY EVENT SESSION',
  'ALTER ANY LINKED SERVER', 'ALTER ANY LOGIN', 'ALTER ANY SERVER AUDIT', 'ALTER ANY SERVER ROLE', 'ALTER SERVER STATE',
  'ALTER TRACE', 'CONNECT SQL', 'CREATE ANY DATABASE', 'VIEW ANY DATABASE', 'VIEW ANY DEFINITION', 'VIEW SERVER STATE',
] as const;
/** The RDS master's fixed server roles (it is in neither sysadmin nor securityadmin). */
export const RDS_MASTER_SERVER_ROLES = ['processadmin', 'setupadmin'] as const;

/** Server permissions the fake knows (a permission without ON in master is a server permission if named here). */
const SERVER_PERMISSION_NAMES = new Set<string>([
  ...RDS_MASTER_SERVER_PERMISSIONS, 'CONTROL SERVER', 'IMPERSONATE ANY LOGIN', 'ALTER ANY DATABASE', 'SHUTDOWN',
  'CREATE ENDPOINT', 'ALTER ANY ENDPOINT', 'EXTERNAL ACCESS ASSEMBLY', 'UNSAFE ASSEMBLY', 'AUTHENTICATE SERVER',
]);

/** GRANT ... ON <kind>::[name] for securables named by one name (sys.database_permissions.class), written independently of the engine. */
const SINGLE_NAME_CLASSES: Record<string, number> = {
  ASSEMBLY: 5, 'MESSAGE TYPE': 15, CONTRACT: 16, SERVICE: 17, 'REMOTE SERVICE BINDING': 18, ROUTE: 19, 'FULLTEXT CATALOG': 23,
  'SYMMETRIC KEY': 24, CERTIFICATE: 25, 'ASYMMETRIC KEY': 26, 'FULLTEXT STOPLIST': 29, 'SEARCH PROPERTY LIST': 31,
};

/** Fixed server roles: members are added only by sysadmin or by a member of the same role. */
const FIXED_SERVER_ROLES = ['sysadmin', 'securityadmin', 'serveradmin', 'processadmin', 'setupadmin', 'dbcreator', 'diskadmin', 'bulkadmin'];

/** The extended property's name the rotator writes; the fake answers SQL.marker for any name bound as @property. */
const denied15247 = (what: string) => requestError(15247, `User does not have permission to perform this action. (${what})`);

function requestError(number: number, message: string): RequestError {
  const e = new RequestError(message, 'EREQUEST');
  e.number = number;
  e.state = 1;
  e.class = 16;
  return e;
}

const syntaxError = (detail: string) => requestError(102, `Incorrect syntax (fake SQL Server: ${detail}).`);

export class FakeSqlServer {
  /** SERVERPROPERTY('ProductVersion'). */
  version = '16.0.4135.4';
  readonly logins = new Map<string, FakeLogin>();
  readonly databases = new Map<string, FakeDatabase>();
  /** server role -> member logins */
  readonly serverRoleMembers = new Map<string, Set<string>>();
  readonly serverPermissions: FakePermission[] = [];
  /** Every statement received (and never answered) while true: a server that accepts logins, then stalls. */
  stallStatements = false;
  /** Every statement received, in order. */
  readonly statements: FakeStatement[] = [];
  readonly connects: FakeConnectAttempt[] = [];
  /** Statements the fake did not recognise (each also failed loudly). */
  readonly unrecognised: FakeStatement[] = [];
  /** Every password that was ever valid, for leak checks. */
  readonly passwordsSeen = new Set<string>();
  /** Like `FORCE ENCRYPTION`: a connection with encrypt false fails (EENCRYPT). */
  forceEncryption = false;
  /** Fail encrypted connection attempts as a certificate verification failure would. */
  rejectTls = false;
  /** Fail every connection attempt as an unreachable host would. */
  unreachable = false;
  /** CHECK_POLICY: shortest password accepted by CREATE/ALTER (error 15116). */
  minPasswordLength = 8;
  /** Open sessions (closed ones are removed). */
  readonly open = new Set<FakeConnection>();
  private failures: Array<{ match: RegExp; error: () => Error; once: boolean }> = [];

  constructor() {
    this.addDatabase('master');
    for (const role of FIXED_SERVER_ROLES) {
      this.logins.set(role, { name: role, type: 'R', sid: randomUUID(), defaultDatabase: 'master', disabled: false });
      this.serverRoleMembers.set(role, new Set());
    }
  }

  // ---- set-up --------------------------------------------------------------------------------

  addDatabase(name: string, options: { contained?: boolean } = {}): FakeDatabase {
    const db: FakeDatabase = { name, containment: options.contained ? 1 : 0, principals: new Map(), roleMembers: new Map(), permissions: [] };
    this.databases.set(name, db);
    db.principals.set('dbo', { name: 'dbo', type: 'S', sid: 'sid-of-sa', authenticationType: 1, defaultSchema: 'dbo' });
    db.principals.set('guest', { name: 'guest', type: 'S', sid: randomUUID(), authenticationType: 0, defaultSchema: 'guest' });
    for (const role of ['db_owner', 'db_datareader', 'db_datawriter', 'db_ddladmin', 'db_securityadmin']) this.addRole(name, role);
    db.roleMembers.get('db_owner')!.add('dbo');
    // RDS: the master owns the databases it creates (db_owner); the fake maps it into every new one.
    if (name !== 'master') {
      for (const master of this.rdsMasters) {
        this.addUser(name, master, { login: master });
        this.addRoleMember(name, 'db_owner', master);
      }
    }
    return db;
  }

  /** RDS masters (addRdsMaster), mapped as db_owner into every database added later. */
  private readonly rdsMasters: string[] = [];

  /**
   * The RDS for SQL Server master user: a SQL login in processadmin and setupadmin with the server
   * permissions AWS documents (RDS_MASTER_SERVER_PERMISSIONS, WITH GRANT OPTION), NOT sysadmin or
   * securityadmin, and db_owner in every user database (existing ones and those added later).
   */
  addRdsMaster(name: string, password: string): FakeLogin {
    const login = this.addLogin(name, password);
    const i = this.serverPermissions.findIndex((p) => p.grantee === name);
    this.serverPermissions.splice(i, 1);
    for (const permissionName of RDS_MASTER_SERVER_PERMISSIONS) this.serverPermissions.push({ grantee: name, class: 100, state: 'W', permissionName });
    for (const role of RDS_MASTER_SERVER_ROLES) this.serverRoleMembers.get(role)!.add(name);
    for (const db of this.databases.values()) {
      if (db.name === 'master') continue;
      this.addUser(db.name, name, { login: name });
      this.addRoleMember(db.name, 'db_owner', name);
    }
    this.rdsMasters.push(name);
    return login;
  }

  /** A user-defined server role (CREATE SERVER ROLE). */
  addServerRole(name: string): void {
    this.logins.set(name, { name, type: 'R', sid: randomUUID(), defaultDatabase: 'master', disabled: false });
    this.serverRoleMembers.set(name, new Set());
  }

  /** A login; `admin: true` makes it sysadmin, which only a self-managed SQL Server has (on RDS: addRdsMaster). */
  addLogin(name: string, password: string, options: { admin?: boolean; defaultDatabase?: string; type?: 'S' | 'U' } = {}): FakeLogin {
    const login: FakeLogin = { name, type: options.type ?? 'S', sid: randomUUID(), password, defaultDatabase: options.defaultDatabase ?? 'master', disabled: false };
    this.logins.set(name, login);
    this.passwordsSeen.add(password);
    this.serverPermissions.push({ grantee: name, class: 100, state: 'G', permissionName: 'CONNECT SQL' });
    if (options.admin) this.serverRoleMembers.get('sysadmin')!.add(name);
    return login;
  }

  /** A database user for a login (`login` given) or a contained user (`password` given). */
  addUser(database: string, name: string, spec: { login?: string; password?: string; defaultSchema?: string; type?: 'S' | 'U' }): FakeDbPrincipal {
    const db = this.db(database);
    let p: FakeDbPrincipal;
    if (spec.login !== undefined) {
      const login = this.logins.get(spec.login);
      if (!login) throw new Error(`fake set-up: no login ${spec.login}`);
      p = { name, type: spec.type ?? 'S', sid: login.sid, authenticationType: 1, defaultSchema: spec.defaultSchema ?? 'dbo' };
      db.permissions.push({ grantee: name, class: 0, state: 'G', permissionName: 'CONNECT' });
    } else if (spec.password !== undefined) {
      p = { name, type: 'S', sid: randomUUID(), authenticationType: 2, password: spec.password, defaultSchema: spec.defaultSchema ?? 'dbo' };
      this.passwordsSeen.add(spec.password);
      db.permissions.push({ grantee: name, class: 0, state: 'G', permissionName: 'CONNECT' });
    } else {
      // WITHOUT LOGIN, or an orphan whose login is gone.
      p = { name, type: spec.type ?? 'S', sid: randomUUID(), authenticationType: 0, defaultSchema: spec.defaultSchema ?? 'dbo' };
    }
    db.principals.set(name, p);
    return p;
  }

  addRole(database: string, name: string): void {
    const db = this.db(database);
    db.principals.set(name, { name, type: 'R', sid: randomUUID(), authenticationType: 0 });
    db.roleMembers.set(name, new Set());
  }

  addRoleMember(database: string, role: string, member: string): void {
    this.db(database).roleMembers.get(role)!.add(member);
  }

  grant(database: string, p: FakePermission): void {
    this.db(database).permissions.push(p);
  }

  /** Make the next statement(s) matching `match` fail with `error`. */
  failOn(match: RegExp, error: () => Error, once = true): void {
    this.failures.push({ match, error, once });
  }

  // ---- inspection ------------------------------------------------------------------------------

  db(name: string): FakeDatabase {
    const db = this.databases.get(name);
    if (!db) throw new Error(`fake: no database ${name}`);
    return db;
  }

  /** Can this user log in to this database with this password (as connect() would decide)? */
  canLogin(user: string, password: string, database = 'master'): boolean {
    try {
      this.authenticate(user, password, database);
      return true;
    } catch {
      return false;
    }
  }

  rolesOf(database: string, member: string): string[] {
    return [...this.db(database).roleMembers].filter(([, m]) => m.has(member)).map(([r]) => r).sort();
  }

  serverRolesOf(login: string): string[] {
    return [...this.serverRoleMembers].filter(([, m]) => m.has(login)).map(([r]) => r).sort();
  }

  /** A grantee's permissions, without the grantee, sorted: for comparing two principals. */
  permissionsOf(database: string | 'server', grantee: string): string[] {
    const list = database === 'server' ? this.serverPermissions : this.db(database).permissions;
    return list.filter((p) => p.grantee === grantee).map(({ grantee: _g, ...rest }) => JSON.stringify(rest, Object.keys(rest).sort())).sort();
  }

  // ---- DDL triggers (sys.triggers parent_class 0, sys.server_triggers) -------------------------

  /** Database-level DDL triggers, by database name. */
  readonly databaseTriggers = new Map<string, FakeTrigger[]>();
  /** Server-level triggers (DDL events, or LOGON for a logon trigger). */
  readonly serverTriggers: FakeTrigger[] = [];

  /** As a db_owner of `database` would with CREATE TRIGGER ... ON DATABASE FOR <events>. */
  addDatabaseTrigger(database: string, name: string, events: string[], options: { disabled?: boolean } = {}): FakeTrigger {
    this.db(database);
    const t: FakeTrigger = { name, events: [...events], disabled: options.disabled ?? false };
    this.databaseTriggers.set(database, [...(this.databaseTriggers.get(database) ?? []), t]);
    return t;
  }

  /** As a sysadmin would with CREATE TRIGGER ... ON ALL SERVER FOR <events> (or a logon trigger: events ['LOGON']). */
  addServerTrigger(name: string, events: string[], options: { disabled?: boolean } = {}): FakeTrigger {
    const t: FakeTrigger = { name, events: [...events], disabled: options.disabled ?? false };
    this.serverTriggers.push(t);
    return t;
  }

  /** HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'VIEW DEFINITION'): db_owner, CONTROL or VIEW DEFINITION on it, or VIEW ANY DEFINITION. */
  seesDatabaseDefinitions(session: Session, db: FakeDatabase): boolean {
    if (!session.contained && this.hasServerPermission(session.principal, 'VIEW ANY DEFINITION')) return true;
    const me = this.databasePrincipalOf(session, db);
    const granted = db.permissions.some((p) => p.grantee === me && p.class === 0 && ['VIEW DEFINITION', 'CONTROL'].includes(p.permissionName) && p.state !== 'D');
    const denied = db.permissions.some((p) => p.grantee === me && p.class === 0 && p.permissionName === 'VIEW DEFINITION' && p.state === 'D');
    return this.isDbOwner(session, db) || (granted && !denied);
  }

  /**
   * sys.triggers / sys.server_triggers rows, with SQL Server's metadata visibility: database
   * triggers for db_owner, VIEW DEFINITION on the database or VIEW ANY DEFINITION; server
   * triggers for VIEW ANY DEFINITION (or sysadmin). Anyone else sees no rows.
   */
  private triggerRows(session: Session, db: FakeDatabase, scope: 'database' | 'server'): Row[] {
    const viewAny = !session.contained && this.hasServerPermission(session.principal, 'VIEW ANY DEFINITION');
    if (scope === 'server') {
      if (!viewAny) return [];
      return this.serverTriggers.filter((t) => !t.disabled && t.events.some((e) => e !== 'LOGON')).map((t) => ({ name: t.name }));
    }
    if (!this.seesDatabaseDefinitions(session, db)) return [];
    return (this.databaseTriggers.get(db.name) ?? []).filter((t) => !t.disabled).map((t) => ({ name: t.name }));
  }

  /** Statements (text only) run after index `from`, without catalog reads. */
  ddlSince(from = 0): string[] {
    const queries = new Set<string>([...Object.values(SQL), ...Object.values(PREFLIGHT_SQL)]);
    return this.statements.slice(from).map((s) => s.sql).filter((s) => !queries.has(s));
  }

  // ---- the connection factory (SqlServerConnectFn) ---------------------------------------------

  readonly connect = async (config: ConnectionConfiguration, tls: TlsOptions): Promise<SqlServerConnectionLike> => {
    const o = config.options ?? {};
    const auth = config.authentication as { type: string; options: { userName?: string; password?: string } } | undefined;
    const user = auth?.options.userName ?? '';
    const password = auth?.options.password ?? '';
    const attempt: FakeConnectAttempt = {
      server: config.server, port: o.port, user, database: o.database, encrypt: o.encrypt,
      trustServerCertificate: o.trustServerCertificate, ca: Boolean((o.cryptoCredentialsDetails as { ca?: unknown } | undefined)?.ca),
      connectTimeout: o.connectTimeout, requestTimeout: o.requestTimeout, tls, outcome: 'ok',
    };
    this.connects.push(attempt);
    try {
      if (auth?.type !== 'default') throw new TypeError('fake SQL Server: only SQL authentication is modelled');
      if (this.unreachable) {
        const cause = Object.assign(new Error(`connect ECONNREFUSED ${config.server}:${o.port}`), { code: 'ECONNREFUSED' });
        throw new ConnectionError(`Failed to connect to ${config.server}:${o.port} - ${cause.message}`, 'ESOCKET', { cause });
      }
      if (o.encrypt && this.rejectTls) {
        const cause = Object.assign(new Error('unable to verify the first certificate'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
        throw new ConnectionError(`Failed to connect to ${config.server}:${o.port} - ${cause.message}`, 'ESOCKET', { cause });
      }
      if (!o.encrypt && this.forceEncryption) {
        throw new ConnectionError("Server requires encryption, set 'encrypt' config option to true.", 'EENCRYPT');
      }
      const session = this.authenticate(user, password, o.database);
      session.requestTimeout = o.requestTimeout;
      const conn = new FakeConnection(this, session);
      this.open.add(conn);
      return conn;
    } catch (err) {
      attempt.outcome = (err as { code?: string }).code ?? (err as Error).name;
      throw err;
    }
  };

  private authenticate(user: string, password: string, database: string | undefined): Session {
    const failed = () => new ConnectionError(`Login failed for user '${user}'.`, 'ELOGIN');
    const login = this.logins.get(user);
    const dbName = database ?? login?.defaultDatabase ?? 'master';
    const db = this.databases.get(dbName);
    // A contained database authenticates its own users first.
    const containedUser = db?.containment ? db.principals.get(user) : undefined;
    if (db && containedUser?.authenticationType === 2) {
      if (containedUser.password !== password) throw failed();
      return { principal: user, contained: true, database: dbName };
    }
    if (!login || login.type !== 'S' || login.password !== password || login.disabled) throw failed();
    if (!db) throw new ConnectionError(`Cannot open database "${dbName}" requested by the login. The login failed.`, 'ELOGIN');
    const mapped = [...db.principals.values()].some((p) => p.sid === login.sid);
    if (!mapped && !this.isAdmin(login.name) && dbName !== 'master') {
      throw new ConnectionError(`Cannot open database "${dbName}" requested by the login. The login failed.`, 'ELOGIN');
    }
    return { principal: user, contained: false, database: dbName, login };
  }

  /** sysadmin (CONTROL SERVER): allowed everything. Never the RDS master. */
  isAdmin(login: string): boolean {
    return this.serverRoleMembers.get('sysadmin')?.has(login) ?? false;
  }

  /** The login holds a server permission (granted, or through sysadmin). */
  hasServerPermission(login: string, permission: string): boolean {
    if (this.isAdmin(login)) return true;
    return this.serverPermissions.some((p) => p.grantee === login && p.class === 100 && p.permissionName === permission && (p.state === 'G' || p.state === 'W'));
  }

  /** The login may GRANT a server permission: sysadmin, or it holds it WITH GRANT OPTION. */
  canGrantServer(login: string, permission: string): boolean {
    return this.isAdmin(login) || this.serverPermissions.some((p) => p.grantee === login && p.class === 100 && p.permissionName === permission && p.state === 'W');
  }

  /** The session may administer the database (CONTROL on it): sysadmin, dbo, or a member of db_owner. */
  isDbOwner(session: Session, db: FakeDatabase): boolean {
    if (!session.contained && this.isAdmin(session.principal)) return true;
    const me = this.databasePrincipalOf(session, db);
    return me === 'dbo' || (db.roleMembers.get('db_owner')?.has(me) ?? false);
  }

  requireDbOwner(session: Session, db: FakeDatabase, permission: string): void {
    if (!this.isDbOwner(session, db)) throw denied15247(permission);
  }

  // ---- statements ------------------------------------------------------------------------------

  /** Runs one statement for a session (called by FakeConnection). */
  execute(session: Session, sql: string, params?: Record<string, string>): Row[] {
    const record: FakeStatement = { sql, ...(params ? { params: { ...params } } : {}), principal: session.principal, database: session.database };
    this.statements.push(record);
    const i = this.failures.findIndex((f) => f.match.test(sql));
    if (i >= 0) {
      const f = this.failures[i];
      if (f.once) this.failures.splice(i, 1);
      throw f.error();
    }
    const catalog = this.catalog(session, sql, params ?? {});
    if (catalog) return catalog;
    try {
      this.batch(session, tokenize(sql), params ?? {});
    } catch (err) {
      if (err instanceof Unrecognised) {
        this.unrecognised.push(record);
        throw syntaxError(err.message);
      }
      throw err;
    }
    return [];
  }

  /**
   * One batch: statements separated by `;`. `SET XACT_ABORT ON; BEGIN TRANSACTION; ...; COMMIT
   * TRANSACTION` is modelled: an error inside rolls every change of the transaction back.
   */
  private batch(session: Session, tokens: Token[], params: Record<string, string>): void {
    const statements: Token[][] = [[]];
    for (const t of tokens) {
      if (t.t === 'p' && t.v === ';') statements.push([]);
      else statements.at(-1)!.push(t);
    }
    const list = statements.filter((s) => s.length > 0);
    let rollback: (() => void) | undefined;
    let xactAbort = false;
    const is = (s: Token[], ...words: string[]) => s.length === words.length && words.every((w, i) => s[i].t === 'word' && s[i].v === w);
    try {
      for (const s of list) {
        if (is(s, 'SET', 'XACT_ABORT', 'ON')) xactAbort = true;
        else if (is(s, 'BEGIN', 'TRANSACTION')) {
          if (rollback) throw new Unrecognised('nested transaction');
          rollback = this.snapshot();
        } else if (is(s, 'COMMIT', 'TRANSACTION')) {
          if (!rollback) throw new Unrecognised('COMMIT without BEGIN TRANSACTION');
          rollback = undefined;
        } else new Ddl(this, session, s, params).run();
      }
      if (rollback) throw new Unrecognised('transaction left open at the end of the batch');
    } catch (err) {
      if (rollback) {
        if (!xactAbort) throw new Unrecognised('a transaction without SET XACT_ABORT ON would stay open after an error');
        rollback();
      }
      throw err;
    }
  }

  private catalog(session: Session, sql: string, params: Record<string, string>): Row[] | undefined {
    const db = this.db(session.database);
    const name = params.name;
    const needName = () => {
      if (typeof name !== 'string') throw requestError(137, 'Must declare the scalar variable "@name".');
      return name;
    };
    switch (sql) {
      case SQL.check:
        return [{ ok: 1 }];
      case SQL.version:
        return [{ productVersion: this.version, databaseName: session.database }];
      case SQL.session:
        return [{ containment: db.containment, authenticationType: db.principals.get(this.databasePrincipalOf(session, db))?.authenticationType ?? null }];
      case SQL.dbPrincipal: {
        const p = db.principals.get(needName());
        if (!p) return [];
        const login = [...this.logins.values()].find((l) => l.sid === p.sid);
        return [{
          name: p.name, type: p.type, authenticationType: p.authenticationType, defaultSchema: p.defaultSchema ?? null,
          loginName: login?.name ?? null, isSelf: p.name === this.databasePrincipalOf(session, db) ? 1 : 0,
        }];
      }
      case SQL.login: {
        const l = this.logins.get(needName());
        // Metadata visibility: without ALTER ANY LOGIN a session sees only its own login and the server roles.
        const seesAll = !session.contained && ['VIEW ANY DEFINITION', 'ALTER ANY LOGIN'].some((perm) => this.hasServerPermission(session.principal, perm));
        const visible = l && (l.type === 'R' || (!session.contained && (seesAll || l.name === session.principal)));
        if (!visible) return [];
        return [{
          name: l.name, type: l.type, defaultDatabase: l.type === 'R' ? null : l.defaultDatabase, disabled: l.disabled ? 1 : 0,
          isSelf: !session.contained && l.sid === session.login!.sid ? 1 : 0,
        }];
      }
      case SQL.loginUser: {
        const l = this.logins.get(needName());
        const p = l && [...db.principals.values()].find((x) => x.sid === l.sid);
        return p ? [{ name: p.name, defaultSchema: p.defaultSchema ?? null }] : [];
      }
      case SQL.dbRoles:
        return [...db.roleMembers].filter(([, m]) => m.has(needName())).map(([roleName]) => ({ roleName }));
      case SQL.dbPermissions:
        return db.permissions.filter((p) => p.grantee === needName()).map(({ grantee: _g, ...row }) => ({ schemaName: null, objectName: null, columnName: null, principalType: null, ...row }));
      case SQL.serverRoles:
        return [...this.serverRoleMembers].filter(([, m]) => m.has(needName())).map(([roleName]) => ({ roleName }));
      case SQL.marker: {
        const p = db.principals.get(needName());
        const property = params.property;
        if (typeof property !== 'string') throw requestError(137, 'Must declare the scalar variable "@property".');
        const value = p?.properties?.get(property);
        return value === undefined ? [] : [{ value }];
      }
      case PREFLIGHT_SQL.privileges: {
        const server = (perm: string) => (!session.contained && this.hasServerPermission(session.principal, perm) ? 1 : 0);
        const owner = this.isDbOwner(session, db) ? 1 : 0;
        return [{
          sysadmin: !session.contained && this.isAdmin(session.principal) ? 1 : 0, alterAnyLogin: server('ALTER ANY LOGIN'), alterAnyServerRole: server('ALTER ANY SERVER ROLE'),
          alterAnyUser: owner, alterAnyRole: owner, controlDatabase: owner, databaseName: session.database, loginName: session.contained ? null : session.principal,
        }];
      }
      case PREFLIGHT_SQL.ownLogin:
        // The fake's SQL logins are created with CHECK_POLICY ON (the default) and never locked.
        return session.contained ? [] : [{ policyChecked: 1, expirationChecked: 0, mustChange: 0, locked: 0 }];
      case SQL.triggerVisibility:
        return [{ canSee: this.seesDatabaseDefinitions(session, db) ? 1 : 0 }];
      case SQL.databaseTriggers:
        return this.triggerRows(session, db, 'database');
      case SQL.serverTriggers:
        return this.triggerRows(session, db, 'server');
      case SQL.serverPermissions:
        return this.serverPermissions.filter((p) => p.grantee === needName()).map(({ grantee: _g, ...row }) => ({ objectName: null, principalType: null, ...row }));
      default:
        return undefined;
    }
  }

  /** DATABASE_PRINCIPAL_ID()'s name: the contained user, the login's mapped user, dbo for an unmapped sysadmin, else guest. */
  private databasePrincipalOf(session: Session, db: FakeDatabase): string {
    if (session.contained) return session.principal;
    const mapped = [...db.principals.values()].find((p) => p.sid === session.login!.sid);
    return mapped ? mapped.name : this.isAdmin(session.principal) ? 'dbo' : 'guest';
  }

  /** The session's login holds a server permission (or is sysadmin); contained users hold none. */
  requireServerPermission(session: Session, permission: string): void {
    if (session.contained || !this.hasServerPermission(session.principal, permission)) throw denied15247(permission);
  }

  /** State a transaction rolls back to. */
  snapshot(): () => void {
    const saved = structuredClone({ logins: this.logins, databases: this.databases, roles: this.serverRoleMembers, perms: this.serverPermissions });
    return () => {
      const copy = structuredClone(saved);
      this.logins.clear();
      for (const [k, v] of copy.logins) this.logins.set(k, v);
      this.databases.clear();
      for (const [k, v] of copy.databases) this.databases.set(k, v);
      this.serverRoleMembers.clear();
      for (const [k, v] of copy.roles) this.serverRoleMembers.set(k, v);
      this.serverPermissions.splice(0, this.serverPermissions.length, ...copy.perms);
    };
  }

  checkPolicy(password: string): void {
    if (password.length < this.minPasswordLength) {
      throw requestError(15116, 'Password validation failed. The password does not meet the operating system policy requirements because it is too short.');
    }
  }

  setLoginPassword(login: FakeLogin, password: string): void {
    this.checkPolicy(password);
    login.password = password;
    this.passwordsSeen.add(password);
  }

  setUserPassword(user: FakeDbPrincipal, password: string): void {
    this.checkPolicy(password);
    user.password = password;
    this.passwordsSeen.add(password);
  }

  close(conn: FakeConnection): void {
    this.open.delete(conn);
  }
}

export class FakeConnection implements SqlServerConnectionLike {
  closed = false;

  constructor(private readonly server: FakeSqlServer, readonly session: Session) {}

  async query(sql: string, params?: Record<string, string>): Promise<Row[]> {
    if (this.closed) throw new RequestError('Requests can only be made in the LoggedIn state, not the Final state', 'EINVALIDSTATE');
    if (this.server.stallStatements) {
      this.server.statements.push({ sql, ...(params ? { params: { ...params } } : {}), principal: this.session.principal, database: this.session.database });
      // Never answered; tedious fails the request after its requestTimeout (0: never).
      const ms = this.session.requestTimeout;
      return new Promise<Row[]>((_, reject) => {
        if (ms) setTimeout(() => reject(new RequestError(`Timeout: Request failed to complete in ${ms}ms`, 'ETIMEOUT')), ms);
      });
    }
    return this.server.execute(this.session, sql, params);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.server.close(this);
  }
}

// ---------------------------------------------------------------------------------------------
// T-SQL lexer (the fake's own, independent of the engine's quoting)

type Token =
  | { t: 'id'; v: string } // [bracketed identifier]
  | { t: 'str'; v: string } // N'unicode literal'
  | { t: 'word'; v: string } // bare word, upper-cased
  | { t: 'var'; v: string } // @parameter (name without @)
  | { t: 'p'; v: string }; // punctuation

class Unrecognised extends Error {}

export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '[') {
      let v = '';
      i++;
      for (;;) {
        if (i >= sql.length) throw new Unrecognised('unterminated [identifier]');
        if (sql[i] === ']') {
          if (sql[i + 1] === ']') {
            v += ']';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += sql[i++];
      }
      if (v.length === 0 || v.length > 128) throw new Unrecognised('identifier length');
      out.push({ t: 'id', v });
    } else if ((c === 'N' || c === 'n') && sql[i + 1] === "'") {
      let v = '';
      i += 2;
      for (;;) {
        if (i >= sql.length) throw new Unrecognised("unterminated N'literal'");
        if (sql[i] === "'") {
          if (sql[i + 1] === "'") {
            v += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        // T-SQL line continuation: a backslash before a line break disappears with it.
        if (sql[i] === '\\' && (sql[i + 1] === '\n' || (sql[i + 1] === '\r' && sql[i + 2] === '\n'))) {
          i += sql[i + 1] === '\n' ? 2 : 3;
          continue;
        }
        v += sql[i++];
      }
      out.push({ t: 'str', v });
    } else if (c === "'") {
      throw new Unrecognised('non-Unicode string literal (would lose characters outside the code page)');
    } else if (/[A-Za-z_]/.test(c)) {
      let v = '';
      while (i < sql.length && /[A-Za-z0-9_]/.test(sql[i])) v += sql[i++];
      out.push({ t: 'word', v: v.toUpperCase() });
    } else if (c === '@' && /[A-Za-z_]/.test(sql[i + 1] ?? '')) {
      let v = '';
      i++;
      while (i < sql.length && /[A-Za-z0-9_]/.test(sql[i])) v += sql[i++];
      out.push({ t: 'var', v });
    } else if (c === ':' && sql[i + 1] === ':') {
      out.push({ t: 'p', v: '::' });
      i += 2;
    } else if ('=,.();'.includes(c)) {
      out.push({ t: 'p', v: c });
      i++;
    } else {
      throw new Unrecognised(`unexpected character at offset ${i}`);
    }
  }
  return out;
}

/** Parses and applies one DDL statement. */
class Ddl {
  private i = 0;

  constructor(
    private readonly server: FakeSqlServer,
    private readonly session: Session,
    private readonly toks: Token[],
    private readonly params: Record<string, string> = {},
  ) {}

  run(): void {
    if (this.accept('EXEC', 'SYS', '.', 'SP_ADDEXTENDEDPROPERTY')) return this.extendedProperty('add');
    if (this.accept('EXEC', 'SYS', '.', 'SP_UPDATEEXTENDEDPROPERTY')) return this.extendedProperty('update');
    if (this.accept('ALTER', 'LOGIN')) return this.alterLogin();
    if (this.accept('CREATE', 'LOGIN')) return this.createLogin();
    if (this.accept('ALTER', 'USER')) return this.alterUser();
    if (this.accept('CREATE', 'USER')) return this.createUser();
    if (this.accept('ALTER', 'ROLE')) return this.alterRole();
    if (this.accept('ALTER', 'SERVER', 'ROLE')) return this.alterServerRole();
    if (this.accept('GRANT')) return this.grantOrDeny('G');
    if (this.accept('DENY')) return this.grantOrDeny('D');
    throw new Unrecognised('unknown statement');
  }

  // -- token helpers
  private peek(k = 0): Token | undefined {
    return this.toks[this.i + k];
  }

  private accept(...words: string[]): boolean {
    for (let k = 0; k < words.length; k++) {
      const t = this.peek(k);
      if (!t || !((t.t === 'word' && t.v === words[k]) || (t.t === 'p' && t.v === words[k]))) return false;
    }
    this.i += words.length;
    return true;
  }

  private expect(...words: string[]): void {
    if (!this.accept(...words)) throw new Unrecognised(`expected ${words.join(' ')}`);
  }

  private id(): string {
    const t = this.toks[this.i++];
    if (t?.t !== 'id') throw new Unrecognised('expected a [quoted identifier]');
    return t.v;
  }

  private str(): string {
    const t = this.toks[this.i++];
    if (t?.t !== 'str') throw new Unrecognised("expected an N'literal'");
    return t.v;
  }

  private end(): void {
    if (this.i !== this.toks.length) throw new Unrecognised('unexpected tokens at the end');
  }

  private get db(): FakeDatabase {
    return this.server.db(this.session.database);
  }

  private get dbOwner(): boolean {
    return this.server.isDbOwner(this.session, this.db);
  }

  /** `@name = @param` or `@name = N'literal'` pairs, separated by commas. */
  private namedArguments(): Map<string, string> {
    const args = new Map<string, string>();
    do {
      const name = this.toks[this.i++];
      if (name?.t !== 'var') throw new Unrecognised('expected @argument');
      this.expect('=');
      const v = this.toks[this.i++];
      if (v?.t === 'str') args.set(name.v.toLowerCase(), v.v);
      else if (v?.t === 'var') {
        const bound = this.params[v.v];
        if (typeof bound !== 'string') throw requestError(137, `Must declare the scalar variable "@${v.v}".`);
        args.set(name.v.toLowerCase(), bound);
      } else throw new Unrecognised('expected a value');
    } while (this.accept(','));
    this.end();
    return args;
  }

  /** sp_addextendedproperty / sp_updateextendedproperty on a database USER (level 0). */
  private extendedProperty(mode: 'add' | 'update'): void {
    const args = this.namedArguments();
    const name = args.get('name');
    const value = args.get('value');
    if (!name || value === undefined || args.get('level0type')?.toUpperCase() !== 'USER' || !args.get('level0name') || args.size !== 4) {
      throw new Unrecognised('only a name and value on a database USER are modelled');
    }
    const user = this.db.principals.get(args.get('level0name')!);
    if (!user || user.type === 'R') throw requestError(15135, `Object is invalid. Extended properties are not permitted on '${args.get('level0name')}', or the object does not exist.`);
    // ALTER on the user: db_owner (ALTER ANY USER); db_ddladmin may not put properties on users.
    if (!this.dbOwner) throw denied15247('ALTER ANY USER');
    user.properties ??= new Map();
    const has = user.properties.has(name);
    if (mode === 'add' && has) throw requestError(15233, `Property cannot be added. Property '${name}' already exists for '${user.name}'.`);
    if (mode === 'update' && !has) throw requestError(15217, `Property cannot be updated or deleted. Property '${name}' does not exist for '${user.name}'.`);
    user.properties.set(name, value);
  }

  // -- statements
  private alterLogin(): void {
    const name = this.id();
    this.expect('WITH', 'PASSWORD', '=');
    const password = this.str();
    const old = this.accept('OLD_PASSWORD', '=') ? this.str() : undefined;
    this.end();
    const login = this.server.logins.get(name);
    const self = !this.session.contained && this.session.principal === name;
    const denied = () => requestError(15151, `Cannot alter the login '${name}', because it does not exist or you do not have permission.`);
    if (!login || login.type !== 'S') throw denied();
    const mayAlterAny = !this.session.contained && this.server.hasServerPermission(this.session.principal, 'ALTER ANY LOGIN') &&
      // Resetting a sysadmin's password without OLD_PASSWORD takes CONTROL SERVER.
      (!this.server.isAdmin(name) || this.server.isAdmin(this.session.principal));
    if (!mayAlterAny) {
      if (!self || old === undefined) throw denied();
    }
    if (old !== undefined && old !== login.password) throw denied();
    this.server.setLoginPassword(login, password);
  }

  private createLogin(): void {
    const name = this.id();
    this.expect('WITH', 'PASSWORD', '=');
    const password = this.str();
    let defaultDatabase = 'master';
    if (this.accept(',', 'DEFAULT_DATABASE', '=')) defaultDatabase = this.id();
    this.end();
    this.server.requireServerPermission(this.session, 'ALTER ANY LOGIN');
    if (this.server.logins.has(name)) throw requestError(15025, `The server principal '${name}' already exists.`);
    if (!this.server.databases.has(defaultDatabase)) throw requestError(15010, `The database '${defaultDatabase}' does not exist.`);
    this.server.checkPolicy(password);
    this.server.addLogin(name, password, { defaultDatabase });
  }

  private alterUser(): void {
    const name = this.id();
    this.expect('WITH');
    const user = this.db.principals.get(name);
    const denied = () => requestError(15151, `Cannot alter the user '${name}', because it does not exist or you do not have permission.`);
    if (this.accept('PASSWORD', '=')) {
      const password = this.str();
      const old = this.accept('OLD_PASSWORD', '=') ? this.str() : undefined;
      this.end();
      if (!user || user.type === 'R') throw denied();
      const self = this.session.contained && this.session.principal === name;
      if (!(this.dbOwner || (self && old !== undefined))) throw denied();
      if (user.authenticationType !== 2) throw requestError(15562, `The user '${name}' is not a contained user with a password.`);
      if (old !== undefined && old !== user.password) throw denied();
      this.server.setUserPassword(user, password);
      return;
    }
    if (this.accept('LOGIN', '=')) {
      const loginName = this.id();
      this.end();
      if (!this.dbOwner || !user) throw denied();
      const login = this.server.logins.get(loginName);
      if (!login || login.type === 'R') throw requestError(15007, `'${loginName}' is not a valid login or you do not have permission.`);
      if ([...this.db.principals.values()].some((p) => p.sid === login.sid)) {
        throw requestError(15063, 'The login already has an account under a different user name.');
      }
      user.sid = login.sid;
      user.authenticationType = 1;
      return;
    }
    if (this.accept('DEFAULT_SCHEMA', '=')) {
      const schema = this.id();
      this.end();
      if (!this.dbOwner || !user) throw denied();
      user.defaultSchema = schema;
      return;
    }
    throw new Unrecognised('unknown ALTER USER option');
  }

  private createUser(): void {
    const name = this.id();
    if (this.accept('FOR', 'LOGIN')) {
      const loginName = this.id();
      const schema = this.accept('WITH', 'DEFAULT_SCHEMA', '=') ? this.id() : undefined;
      this.end();
      this.server.requireDbOwner(this.session, this.db, 'ALTER ANY USER');
      if (this.db.principals.has(name)) throw requestError(15023, `User, group, or role '${name}' already exists in the current database.`);
      const login = this.server.logins.get(loginName);
      if (!login || login.type === 'R') throw requestError(15007, `'${loginName}' is not a valid login or you do not have permission.`);
      if ([...this.db.principals.values()].some((p) => p.sid === login.sid)) {
        throw requestError(15063, 'The login already has an account under a different user name.');
      }
      this.server.addUser(this.db.name, name, { login: loginName, ...(schema ? { defaultSchema: schema } : {}) });
    } else {
      this.expect('WITH', 'PASSWORD', '=');
      const password = this.str();
      const schema = this.accept(',', 'DEFAULT_SCHEMA', '=') ? this.id() : undefined;
      this.end();
      this.server.requireDbOwner(this.session, this.db, 'ALTER ANY USER');
      if (!this.db.containment) throw requestError(33233, 'You can only create a user with a password in a contained database.');
      if (this.db.principals.has(name)) throw requestError(15023, `User, group, or role '${name}' already exists in the current database.`);
      this.server.checkPolicy(password);
      this.server.addUser(this.db.name, name, { password, ...(schema ? { defaultSchema: schema } : {}) });
    }
  }

  private alterRole(): void {
    const role = this.id();
    this.expect('ADD', 'MEMBER');
    const member = this.id();
    this.end();
    this.server.requireDbOwner(this.session, this.db, 'ALTER ANY ROLE');
    const r = this.db.principals.get(role);
    if (!r || r.type !== 'R') throw requestError(15151, `Cannot alter the role '${role}', because it does not exist or you do not have permission.`);
    if (!this.db.principals.has(member)) throw requestError(15151, `Cannot add the principal '${member}', because it does not exist or you do not have permission.`);
    this.db.roleMembers.get(role)!.add(member);
  }

  private alterServerRole(): void {
    const role = this.id();
    this.expect('ADD', 'MEMBER');
    const member = this.id();
    this.end();
    const r = this.server.logins.get(role);
    const refused = () => requestError(15151, `Cannot alter the server role '${role}', because it does not exist or you do not have permission.`);
    if (!r || r.type !== 'R' || this.session.contained) throw refused();
    const me = this.session.principal;
    // A fixed server role takes members only from sysadmin or from its own members (sysadmin: only sysadmin);
    // a user-defined one from ALTER ANY SERVER ROLE.
    const allowed = this.server.isAdmin(me) ||
      (FIXED_SERVER_ROLES.includes(role) ? role !== 'sysadmin' && this.server.serverRoleMembers.get(role)!.has(me) : this.server.hasServerPermission(me, 'ALTER ANY SERVER ROLE'));
    if (!allowed) throw refused();
    if (!this.server.logins.has(member)) throw requestError(15151, `Cannot add the principal '${member}', because it does not exist or you do not have permission.`);
    this.server.serverRoleMembers.get(role)!.add(member);
  }

  private grantOrDeny(verb: 'G' | 'D'): void {
    const words: string[] = [];
    for (let t = this.peek(); t?.t === 'word' && t.v !== 'ON' && t.v !== 'TO'; t = this.peek()) {
      words.push(t.v);
      this.i++;
    }
    if (words.length === 0) throw new Unrecognised('expected a permission name');
    const permissionName = words.join(' ');
    let row: PermissionRow | undefined;
    let scope: 'database' | 'server' = 'database';
    if (this.accept('ON')) {
      const kind: string[] = [];
      for (let t = this.peek(); t?.t === 'word'; t = this.peek()) {
        kind.push(t.v);
        this.i++;
      }
      this.expect('::');
      const first = this.id();
      const second = this.accept('.') ? this.id() : undefined;
      const column = this.accept('(') ? this.id() : undefined;
      if (column !== undefined) this.expect(')');
      switch (kind.join(' ')) {
        case 'OBJECT':
          if (second === undefined) throw new Unrecognised('OBJECT needs schema.name');
          row = { class: 1, state: verb, permissionName, schemaName: first, objectName: second, ...(column ? { columnName: column } : {}) };
          break;
        case 'SCHEMA':
          row = { class: 3, state: verb, permissionName, objectName: first };
          break;
        case 'USER':
        case 'ROLE':
        case 'APPLICATION ROLE': {
          const target = this.db.principals.get(first);
          if (!target) throw requestError(15151, `Cannot find the principal '${first}', because it does not exist or you do not have permission.`);
          row = { class: 4, state: verb, permissionName, objectName: first, principalType: target.type };
          break;
        }
        case 'TYPE':
          if (second === undefined) throw new Unrecognised('TYPE needs schema.name');
          row = { class: 6, state: verb, permissionName, schemaName: first, objectName: second };
          break;
        case 'LOGIN':
        case 'SERVER ROLE': {
          const target = this.server.logins.get(first);
          if (!target) throw requestError(15151, `Cannot find the login '${first}', because it does not exist or you do not have permission.`);
          row = { class: 101, state: verb, permissionName, objectName: first, principalType: target.type };
          scope = 'server';
          break;
        }
        case 'ENDPOINT':
          row = { class: 105, state: verb, permissionName, objectName: first };
          scope = 'server';
          break;
        case 'XML SCHEMA COLLECTION':
          if (second === undefined) throw new Unrecognised('XML SCHEMA COLLECTION needs schema.name');
          row = { class: 10, state: verb, permissionName, schemaName: first, objectName: second };
          break;
        default: {
          const cls = SINGLE_NAME_CLASSES[kind.join(' ')];
          if (cls === undefined || second !== undefined || column !== undefined) throw new Unrecognised('unknown securable class');
          row = { class: cls, state: verb, permissionName, objectName: first };
        }
      }
    } else if (this.session.database === 'master' && SERVER_PERMISSION_NAMES.has(permissionName)) {
      row = { class: 100, state: verb, permissionName };
      scope = 'server';
    } else {
      row = { class: 0, state: verb, permissionName };
    }
    this.expect('TO');
    const grantee = this.id();
    if (verb === 'G' && this.accept('WITH', 'GRANT', 'OPTION')) row.state = 'W';
    this.end();
    this.mayGrant(scope, row);
    const list = scope === 'server' ? this.server.serverPermissions : this.db.permissions;
    if (scope === 'server' ? !this.server.logins.has(grantee) : !this.db.principals.has(grantee)) {
      throw requestError(15151, `Cannot find the ${scope === 'server' ? 'login' : 'user'} '${grantee}', because it does not exist or you do not have permission.`);
    }
    // One state per (grantee, permission, securable): GRANT replaces DENY and vice versa.
    const same = (p: FakePermission) => p.grantee === grantee && p.class === row!.class && p.permissionName === permissionName &&
      (p.schemaName ?? null) === (row!.schemaName ?? null) && (p.objectName ?? null) === (row!.objectName ?? null) &&
      (p.columnName ?? null) === (row!.columnName ?? null);
    const at = list.findIndex(same);
    const entry: FakePermission = { grantee, ...row };
    if (at >= 0) list[at] = entry;
    else list.push(entry);
  }

  /**
   * Who may GRANT/DENY what. Database scope: db_owner (CONTROL on the database) or sysadmin.
   * Server scope: sysadmin (CONTROL SERVER); else a server permission held WITH GRANT OPTION,
   * ALTER / VIEW DEFINITION on a login or server role through ALTER ANY LOGIN / ALTER ANY SERVER
   * ROLE / VIEW ANY DEFINITION held WITH GRANT OPTION. Anything else (IMPERSONATE or CONTROL on a
   * login, endpoints, ...) needs CONTROL SERVER: error 4613, as SQL Server answers.
   */
  private mayGrant(scope: 'database' | 'server', row: PermissionRow): void {
    if (scope === 'database') return this.server.requireDbOwner(this.session, this.db, 'GRANT');
    const me = this.session.principal;
    const refused = () => requestError(4613, 'Grantor does not have GRANT permission.');
    if (this.session.contained) throw refused();
    if (this.server.isAdmin(me)) return;
    const p = row.permissionName;
    if (row.class === 100 && this.server.canGrantServer(me, p)) return;
    if (row.class === 101) {
      const covering = p === 'VIEW DEFINITION' ? 'VIEW ANY DEFINITION' : p === 'ALTER' ? (row.principalType === 'R' ? 'ALTER ANY SERVER ROLE' : 'ALTER ANY LOGIN') : undefined;
      if (covering && this.server.canGrantServer(me, covering)) return;
    }
    throw refused();
  }
}

// ---------------------------------------------------------------------------------------------
// A TDS server stub for the real driver (tedious): PRELOGIN, TLS inside PRELOGIN packets, and a
// "Login failed" answer to LOGIN7. It records every packet type it receives and whether it came
// over TLS, so a test can tell whether the login (and with it the password) was ever sent, and how.

export const TDS = { PRELOGIN: 0x12, LOGIN7: 0x10, TABULAR_RESULT: 0x04 } as const;

export interface TdsStubOptions {
  /** The ENCRYPTION option of the PRELOGIN answer: 'on' (TLS follows) or 'not-supported'. */
  encryption: 'on' | 'not-supported';
  /** PEM server certificate and key, for 'on'. */
  cert?: string;
  key?: string;
  /** 'fail' (default): answer LOGIN7 with "Login failed". 'accept-then-stall': log in, answer tedious's initial SQL batch, then never answer again. */
  login?: 'fail' | 'accept-then-stall';
}

export interface TdsStub {
  port: number;
  /** Every TDS message the stub received after PRELOGIN, in order. */
  received: Array<{ type: number; overTls: boolean }>;
  /** TLS handshakes the stub completed. */
  handshakes: number;
  /** SQL batches / RPC requests the stub received and never answered ('accept-then-stall'). */
  unanswered: number;
  close(): Promise<void>;
}

function tdsPacket(type: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt8(type, 0);
  header.writeUInt8(0x01, 1); // end of message
  header.writeUInt16BE(8 + payload.length, 2);
  header.writeUInt8(1, 6); // packet id
  return Buffer.concat([header, payload]);
}

function preloginAnswer(encryption: number): Buffer {
  // Option table (token, offset, length) for VERSION and ENCRYPTION, a terminator, then the data.
  const table = Buffer.from([0x00, 0, 11, 0, 6, 0x01, 0, 17, 0, 1, 0xff]);
  const version = Buffer.from([16, 0, 0x0f, 0xa0, 0, 0]);
  return tdsPacket(TDS.TABULAR_RESULT, Buffer.concat([table, version, Buffer.from([encryption])]));
}

const TDS_SQL_BATCH = 0x01;
const TDS_RPC = 0x03;

function doneToken(): Buffer {
  const u16 = (n: number) => { const b = Buffer.alloc(2); b.writeUInt16LE(n); return b; };
  return Buffer.concat([Buffer.from([0xfd]), u16(0), u16(0), Buffer.alloc(8)]);
}

/** LOGINACK (TDS 7.4, "stub" 16.0) and DONE: a successful login. */
function loginAckAnswer(): Buffer {
  const name = Buffer.from('stub', 'utf16le');
  const body = Buffer.concat([Buffer.from([1]), Buffer.from([0x74, 0x00, 0x00, 0x04]), Buffer.from([name.length / 2]), name, Buffer.from([16, 0, 0, 1])]);
  const len = Buffer.alloc(2);
  len.writeUInt16LE(body.length);
  return tdsPacket(TDS.TABULAR_RESULT, Buffer.concat([Buffer.from([0xad]), len, body, doneToken()]));
}

function loginFailedAnswer(): Buffer {
  const u16 = (n: number) => { const b = Buffer.alloc(2); b.writeUInt16LE(n); return b; };
  const i32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32LE(n); return b; };
  const text = Buffer.from("Login failed for user 'stub'.", 'utf16le');
  const server = Buffer.from('stub', 'utf16le');
  const body = Buffer.concat([i32(18456), Buffer.from([1, 14]), u16(text.length / 2), text, Buffer.from([server.length / 2]), server, Buffer.from([0]), i32(1)]);
  const error = Buffer.concat([Buffer.from([0xaa]), u16(body.length), body]);
  const done = Buffer.concat([Buffer.from([0xfd]), u16(0x0002), u16(0), Buffer.alloc(8)]);
  return tdsPacket(TDS.TABULAR_RESULT, Buffer.concat([error, done]));
}

/** Splits a byte stream into TDS messages (packets joined until end-of-message). */
class TdsReader {
  private buf = Buffer.alloc(0);
  private message: Buffer[] = [];

  constructor(private readonly onMessage: (type: number, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    while (this.buf.length >= 8) {
      const length = this.buf.readUInt16BE(2);
      if (this.buf.length < length) return;
      const packet = this.buf.subarray(0, length);
      this.buf = this.buf.subarray(length);
      this.message.push(packet.subarray(8));
      if (packet[1] & 0x01) {
        const payload = Buffer.concat(this.message);
        this.message = [];
        this.onMessage(packet[0], payload);
      }
    }
  }
}

/** Two connected in-memory stream ends (what one writes, the other reads). */
function duplexPair(): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  const make = (i: number) => new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      ends[1 - i].push(chunk);
      cb();
    },
    final(cb) {
      ends[1 - i].push(null);
      cb();
    },
  });
  ends.push(make(0), make(1));
  return [ends[0], ends[1]];
}

export async function startTdsStub(options: TdsStubOptions): Promise<TdsStub> {
  const stub: TdsStub = { port: 0, received: [], handshakes: 0, unanswered: 0, close: async () => undefined };
  const stall = options.login === 'accept-then-stall';
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let phase: 'prelogin' | 'handshake' | 'tls' | 'plain' = 'prelogin';
    let outer: Duplex | undefined;
    let pending: Buffer[] = [];

    const plain = new TdsReader((type, payload) => {
      if (phase === 'prelogin') {
        if (type !== TDS.PRELOGIN) throw new Error(`TDS stub: expected PRELOGIN, got 0x${type.toString(16)}`);
        const on = options.encryption === 'on';
        socket.write(preloginAnswer(on ? 0x01 : 0x02));
        phase = on ? 'handshake' : 'plain';
        if (on) startTls();
      } else if (phase === 'handshake') {
        outer!.write(payload); // a TLS handshake flight from the client
      } else {
        stub.received.push({ type, overTls: false });
        if (type === TDS.LOGIN7) socket.write(stall ? loginAckAnswer() : loginFailedAnswer());
        else if (stall && (type === TDS_SQL_BATCH || type === TDS_RPC)) {
          // tedious's own initial SET batch is answered; every later request stalls.
          if (stub.received.filter((r) => r.type === TDS_SQL_BATCH || r.type === TDS_RPC).length === 1) socket.write(tdsPacket(TDS.TABULAR_RESULT, doneToken()));
          else stub.unanswered++;
        }
      }
    });

    function startTls(): void {
      const [inner, outerEnd] = duplexPair();
      outer = outerEnd;
      const secure = new TLSSocket(inner, { isServer: true, secureContext: createSecureContext({ cert: options.cert, key: options.key }) });
      secure.on('error', () => socket.destroy());
      secure.on('secure', () => stub.handshakes++);
      const decrypted = new TdsReader((type) => {
        stub.received.push({ type, overTls: true });
        if (type === TDS.LOGIN7) secure.write(loginFailedAnswer());
      });
      secure.on('data', (d: Buffer) => decrypted.push(d));
      // The server's TLS output: one PRELOGIN message per handshake flight, raw records afterwards.
      outerEnd.on('data', (d: Buffer) => {
        if (phase === 'tls') {
          socket.write(d);
          return;
        }
        pending.push(d);
        if (pending.length === 1) {
          setTimeout(() => {
            socket.write(tdsPacket(TDS.PRELOGIN, Buffer.concat(pending)));
            pending = [];
          }, 15);
        }
      });
    }

    socket.on('data', (chunk: Buffer) => {
      // After the handshake the client sends TLS records (0x14-0x17) directly on the socket.
      if (phase === 'handshake' && chunk[0] >= 0x14 && chunk[0] <= 0x17) phase = 'tls';
      if (phase === 'tls') outer!.write(chunk);
      else plain.push(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stub.port = (server.address() as { port: number }).port;
  stub.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  };
  return stub;
}
