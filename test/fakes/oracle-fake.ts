/**
 * An in-process model of the parts of an Oracle Database server the Oracle rotator touches. No
 * Oracle server can run on the test machine, so this fake stands in for node-oracledb's
 * getConnection() and Connection.
 *
 * It is a small stateful model, not a script: it holds users (password, lock and expiry state,
 * roles, system and object privileges, a profile with or without a password verify function),
 * lets a session log in only with the right password, parses every statement the way Oracle
 * reads it (quoted identifiers are exact, bare words fold to upper case, passwords are quoted
 * identifiers), applies the statements it understands to its state, and records each one with
 * its binds. Anything it does not understand throws loudly (FakeUnrecognisedStatement).
 * Errors look like node-oracledb's: `code` `ORA-01017` / `NJS-503`, message starting with it.
 */
import type { OracleConnectConfig, OracleConnectionLike, OracleResult } from '../../rotators/oracle/engine';
import { PREFLIGHT_SQL } from '../../rotators/oracle/preflight';

export class FakeOracleError extends Error {
  readonly code: string;
  readonly errorNum?: number;

  constructor(code: string, text: string) {
    super(`${code}: ${text}`);
    this.name = 'Error';
    this.code = code;
    if (code.startsWith('ORA-')) this.errorNum = Number(code.slice(4));
  }
}

/** A statement the fake does not model: the engine sent something unexpected. */
export class FakeUnrecognisedStatement extends Error {
  constructor(sql: string) {
    super(`FAKE ORACLE: unrecognised statement: ${sql}`);
  }
}

const ora = (code: string, text: string) => new FakeOracleError(code, text);

export interface FakeObjectGrant {
  /** e.g. `SELECT`, `UPDATE ("SAL")`, `READ` */
  privilege: string;
  /** e.g. `"HR"."EMPLOYEES"`, `DIRECTORY "DATA_PUMP_DIR"` */
  object: string;
  grantOption: boolean;
}

export interface FakeOracleUser {
  /** Exact name, as DBA_USERS.USERNAME shows it. */
  name: string;
  password: string;
  locked: boolean;
  expired: boolean;
  /** Profile has a PASSWORD_VERIFY_FUNCTION: changing one's own password needs REPLACE <old>. */
  verifyFunction: boolean;
  systemPrivileges: Map<string, { admin: boolean }>;
  roles: Map<string, { admin: boolean }>;
  objectGrants: FakeObjectGrant[];
  /** How many times the password was set after creation. */
  passwordChanges: number;
  /** Every password the user has had, the current one included (for reuse rules). */
  history: string[];
}

export interface FakeUserSpec {
  password: string;
  locked?: boolean;
  expired?: boolean;
  verifyFunction?: boolean;
  systemPrivileges?: string[];
  roles?: string[];
  objectGrants?: Array<{ privilege: string; object: string; grantOption?: boolean }>;
}

export interface ExecutedStatement {
  /** The exact name of the user whose session ran it. */
  session: string;
  sql: string;
  binds: Record<string, string>;
  options?: { outFormat?: number };
}

export interface ConnectAttempt {
  /** The `user` given to getConnection (never the password). */
  user: string;
  connectString: string;
  ok: boolean;
  code?: string;
}

interface Injected {
  match: (sql: string, session: string) => boolean;
  error: () => Error;
  times: number;
}

/** Oracle-like system privileges a role confers. `*` = every privilege (DBA; on RDS, minus RDS_WITHHELD). */
const ROLE_PRIVILEGES: Record<string, string[]> = {
  CONNECT: ['CREATE SESSION'],
  RESOURCE: ['CREATE TABLE', 'CREATE SEQUENCE', 'CREATE PROCEDURE'],
  DBA: ['*'],
  SELECT_CATALOG_ROLE: ['SELECT ANY DICTIONARY'],
  EXECUTE_CATALOG_ROLE: [],
};

const SYSTEM_PRIVILEGES = new Set([
  'CREATE SESSION', 'CREATE TABLE', 'CREATE VIEW', 'CREATE SEQUENCE', 'CREATE PROCEDURE', 'UNLIMITED TABLESPACE',
  'CREATE USER', 'ALTER USER', 'DROP USER', 'GRANT ANY ROLE', 'GRANT ANY PRIVILEGE', 'GRANT ANY OBJECT PRIVILEGE',
  'SELECT ANY DICTIONARY', 'SELECT ANY TABLE', 'ALTER SYSTEM', 'ALTER DATABASE', 'CREATE ANY DIRECTORY', 'DROP ANY DIRECTORY',
  'RESTRICTED SESSION', 'EXEMPT ACCESS POLICY',
]);

/**
 * What RDS for Oracle takes out of the DBA role (Oracle.Concepts.Privileges.html): the master,
 * which holds DBA, cannot grant a role it lacks ADMIN OPTION on, nor a system privilege it does
 * not hold WITH ADMIN OPTION.
 */
export const RDS_WITHHELD_PRIVILEGES = ['ALTER DATABASE', 'ALTER SYSTEM', 'CREATE ANY DIRECTORY', 'DROP ANY DIRECTORY', 'GRANT ANY PRIVILEGE', 'GRANT ANY ROLE'];

