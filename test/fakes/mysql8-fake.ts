/**
 * An in-process model of the parts of a MySQL 8 / 9 (and 5.6 / 5.7) server the MySQL-family
 * engine touches, at the driver boundary (mysql2/promise in production). No MySQL server can run
 * on the test machine; MariaDB runs for real in mysql-mariadb.test.ts.
 *
 * A small stateful model: accounts (user@host, password, plugin, REQUIRE, resource limits,
 * password lifetime, ACCOUNT LOCK, ATTRIBUTE metadata, default roles) and their SHOW GRANTS rows
 * (MySQL 8 format, backtick-quoted). Every (sql, values) pair is recorded. The admin is modelled
 * on the RDS master user (see /work/shared/docs/managed-services.md, section 2): the static
 * privileges AWS lists ON *.* WITH GRANT OPTION, and on 8.0.36+ those plus CREATE ROLE, DROP ROLE,
 * APPLICATION_PASSWORD_ADMIN, ROLE_ADMIN, SET_USER_ID and XA_RECOVER_ADMIN through its default
 * role `rds_superuser_role`. A replayed GRANT is parsed by the fake's own reading of its text:
 * an unknown privilege is a syntax error (1064), a privilege the admin may not give is refused
 * as MySQL does (1045 for static privileges, 1227 for dynamic ones and for roles without ROLE_ADMIN
 * or WITH ADMIN OPTION), SET DEFAULT ROLE of a role not granted is 3530. Catalog queries are
 * recognised by their text and answered from the state, refusing columns the version lacks
 * (User_attributes before 8.0.21). Anything else is refused loudly.
 */
import type { ConnectionOptions } from 'mysql2';
import type { MysqlSession } from '../../rotators/mysql/engine';
import { parseServerVersion } from '../../rotators/mysql/engine';

export interface Account {
  user: string;
  host: string;
  password: string;
  plugin: string;
  ssl: { type: string; cipher: string; issuer: string; subject: string };
  /** SHOW GRANTS output (MySQL 8 format). */
  grants: string[];
  /** The RDS master user: its privileges are those of RDS_MASTER_* for the server version. */
  admin?: boolean;
  locked?: boolean;
  /** Days; undefined: DEFAULT; 0: NEVER. */
  lifetime?: number;
  limits?: { questions: number; updates: number; connections: number; userConnections: number };
  /** ATTRIBUTE metadata JSON. */
  attributes?: Record<string, unknown>;
  /** Default roles, as `user@host`. */
  defaultRoles?: string[];
}

export interface Call {
  session: number;
  user: string;
  sql: string;
  values?: unknown[];
}

export type DriverError = Error & { code: string; errno: number; sqlMessage: string; sql?: string };

export function driverError(code: string, errno: number, message: string, sql?: string): DriverError {
  return Object.assign(new Error(message), { code, errno, sqlMessage: message, sql });
}

export const LIMIT_SQL =
  "SELECT CHARACTER_MAXIMUM_LENGTH AS len FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'user' AND COLUMN_NAME = 'User'";
export const VERSION_SQL = 'SELECT VERSION() AS version, @@SESSION.sql_mode AS sqlMode';
export const TIMEOUT_SQL = 'SET SESSION max_execution_time = ?, lock_wait_timeout = ?';
export const MARIADB_TIMEOUT_SQL = 'SET SESSION max_statement_time = ?, lock_wait_timeout = ?';

/** The static privileges of the RDS for MySQL master (all versions), ON *.* WITH GRANT OPTION. */
export const RDS_MASTER_STATIC = [
  'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'RELOAD', 'PROCESS', 'REFERENCES', 'INDEX', 'ALTER', 'SHOW DATABASES',
  'CREATE TEMPORARY TABLES', 'LOCK TABLES', 'EXECUTE', 'REPLICATION SLAVE', 'REPLICATION CLIENT', 'CREATE VIEW', 'SHOW VIEW',
  'CREATE ROUTINE', 'ALTER ROUTINE', 'CREATE USER', 'EVENT', 'TRIGGER',
];
/** What 8.0.36+ adds, through `rds_superuser_role`. */
export const RDS_MASTER_8036_STATIC = ['CREATE ROLE', 'DROP ROLE'];
export const RDS_MASTER_8036_DYNAMIC = ['APPLICATION_PASSWORD_ADMIN', 'ROLE_ADMIN', 'SET_USER_ID', 'XA_RECOVER_ADMIN'];

