/**
 * Read-only preflight checks for PostgreSQL / Aurora PostgreSQL (src/ops/hooks.ts): catalog
 * queries only, run on AWSCURRENT's connection (single user) or the admin's (alternating users).
 * They mirror what PostgresEngine.setOwnPassword / upsertAlternateUser will need:
 *
 * - a writer, not a read replica (pg_is_in_recovery);
 * - single user: with RDS's rds.restrict_password_commands on, membership in rds_password;
 * - alternating users: SUPERUSER or CREATEROLE; on PostgreSQL 16+, a CREATEROLE admin that is not
 *   rds_superuser needs ADMIN OPTION on the current user, on the existing alternate user and on
 *   every role it must copy (before 16 CREATEROLE grants any non-superuser role); an existing
 *   superuser alternate user can only be changed by a superuser; attributes the admin may not
 *   give (REPLICATION, BYPASSRLS, CREATEDB on 16+) are warnings, as the engine only warns.
 */
import type { Client } from 'pg';
import { type AdminPrivilegesInput, type Check, fail, type OwnPasswordInput, pass, type PreflightHooks, warn } from '../../src/db';

const WRITER_TITLE = 'The server accepts writes (not a read replica)';

async function writerCheck(conn: Client, id: string): Promise<Check> {
  const { rows } = await conn.query<{ recovery: boolean }>('SELECT pg_is_in_recovery() AS recovery');
  return rows[0]?.recovery
    ? fail(id, WRITER_TITLE, 'The server is in recovery (a read replica or reader instance): passwords cannot be changed there.', 'CONFIG',
        'Point the secret\'s host at the primary (for Aurora, the cluster\'s writer endpoint).')
    : pass(id, WRITER_TITLE, 'pg_is_in_recovery() is false.');
}