/** The RDS master's roles (UsingWithRDS.MasterAccounts.html), modelled as held WITH ADMIN OPTION (AWS does not say; unverified). */
export const RDS_MASTER_ROLES = ['DBA', 'CONNECT', 'RESOURCE', 'SELECT_CATALOG_ROLE', 'EXECUTE_CATALOG_ROLE'];
/** System privileges AWS grants the RDS master directly (with ADMIN OPTION in this model). */
export const RDS_MASTER_SYSTEM_PRIVILEGES = ['GRANT ANY OBJECT PRIVILEGE', 'RESTRICTED SESSION', 'EXEMPT ACCESS POLICY'];

/** SYS objects a catalog role carries (as object grants), for rdsadmin.rdsadmin_util.grant_sys_object. */
function catalogRoleCovers(role: string, privilege: string, object: string): boolean {
  if (role === 'SELECT_CATALOG_ROLE') return privilege === 'SELECT' && /^"SYS"\."(DBA_|V_\$|GV_\$|ALL_)/.test(object);
  if (role === 'EXECUTE_CATALOG_ROLE') return privilege === 'EXECUTE' && /^"SYS"\."DBMS_/.test(object);
  return false;
}

/** Objects owned by SYS (directories belong to SYS). */
function isSysObject(object: string): boolean {
  return object.startsWith('"SYS".') || object.startsWith('DIRECTORY ');
}

// -------------------------------------------------------------------------------------------
// Oracle-like lexing: "quoted" identifiers are exact and cannot contain ", bare words fold to
// upper case, 'strings' use '' for a quote.

interface Tok {
  kind: 'word' | 'quoted' | 'string' | 'bind' | 'punct';
  /** word: upper-cased; quoted: the exact name; string: the value; bind: the name; punct: the char. */
  value: string;
  raw: string;
}

function lex(sql: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i];
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '"') {
      const end = sql.indexOf('"', i + 1);
      if (end < 0) throw ora('ORA-01740', 'missing double quote in identifier');
      const value = sql.slice(i + 1, end);
      if (value.length === 0) throw ora('ORA-01741', 'illegal zero-length identifier');
      if (value.includes('\u0000')) throw ora('ORA-00911', 'invalid character');
      out.push({ kind: 'quoted', value, raw: sql.slice(i, end + 1) });
      i = end + 1;
    } else if (ch === "'") {
      let j = i + 1;
      let value = '';
      for (;;) {
        if (j >= sql.length) throw ora('ORA-01756', 'quoted string not properly terminated');
        if (sql[j] === "'") {
          if (sql[j + 1] === "'") {
            value += "'";
            j += 2;
            continue;
          }
          break;
        }
        value += sql[j++];
      }
      out.push({ kind: 'string', value, raw: sql.slice(i, j + 1) });
      i = j + 1;
    } else if (ch === ':' && /[A-Za-z]/.test(sql[i + 1] ?? '')) {
      let j = i + 1;
      while (j < sql.length && /[A-Za-z0-9_]/.test(sql[j])) j++;
      out.push({ kind: 'bind', value: sql.slice(i + 1, j), raw: sql.slice(i, j) });
      i = j;
    } else if (/[A-Za-z]/.test(ch)) {
      let j = i + 1;
      while (j < sql.length && /[A-Za-z0-9_$#]/.test(sql[j])) j++;
      out.push({ kind: 'word', value: sql.slice(i, j).toUpperCase(), raw: sql.slice(i, j) });
      i = j;
    } else if (/[0-9]/.test(ch)) {
      let j = i + 1;
      while (j < sql.length && /[0-9]/.test(sql[j])) j++;
      out.push({ kind: 'word', value: sql.slice(i, j), raw: sql.slice(i, j) });
      i = j;
    } else if ('(),.=*'.includes(ch)) {
      out.push({ kind: 'punct', value: ch, raw: ch });
      i++;
    } else {
      // `;`, `--`, `/`, `&` ... are not part of any statement the rotator sends.
      throw ora('ORA-00911', 'invalid character');
    }
  }
  return out;
}

/** A cursor over tokens with Oracle-ish syntax errors. */
class Parser {
  private i = 0;
  constructor(readonly toks: Tok[]) {}

  peek(offset = 0): Tok | undefined {
    return this.toks[this.i + offset];
  }
  done(): boolean {
    return this.i >= this.toks.length;
  }
  isWord(w: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t?.kind === 'word' && t.value === w;
  }
  word(w: string): void {
    if (!this.isWord(w)) throw ora('ORA-00922', `missing or invalid option (expected ${w})`);
    this.i++;
  }
  optWord(w: string): boolean {
    if (this.isWord(w)) {
      this.i++;
      return true;
    }
    return false;
  }
  punct(p: string): void {
    const t = this.peek();
    if (t?.kind !== 'punct' || t.value !== p) throw ora('ORA-00922', `missing or invalid option (expected ${p})`);
    this.i++;
  }
  /** A user or role name: quoted (exact) or a bare word (upper-cased). */
  identifier(): string {
    const t = this.peek();
    if (t?.kind === 'quoted' || (t?.kind === 'word' && /^[A-Z]/.test(t.value))) {
      this.i++;
      return t.value;
    }
    throw ora('ORA-01935', 'missing user or role name');
  }
  /** A password: a quoted identifier (exact), or a bare word kept as written. */
  password(): string {
    const t = this.peek();
    if (t?.kind === 'quoted') {
      this.i++;
      return t.value;
    }
    if (t?.kind === 'word') {
      this.i++;
      return t.raw;
    }
    throw ora('ORA-00988', 'missing or invalid password(s)');
  }
  end(): void {
    if (!this.done()) throw ora('ORA-00922', `missing or invalid option near ${this.peek()!.raw}`);
  }
  rest(): Tok[] {
    const r = this.toks.slice(this.i);
    this.i = this.toks.length;
    return r;
  }
}

