/**
 * Read-only preflight checks for SQL Server / RDS for SQL Server (src/ops/hooks.ts): catalog
 * queries and permission functions only (HAS_PERMS_BY_NAME, IS_SRVROLEMEMBER, IS_MEMBER), run on
 * AWSCURRENT's connection (single user) or the admin's (alternating users). They mirror what the
 * engine's setOwnPassword / upsertAlternateUser will need:
 *
 * - single user: ALTER LOGIN (or, for a contained user, ALTER USER) ... OLD_PASSWORD needs no
 *   permission, only a password-authenticated principal; CHECK_POLICY / expiration hints;
 * - alternating users: ALTER ANY LOGIN (logins) and ALTER ANY USER in the database (the RDS master
 *   holds both: ALTER ANY LOGIN on the server, db_owner in its databases); copying the current
 *   user's database roles and permissions needs db_owner (or ALTER ANY ROLE / db_securityadmin
 *   for user-defined roles); its server roles need ALTER ANY SERVER ROLE (user-defined) or
 *   membership in the fixed role; its server permissions need them WITH GRANT OPTION. An existing
 *   sysadmin alternate login can only be reset by a sysadmin.
 */
import { type AdminPrivilegesInput, type Check, fail, type OwnPasswordInput, pass, type PreflightHooks, warn } from '../../src/db';
import { SQL } from './catalog';
import type { PermissionRow, Row, SqlServerConnectionLike } from './engine';

export const PREFLIGHT_SQL = {
  /** What the session may do, as the server computes it (roles and implied permissions included). */
  privileges:
    "SELECT IS_SRVROLEMEMBER('sysadmin') AS sysadmin, " +
    "HAS_PERMS_BY_NAME(NULL, NULL, 'ALTER ANY LOGIN') AS alterAnyLogin, " +
    "HAS_PERMS_BY_NAME(NULL, NULL, 'ALTER ANY SERVER ROLE') AS alterAnyServerRole, " +
    "HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'ALTER ANY USER') AS alterAnyUser, " +
    "HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'ALTER ANY ROLE') AS alterAnyRole, " +
    "HAS_PERMS_BY_NAME(DB_NAME(), 'DATABASE', 'CONTROL') AS controlDatabase, " +
    'DB_NAME() AS databaseName, SUSER_SNAME() AS loginName',
  /** The session's own SQL login: password policy flags and state. */
  ownLogin:
    'SELECT l.is_policy_checked AS policyChecked, l.is_expiration_checked AS expirationChecked, ' +
    "CAST(LOGINPROPERTY(l.name, 'IsMustChange') AS int) AS mustChange, CAST(LOGINPROPERTY(l.name, 'IsLocked') AS int) AS locked " +
    'FROM sys.sql_logins AS l WHERE l.sid = SUSER_SID()',
} as const;

const yes = (v: unknown) => Number(v) === 1;
const list = (xs: string[]) => xs.map((x) => `"${x}"`).join(', ');

async function ownPassword(conn: SqlServerConnectionLike, input: OwnPasswordInput): Promise<Check[]> {
  const user = input.current.username;
  const title = 'The user may change its own password (ALTER LOGIN/USER ... OLD_PASSWORD)';
  const [me] = await conn.query(SQL.dbPrincipal, { name: user });
  const contained = me !== undefined && Number(me.isSelf) === 1 && Number(me.authenticationType) === 2 && !me.loginName;
  if (contained) {
    return [pass('single.own-password', title, `"${user}" is a contained database user with a password: ALTER USER ... WITH PASSWORD ... OLD_PASSWORD needs no permission.`)];
  }
  const [login] = await conn.query(SQL.login, { name: user });
  if (!login || Number(login.isSelf) !== 1 || login.type !== 'S') {
    return [fail('single.own-password', title, `"${user}" is not the session's SQL login (a Windows login or another principal): it cannot change a password with ALTER LOGIN.`, 'CONFIG',
      'Rotate SQL Server authentication logins or contained database users only.')];
  }
  const checks = [pass('single.own-password', title, `"${user}" is a SQL login: ALTER LOGIN ... WITH PASSWORD ... OLD_PASSWORD needs no permission (the old password is AWSCURRENT's).`)];
  const [policy] = await conn.query(PREFLIGHT_SQL.ownLogin);
  if (policy) {
    if (yes(policy.locked)) {
      checks.push(fail('single.lockout', 'The login is not locked out', `"${user}" is locked out (CHECK_POLICY lockout).`, 'AUTH',
        `Unlock it as an admin: ALTER LOGIN [${user.replace(/]/g, ']]')}] WITH CHECK_POLICY = OFF; then ON again.`));
    }
    if (yes(policy.mustChange)) {
      checks.push(warn('single.must-change', 'The login has no pending MUST_CHANGE', `"${user}" must change its password at next login; the rotation's change satisfies it.`, 'None needed; the first rotation sets a new password.'));
    }
    checks.push(pass('single.policy', 'Password policy (CHECK_POLICY)', yes(policy.policyChecked)
      ? `CHECK_POLICY is ON for "${user}": the new password must meet the server's complexity and history policy (keep generated passwords complex), and failed logins count towards its lockout threshold (a clean rotation causes none).`
      : `CHECK_POLICY is OFF for "${user}".`));
  }
  return checks;
}

