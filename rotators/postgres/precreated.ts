/**
 * PostgreSQL pre-created pairs (the secret names both users: `alternateUsername`). The admin
 * only sets the inactive user's password; nothing is created, granted or copied.
 *
 * Before anything changes, on the admin connection (read-only catalog queries any user may run):
 * both roles exist and can log in (LOGIN, VALID UNTIL not passed), and the alternate role holds
 * nothing the current role lacks: no attribute (SUPERUSER, CREATEROLE, CREATEDB, REPLICATION,
 * BYPASSRLS), no membership or ADMIN OPTION, no object privilege on a table, sequence, schema,
 * database, function or language of this database, and owns no such object, that the current
 * role does not have (unless the current role already inherits the alternate role's privileges).
 * Then one statement: `ALTER ROLE <alternate> WITH PASSWORD ...`, sent the way the engine sends
 * a password (its setOwnPassword, which names the role it is given: a SCRAM verifier by default).
 *
 * Minimal admin: PostgreSQL 15 and older, CREATEROLE; 16 and newer, CREATEROLE plus ADMIN OPTION
 * on both roles (a CREATEROLE role has it on roles it created). With RDS's
 * rds.restrict_password_commands, also membership in rds_password.
 */
import type { Client } from 'pg';
import { type AlternateUserChange, type DatabaseEngine, type EngineContext } from '../../src/db';
import { ConnectError, type Logger, PrivilegeError, RotationError, RotationStateError } from '../../src/api';
import { describe as describeErr, pgErrorCode, scrub } from './pg-connect';

interface PairRole {
  oid: number;
  rolname: string;
  rolcanlogin: boolean;
  expired: boolean;
  rolsuper: boolean;
  rolcreaterole: boolean;
  rolcreatedb: boolean;
  rolreplication: boolean;
  rolbypassrls: boolean;
}

const ATTRIBUTES: Array<[keyof PairRole, string]> = [
  ['rolsuper', 'SUPERUSER'],
  ['rolcreaterole', 'CREATEROLE'],
  ['rolcreatedb', 'CREATEDB'],
  ['rolreplication', 'REPLICATION'],
  ['rolbypassrls', 'BYPASSRLS'],
];

/** The remedy for a refused ALTER ROLE ... PASSWORD by the admin, per server version. */
export function precreatedAdminRemedy(versionNum: number, alternateUser: string, currentUser: string): string {
  const roles = `${JSON.stringify(alternateUser)}, ${JSON.stringify(currentUser)}`;
  return versionNum >= 160000
    ? `On PostgreSQL 16+ the admin needs CREATEROLE and ADMIN OPTION on both roles of the pair (as a superuser or the roles' creator: GRANT ${roles} TO <admin> WITH ADMIN OPTION, INHERIT FALSE, SET FALSE). ` +
        'With rds.restrict_password_commands on RDS, the admin must also be a member of rds_password.'
    : 'The admin needs the CREATEROLE attribute (a superuser pair member can only be changed by a superuser). With rds.restrict_password_commands on RDS, it must also be a member of rds_password.';
}

async function query<R extends Record<string, unknown>>(admin: Client, what: string, sql: string, params: unknown[]): Promise<R[]> {
  try {
    return (await admin.query<R>(sql, params)).rows;
  } catch (err) {
    const code = pgErrorCode(err);
    const reason = scrub(describeErr(err), []);
    if (err instanceof RotationError) throw err;
    if (code === '42501') throw new PrivilegeError(`PostgreSQL refused to ${what}: ${reason} (SQLSTATE ${code}).`, 'The admin must be able to read pg_roles, pg_auth_members and the catalogs of this database.', err);
    if (code === '57014' || /timeout|timed out/i.test(reason)) {
      throw new ConnectError('NETWORK', `PostgreSQL did not ${what} in time: ${reason}${code ? ` (SQLSTATE ${code})` : ''}; the statement timed out (STATEMENT_TIMEOUT_MS).`, err);
    }
    // Unclassified (e.g. a concurrent catalog change): the framework runs the idempotent step again.
    const e = new Error(`PostgreSQL failed to ${what}: ${reason}${code ? ` (SQLSTATE ${code})` : ''}.`, { cause: err });
    e.name = 'PostgresError';
    throw e;
  }
}