// -------------------------------------------------------------------------------------------

export interface FakeOracleOptions {
  host?: string;
  port?: number;
  service?: string;
  /** What the listener speaks on its port. */
  protocol?: 'TCP' | 'TCPS';
  /** The DEFAULT profile's reuse rule: 'forbidden' = PASSWORD_REUSE_MAX/TIME set (ORA-28007 on reuse). */
  passwordReuse?: 'allowed' | 'forbidden';
  /**
   * 'rds' (default): RDS for Oracle: DBA lacks RDS_WITHHELD_PRIVILEGES, and the RDSADMIN
   * package grants SYS objects. 'self-managed': DBA is every privilege, no RDSADMIN.
   */
  flavour?: 'rds' | 'self-managed';
}

export class FakeOracleServer {
  readonly host: string;
  readonly port: number;
  readonly service: string;
  readonly protocol: 'TCP' | 'TCPS';
  readonly passwordReuse: 'allowed' | 'forbidden';
  readonly flavour: 'rds' | 'self-managed';
  /** Directories (owned by SYS). */
  readonly directories = new Set(['DATA_PUMP_DIR']);
  /** Statements are received and never answered (a server that stalls after the login). */
  stallStatements = false;
  /** Connection.callTimeout of every statement received, in order (ms; 0 = none). */
  readonly callTimeouts: number[] = [];
  /** While stalled, honour the driver's callTimeout (as node-oracledb does: NJS-123). False: ignore it, as a wedged driver would. */
  honourCallTimeout = true;
  readonly users = new Map<string, FakeOracleUser>();
  readonly roles = new Set(Object.keys(ROLE_PRIVILEGES));
  readonly statements: ExecutedStatement[] = [];
  readonly connects: ConnectAttempt[] = [];
  /** Every config getConnection received (passwords included: keep these out of snapshots). */
  readonly configs: OracleConnectConfig[] = [];
  openConnections = 0;
  lobsDestroyed = 0;
  private readonly injected: Injected[] = [];

  constructor(options: FakeOracleOptions = {}) {
    this.host = options.host ?? 'oracle.example.internal';
    this.port = options.port ?? 1521;
    this.service = options.service ?? 'ORCLPDB1';
    this.protocol = options.protocol ?? 'TCP';
    this.passwordReuse = options.passwordReuse ?? 'allowed';
    this.flavour = options.flavour ?? 'rds';
  }

  /**
   * The RDS for Oracle master user: RDS_MASTER_ROLES and RDS_MASTER_SYSTEM_PRIVILEGES WITH ADMIN
   * OPTION, READ/WRITE on DATA_PUMP_DIR WITH GRANT OPTION. Its DBA role lacks
   * RDS_WITHHELD_PRIVILEGES on the 'rds' flavour.
   */
  addRdsMaster(name: string, password: string): FakeOracleUser {
    const u = this.addUser(name, { password, roles: RDS_MASTER_ROLES, systemPrivileges: RDS_MASTER_SYSTEM_PRIVILEGES });
    for (const r of u.roles.values()) r.admin = true;
    for (const p of u.systemPrivileges.values()) p.admin = true;
    u.objectGrants.push(
      { privilege: 'READ', object: 'DIRECTORY "DATA_PUMP_DIR"', grantOption: true },
      { privilege: 'WRITE', object: 'DIRECTORY "DATA_PUMP_DIR"', grantOption: true },
    );
    return u;
  }

  /** CREATE ROLE; `createdBy` gets it WITH ADMIN OPTION, as Oracle gives the creator. */
  addRole(name: string, createdBy?: string): this {
    this.roles.add(name);
    if (createdBy) this.user(createdBy).roles.set(name, { admin: true });
    return this;
  }

  addUser(name: string, spec: FakeUserSpec): FakeOracleUser {
    const user: FakeOracleUser = {
      name,
      password: spec.password,
      locked: spec.locked ?? false,
      expired: spec.expired ?? false,
      verifyFunction: spec.verifyFunction ?? false,
      systemPrivileges: new Map((spec.systemPrivileges ?? []).map((p) => [p, { admin: false }])),
      roles: new Map((spec.roles ?? []).map((r) => [r, { admin: false }])),
      objectGrants: (spec.objectGrants ?? []).map((g) => ({ ...g, grantOption: g.grantOption ?? false })),
      passwordChanges: 0,
      history: [spec.password],
    };
    for (const r of user.roles.keys()) this.roles.add(r);
    this.users.set(name, user);
    return user;
  }

  user(name: string): FakeOracleUser {
    const u = this.users.get(name);
    if (!u) throw new Error(`fake has no user ${name}`);
    return u;
  }

  /** Make statements matching `match` fail with `error` (the next `times` ones; default once). */
  failWhen(match: RegExp | ((sql: string, session: string) => boolean), error: () => Error, times = 1): void {
    this.injected.push({ match: typeof match === 'function' ? match : (sql) => match.test(sql), error, times });
  }

