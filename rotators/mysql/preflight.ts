/**
 * Read-only preflight checks for MySQL, Aurora MySQL and MariaDB (src/ops/hooks.ts). They mirror
 * what the engine's setOwnPassword / upsertAlternateUser will need, with SELECTs, server
 * variables and SHOW GRANTS only:
 *
 * - a writer: neither read_only nor innodb_read_only (a replica or an Aurora reader);
 * - alternating users: MySQL 5.7.6+ / MariaDB 10.2+; the alternate name within the server's own
 *   limit (the width of mysql.user.User); the admin can read mysql.user and SHOW GRANTS of every
 *   account of the current user; it holds CREATE USER and GRANT OPTION; and for every privilege
 *   the current user holds (SHOW GRANTS), the admin holds it, with GRANT OPTION, at that level or
 *   above. Privileges an admin holds only through a role (MySQL 8 roles, e.g. Aurora MySQL 3's
 *   rds_superuser_role, or MariaDB roles) are not expanded: a gap is then a warning, not a
 *   failure, since the role may cover it. Grants of roles to the current user are reported as
 *   not verified.
 */
import { type AdminPrivilegesInput, type Check, fail, type OwnPasswordInput, pass, type PreflightHooks, skip, warn } from '../../src/db';
import type { MysqlConnection, MysqlServer } from './engine';
import { tokenize } from './grants';

type Row = Record<string, unknown>;

async function rows(conn: MysqlConnection, sql: string, values?: unknown[]): Promise<Row[]> {
  const [r] = values === undefined ? await conn.session.query(sql) : await conn.session.query(sql, values);
  return Array.isArray(r) ? (r as Row[]) : [];
}

const text = (v: unknown): string => (v === null || v === undefined ? '' : Buffer.isBuffer(v) ? v.toString('utf8') : String(v));

/** A server error without the driver's formatted SQL (which could hold values). */
function serverError(err: unknown): string {
  const e = err as { code?: unknown; errno?: unknown; sqlMessage?: unknown };
  return `[${typeof e?.code === 'string' ? e.code : 'ERROR'}${typeof e?.errno === 'number' ? ` ${e.errno}` : ''}] ${typeof e?.sqlMessage === 'string' ? e.sqlMessage : 'the statement failed'}`;
}

const WRITER_TITLE = 'The server accepts writes (not a replica or reader)';

async function writerCheck(conn: MysqlConnection, id: string): Promise<Check> {
  const found: string[] = [];
  for (const name of ['read_only', 'innodb_read_only']) {
    try {
      const r = await rows(conn, `SELECT @@global.${name} AS v`);
      if (Number(text(r[0]?.v)) === 1 || /^on$/i.test(text(r[0]?.v))) found.push(name);
    } catch {
      // a server without the variable
    }
  }
  return found.length
    ? fail(id, WRITER_TITLE, `The server has ${found.join(' and ')} on: account changes will be refused.`, 'CONFIG',
        'Point the secret\'s host at the writer (primary) endpoint, not a replica or reader endpoint.')
    : pass(id, WRITER_TITLE, 'read_only and innodb_read_only are off.');
}

async function ownPassword(conn: MysqlConnection, _input: OwnPasswordInput): Promise<Check[]> {
  return [await writerCheck(conn, 'single.writer')];
}

function atLeast(server: MysqlServer, major: number, minor: number, patch: number): boolean {
  const [a, b, c] = server.numbers;
  return a !== major ? a > major : b !== minor ? b > minor : c >= patch;
}

/** One privilege grant read from SHOW GRANTS. */
export interface ParsedGrant {
  /** Upper-case privilege names (column lists dropped), e.g. ["SELECT", "CREATE TEMPORARY TABLES"]. */
  privileges: string[];
  /** `*` for any. */
  db: string;
  obj: string;
  /** TABLE, PROCEDURE, FUNCTION, PACKAGE... or '' */
  objectType: string;
  grantOption: boolean;
}

export type GrantLine = { kind: 'privileges'; grant: ParsedGrant } | { kind: 'role'; roles: string[] } | { kind: 'other' };

