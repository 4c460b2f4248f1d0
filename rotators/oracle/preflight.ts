/**
 * Read-only preflight checks for Oracle / RDS for Oracle (src/ops/hooks.ts): dictionary and
 * session views only (USER_USERS, USER_PASSWORD_LIMITS, SESSION_PRIVS, SESSION_ROLES,
 * USER_SYS_PRIVS, ROLE_SYS_PRIVS, USER_ROLE_PRIVS, USER_TAB_PRIVS, DBA_*_PRIVS), on AWSCURRENT's
 * connection (single user) or the admin's (alternating users). They mirror what the engine sends:
 *
 * - single user: ALTER USER <self> IDENTIFIED BY ... REPLACE <old> needs no privilege; a profile
 *   with a PASSWORD_VERIFY_FUNCTION needs REPLACE (so the old password must be quotable), and the
 *   profile's PASSWORD_REUSE_MAX / PASSWORD_REUSE_TIME / FAILED_LOGIN_ATTEMPTS are reported;
 * - alternating users: CREATE USER (ALTER USER for an existing alternate); SELECT_CATALOG_ROLE to
 *   read the current user's grants with DBMS_METADATA; every role it holds needs GRANT ANY ROLE or
 *   the role WITH ADMIN OPTION; every system privilege GRANT ANY PRIVILEGE or the privilege WITH
 *   ADMIN OPTION (directly or through a role such as DBA); every object privilege the grant option,
 *   ownership, or GRANT ANY OBJECT PRIVILEGE (never for SYS objects: on RDS those go through
 *   rdsadmin.rdsadmin_util.grant_sys_object, which needs them grantable or through
 *   SELECT_CATALOG_ROLE / EXECUTE_CATALOG_ROLE held WITH ADMIN OPTION).
 */
import { type AdminPrivilegesInput, type Check, fail, type OwnPasswordInput, pass, type PreflightHooks, warn } from '../../src/db';
import type { OracleConnectionLike } from './engine';
import { oracleUserName, passwordProblem, RDS_DETECT_SQL } from './names';

const OUT_FORMAT_ARRAY = 4001;

export const PREFLIGHT_SQL = {
  whoami: 'SELECT USER FROM DUAL',
  accountStatus: 'SELECT account_status FROM user_users',
  passwordLimits: 'SELECT resource_name, limit FROM user_password_limits',
  sessionPrivs: 'SELECT privilege FROM session_privs',
  sessionRoles: 'SELECT role FROM session_roles',
  /** System privileges the session may grant: held WITH ADMIN OPTION directly or through an enabled role. */
  adminSysPrivs: "SELECT privilege FROM user_sys_privs WHERE admin_option = 'YES' UNION SELECT privilege FROM role_sys_privs WHERE admin_option = 'YES'",
  adminRoles: "SELECT granted_role FROM user_role_privs WHERE admin_option = 'YES'",
  grantableObjects: "SELECT owner, table_name, privilege FROM user_tab_privs WHERE grantable = 'YES' AND grantee = USER",
  sysPrivsOf: 'SELECT privilege, admin_option FROM dba_sys_privs WHERE grantee = :u',
  rolesOf: 'SELECT granted_role, admin_option FROM dba_role_privs WHERE grantee = :u',
  tabPrivsOf: 'SELECT owner, table_name, privilege, grantable FROM dba_tab_privs WHERE grantee = :u',
  userExists: 'SELECT username, account_status, USER FROM dba_users WHERE username = :u',
} as const;

async function rows(conn: OracleConnectionLike, sql: string, binds: Record<string, string> = {}): Promise<unknown[][]> {
  return (await conn.execute(sql, binds, { outFormat: OUT_FORMAT_ARRAY })).rows ?? [];
}
const col = (r: unknown[][], i = 0) => r.map((x) => String(x[i]));