  /** Statements run by sessions of `user` (exact name), or all. */
  sqlOf(user?: string): string[] {
    return this.statements.filter((s) => user === undefined || s.session === user).map((s) => s.sql);
  }

  /** A `getConnection` for the engine: `createOracleEngine({ connect: server.connect })`. */
  readonly connect = async (config: OracleConnectConfig): Promise<OracleConnectionLike> => {
    this.configs.push({ ...config });
    const attempt: ConnectAttempt = { user: String(config.user), connectString: String(config.connectString), ok: false };
    this.connects.push(attempt);
    try {
      const user = this.login(config);
      attempt.ok = true;
      this.openConnections++;
      return new FakeOracleConnection(this, user.name);
    } catch (err) {
      attempt.code = (err as FakeOracleError).code;
      throw err;
    }
  };

  private login(config: OracleConnectConfig): FakeOracleUser {
    if (typeof config.user !== 'string' || typeof config.password !== 'string' || typeof config.connectString !== 'string') {
      throw new Error('FAKE ORACLE: getConnection needs string user, password and connectString');
    }
    if (!Number.isInteger(config.connectTimeout) || config.connectTimeout < 1) throw new Error('FAKE ORACLE: connectTimeout must be whole seconds');
    const target = parseConnectString(config.connectString);
    if (target.host !== this.host || target.port !== this.port) {
      throw new FakeOracleError('NJS-503', `connection to host ${target.host} port ${target.port} could not be established.`);
    }
    if (target.protocol !== this.protocol) {
      throw this.protocol === 'TCP'
        ? new FakeOracleError('NJS-506', `connection to host ${target.host} port ${target.port} encountered TLS handshake failure.`)
        : new FakeOracleError('NJS-500', 'connection to Oracle Database was closed or broken');
    }
    if (target.service !== this.service) {
      throw new FakeOracleError('NJS-518', `cannot connect to Oracle Database. Service "${target.service}" is not registered with the listener`);
    }
    const name = loginUserName(config.user);
    const user = name === undefined ? undefined : this.users.get(name);
    if (!user || user.password !== config.password) throw ora('ORA-01017', 'invalid credential or not authorized; logon denied');
    if (user.locked) throw ora('ORA-28000', 'The account is locked.');
    if (user.expired) throw ora('ORA-28001', 'the password has expired');
    if (!this.hasPrivilege(user, 'CREATE SESSION')) throw ora('ORA-01045', `Login denied. User ${user.name} does not have CREATE SESSION privilege.`);
    return user;
  }

  hasPrivilege(user: FakeOracleUser, privilege: string): boolean {
    if (user.systemPrivileges.has(privilege)) return true;
    for (const role of user.roles.keys()) if (this.roleConfers(role, privilege)) return true;
    return false;
  }

  private roleConfers(role: string, privilege: string): boolean {
    const privs = ROLE_PRIVILEGES[role] ?? [];
    if (privs.includes(privilege)) return true;
    return privs.includes('*') && !(this.flavour === 'rds' && RDS_WITHHELD_PRIVILEGES.includes(privilege));
  }

  /** GRANT <system privilege>: GRANT ANY PRIVILEGE, or the privilege WITH ADMIN OPTION (directly, or through DBA, whose privileges carry it). */
  canGrantSystem(user: FakeOracleUser, privilege: string): boolean {
    if (this.hasPrivilege(user, 'GRANT ANY PRIVILEGE')) return true;
    if (user.systemPrivileges.get(privilege)?.admin) return true;
    return user.roles.has('DBA') && this.roleConfers('DBA', privilege);
  }

  /** GRANT <role>: GRANT ANY ROLE, or the role WITH ADMIN OPTION. */
  canGrantRole(user: FakeOracleUser, role: string): boolean {
    return this.hasPrivilege(user, 'GRANT ANY ROLE') || (user.roles.get(role)?.admin ?? false);
  }

  /** The user holds `privilege` on `object` WITH GRANT OPTION directly, or through a catalog role held WITH ADMIN OPTION. */
  holdsGrantable(user: FakeOracleUser, privilege: string, object: string): boolean {
    if (user.objectGrants.some((g) => g.privilege === privilege && g.object === object && g.grantOption)) return true;
    return [...user.roles].some(([role, o]) => o.admin && catalogRoleCovers(role, privilege, object));
  }

  /** Run one statement as `sessionUser`. */
  execute(sessionUser: string, sql: string, binds: Record<string, string>, options?: { outFormat?: number }): OracleResult {
    this.statements.push({ session: sessionUser, sql, binds: { ...binds }, options });
    for (const inj of this.injected) {
      if (inj.times > 0 && inj.match(sql, sessionUser)) {
        inj.times--;
        throw inj.error();
      }
    }
    const session = this.user(sessionUser);
    const plsql = /^BEGIN RDSADMIN\.RDSADMIN_UTIL\.GRANT_SYS_OBJECT\(P_OBJ_NAME => :OBJ, P_GRANTEE => :GRANTEE, P_PRIVILEGE => :PRIV, P_GRANT_OPTION => (TRUE|FALSE)\); END;$/.exec(
      sql.replace(/\s+/g, ' ').trim().toUpperCase(),
    );
    if (plsql) return this.grantSysObject(session, binds, plsql[1] === 'TRUE');
    const p = new Parser(lex(sql));
    if (p.isWord('SELECT')) return this.select(session, sql, binds);
    if (p.isWord('ALTER') && p.isWord('USER', 1)) return this.alterUser(session, p);
    if (p.isWord('CREATE') && p.isWord('USER', 1)) return this.createUser(session, p);
    if (p.isWord('DROP') && p.isWord('USER', 1)) return this.dropUser(session, p);
    if (p.isWord('GRANT')) return this.grant(session, p);
    throw new FakeUnrecognisedStatement(sql);
  }