async function adminPrivileges(admin: SqlServerConnectionLike, input: AdminPrivilegesInput): Promise<Check[]> {
  const checks: Check[] = [];
  const { alternateUser: alt } = input;
  const cur = input.current.username;
  const [p] = await admin.query(PREFLIGHT_SQL.privileges);
  const sysadmin = yes(p?.sysadmin);
  const db = String(p?.databaseName ?? '');
  const adminName = String(p?.loginName ?? input.adminUser);
  const [curPrincipal] = await admin.query(SQL.dbPrincipal, { name: cur });
  const contained = curPrincipal !== undefined && Number(curPrincipal.authenticationType) === 2 && !curPrincipal.loginName;
  const createTitle = `The admin may create or alter "${alt}"`;

  let dbUser: string | undefined;
  if (contained) {
    dbUser = cur;
    checks.push(yes(p?.alterAnyUser)
      ? pass('admin.create-user', createTitle, `"${cur}" is a contained user of ${db}; the admin holds ALTER ANY USER there.`)
      : fail('admin.create-user', createTitle, `"${cur}" is a contained user of ${db}; "${adminName}" lacks ALTER ANY USER there.`, 'PRIVILEGE',
          `In ${db}: ALTER ROLE db_owner ADD MEMBER [<admin user>] (or db_accessadmin), or use the RDS master user as the admin.`));
  } else {
    const [login] = await admin.query(SQL.login, { name: cur });
    if (!login || login.type !== 'S') {
      checks.push(fail('admin.current-user', `"${cur}" is a SQL login the admin can see`,
        `"${cur}" is neither a SQL login visible to "${adminName}" nor a contained user of ${db}.`, yes(p?.alterAnyLogin) ? 'STATE' : 'PRIVILEGE',
        yes(p?.alterAnyLogin) ? 'Check the username in AWSCURRENT.' : 'GRANT ALTER ANY LOGIN TO [<admin login>] (the RDS master holds it).'));
      return checks;
    }
    const lacking: string[] = [];
    if (!yes(p?.alterAnyLogin)) lacking.push('ALTER ANY LOGIN (server)');
    const [u] = await admin.query(SQL.loginUser, { name: cur });
    dbUser = u ? String(u.name) : undefined;
    if (dbUser && !yes(p?.alterAnyUser)) lacking.push(`ALTER ANY USER (database ${db})`);
    const altRoles = (await admin.query(SQL.serverRoles, { name: alt })).map((r) => String(r.roleName));
    if (altRoles.includes('sysadmin') && !sysadmin) {
      checks.push(fail('admin.create-user', createTitle, `The existing login "${alt}" is sysadmin; only a sysadmin may reset its password.`, 'PRIVILEGE',
        `Drop or demote "${alt}" if it is not meant to be the alternate login.`));
    } else if (lacking.length) {
      checks.push(fail('admin.create-user', createTitle, `"${adminName}" lacks ${lacking.join(' and ')}.`, 'PRIVILEGE',
        `GRANT ALTER ANY LOGIN TO [<admin login>]; in ${db}: ALTER ROLE db_owner ADD MEMBER [<admin user>] (or db_accessadmin); or use the RDS master user as the admin.`));
    } else {
      checks.push(pass('admin.create-user', createTitle, `The admin holds ALTER ANY LOGIN${dbUser ? ` and ALTER ANY USER in ${db}` : ''}${sysadmin ? ' (sysadmin)' : ''}.`));
    }
  }

  // Database roles and permissions of the current user's database user.
  if (dbUser) {
    const roles = (await admin.query(SQL.dbRoles, { name: dbUser })).map((r) => String(r.roleName));
    const perms = (await admin.query(SQL.dbPermissions, { name: dbUser })) as unknown as PermissionRow[];
    const control = yes(p?.controlDatabase);
    const missing: string[] = [];
    for (const r of roles) {
      const fixed = r.startsWith('db_');
      if (!(control || (!fixed && yes(p?.alterAnyRole)))) missing.push(`role ${r}`);
    }
    const grants = perms.filter((x) => x.state !== 'D' && !(Number(x.class) === 0 && x.permissionName === 'CONNECT'));
    if (grants.length && !control) missing.push(`${grants.length} permission grant(s)`);
    const title = `The admin may give "${alt}" the database roles and permissions of "${cur}" in ${db}`;
    checks.push(missing.length
      ? fail('admin.grant-roles', title, `Without CONTROL on ${db} (db_owner), "${adminName}" may not copy: ${missing.join(', ')}.`, 'PRIVILEGE',
          `In ${db}: ALTER ROLE db_owner ADD MEMBER [<admin user>] (the RDS master is db_owner of its databases), or grant them to "${alt}" yourself.`)
      : pass('admin.grant-roles', title, `${roles.length} role(s) and ${grants.length} permission grant(s) to copy; the admin may copy them.`));
  }

  // Server roles and permissions of the login.
  if (!contained) {
    const serverRoles = (await admin.query(SQL.serverRoles, { name: cur })).map((r) => String(r.roleName)).filter((r) => r !== 'public');
    const adminRoles = new Set((await admin.query(SQL.serverRoles, { name: adminName })).map((r) => String(r.roleName)));
    const FIXED = ['sysadmin', 'securityadmin', 'serveradmin', 'processadmin', 'setupadmin', 'dbcreator', 'diskadmin', 'bulkadmin'];
    const missingRoles = serverRoles.filter((r) => !(sysadmin || (FIXED.includes(r) ? r !== 'sysadmin' && adminRoles.has(r) : yes(p?.alterAnyServerRole))));
    const serverPerms = ((await admin.query(SQL.serverPermissions, { name: cur })) as Row[] as unknown as PermissionRow[])
      .filter((x) => x.state !== 'D' && !(Number(x.class) === 100 && x.permissionName === 'CONNECT SQL'));
    const adminPerms = (await admin.query(SQL.serverPermissions, { name: adminName })) as Row[] as unknown as PermissionRow[];
    const withGrant = new Set(adminPerms.filter((x) => x.state === 'W' && Number(x.class) === 100).map((x) => x.permissionName));
    const missingPerms = sysadmin ? [] : serverPerms.filter((x) => !(Number(x.class) === 100 && withGrant.has(x.permissionName))).map((x) => x.permissionName);
    const title = `The admin may give "${alt}" the server roles and permissions of "${cur}"`;
    if (missingRoles.length || missingPerms.length) {
      checks.push(fail('admin.server-grants', title,
        `"${adminName}" may not give${missingRoles.length ? ` server role(s) ${list(missingRoles)}` : ''}${missingRoles.length && missingPerms.length ? ' and' : ''}${missingPerms.length ? ` server permission(s) ${list(missingPerms)} (needs them WITH GRANT OPTION)` : ''}.`,
        'PRIVILEGE', `Give "${alt}" these yourself as a sysadmin, or take them away from "${cur}"; the RDS master can give only what it holds WITH GRANT OPTION.`));
    } else {
      checks.push(pass('admin.server-grants', title, `${serverRoles.length} server role(s) and ${serverPerms.length} server permission(s) to copy.`));
    }
  }
  return checks;
}

export const sqlServerPreflight: PreflightHooks<SqlServerConnectionLike> = { ownPassword, adminPrivileges };