async function ownPassword(conn: OracleConnectionLike, input: OwnPasswordInput): Promise<Check[]> {
  const user = oracleUserName(input.current.username, 'AWSCURRENT secret');
  const checks: Check[] = [];
  const status = col(await rows(conn, PREFLIGHT_SQL.accountStatus))[0] ?? '';
  const limits = new Map((await rows(conn, PREFLIGHT_SQL.passwordLimits)).map((r) => [String(r[0]), String(r[1])]));
  const verify = limits.get('PASSWORD_VERIFY_FUNCTION');
  const hasVerify = verify !== undefined && verify !== 'NULL' && verify !== 'DEFAULT' && verify !== '';
  const title = 'The user may change its own password (ALTER USER ... REPLACE)';
  if (hasVerify && passwordProblem(input.current.password) !== undefined) {
    checks.push(fail('single.own-password', title, `The profile of "${user}" has PASSWORD_VERIFY_FUNCTION ${verify}, which needs REPLACE <old password>, and AWSCURRENT's password cannot be quoted for REPLACE.`,
      'CONFIG', 'Set a password without a double quote for the user (and in AWSCURRENT), or use the alternating-users strategy.'));
  } else {
    checks.push(pass('single.own-password', title, `ALTER USER on oneself needs no privilege${hasVerify ? `; the profile's PASSWORD_VERIFY_FUNCTION ${verify} needs REPLACE <old password>, which is sent` : ''}.`));
  }
  if (/GRACE/.test(status)) {
    checks.push(warn('single.account-status', 'The account is open', `"${user}" is ${status}.`, 'The rotation\'s password change ends the grace period; nothing else is needed.'));
  }
  const reuseMax = limits.get('PASSWORD_REUSE_MAX');
  const reuseTime = limits.get('PASSWORD_REUSE_TIME');
  const failed = limits.get('FAILED_LOGIN_ATTEMPTS');
  const life = limits.get('PASSWORD_LIFE_TIME');
  checks.push(pass('single.profile', 'Password profile limits',
    `PASSWORD_REUSE_MAX ${reuseMax ?? '?'}, PASSWORD_REUSE_TIME ${reuseTime ?? '?'} (every rotation sets a new random password, so reuse rules do not bite); ` +
    `FAILED_LOGIN_ATTEMPTS ${failed ?? '?'} (a clean rotation causes no failed login); PASSWORD_LIFE_TIME ${life ?? '?'} days (rotate more often than that).`));
  return checks;
}

/** Who may give a SYS object privilege on RDS without holding it grantable (the catalog roles, held WITH ADMIN OPTION). */
function catalogRoleGives(adminRoles: Set<string>, privilege: string, table: string): boolean {
  if (adminRoles.has('SELECT_CATALOG_ROLE') && privilege === 'SELECT' && /^(DBA_|V_\$|GV_\$|ALL_)/.test(table)) return true;
  return adminRoles.has('EXECUTE_CATALOG_ROLE') && privilege === 'EXECUTE' && /^DBMS_/.test(table);
}

async function adminPrivileges(admin: OracleConnectionLike, input: AdminPrivilegesInput): Promise<Check[]> {
  const checks: Check[] = [];
  const from = oracleUserName(input.current.username, 'AWSCURRENT secret');
  const to = oracleUserName(input.alternateUser, 'AWSPENDING secret');
  const privs = new Set(col(await rows(admin, PREFLIGHT_SQL.sessionPrivs)));
  const sessionRoles = new Set(col(await rows(admin, PREFLIGHT_SQL.sessionRoles)));
  const found = await rows(admin, PREFLIGHT_SQL.userExists, { u: to });
  const me = col(await rows(admin, PREFLIGHT_SQL.whoami))[0] ?? '';
  const exists = found.length > 0;

  const need = exists ? 'ALTER USER' : 'CREATE USER';
  const createTitle = `The admin may ${exists ? 'alter' : 'create'} ${JSON.stringify(to)}`;
  checks.push(privs.has(need)
    ? pass('admin.create-user', createTitle, `The session holds ${need}.`)
    : fail('admin.create-user', createTitle, `"${me}" lacks ${need}.`, 'PRIVILEGE', `GRANT ${need} TO "${me}" (the RDS master holds it through DBA), or use the master user as the admin.`));

  const readTitle = 'The admin may read the current user\'s grants (DBMS_METADATA)';
  if (!sessionRoles.has('SELECT_CATALOG_ROLE')) {
    checks.push(fail('admin.read-grants', readTitle, `"${me}" lacks SELECT_CATALOG_ROLE: DBMS_METADATA.GET_GRANTED_DDL would show none of "${from}"'s grants, and the alternate user would get none.`,
      'PRIVILEGE', `GRANT SELECT_CATALOG_ROLE TO "${me}".`));
    return checks;
  }
  checks.push(pass('admin.read-grants', readTitle, 'The session has SELECT_CATALOG_ROLE.'));

  const adminSys = new Set(col(await rows(admin, PREFLIGHT_SQL.adminSysPrivs)));
  const adminRoles = new Set(col(await rows(admin, PREFLIGHT_SQL.adminRoles)));
  const grantable = new Set((await rows(admin, PREFLIGHT_SQL.grantableObjects)).map((r) => `${r[2]} on ${r[0]}.${r[1]}`));
  const rds = Number((await rows(admin, RDS_DETECT_SQL))[0]?.[0]) > 0;
  const missing: string[] = [];
  let total = 0;
  for (const role of col(await rows(admin, PREFLIGHT_SQL.rolesOf, { u: from }))) {
    total++;
    if (!(privs.has('GRANT ANY ROLE') || adminRoles.has(role))) missing.push(`role "${role}" (needs GRANT ANY ROLE or the role WITH ADMIN OPTION)`);
  }
  for (const p of col(await rows(admin, PREFLIGHT_SQL.sysPrivsOf, { u: from }))) {
    total++;
    if (!(privs.has('GRANT ANY PRIVILEGE') || adminSys.has(p))) missing.push(`system privilege ${p} (needs GRANT ANY PRIVILEGE or it WITH ADMIN OPTION)`);
  }
  for (const [o, t, p] of await rows(admin, PREFLIGHT_SQL.tabPrivsOf, { u: from })) {
    total++;
    const owner = String(o);
    const key = `${String(p)} on ${owner}.${String(t)}`;
    if (owner === me || grantable.has(key)) continue;
    if (owner === 'SYS') {
      if (rds && catalogRoleGives(adminRoles, String(p), String(t))) continue;
      missing.push(`${key} (a SYS object: needs the grant option${rds ? ', given with rdsadmin.rdsadmin_util.grant_sys_object' : ''})`);
    } else if (!privs.has('GRANT ANY OBJECT PRIVILEGE')) {
      missing.push(`${key} (needs the grant option or GRANT ANY OBJECT PRIVILEGE)`);
    }
  }
  const copyTitle = `The admin may give ${JSON.stringify(to)} the roles and privileges of "${from}"`;
  checks.push(missing.length
    ? fail('admin.copy-grants', copyTitle, `"${me}" may not give ${missing.length} of ${total}: ${missing.join('; ')}.`, 'PRIVILEGE',
        `Grant each to "${me}" WITH ADMIN OPTION / WITH GRANT OPTION${rds ? ' (SYS objects: EXEC rdsadmin.rdsadmin_util.grant_sys_object(..., p_grant_option => true))' : ''}, grant them to ${JSON.stringify(to)} yourself, or remove them from "${from}".`)
    : pass('admin.copy-grants', copyTitle, `May give all ${total} role(s) and privilege(s).`));
  return checks;
}

export const oraclePreflight: PreflightHooks<OracleConnectionLike> = { ownPassword, adminPrivileges };