  /** rdsadmin.rdsadmin_util.grant_sys_object: passes on a SYS object privilege the caller may grant. */
  private grantSysObject(session: FakeOracleUser, binds: Record<string, string>, grantOption: boolean): OracleResult {
    if (this.flavour !== 'rds') throw ora('ORA-06550', "line 1, column 7:\nPLS-00201: identifier 'RDSADMIN.RDSADMIN_UTIL' must be declared");
    requireBinds(binds, ['obj', 'grantee', 'priv']);
    const object = this.directories.has(binds.obj) ? `DIRECTORY "${binds.obj}"` : `"SYS"."${binds.obj}"`;
    const privilege = binds.priv.toUpperCase();
    if (!/^[A-Z]+( [A-Z]+)*$/.test(privilege)) throw ora('ORA-00990', 'missing or invalid privilege');
    const grantee = this.users.get(binds.grantee);
    if (!grantee) throw ora('ORA-01917', `user or role '${binds.grantee}' does not exist`);
    if (!this.holdsGrantable(session, privilege, object)) throw ora('ORA-01031', 'insufficient privileges');
    const existing = grantee.objectGrants.find((g) => g.privilege === privilege && g.object === object);
    if (existing) existing.grantOption ||= grantOption;
    else grantee.objectGrants.push({ privilege, object, grantOption });
    return {};
  }

  private select(session: FakeOracleUser, sql: string, binds: Record<string, string>): OracleResult {
    const norm = sql.replace(/\s+/g, ' ').trim().toUpperCase();
    if (norm === 'SELECT 1 FROM DUAL') return { rows: [[1]] };
    if (norm === "SELECT COUNT(*) FROM DBA_OBJECTS WHERE OWNER = 'RDSADMIN' AND OBJECT_NAME = 'RDSADMIN_UTIL' AND OBJECT_TYPE = 'PACKAGE'") {
      if (!this.canReadDictionary(session)) throw ora('ORA-00942', 'table or view does not exist');
      return { rows: [[this.flavour === 'rds' ? 1 : 0]] };
    }
    if (norm === 'SELECT ROLE FROM DBA_ROLES WHERE ROLE = :U') {
      requireBinds(binds, ['u']);
      if (!this.canReadDictionary(session)) throw ora('ORA-00942', 'table or view does not exist');
      return { rows: this.roles.has(binds.u) ? [[binds.u]] : [] };
    }
    if (norm === 'SELECT PRIVILEGE, ADMIN_OPTION FROM DBA_SYS_PRIVS WHERE GRANTEE = :U') {
      requireBinds(binds, ['u']);
      if (!this.canReadDictionary(session)) throw ora('ORA-00942', 'table or view does not exist');
      return { rows: [...(this.users.get(binds.u)?.systemPrivileges ?? [])].map(([p, o]) => [p, o.admin ? 'YES' : 'NO']) };
    }
    if (norm === 'SELECT GRANTED_ROLE, ADMIN_OPTION FROM DBA_ROLE_PRIVS WHERE GRANTEE = :U') {
      requireBinds(binds, ['u']);
      if (!this.canReadDictionary(session)) throw ora('ORA-00942', 'table or view does not exist');
      return { rows: [...(this.users.get(binds.u)?.roles ?? [])].map(([r, o]) => [r, o.admin ? 'YES' : 'NO']) };
    }
    if (norm === 'SELECT OWNER, TABLE_NAME, PRIVILEGE, GRANTABLE FROM DBA_TAB_PRIVS WHERE GRANTEE = :U') {
      requireBinds(binds, ['u']);
      if (!this.canReadDictionary(session)) throw ora('ORA-00942', 'table or view does not exist');
      // Column privileges live in DBA_COL_PRIVS, not here.
      return {
        rows: (this.users.get(binds.u)?.objectGrants ?? []).filter((g) => !g.privilege.includes('(')).map((g) => {
          const dir = /^DIRECTORY "(.+)"$/.exec(g.object);
          const obj = /^"(.+)"\."(.+)"$/.exec(g.object);
          return dir ? ['SYS', dir[1], g.privilege, g.grantOption ? 'YES' : 'NO'] : [obj?.[1] ?? '?', obj?.[2] ?? g.object, g.privilege, g.grantOption ? 'YES' : 'NO'];
        }),
      };
    }
    if (norm === 'SELECT USERNAME, ACCOUNT_STATUS, USER FROM DBA_USERS WHERE USERNAME = :U') {
      requireBinds(binds, ['u']);
      if (!this.canReadDictionary(session)) throw ora('ORA-00942', 'table or view does not exist');
      const u = this.users.get(binds.u);
      return { rows: u ? [[u.name, accountStatus(u), session.name]] : [] };
    }
    const pre = this.preflightSelect(session, norm);
    if (pre) return pre;
    if (norm === 'SELECT DBMS_METADATA.GET_GRANTED_DDL(:T, :U) AS DDL FROM DUAL') {
      requireBinds(binds, ['t', 'u']);
      const type = binds.t;
      if (!['ROLE_GRANT', 'SYSTEM_GRANT', 'OBJECT_GRANT'].includes(type)) throw ora('ORA-31600', `invalid input value ${type} for parameter OBJECT_TYPE`);
      const target = this.users.get(binds.u);
      // DBMS_METADATA shows other users' grants only to SELECT_CATALOG_ROLE (DBA includes it); else "not found".
      const visible = target && (target.name === session.name || session.roles.has('SELECT_CATALOG_ROLE') || session.roles.has('DBA'));
      const ddl = visible ? grantedDdl(target, type) : [];
      if (ddl.length === 0) throw ora('ORA-31608', `specified object of type ${type} not found\nORA-06512: at "SYS.DBMS_METADATA", line 6069`);
      const text = ddl.map((s) => `\n  ${s}\n`).join('');
      return { rows: [[this.lob(text)]] };
    }
    throw new FakeUnrecognisedStatement(sql);
  }