/** Reads a GRANT row of SHOW GRANTS: privileges and level, a role grant, or something else. */
export function parseGrantLine(sql: string): GrantLine {
  const toks = tokenize(sql);
  const word = (i: number, w: string) => toks[i]?.kind === 'word' && toks[i].value.toUpperCase() === w;
  if (!word(0, 'GRANT') || word(1, 'PROXY')) return { kind: 'other' };
  let depth = 0;
  let on = -1;
  let to = -1;
  for (let i = 1; i < toks.length; i++) {
    const t = toks[i];
    if (t.kind === 'punct' && t.value === '(') depth++;
    else if (t.kind === 'punct' && t.value === ')') depth--;
    else if (depth === 0 && on < 0 && word(i, 'ON')) on = i;
    else if (depth === 0 && word(i, 'TO')) {
      to = i;
      break;
    }
  }
  if (to < 0) return { kind: 'other' };
  if (on < 0) {
    // GRANT role[, role] TO account: names are quoted tokens (role@host in MySQL 8).
    const roles: string[] = [];
    for (let i = 1; i < to; i++) {
      const t = toks[i];
      if (t.kind === 'quoted' || t.kind === 'word') {
        if (toks[i - 1]?.kind === 'punct' && toks[i - 1].value === '@') continue;
        roles.push(t.value);
      }
    }
    return { kind: 'role', roles };
  }
  const privileges: string[] = [];
  let words: string[] = [];
  depth = 0;
  for (let i = 1; i < on; i++) {
    const t = toks[i];
    if (t.kind === 'punct' && t.value === '(') depth++;
    else if (t.kind === 'punct' && t.value === ')') depth--;
    else if (depth > 0) continue;
    else if (t.kind === 'punct' && t.value === ',') {
      if (words.length) privileges.push(words.join(' ').toUpperCase());
      words = [];
    } else words.push(t.value);
  }
  if (words.length) privileges.push(words.join(' ').toUpperCase());
  let i = on + 1;
  let objectType = '';
  if (toks[i]?.kind === 'word' && ['TABLE', 'PROCEDURE', 'FUNCTION', 'PACKAGE', 'PACKAGE BODY'].includes(toks[i].value.toUpperCase())) {
    objectType = toks[i].value.toUpperCase();
    i++;
    if (objectType === 'PACKAGE' && word(i, 'BODY')) i++;
  }
  const parts: string[] = [];
  for (; i < to; i++) {
    const t = toks[i];
    if (t.kind === 'punct' && t.value === '.') continue;
    parts.push(t.value);
  }
  const [db, obj] = parts.length >= 2 ? [parts[0], parts[1]] : ['*', parts[0] ?? '*'];
  const after = toks.slice(to + 1);
  const grantOption = after.some((t, k) => t.kind === 'word' && t.value.toUpperCase() === 'GRANT' && after[k + 1]?.value.toUpperCase() === 'OPTION');
  return { kind: 'privileges', grant: { privileges: privileges.map((p) => (p === 'ALL' ? 'ALL PRIVILEGES' : p)), db, obj, objectType, grantOption } };
}

const DB_LEVEL_ALL = [
  'SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'REFERENCES', 'INDEX', 'ALTER', 'CREATE TEMPORARY TABLES',
  'LOCK TABLES', 'EXECUTE', 'CREATE VIEW', 'SHOW VIEW', 'CREATE ROUTINE', 'ALTER ROUTINE', 'EVENT', 'TRIGGER',
];
const TABLE_LEVEL_ALL = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'REFERENCES', 'INDEX', 'ALTER', 'CREATE VIEW', 'SHOW VIEW', 'TRIGGER'];

/** The admin's grants, indexed by level. */
class Holdings {
  constructor(private readonly grants: ParsedGrant[]) {}

  /** The grants of the admin covering a target: global, the database, the object itself. */
  private covering(g: ParsedGrant): ParsedGrant[] {
    return this.grants.filter(
      (h) => (h.db === '*' && h.obj === '*') || (g.db !== '*' && h.db === g.db && (h.obj === '*' || (h.obj === g.obj && h.objectType === g.objectType))),
    );
  }