/** Every static privilege MySQL 8 knows (GRANT of anything else that is not dynamic is a syntax error). */
const STATIC_PRIVILEGES = new Set([
  ...RDS_MASTER_STATIC, ...RDS_MASTER_8036_STATIC, 'ALL', 'ALL PRIVILEGES', 'USAGE', 'FILE', 'SHUTDOWN', 'SUPER', 'CREATE TABLESPACE', 'GRANT OPTION', 'PROXY',
]);
/** Static privileges that exist only at the global level (ALL on a database does not include them). */
const GLOBAL_ONLY = new Set([
  'RELOAD', 'PROCESS', 'SHOW DATABASES', 'REPLICATION SLAVE', 'REPLICATION CLIENT', 'CREATE USER', 'FILE', 'SHUTDOWN', 'SUPER', 'CREATE TABLESPACE', 'CREATE ROLE', 'DROP ROLE',
]);
/** Dynamic privileges MySQL 8 knows (a subset; enough for the tests). */
const DYNAMIC_PRIVILEGES = new Set([
  ...RDS_MASTER_8036_DYNAMIC, 'BACKUP_ADMIN', 'FLUSH_TABLES', 'SYSTEM_USER', 'SYSTEM_VARIABLES_ADMIN', 'CONNECTION_ADMIN', 'SESSION_VARIABLES_ADMIN', 'SHOW_ROUTINE',
]);