/** Both roles exist and log in, and the alternate holds nothing the current role lacks. Read-only. */
export async function checkPrecreatedPair(admin: Client, change: AlternateUserChange, log: Logger): Promise<void> {
  const { currentUser, alternateUser } = change;
  const rows = await query<PairRole & Record<string, unknown>>(
    admin,
    'look up the two users of the pair',
    `SELECT oid::int AS oid, rolname, rolcanlogin, COALESCE(rolvaliduntil < now(), false) AS expired,
            rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls
       FROM pg_roles WHERE rolname = ANY($1::text[])`,
    [[currentUser, alternateUser]],
  );
  const refuse = `Refusing to set the password of "${alternateUser}" (the pre-created alternate of "${currentUser}")`;
  for (const name of [currentUser, alternateUser]) {
    const r = rows.find((x) => x.rolname === name);
    if (!r) {
      throw new RotationStateError(
        `${refuse}: the role "${name}" does not exist. A pre-created pair is never created by the rotation. Nothing was changed.`,
        `Create "${name}" (CREATE ROLE ... LOGIN, with the same privileges as the other user of the pair), or fix "username"/"alternateUsername" in the secret.`,
      );
    }
    if (!r.rolcanlogin || r.expired) {
      throw new RotationStateError(
        `${refuse}: the role "${name}" ${r.rolcanlogin ? 'has a VALID UNTIL date in the past' : 'is not a login (NOLOGIN, e.g. a group role)'}, so it is not a user of this pair. Nothing was changed.`,
        `If "${name}" is this pair's user, ${r.rolcanlogin ? 'clear its VALID UNTIL' : 'give it LOGIN'} and rotate again; otherwise fix the secret.`,
      );
    }
  }
  const cur = rows.find((x) => x.rolname === currentUser)!;
  const alt = rows.find((x) => x.rolname === alternateUser)!;
  const reasons: string[] = [];
  for (const [col, kw] of ATTRIBUTES) if (alt[col] === true && cur[col] !== true) reasons.push(kw);
  const [reach] = await query<{ inherits: boolean }>(admin, 'compare the two users', `SELECT pg_has_role($1::oid, $2::oid, 'USAGE') AS inherits`, [cur.oid, alt.oid]);
  if (!reach?.inherits) reasons.push(...(await extras(admin, cur.oid, alt.oid, currentUser)));
  if (reasons.length > 0) {
    throw new PrivilegeError(
      `${refuse}: it holds what "${currentUser}" does not: ${reasons.slice(0, 20).join('; ')}${reasons.length > 20 ? `; and ${reasons.length - 20} more` : ''}. ` +
        'Its password must not be handed to the readers of this secret. Nothing was changed.',
      `If "${alternateUser}" really is "${currentUser}"'s pair, give both users the same privileges (e.g. through one group role that owns the objects), then rotate again; otherwise fix the secret.`,
    );
  }
  log.info('both users of the pre-created pair exist, log in and hold the same capabilities', { username: alternateUser, template: currentUser });
}