  /** Privileges of `g` the admin cannot grant (lacking the privilege or GRANT OPTION at a covering level). */
  missing(g: ParsedGrant): string[] {
    const cover = this.covering(g);
    const hasOption = cover.some((h) => h.grantOption);
    const holds = (p: string) => cover.some((h) => h.privileges.includes(p) || (h.privileges.includes('ALL PRIVILEGES') && p !== 'PROXY'));
    let wanted = g.privileges.filter((p) => p !== 'USAGE' && p !== 'GRANT OPTION');
    if (wanted.includes('ALL PRIVILEGES') && !(g.db === '*' && g.obj === '*')) {
      wanted = wanted.filter((p) => p !== 'ALL PRIVILEGES').concat(g.obj === '*' ? DB_LEVEL_ALL : TABLE_LEVEL_ALL);
    }
    const out = wanted.filter((p) => !holds(p));
    if (wanted.length && !hasOption) out.push('GRANT OPTION');
    return [...new Set(out)];
  }

  hasGlobal(p: string): boolean {
    return this.grants.some((h) => h.db === '*' && h.obj === '*' && (h.privileges.includes(p) || h.privileges.includes('ALL PRIVILEGES')));
  }

  hasGlobalGrantOption(): boolean {
    return this.grants.some((h) => h.db === '*' && h.obj === '*' && h.grantOption);
  }
}