  /** The session-level views the preflight reads (rotators/oracle/preflight.ts), readable by every session. */
  private preflightSelect(session: FakeOracleUser, norm: string): OracleResult | undefined {
    const is = (sql: string) => norm === sql.replace(/\s+/g, ' ').trim().toUpperCase();
    // DBA contains SELECT_CATALOG_ROLE and EXECUTE_CATALOG_ROLE (enabled with it).
    const enabledRoles = () => new Set([...session.roles.keys(), ...(session.roles.has('DBA') ? ['SELECT_CATALOG_ROLE', 'EXECUTE_CATALOG_ROLE'] : [])]);
    if (is(PREFLIGHT_SQL.whoami)) return { rows: [[session.name]] };
    if (is(PREFLIGHT_SQL.accountStatus)) return { rows: [[accountStatus(session)]] };
    if (is(PREFLIGHT_SQL.passwordLimits)) {
      const reuse = this.passwordReuse === 'forbidden' ? ['10', '365'] : ['UNLIMITED', 'UNLIMITED'];
      return {
        rows: [
          ['FAILED_LOGIN_ATTEMPTS', '10'], ['PASSWORD_LIFE_TIME', '180'], ['PASSWORD_REUSE_TIME', reuse[1]], ['PASSWORD_REUSE_MAX', reuse[0]],
          ['PASSWORD_VERIFY_FUNCTION', session.verifyFunction ? 'ORA12C_VERIFY_FUNCTION' : 'NULL'], ['PASSWORD_LOCK_TIME', '1'], ['PASSWORD_GRACE_TIME', '7'],
        ],
      };
    }
    if (is(PREFLIGHT_SQL.sessionPrivs)) return { rows: [...SYSTEM_PRIVILEGES].filter((p) => this.hasPrivilege(session, p)).map((p) => [p]) };
    if (is(PREFLIGHT_SQL.sessionRoles)) return { rows: [...enabledRoles()].map((r) => [r]) };
    if (is(PREFLIGHT_SQL.adminSysPrivs)) {
      const direct = [...session.systemPrivileges].filter(([, o]) => o.admin).map(([p]) => p);
      const viaDba = session.roles.has('DBA') ? [...SYSTEM_PRIVILEGES].filter((p) => this.roleConfers('DBA', p)) : [];
      return { rows: [...new Set([...direct, ...viaDba])].map((p) => [p]) };
    }
    if (is(PREFLIGHT_SQL.adminRoles)) return { rows: [...session.roles].filter(([, o]) => o.admin).map(([r]) => [r]) };
    if (is(PREFLIGHT_SQL.grantableObjects)) {
      return {
        rows: session.objectGrants.filter((g) => g.grantOption && !g.privilege.includes('(')).map((g) => {
          const dir = /^DIRECTORY "(.+)"$/.exec(g.object);
          const obj = /^"(.+)"\."(.+)"$/.exec(g.object);
          return dir ? ['SYS', dir[1], g.privilege] : [obj?.[1] ?? '?', obj?.[2] ?? g.object, g.privilege];
        }),
      };
    }
    return undefined;
  }

  private canReadDictionary(session: FakeOracleUser): boolean {
    return this.hasPrivilege(session, 'SELECT ANY DICTIONARY') || session.objectGrants.some((g) => g.object === '"SYS"."DBA_USERS"');
  }

  private lob(text: string) {
    let destroyed = false;
    return {
      getData: async () => {
        if (destroyed) throw new FakeOracleError('NJS-022', 'invalid Lob');
        return text;
      },
      destroy: () => {
        if (!destroyed) this.lobsDestroyed++;
        destroyed = true;
      },
    };
  }