/** Memberships, admin options, object privileges and owned objects of `alt` that `cur` lacks. */
async function extras(admin: Client, curOid: number, altOid: number, currentUser: string): Promise<string[]> {
  const reasons: string[] = [];
  const memberships = await query<{ role: string; admin: boolean; cur_member: boolean; cur_admin: boolean }>(
    admin,
    'list the alternate user\'s role memberships',
    `SELECT r.rolname AS role, bool_or(m.admin_option) AS admin, pg_has_role($1::oid, r.oid, 'MEMBER') AS cur_member,
            EXISTS (SELECT 1 FROM pg_auth_members x WHERE x.roleid = r.oid AND x.member = $1::oid AND x.admin_option) AS cur_admin
       FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
      WHERE m.member = $2::oid GROUP BY r.rolname, r.oid ORDER BY r.rolname`,
    [curOid, altOid],
  );
  for (const m of memberships) {
    if (m.role !== currentUser && !m.cur_member) reasons.push(`membership of role "${m.role}"`);
    else if (m.admin && (m.role === currentUser || !m.cur_admin)) reasons.push(`ADMIN OPTION on role "${m.role}"`);
  }
  const opt = (g: string) => `x.privilege_type || CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END${g}`;
  const grants = await query<{ object: string; privilege: string }>(
    admin,
    'compare the alternate user\'s object privileges',
    `SELECT object, privilege FROM (
       SELECT 'table ' || c.oid::regclass::text AS object, ${opt('')} AS privilege,
              CASE WHEN c.relkind = 'S' THEN has_sequence_privilege($1::oid, c.oid, ${opt('')})
                   ELSE has_table_privilege($1::oid, c.oid, ${opt('')}) END AS ok
         FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) x WHERE x.grantee = $2::oid
       UNION ALL
       SELECT 'schema ' || quote_ident(n.nspname), ${opt('')}, has_schema_privilege($1::oid, n.oid, ${opt('')})
         FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) x WHERE x.grantee = $2::oid
       UNION ALL
       SELECT 'database ' || quote_ident(d.datname), ${opt('')}, has_database_privilege($1::oid, d.oid, ${opt('')})
         FROM pg_database d CROSS JOIN LATERAL aclexplode(d.datacl) x WHERE x.grantee = $2::oid
       UNION ALL
       SELECT 'function ' || p.oid::regprocedure::text, ${opt('')}, has_function_privilege($1::oid, p.oid, ${opt('')})
         FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) x WHERE x.grantee = $2::oid
       UNION ALL
       SELECT 'language ' || quote_ident(l.lanname), ${opt('')}, has_language_privilege($1::oid, l.oid, ${opt('')})
         FROM pg_language l CROSS JOIN LATERAL aclexplode(l.lanacl) x WHERE x.grantee = $2::oid
     ) g WHERE NOT ok ORDER BY object, privilege LIMIT 50`,
    [curOid, altOid],
  );
  for (const g of grants) reasons.push(`${g.privilege} on ${g.object}`);
  const owned = await query<{ object: string }>(
    admin,
    'list the objects the alternate user owns',
    `SELECT object FROM (
       SELECT 'table ' || c.oid::regclass::text AS object FROM pg_class c WHERE c.relowner = $1::oid
       UNION ALL SELECT 'schema ' || quote_ident(n.nspname) FROM pg_namespace n WHERE n.nspowner = $1::oid
       UNION ALL SELECT 'database ' || quote_ident(d.datname) FROM pg_database d WHERE d.datdba = $1::oid
       UNION ALL SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p WHERE p.proowner = $1::oid
       UNION ALL SELECT 'type ' || t.oid::regtype::text FROM pg_type t WHERE t.typowner = $1::oid AND t.typrelid = 0 AND t.typelem = 0
     ) o ORDER BY object LIMIT 50`,
    [altOid],
  );
  for (const o of owned) reasons.push(`ownership of ${o.object}`);
  return reasons;
}

/** The engine member: check the pair, then set only the alternate user's password. */
export async function setPrecreatedPassword(engine: DatabaseEngine<Client>, admin: Client, change: AlternateUserChange, ctx: EngineContext): Promise<void> {
  const { log } = ctx;
  await checkPrecreatedPair(admin, change, log);
  try {
    // setOwnPassword runs ALTER ROLE <the role it is given> WITH PASSWORD ..., with the engine's
    // password encoding (PASSWORD_ENCRYPTION): here, on the admin connection, the alternate role.
    await engine.setOwnPassword(admin, { username: change.alternateUser, oldPassword: '', newPassword: change.newPassword }, ctx);
  } catch (err) {
    if (err instanceof RotationError && err.code === 'PRIVILEGE') {
      const [v] = await query<{ v: number }>(admin, 'read the server version', "SELECT current_setting('server_version_num')::int AS v", []).catch(() => [{ v: 0 }]);
      throw new PrivilegeError(
        `The admin user may not set the password of "${change.alternateUser}": ${err.remedy ? err.message.slice(0, -(err.remedy.length + 1)) : err.message}`,
        precreatedAdminRemedy(Number(v?.v ?? 0), change.alternateUser, change.currentUser),
        err,
      );
    }
    throw err;
  }
  log.info('set the password of the pre-created alternate user', { username: change.alternateUser });
}