const level = (g: ParsedGrant): string => (g.db === '*' ? '*.*' : `\`${g.db}\`.${g.obj === '*' ? '*' : `\`${g.obj}\``}`);

async function adminPrivileges(admin: MysqlConnection, input: AdminPrivilegesInput): Promise<Check[]> {
  const checks: Check[] = [];
  const { server } = admin;
  const name = `${server.flavor === 'mariadb' ? 'MariaDB' : 'MySQL'} ${server.numbers.join('.')}`;
  const supported = server.flavor === 'mysql' ? atLeast(server, 5, 7, 6) : atLeast(server, 10, 2, 0);
  checks.push(
    supported
      ? pass('admin.server-version', 'The server version supports alternating users', `${name}.`)
      : fail('admin.server-version', 'The server version supports alternating users', `${name}: alternating users needs MySQL 5.7.6+ or MariaDB 10.2+.`, 'UNSUPPORTED',
          'Use the single-user strategy on this server, or upgrade it.'),
  );
  checks.push(await writerCheck(admin, 'admin.writer'));
  const currentUser = input.current.username;
  const alternateUser = input.alternateUser;

  // The server's own username limit.
  let limit: number | undefined;
  try {
    const r = await rows(admin, "SELECT CHARACTER_MAXIMUM_LENGTH AS len FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'user' AND COLUMN_NAME = 'User'");
    const n = Number(r[0]?.len);
    if (Number.isInteger(n) && n > 0) limit = n;
  } catch {
    // fall back to the version's limit
  }
  limit ??= server.flavor === 'mariadb' ? (atLeast(server, 10, 0, 0) ? 80 : 16) : atLeast(server, 5, 7, 8) ? 32 : 16;
  const length = [...alternateUser].length;
  checks.push(
    length <= limit
      ? pass('admin.name-limit', 'The server accepts the alternate user name', `"${alternateUser}": ${length} of at most ${limit} characters on this server.`)
      : fail('admin.name-limit', 'The server accepts the alternate user name', `"${alternateUser}" is ${length} characters; this server allows ${limit}.`, 'SECRET_FORMAT',
          'Use a shorter username for the alternating-users strategy.'),
  );

  // The admin's own privileges.
  let holdings: Holdings;
  let adminRoles: string[] = [];
  try {
    const mine: ParsedGrant[] = [];
    for (const r of await rows(admin, 'SHOW GRANTS')) {
      const line = parseGrantLine(text(Object.values(r)[0]));
      if (line.kind === 'privileges') mine.push(line.grant);
      else if (line.kind === 'role') adminRoles.push(...line.roles);
    }
    holdings = new Holdings(mine);
  } catch (err) {
    checks.push(fail('admin.privileges', 'The admin\'s own privileges can be read', `SHOW GRANTS failed: ${serverError(err)}.`, 'PRIVILEGE'));
    return checks;
  }
  adminRoles = [...new Set(adminRoles)];
  const viaRole = adminRoles.length ? ` (it also holds role(s) ${adminRoles.map((r) => `"${r}"`).join(', ')}, not expanded here)` : '';
  const gap = (id: string, title: string, detail: string, remedy: string): Check =>
    adminRoles.length ? warn(id, title, `${detail}${viaRole}; the role may cover it.`, remedy) : fail(id, title, detail, 'PRIVILEGE', remedy);

  const cu = holdings.hasGlobal('CREATE USER');
  const go = holdings.hasGlobalGrantOption();
  if (cu && go) {
    checks.push(pass('admin.create-user', 'The admin holds CREATE USER and GRANT OPTION', `"${input.adminUser}" holds both globally.`));
  } else {
    const lacks = [cu ? '' : 'CREATE USER', go ? '' : 'GRANT OPTION (global)'].filter(Boolean).join(' and ');
    checks.push(gap('admin.create-user', 'The admin holds CREATE USER and GRANT OPTION', `"${input.adminUser}" lacks ${lacks}`,
      `GRANT CREATE USER ON *.* TO <admin> WITH GRANT OPTION, or use the RDS master user as the admin.`));
  }

  // The current user's accounts and grants, as the engine will read them.
  let hosts: string[];
  try {
    hosts = (await rows(admin, 'SELECT Host AS host FROM mysql.user WHERE User = ? ORDER BY Host', [currentUser])).map((r) => text(r.host));
  } catch (err) {
    checks.push(fail('admin.read-accounts', 'The admin can read mysql.user', `Reading the accounts of "${currentUser}" failed: ${serverError(err)}.`, 'PRIVILEGE',
      'GRANT SELECT ON mysql.* TO <admin> (the RDS master user has it).'));
    return checks;
  }
  if (!hosts.length) {
    checks.push(fail('admin.read-accounts', 'The admin can read mysql.user', `mysql.user has no account for "${currentUser}".`, 'STATE', 'Check the username in AWSCURRENT.'));
    return checks;
  }
  checks.push(pass('admin.read-accounts', 'The admin can read mysql.user', `"${currentUser}" has ${hosts.length} account(s): ${hosts.map((h) => `@"${h}"`).join(', ')}.`));

  const missing: string[] = [];
  const roleGrants: string[] = [];
  let count = 0;
  for (const host of hosts) {
    let lines: Row[];
    try {
      lines = await rows(admin, 'SHOW GRANTS FOR ?@?', [currentUser, host]);
    } catch (err) {
      checks.push(fail('admin.copy-grants', 'The admin may copy the current user\'s grants', `SHOW GRANTS FOR "${currentUser}"@"${host}" failed: ${serverError(err)}.`, 'PRIVILEGE',
        'GRANT SELECT ON mysql.* TO <admin>.'));
      return checks;
    }
    for (const r of lines) {
      const line = parseGrantLine(text(Object.values(r)[0]));
      if (line.kind === 'role') roleGrants.push(...line.roles);
      if (line.kind !== 'privileges') continue;
      count++;
      const lack = holdings.missing(line.grant);
      if (lack.length) missing.push(`${lack.join(', ')} on ${level(line.grant)}`);
    }
  }
  const copyTitle = 'The admin may copy the current user\'s grants';
  if (missing.length) {
    checks.push(gap('admin.copy-grants', copyTitle, `"${input.adminUser}" cannot grant: ${[...new Set(missing)].join('; ')}`,
      'Grant the admin each privilege WITH GRANT OPTION at that level (or above), or give the alternate user those grants yourself.'));
  } else {
    checks.push(pass('admin.copy-grants', copyTitle, `${count} grant statement(s) of "${currentUser}", all within what "${input.adminUser}" may grant.`));
  }
  if (roleGrants.length) {
    checks.push(skip('admin.copy-roles', 'Role grants of the current user', `"${currentUser}" holds role(s) ${[...new Set(roleGrants)].map((r) => `"${r}"`).join(', ')}; whether the admin may grant them is not checked here.`));
  }
  return checks;
}

export const mysqlPreflight: PreflightHooks<MysqlConnection> = { ownPassword, adminPrivileges };