  private alterUser(session: FakeOracleUser, p: Parser): OracleResult {
    p.word('ALTER');
    p.word('USER');
    const target = this.users.get(p.identifier());
    let newPassword: string | undefined;
    let replace: string | undefined;
    let lock: boolean | undefined;
    if (p.optWord('IDENTIFIED')) {
      p.word('BY');
      newPassword = p.password();
      if (p.optWord('REPLACE')) replace = p.password();
    }
    if (p.optWord('ACCOUNT')) {
      if (p.optWord('LOCK')) lock = true;
      else {
        p.word('UNLOCK');
        lock = false;
      }
    }
    p.end();
    if (newPassword === undefined && lock === undefined) throw ora('ORA-00922', 'missing or invalid option');
    const own = target !== undefined && target.name === session.name;
    if (!own && !this.hasPrivilege(session, 'ALTER USER')) throw ora('ORA-01031', 'insufficient privileges');
    if (!target) throw ora('ORA-01918', 'user does not exist');
    if (newPassword !== undefined) {
      if (own && !this.hasPrivilege(session, 'ALTER USER')) {
        if (replace === undefined && target.verifyFunction) throw ora('ORA-28221', 'REPLACE not specified');
        if (replace !== undefined && replace !== target.password) throw ora('ORA-28008', 'invalid old password');
      }
      if (this.passwordReuse === 'forbidden' && target.history.includes(newPassword)) throw ora('ORA-28007', 'the password cannot be reused');
      target.password = newPassword;
      target.history.push(newPassword);
      target.expired = false;
      target.passwordChanges++;
    }
    if (lock !== undefined) target.locked = lock;
    return {};
  }

  private createUser(session: FakeOracleUser, p: Parser): OracleResult {
    p.word('CREATE');
    p.word('USER');
    const name = p.identifier();
    p.word('IDENTIFIED');
    p.word('BY');
    const password = p.password();
    let locked = false;
    if (p.optWord('ACCOUNT')) locked = p.optWord('LOCK') || (p.word('UNLOCK'), false);
    p.end();
    if (!this.hasPrivilege(session, 'CREATE USER')) throw ora('ORA-01031', 'insufficient privileges');
    if (this.users.has(name) || this.roles.has(name)) throw ora('ORA-01920', `user name '${name}' conflicts with another user or role name`);
    this.addUser(name, { password, locked });
    return {};
  }

  private dropUser(session: FakeOracleUser, p: Parser): OracleResult {
    p.word('DROP');
    p.word('USER');
    const name = p.identifier();
    p.end();
    if (!this.hasPrivilege(session, 'DROP USER')) throw ora('ORA-01031', 'insufficient privileges');
    if (!this.users.delete(name)) throw ora('ORA-01918', `user '${name}' does not exist`);
    return {};
  }

  /** GRANT role TO u [WITH ADMIN OPTION] | GRANT sys priv TO u [WITH ADMIN OPTION] | GRANT priv [(cols)] ON obj TO u [WITH GRANT OPTION] */
  private grant(session: FakeOracleUser, p: Parser): OracleResult {
    p.word('GRANT');
    const toks = p.rest();
    const toAt = toks.findIndex((t) => t.kind === 'word' && t.value === 'TO');
    if (toAt < 1) throw ora('ORA-00905', 'missing keyword');
    const what = toks.slice(0, toAt);
    const after = new Parser(toks.slice(toAt + 1));
    const grantee = this.users.get(after.identifier());
    const onAt = what.findIndex((t) => t.kind === 'word' && t.value === 'ON');
    let withOption: 'ADMIN' | 'GRANT' | undefined;
    if (after.optWord('WITH')) {
      withOption = after.optWord('ADMIN') ? 'ADMIN' : (after.word('GRANT'), 'GRANT');
      after.word('OPTION');
    }
    after.end();
    if (!grantee) throw ora('ORA-01917', 'user or role does not exist');

    if (onAt >= 0) {
      if (withOption === 'ADMIN') throw ora('ORA-00993', 'missing GRANT keyword');
      const privilege = render(what.slice(0, onAt));
      const object = render(what.slice(onAt + 1));
      if (!privilege || !object || what.some((t) => t.kind === 'string' || t.kind === 'bind')) throw ora('ORA-00990', 'missing or invalid privilege');
      // GRANT ANY OBJECT PRIVILEGE covers other schemas' objects, never SYS's: those need the grant
      // option held directly (on RDS, rdsadmin.rdsadmin_util.grant_sys_object is the way).
      const direct = session.objectGrants.some((g) => g.privilege === privilege && g.object === object && g.grantOption);
      const allowed = direct || (isSysObject(object) ? this.flavour === 'self-managed' && this.hasPrivilege(session, 'GRANT ANY PRIVILEGE') : this.hasPrivilege(session, 'GRANT ANY OBJECT PRIVILEGE'));
      if (!allowed) throw ora('ORA-01031', 'insufficient privileges');
      const existing = grantee.objectGrants.find((g) => g.privilege === privilege && g.object === object);
      if (existing) existing.grantOption ||= withOption === 'GRANT';
      else grantee.objectGrants.push({ privilege, object, grantOption: withOption === 'GRANT' });
      return {};
    }
    if (withOption === 'GRANT') throw ora('ORA-00994', 'missing OPTION keyword');
    if (what.length === 1 && (what[0].kind === 'quoted' || what[0].kind === 'word') && this.roles.has(what[0].value)) {
      const role = what[0].value;
      if (!this.canGrantRole(session, role)) throw ora('ORA-01924', `role '${role}' not granted or does not exist`);
      const prev = grantee.roles.get(role);
      grantee.roles.set(role, { admin: (prev?.admin ?? false) || withOption === 'ADMIN' });
      return {};
    }
    if (what.every((t) => t.kind === 'word')) {
      const privilege = what.map((t) => t.value).join(' ');
      if (!SYSTEM_PRIVILEGES.has(privilege)) throw ora('ORA-01919', `role '${privilege}' does not exist`);
      if (!this.canGrantSystem(session, privilege)) throw ora('ORA-01031', 'insufficient privileges');
      const prev = grantee.systemPrivileges.get(privilege);
      grantee.systemPrivileges.set(privilege, { admin: (prev?.admin ?? false) || withOption === 'ADMIN' });
      return {};
    }
    if (what.length === 1 && what[0].kind === 'quoted') throw ora('ORA-01919', `role '${what[0].value}' does not exist`);
    throw ora('ORA-00990', 'missing or invalid privilege');
  }
}