const noSsl = { type: '', cipher: '', issuer: '', subject: '' };
const q = (s: string) => '`' + s.replace(/`/g, '``') + '`';
const key = (user: string, host: string) => `${user}@${host}`;

/** Splits at commas outside parentheses and backticks. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let tick = false;
  let cur = '';
  for (const c of s) {
    if (c === '`') tick = !tick;
    if (!tick && c === '(') depth++;
    if (!tick && c === ')') depth--;
    if (!tick && depth === 0 && c === ',') {
      out.push(cur.trim());
      cur = '';
    } else cur += c;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** `a``b`@`h` -> [user, host] */
function readAccount(s: string): [string, string] | undefined {
  const m = /^`((?:[^`]|``)*)`@`((?:[^`]|``)*)`$/.exec(s.trim());
  return m ? [m[1].replace(/``/g, '`'), m[2].replace(/``/g, '`')] : undefined;
}

export class FakeMysql {
  readonly calls: Call[] = [];
  readonly configs: ConnectionOptions[] = [];
  /** GRANT/REVOKE statements replayed, per target account. */
  readonly replayed = new Map<string, string[]>();
  sqlMode = 'ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION';
  /** Return an error to make a statement fail. */
  failWith?: (sql: string, values: unknown[] | undefined) => DriverError | undefined;
  /** Never answer a statement for which this returns true (a stalled server). */
  stallOn?: (sql: string) => boolean;
  /** Width of mysql.user.User (MySQL 5.7.8+ / 8 / 9: 32). */
  userColumnWidth = 32;
  /** Successful logins. */
  connected = 0;
  /** Sessions destroyed by the client. */
  destroyed = 0;

  constructor(
    readonly version: string,
    readonly accounts: Account[],
  ) {
    if (this.atLeast(8, 0, 36) && accounts.some((a) => a.admin) && !this.account('rds_superuser_role', '%')) {
      this.accounts.push({
        user: 'rds_superuser_role', host: '%', password: '', plugin: 'caching_sha2_password', ssl: noSsl, locked: true,
        grants: [
          `GRANT ${[...RDS_MASTER_STATIC, ...RDS_MASTER_8036_STATIC].join(', ')} ON *.* TO \`rds_superuser_role\`@\`%\` WITH GRANT OPTION`,
          `GRANT ${RDS_MASTER_8036_DYNAMIC.join(',')} ON *.* TO \`rds_superuser_role\`@\`%\` WITH GRANT OPTION`,
        ],
      });
    }
    for (const a of accounts.filter((x) => x.admin)) {
      const me = `${q(a.user)}@${q(a.host)}`;
      if (this.atLeast(8, 0, 36)) {
        a.grants = [`GRANT USAGE ON *.* TO ${me}`, `GRANT \`rds_superuser_role\`@\`%\` TO ${me}`];
        a.defaultRoles = ['rds_superuser_role@%'];
      } else {
        a.grants = [`GRANT ${RDS_MASTER_STATIC.join(', ')} ON *.* TO ${me} WITH GRANT OPTION`];
      }
    }
  }

  atLeast(major: number, minor: number, patch: number): boolean {
    const [a, b, c] = parseServerVersion(this.version).numbers;
    return a !== major ? a > major : b !== minor ? b > minor : c >= patch;
  }

  connect = async (config: ConnectionOptions): Promise<MysqlSession> => {
    this.configs.push(config);
    const acct = this.accounts.find((a) => a.user === config.user && !a.locked);
    if (!acct || acct.password !== config.password) {
      throw driverError('ER_ACCESS_DENIED_ERROR', 1045, `Access denied for user '${config.user}'@'10.0.0.5' (using password: YES)`);
    }
    const id = ++this.connected;
    return {
      query: async (sql: string, values?: unknown[]) => {
        this.calls.push({ session: id, user: acct.user, sql, ...(values !== undefined ? { values } : {}) });
        if (this.stallOn?.(sql)) return new Promise<never>(() => undefined);
        const err = this.failWith?.(sql, values);
        if (err) throw err;
        return [this.execute(acct, sql, values ?? []), []];
      },
      end: async () => undefined,
      destroy: () => {
        this.destroyed++;
      },
    };
  };

  /** Statements of one user's sessions, without the per-connection version and timeout statements. */
  statements(user?: string): Array<{ sql: string; values?: unknown[] }> {
    return this.calls
      .filter((c) => (user === undefined || c.user === user) && c.sql !== VERSION_SQL && c.sql !== TIMEOUT_SQL && c.sql !== MARIADB_TIMEOUT_SQL)
      .map(({ sql, values }) => ({ sql, ...(values ? { values } : {}) }));
  }

  account(user: string, host: string): Account | undefined {
    return this.accounts.find((a) => a.user === user && a.host === host);
  }

  /** What the admin may grant: static and dynamic privileges it holds ON *.* WITH GRANT OPTION (own and default roles'), and whether it has ROLE_ADMIN. */
  private grantable(me: Account): { privileges: Set<string>; roleAdmin: boolean; adminRoles: Set<string> } {
    const privileges = new Set<string>();
    const adminRoles = new Set<string>();
    const sources = [me, ...(me.defaultRoles ?? []).map((r) => this.accounts.find((a) => key(a.user, a.host) === r)).filter((a): a is Account => !!a)];
    for (const a of sources) {
      for (const g of a.grants) {
        const m = /^GRANT (.+) ON \*\.\* TO .* WITH GRANT OPTION$/.exec(g);
        if (m) for (const p of splitTop(m[1])) privileges.add(p.toUpperCase());
        const r = /^GRANT (`.+) TO .* WITH ADMIN OPTION$/.exec(g);
        if (r && !/ ON /.test(r[1])) for (const role of splitTop(r[1])) adminRoles.add(role);
      }
    }
    return { privileges, roleAdmin: privileges.has('ROLE_ADMIN'), adminRoles };
  }

  private isAdmin(me: Account): boolean {
    return this.grantable(me).privileges.has('CREATE USER');
  }

  private execute(me: Account, sql: string, values: unknown[]): unknown {
    const mysql8 = this.atLeast(8, 0, 0) && parseServerVersion(this.version).flavor === 'mysql';
    if (/PASSWORD\(/i.test(sql) && this.atLeast(8, 0, 11) && parseServerVersion(this.version).flavor === 'mysql') {
      throw driverError('ER_PARSE_ERROR', 1064, `You have an error in your SQL syntax; check the manual near '(${String(values[0])})' at line 1`, sql);
    }
    if (sql === VERSION_SQL) return [{ version: this.version, sqlMode: this.sqlMode }];
    if (sql === MARIADB_TIMEOUT_SQL) {
      if (parseServerVersion(this.version).flavor !== 'mariadb') throw driverError('ER_UNKNOWN_SYSTEM_VARIABLE', 1193, "Unknown system variable 'max_statement_time'", sql);
      return { affectedRows: 0 };
    }
    if (sql === TIMEOUT_SQL) {
      if (!this.atLeast(5, 7, 8)) throw driverError('ER_UNKNOWN_SYSTEM_VARIABLE', 1193, "Unknown system variable 'max_execution_time'", sql);
      return { affectedRows: 0 };
    }
    if (sql === 'SELECT 1') return [{ 1: 1 }];
    if (sql === 'SELECT CURRENT_USER() AS account') return [{ account: `${me.user}@${me.host}` }];
    if (sql === 'SET SESSION sql_mode = ?') {
      this.sqlMode = String(values[0]);
      return { affectedRows: 0 };
    }
    if (sql === 'ALTER USER CURRENT_USER() IDENTIFIED BY ? REPLACE ?') {
      if (values[1] !== me.password) throw driverError('ER_INCORRECT_CURRENT_PASSWORD', 3891, 'Incorrect current password.', sql);
      me.password = String(values[0]);
      return { affectedRows: 0 };
    }
    if (sql === 'ALTER USER CURRENT_USER() IDENTIFIED BY ?' || sql === 'SET PASSWORD = PASSWORD(?)') {
      me.password = String(values[0]);
      return { affectedRows: 0 };
    }
    const admin = this.isAdmin(me);
    if (/\bFROM mysql\./.test(sql) && !admin) {
      throw driverError('ER_TABLEACCESS_DENIED_ERROR', 1142, `SELECT command denied to user '${me.user}'@'${me.host}' for table 'user'`, sql);
    }
    if (sql === "SELECT Host AS host FROM mysql.user WHERE User = ? AND account_locked = 'N' ORDER BY Host") {
      if (!this.atLeast(5, 7, 6)) throw driverError('ER_BAD_FIELD_ERROR', 1054, "Unknown column 'account_locked' in 'where clause'", sql);
      return this.accounts.filter((a) => a.user === values[0] && !a.locked).map((a) => ({ host: a.host })).sort((a, b) => (a.host < b.host ? -1 : 1));
    }
    if (sql === 'SELECT Host AS host FROM mysql.user WHERE User = ? ORDER BY Host') {
      return this.accounts.filter((a) => a.user === values[0]).map((a) => ({ host: a.host })).sort((a, b) => (a.host < b.host ? -1 : 1));
    }
    if (!admin) throw driverError('ER_SPECIFIC_ACCESS_DENIED_ERROR', 1227, 'Access denied; you need (at least one of) the CREATE USER privilege(s) for this operation', sql);
    if (sql === LIMIT_SQL) return [{ len: this.userColumnWidth }];
    const accountsQuery = /^SELECT u\.Host AS host, .* FROM mysql\.user u WHERE u\.User = \? ORDER BY u\.Host$/.exec(sql);
    if (accountsQuery) {
      if (/User_attributes/.test(sql) && !this.atLeast(8, 0, 21)) throw driverError('ER_BAD_FIELD_ERROR', 1054, "Unknown column 'u.User_attributes' in 'field list'", sql);
      if (/is_role|global_priv|max_statement_time/.test(sql)) throw driverError('ER_BAD_FIELD_ERROR', 1054, "Unknown column in 'field list'", sql);
      const withMarker = /\$\.metadata\.rotation_lambdas_alternate_of/.test(sql);
      return this.accounts
        .filter((a) => a.user === values[0])
        .sort((a, b) => (a.host < b.host ? -1 : 1))
        .map((a) => {
          const lim = a.limits ?? { questions: 0, updates: 0, connections: 0, userConnections: 0 };
          const marker = a.attributes?.rotation_lambdas_alternate_of;
          return {
            host: a.host, plugin: a.plugin, sslType: a.ssl.type, sslCipher: Buffer.from(a.ssl.cipher), x509Issuer: Buffer.from(a.ssl.issuer), x509Subject: Buffer.from(a.ssl.subject),
            maxQuestions: lim.questions, maxUpdates: lim.updates, maxConnections: lim.connections, maxUserConnections: lim.userConnections,
            locked: a.locked ? 'Y' : 'N', lifetime: a.lifetime ?? null,
            ...(withMarker ? { marker: typeof marker === 'string' ? marker : null } : {}),
          };
        });
    }
    if (sql === 'SELECT COUNT(*) AS n FROM mysql.role_edges WHERE FROM_USER = ? AND FROM_HOST = ?') {
      const role = `${q(String(values[0]))}@${q(String(values[1]))}`;
      const n = this.accounts.filter((a) => a.grants.some((g) => g.startsWith('GRANT `') && !/ ON /.test(g.split(' TO ')[0]) && splitTop(g.slice(6, g.indexOf(' TO '))).includes(role))).length;
      return [{ n }];
    }
    if (sql === 'SELECT DEFAULT_ROLE_USER AS user, DEFAULT_ROLE_HOST AS host FROM mysql.default_roles WHERE USER = ? AND HOST = ? ORDER BY DEFAULT_ROLE_USER, DEFAULT_ROLE_HOST') {
      if (!mysql8) throw driverError('ER_NO_SUCH_TABLE', 1146, "Table 'mysql.default_roles' doesn't exist", sql);
      const a = this.account(String(values[0]), String(values[1]));
      return (a?.defaultRoles ?? []).map((r) => ({ user: r.slice(0, r.lastIndexOf('@')), host: r.slice(r.lastIndexOf('@') + 1) }));
    }
    const create = /^CREATE USER IF NOT EXISTS \?@\? IDENTIFIED BY \?( ATTRIBUTE \?)?$/.exec(sql);
    if (create) {
      if (create[1] && !this.atLeast(8, 0, 21)) throw driverError('ER_PARSE_ERROR', 1064, "You have an error in your SQL syntax near 'ATTRIBUTE'", sql);
      const [user, host, password] = values.map(String);
      if (!this.account(user, host)) {
        this.accounts.push({
          user, host, password, plugin: 'caching_sha2_password', ssl: noSsl, grants: [`GRANT USAGE ON *.* TO ${q(user)}@${q(host)}`],
          ...(create[1] ? { attributes: JSON.parse(String(values[3])) } : {}),
        });
      }
      return { affectedRows: 0 };
    }
    if (sql === 'SHOW CREATE USER ?@?') {
      const a = this.account(String(values[0]), String(values[1]));
      if (!a) throw driverError('ER_CANNOT_USER', 1396, `Operation SHOW CREATE USER failed for '${String(values[0])}'@'${String(values[1])}'`, sql);
      return [{ [`CREATE USER for ${a.user}@${a.host}`]: this.showCreateUser(a) }];
    }
    if (sql === 'SHOW GRANTS' || sql === 'SHOW GRANTS FOR CURRENT_USER()') {
      // MySQL: the session's own account (with active roles unexpanded, as without USING).
      return me.grants.map((g) => ({ [`Grants for ${me.user}@${me.host}`]: g }));
    }
    if (sql === 'SHOW GRANTS FOR ?@?') {
      const a = this.account(String(values[0]), String(values[1]));
      if (!a) throw driverError('ER_NONEXISTING_GRANT', 1141, `There is no such grant defined for user '${String(values[0])}' on host '${String(values[1])}'`, sql);
      return a.grants.map((g) => ({ [`Grants for ${a.user}@${a.host}`]: g }));
    }
    if (values.length === 0 && /^(?:GRANT|REVOKE) /.test(sql)) return this.replay(me, sql);
    const attr = /^ALTER USER \?@\? ATTRIBUTE \?$/.exec(sql);
    if (attr) {
      if (!this.atLeast(8, 0, 21)) throw driverError('ER_PARSE_ERROR', 1064, "You have an error in your SQL syntax near 'ATTRIBUTE'", sql);
      const a = this.mustExist(values, sql);
      a.attributes = { ...(a.attributes ?? {}), ...JSON.parse(String(values[2])) };
      return { affectedRows: 0 };
    }
    const settings = /^ALTER USER \?@\? REQUIRE (NONE|SSL|X509|(?:(?:CIPHER|ISSUER|SUBJECT) \?(?: AND (?:CIPHER|ISSUER|SUBJECT) \?)*)) WITH MAX_QUERIES_PER_HOUR \? MAX_UPDATES_PER_HOUR \? MAX_CONNECTIONS_PER_HOUR \? MAX_USER_CONNECTIONS \? PASSWORD EXPIRE (DEFAULT|NEVER|INTERVAL \? DAY)$/.exec(sql);
    if (settings) {
      const a = this.mustExist(values, sql);
      const type = settings[1] === 'NONE' ? '' : settings[1] === 'SSL' ? 'ANY' : settings[1] === 'X509' ? 'X509' : 'SPECIFIED';
      const parts = [...settings[1].matchAll(/(CIPHER|ISSUER|SUBJECT) \?/g)].map((m) => m[1]);
      const rest = values.slice(2);
      const get = (k: string) => (parts.includes(k) ? String(rest[parts.indexOf(k)]) : '');
      a.ssl = { type, cipher: get('CIPHER'), issuer: get('ISSUER'), subject: get('SUBJECT') };
      const [questions, updates, connections, userConnections] = rest.slice(parts.length, parts.length + 4).map(Number);
      a.limits = { questions, updates, connections, userConnections };
      if (settings[2] === 'DEFAULT') delete a.lifetime;
      else a.lifetime = settings[2] === 'NEVER' ? 0 : Number(rest[parts.length + 4]);
      return { affectedRows: 0 };
    }
    const defaults = /^SET DEFAULT ROLE (NONE|\?@\?(?:, \?@\?)*) TO \?@\?$/.exec(sql);
    if (defaults) {
      if (!mysql8) throw driverError('ER_PARSE_ERROR', 1064, "You have an error in your SQL syntax near 'ROLE'", sql);
      const target = this.mustExist(values.slice(-2), sql);
      const roles: string[] = [];
      for (let i = 0; i + 2 < values.length; i += 2) {
        const role = `${q(String(values[i]))}@${q(String(values[i + 1]))}`;
        if (!target.grants.some((g) => g.startsWith('GRANT `') && splitTop(g.slice(6, g.indexOf(' TO '))).includes(role))) {
          throw driverError('ER_ROLE_NOT_GRANTED', 3530, `${role} is not granted to ${q(target.user)}@${q(target.host)}`, sql);
        }
        roles.push(key(String(values[i]), String(values[i + 1])));
      }
      target.defaultRoles = roles;
      return { affectedRows: 0 };
    }
    const identified = /^ALTER USER \?@\? IDENTIFIED (?:WITH (\w+) )?BY \?$/.exec(sql);
    if (identified) {
      const a = this.mustExist(values, sql);
      a.password = String(values[2]);
      if (identified[1]) a.plugin = identified[1];
      return { affectedRows: 0 };
    }
    throw new Error(`fake MySQL: unexpected statement: ${sql}`);
  }

  /**
   * SHOW CREATE USER as MySQL 8 prints it: IDENTIFIED WITH (plugin and hash), DEFAULT ROLE,
   * REQUIRE, WITH resource limits (non-zero ones), PASSWORD EXPIRE, ACCOUNT LOCK/UNLOCK, the
   * password-reuse defaults, ATTRIBUTE (8.0.21+). The hash stands in for the password.
   */
  showCreateUser(a: Account): string {
    const lit = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
    const parts = [`CREATE USER ${q(a.user)}@${q(a.host)} IDENTIFIED WITH ${lit(a.plugin)} AS ${lit(`hash(${a.password.length})`)}`];
    if (a.defaultRoles?.length) parts.push(`DEFAULT ROLE ${a.defaultRoles.map((r) => `${q(r.slice(0, r.lastIndexOf('@')))}@${q(r.slice(r.lastIndexOf('@') + 1))}`).join(',')}`);
    const ssl = a.ssl;
    const req = ssl.type === 'ANY' ? 'SSL' : ssl.type === 'X509' ? 'X509' : ssl.type === 'SPECIFIED'
      ? [ssl.issuer && `ISSUER ${lit(ssl.issuer)}`, ssl.subject && `SUBJECT ${lit(ssl.subject)}`, ssl.cipher && `CIPHER ${lit(ssl.cipher)}`].filter(Boolean).join(' AND ') : 'NONE';
    parts.push(`REQUIRE ${req}`);
    const lim = a.limits;
    const withs = lim ? [['MAX_QUERIES_PER_HOUR', lim.questions], ['MAX_UPDATES_PER_HOUR', lim.updates], ['MAX_CONNECTIONS_PER_HOUR', lim.connections], ['MAX_USER_CONNECTIONS', lim.userConnections]].filter(([, n]) => n) : [];
    if (withs.length) parts.push(`WITH ${withs.map(([k, n]) => `${k} ${n}`).join(' ')}`);
    parts.push(`PASSWORD EXPIRE ${a.lifetime === undefined ? 'DEFAULT' : a.lifetime === 0 ? 'NEVER' : `INTERVAL ${a.lifetime} DAY`}`);
    parts.push(`ACCOUNT ${a.locked ? 'LOCK' : 'UNLOCK'} PASSWORD HISTORY DEFAULT PASSWORD REUSE INTERVAL DEFAULT PASSWORD REQUIRE CURRENT DEFAULT`);
    if (a.attributes && this.atLeast(8, 0, 21)) parts.push(`ATTRIBUTE ${lit(JSON.stringify(a.attributes))}`);
    return parts.join(' ');
  }

  private mustExist(values: unknown[], sql: string): Account {
    const a = this.account(String(values[0]), String(values[1]));
    if (!a) throw driverError('ER_CANNOT_USER', 1396, `Operation ALTER USER failed for '${String(values[0])}'@'${String(values[1])}'`, sql);
    return a;
  }

  /** A GRANT or REVOKE of SHOW GRANTS text, re-targeted by the engine: checked as the RDS master's. */
  private replay(me: Account, sql: string): unknown {
    const m = /^(GRANT|REVOKE) (.+) (TO|FROM) (`(?:[^`]|``)*`@`(?:[^`]|``)*`)( WITH (?:GRANT|ADMIN) OPTION)?$/.exec(sql);
    const target = m && readAccount(m[4]);
    if (!m || !target || (m[1] === 'GRANT') !== (m[3] === 'TO')) throw driverError('ER_PARSE_ERROR', 1064, "You have an error in your SQL syntax near 'TO'", sql);
    const account = this.account(...target);
    if (!account) throw driverError('ER_CANT_CREATE_USER_WITH_GRANT', 1410, 'You are not allowed to create a user with GRANT', sql);
    const { privileges, roleAdmin, adminRoles } = this.grantable(me);
    const on = / ON ((?:PROCEDURE |FUNCTION |TABLE )?(?:`(?:[^`]|``)*`|\*)(?:\.(?:`(?:[^`]|``)*`|\*))?)$/.exec(m[2]);
    if (!on) {
      // Role grant: `r`@`h`[, ...]
      if (m[1] !== 'GRANT' || (m[5] && m[5] !== ' WITH ADMIN OPTION')) throw driverError('ER_PARSE_ERROR', 1064, 'You have an error in your SQL syntax', sql);
      for (const role of splitTop(m[2])) {
        const r = readAccount(role);
        if (!r) throw driverError('ER_PARSE_ERROR', 1064, 'You have an error in your SQL syntax', sql);
        if (!this.account(...r)) throw driverError('ER_UNKNOWN_AUTHID', 3523, `Unknown authorization ID ${role}`, sql);
        if (!roleAdmin && !adminRoles.has(role)) {
          throw driverError('ER_SPECIFIC_ACCESS_DENIED_ERROR', 1227, 'Access denied; you need (at least one of) the WITH ADMIN, ROLE_ADMIN, SUPER privilege(s) for this operation', sql);
        }
      }
    } else {
      if (m[5] === ' WITH ADMIN OPTION') throw driverError('ER_PARSE_ERROR', 1064, 'You have an error in your SQL syntax', sql);
      const list = m[2].slice(0, m[2].length - on[0].length);
      for (const raw of splitTop(list)) {
        const name = raw.replace(/\s*\(.*\)$/, '').toUpperCase();
        const known = STATIC_PRIVILEGES.has(name) || (DYNAMIC_PRIVILEGES.has(name) && on[1] === '*.*');
        if (!known) throw driverError('ER_PARSE_ERROR', 1064, `You have an error in your SQL syntax; check the manual near '${raw}'`, sql);
        if (name === 'USAGE') continue;
        const all = [...STATIC_PRIVILEGES].filter((p) => !['ALL', 'ALL PRIVILEGES', 'USAGE', 'GRANT OPTION', 'PROXY'].includes(p) && (on[1] === '*.*' || !GLOBAL_ONLY.has(p)));
        const needed = name === 'ALL' || name === 'ALL PRIVILEGES' ? all : [name];
        for (const p of needed) {
          if (privileges.has(p)) continue;
          if (DYNAMIC_PRIVILEGES.has(p)) {
            throw driverError('ER_SPECIFIC_ACCESS_DENIED_ERROR', 1227, `Access denied; you need (at least one of) the GRANT OPTION privilege(s) for this operation`, sql);
          }
          throw driverError('ER_ACCESS_DENIED_ERROR', 1045, `Access denied for user '${me.user}'@'${me.host}' (using password: YES)`, sql);
        }
      }
    }
    const k = key(...target);
    this.replayed.set(k, [...(this.replayed.get(k) ?? []), sql]);
    if (!account.grants.includes(sql)) account.grants.push(sql);
    return { affectedRows: 0 };
  }
}

export const NO_SSL = noSsl;