async function ownPassword(conn: Client, input: OwnPasswordInput): Promise<Check[]> {
  const checks = [await writerCheck(conn, 'single.writer')];
  const { rows } = await conn.query<{ has_role: boolean; member: boolean | null; restrict: string | null; superuser: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_password') AS has_role,
            (SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = 'rds_password') AS member,
            current_setting('rds.restrict_password_commands', true) AS restrict,
            (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser`,
  );
  const r = rows[0];
  const title = 'The user may change its own password (rds_password restriction)';
  const user = input.current.username;
  if (!r?.has_role) {
    checks.push(pass('single.rds-password', title, 'No rds_password role on this server: PostgreSQL lets every user change its own password.'));
  } else if (r.member || r.superuser) {
    checks.push(pass('single.rds-password', title, `"${user}" is a member of rds_password, so the restriction (if on) does not stop it.`));
  } else {
    const setting = (r.restrict ?? '').trim().toLowerCase();
    if (['on', '1', 'true', 'yes'].includes(setting)) {
      checks.push(
        fail('single.rds-password', title, `rds.restrict_password_commands is on and "${user}" is not a member of rds_password: ALTER ROLE ... PASSWORD will be refused.`,
          'PRIVILEGE', `As the master user: GRANT rds_password TO "${user}"; or use the alternating-users strategy with an admin secret (masterarn).`),
      );
    } else if (setting === '') {
      checks.push(
        warn('single.rds-password', title, `The rds_password role exists but rds.restrict_password_commands cannot be read; if it is on, "${user}" (not a member) cannot change its password.`,
          `Check the DB parameter group; if the restriction is on, GRANT rds_password TO "${user}".`),
      );
    } else {
      checks.push(pass('single.rds-password', title, `rds.restrict_password_commands is "${setting}": users may change their own passwords.`));
    }
  }
  return checks;
}

interface RoleRow {
  rolname: string;
  rolsuper: boolean;
  rolcreaterole: boolean;
  rolcreatedb: boolean;
  rolreplication: boolean;
  rolbypassrls: boolean;
}

async function adminPrivileges(admin: Client, input: AdminPrivilegesInput): Promise<Check[]> {
  const checks = [await writerCheck(admin, 'admin.writer')];
  const { currentUser, alternateUser } = { currentUser: input.current.username, alternateUser: input.alternateUser };

  const meta = await admin.query<{ version: string; rds_superuser: boolean | null }>(
    `SELECT current_setting('server_version_num') AS version,
            (SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = 'rds_superuser') AS rds_superuser`,
  );
  const version = Number(meta.rows[0].version);
  const rdsSuper = meta.rows[0].rds_superuser === true;
  const roles = await admin.query<RoleRow & { is_admin: boolean; admin_on_role: boolean }>(
    `SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls,
            r.rolname = current_user AS is_admin,
            pg_has_role(current_user, r.oid, 'MEMBER WITH ADMIN OPTION') AS admin_on_role
       FROM pg_roles r WHERE r.rolname = current_user OR r.rolname = ANY($1::text[])`,
    [[currentUser, alternateUser]],
  );
  const self = roles.rows.find((r) => r.is_admin)!;
  const cur = roles.rows.find((r) => r.rolname === currentUser);
  const alt = roles.rows.find((r) => r.rolname === alternateUser);
  const pg16 = version >= 160000;
  const unrestricted = self.rolsuper || rdsSuper; // RDS lets rds_superuser members grant without ADMIN OPTION
  const who = self.rolsuper ? 'superuser' : rdsSuper ? 'rds_superuser member' : self.rolcreaterole ? 'CREATEROLE' : 'no role-management attribute';
  const serverText = `PostgreSQL ${Math.floor(version / 10000)}`;

  const createTitle = `The admin may ${alt ? 'alter' : 'create'} "${alternateUser}"`;
  if (!cur) {
    checks.push(fail('admin.current-user', `"${currentUser}" is visible to the admin`, `The admin cannot see role "${currentUser}" in pg_roles.`, 'STATE', 'Check the username in AWSCURRENT.'));
    return checks;
  }
  if (!self.rolsuper && !self.rolcreaterole) {
    checks.push(fail('admin.create-role', createTitle, `The admin "${self.rolname}" has neither SUPERUSER nor CREATEROLE.`, 'PRIVILEGE',
      `ALTER ROLE "${self.rolname}" CREATEROLE (as a superuser), or use the RDS master user as the admin.`));
    return checks;
  }
  if (alt?.rolsuper && !self.rolsuper) {
    checks.push(fail('admin.create-role', createTitle, `"${alternateUser}" is a superuser; only a superuser can change it.`, 'PRIVILEGE',
      `Drop or demote "${alternateUser}" if it is not meant to be the alternate user, or use a superuser admin.`));
  } else if (alt && pg16 && !unrestricted && !alt.admin_on_role) {
    checks.push(fail('admin.create-role', createTitle, `On ${serverText} a CREATEROLE admin may alter only roles it holds ADMIN OPTION on; "${self.rolname}" has none on "${alternateUser}".`,
      'PRIVILEGE', `GRANT "${alternateUser}" TO "${self.rolname}" WITH ADMIN OPTION (as a superuser or the role's creator).`));
  } else {
    checks.push(pass('admin.create-role', createTitle, `The admin is ${who}${alt ? `; "${alternateUser}" exists` : `; "${alternateUser}" does not exist yet and will be created`}.`));
  }

  // What has to be granted: membership in the current user, then every role it is a direct member of.
  const grants = await admin.query<{ role: string; rolsuper: boolean; can_grant: boolean; alt_member: boolean | null; circular: boolean | null }>(
    `SELECT r.rolname AS role, r.rolsuper,
            pg_has_role(current_user, r.oid, 'MEMBER WITH ADMIN OPTION') AS can_grant,
            (SELECT pg_has_role(a.oid, r.oid, 'MEMBER') FROM pg_roles a WHERE a.rolname = $2) AS alt_member,
            (SELECT pg_has_role(r.oid, a.oid, 'MEMBER') FROM pg_roles a WHERE a.rolname = $2) AS circular
       FROM pg_roles r
      WHERE r.rolname = $1
         OR r.oid IN (SELECT m.roleid FROM pg_auth_members m JOIN pg_roles c ON c.oid = m.member WHERE c.rolname = $1)
      ORDER BY r.rolname = $1 DESC, r.rolname`,
    [currentUser, alternateUser],
  );
  const missing: string[] = [];
  const needed: string[] = [];
  for (const g of grants.rows) {
    if (g.role === alternateUser || g.alt_member || g.circular) continue;
    needed.push(g.role);
    const allowed = self.rolsuper || (g.rolsuper ? false : pg16 ? unrestricted || g.can_grant : true);
    if (!allowed) missing.push(g.role);
  }
  const grantTitle = `The admin may grant "${alternateUser}" the roles of "${currentUser}"`;
  if (missing.length) {
    checks.push(
      fail('admin.grant-roles', grantTitle,
        `${pg16 ? `On ${serverText} a CREATEROLE admin needs ADMIN OPTION on each role it grants; ` : ''}"${self.rolname}" may not grant: ${missing.map((m) => `"${m}"`).join(', ')}.`,
        'PRIVILEGE', `For each: GRANT "<role>" TO "${self.rolname}" WITH ADMIN OPTION (as a superuser), or grant the role to "${alternateUser}" yourself.`),
    );
  } else {
    checks.push(pass('admin.grant-roles', grantTitle, needed.length ? `May grant ${needed.map((m) => `"${m}"`).join(', ')}.` : 'Nothing left to grant.'));
  }

  // Attributes: the engine copies them when it may and warns otherwise.
  const lacking: string[] = [];
  const attrs: Array<[keyof RoleRow, string]> = [['rolcreatedb', 'CREATEDB'], ['rolcreaterole', 'CREATEROLE'], ['rolreplication', 'REPLICATION'], ['rolbypassrls', 'BYPASSRLS']];
  for (const [col, kw] of attrs) {
    if (!cur[col] || alt?.[col] || self.rolsuper) continue;
    const mayGive = pg16 ? self[col] === true : kw === 'CREATEDB' || kw === 'CREATEROLE';
    if (!mayGive) lacking.push(kw);
  }
  if (lacking.length) {
    checks.push(warn('admin.attributes', 'The admin may copy the current user\'s role attributes',
      `"${currentUser}" has ${lacking.join(', ')}, which "${self.rolname}" may not give; "${alternateUser}" will lack ${lacking.length > 1 ? 'them' : 'it'}.`,
      `Give "${alternateUser}" ${lacking.join(', ')} as a superuser, or use a superuser admin.`));
  }
  if (cur.rolsuper) {
    checks.push(warn('admin.attributes.superuser', 'SUPERUSER is not copied', `"${currentUser}" is a superuser; "${alternateUser}" will not be.`, 'Rotate superusers with the single-user strategy.'));
  }
  return checks;
}

export const postgresPreflight: PreflightHooks<Client> = { ownPassword, adminPrivileges };