/** Canonical text for a token run, the way DBMS_METADATA prints it: names quoted, `.` and `(` tight. */
function render(toks: Tok[]): string {
  let out = '';
  for (const t of toks) {
    const text = t.kind === 'quoted' ? `"${t.value}"` : t.kind === 'word' ? t.value : t.raw;
    if (out === '' || text === '.' || text === ')' || text === ',' || out.endsWith('.') || out.endsWith('(')) out += text;
    else out += ` ${text}`;
  }
  return out;
}

function requireBinds(binds: Record<string, string>, names: string[]): void {
  for (const n of names) {
    if (typeof binds[n] !== 'string') throw ora('ORA-01008', 'not all variables bound');
  }
  for (const k of Object.keys(binds)) {
    if (!names.includes(k)) throw ora('ORA-01036', 'illegal variable name/number');
  }
}

function accountStatus(u: FakeOracleUser): string {
  if (u.expired && u.locked) return 'EXPIRED & LOCKED';
  if (u.locked) return 'LOCKED';
  if (u.expired) return 'EXPIRED';
  return 'OPEN';
}

/** DBMS_METADATA.GET_GRANTED_DDL statements for one grant type, in Oracle's format. */
function grantedDdl(user: FakeOracleUser, type: string): string[] {
  const to = `TO "${user.name}"`;
  if (type === 'ROLE_GRANT') {
    return [...user.roles].map(([role, o]) => `GRANT "${role}" ${to}${o.admin ? ' WITH ADMIN OPTION' : ''}`);
  }
  if (type === 'SYSTEM_GRANT') {
    return [...user.systemPrivileges].map(([priv, o]) => `GRANT ${priv} ${to}${o.admin ? ' WITH ADMIN OPTION' : ''}`);
  }
  return user.objectGrants.map((g) => `GRANT ${g.privilege} ON ${g.object} ${to}${g.grantOption ? ' WITH GRANT OPTION' : ''}`);
}

interface ConnectTarget {
  protocol: 'TCP' | 'TCPS';
  host: string;
  port: number;
  service: string;
  dnMatch?: string;
}

/** The connect descriptor the engine builds (TCP or TCPS); anything else is a syntax error. */
export function parseConnectString(cs: string): ConnectTarget {
  const d =
    /^\(DESCRIPTION=\(ADDRESS=\(PROTOCOL=(TCPS|TCP)\)\(HOST=([A-Za-z0-9._:-]+)\)\(PORT=(\d+)\)\)\(CONNECT_DATA=\(SERVICE_NAME=([A-Za-z0-9._$-]+)\)\)(?:\(SECURITY=\(SSL_SERVER_DN_MATCH=(yes|no)\)\))?\)$/.exec(
      cs,
    );
  if (!d) throw new FakeOracleError('NJS-514', 'syntax error in connection string');
  const target = { protocol: d[1] as 'TCP' | 'TCPS', host: d[2], port: Number(d[3]), service: d[4], dnMatch: d[5] };
  if ((target.protocol === 'TCPS') !== (target.dnMatch !== undefined)) throw new FakeOracleError('NJS-514', 'syntax error in connection string');
  return target;
}

/** How the server reads a login name: `"Exact"` as is; a bare name folded to upper case; anything else fails. */
function loginUserName(user: string): string | undefined {
  const u = user.trim();
  if (u.length >= 2 && u.startsWith('"') && u.endsWith('"')) {
    const inner = u.slice(1, -1);
    return inner.includes('"') ? undefined : inner;
  }
  return /^[A-Za-z][A-Za-z0-9_$#]*$/.test(u) ? u.toUpperCase() : undefined;
}

class FakeOracleConnection implements OracleConnectionLike {
  private closed = false;
  /** node-oracledb's Connection.callTimeout (ms; 0 = none), set by the engine. */
  callTimeout = 0;

  constructor(
    private readonly server: FakeOracleServer,
    readonly sessionUser: string,
  ) {}

  async execute(sql: string, binds: Record<string, string> = {}, options?: { outFormat?: number }): Promise<OracleResult> {
    if (this.closed) throw new FakeOracleError('NJS-003', 'invalid or closed connection');
    this.server.callTimeouts.push(this.callTimeout);
    if (this.server.stallStatements) {
      this.server.statements.push({ session: this.sessionUser, sql, binds: { ...binds }, options });
      const ms = this.callTimeout;
      return new Promise<OracleResult>((_, reject) => {
        if (ms && this.server.honourCallTimeout) setTimeout(() => reject(new FakeOracleError('NJS-123', `call timeout of ${ms} ms exceeded`)), ms);
      });
    }
    return this.server.execute(this.sessionUser, sql, binds, options);
  }

  async close(): Promise<void> {
    if (this.closed) throw new FakeOracleError('NJS-003', 'invalid or closed connection');
    this.closed = true;
    this.server.openConnections--;
  }
}
