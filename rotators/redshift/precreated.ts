/**
 * Redshift pre-created pairs (the secret names both users: `alternateUsername`). The admin only
 * sets the inactive user's password; nothing is created, granted or added to a group.
 *
 * Before anything changes: both users are in pg_user (so they exist and are logins), and the
 * alternate holds nothing the current user lacks: superuser (CREATEUSER), CREATEDB, a group
 * membership, a database / schema / table or view privilege (the queries the clone strategy
 * uses to copy privileges, asked the other way round), or ownership of a schema, table or view.
 * Then `ALTER USER <alt> PASSWORD '...'`, sent the way the engine sends a password (its
 * setOwnPassword, which names the user it is given; names and passwords quoted by the server's
 * quote_ident / quote_literal).
 *
 * Minimal admin: a superuser, or a user holding the ALTER USER system permission (Redshift
 * RBAC: GRANT ALTER USER TO ROLE ... / a role granted to the admin). A superuser's password can
 * only be changed by a superuser (such an alternate is refused anyway).
 */
import type { Client } from 'pg';
import { type AlternateUserChange, type DatabaseEngine, type EngineContext } from '../../src/db';
import { PrivilegeError, RotationError, RotationStateError } from '../../src/api';

/** The engine internals this module reuses (passed by the engine's one-line wiring). */
export interface RedshiftPairInternals {
  run(conn: Client, what: string, text: string, values?: unknown[], secrets?: string[]): Promise<Record<string, unknown>[]>;
  /** Group names `a` is in and `b` is not. */
  missingGroups(conn: Client, a: string, b: string): Promise<string[]>;
  /** Object privileges `a` has and `b` lacks. */
  missingPrivileges(conn: Client, a: string, b: string): Promise<{ databases: Map<string, string[]>; schemas: Map<string, string[]>; tables: Map<string, string[]> }>;
}

export const PRECREATED_ADMIN_REMEDY =
  'For a pre-created pair the admin must be a superuser or hold the ALTER USER system permission (Redshift RBAC: GRANT ALTER USER TO ROLE <role>, granted to the admin).';

export async function checkPrecreatedPair(conn: Client, change: AlternateUserChange, x: RedshiftPairInternals): Promise<void> {
  const { currentUser, alternateUser } = change;
  const rows = await x.run(conn, 'Looking up the two users of the pair', 'SELECT usename, usesuper, usecreatedb FROM pg_user WHERE usename IN ($1, $2)', [currentUser, alternateUser]);
  const refuse = `Refusing to set the password of "${alternateUser}" (the pre-created alternate of "${currentUser}")`;
  for (const name of [currentUser, alternateUser]) {
    if (!rows.some((r) => r.usename === name)) {
      throw new RotationStateError(
        `${refuse}: the user "${name}" does not exist (pg_user has no login of that name). A pre-created pair is never created by the rotation. Nothing was changed.`,
        `Create "${name}" with the same privileges as the other user of the pair, or fix "username"/"alternateUsername" in the secret.`,
      );
    }
  }
  const cur = rows.find((r) => r.usename === currentUser)!;
  const alt = rows.find((r) => r.usename === alternateUser)!;
  const reasons: string[] = [];
  if (alt.usesuper === true && cur.usesuper !== true) reasons.push('superuser (CREATEUSER)');
  if (alt.usecreatedb === true && cur.usecreatedb !== true) reasons.push('CREATEDB');
  for (const g of await x.missingGroups(conn, alternateUser, currentUser)) reasons.push(`membership of group ${g}`);
  const extra = await x.missingPrivileges(conn, alternateUser, currentUser);
  for (const [kind, map] of [['database', extra.databases], ['schema', extra.schemas], ['table/view', extra.tables]] as const) {
    for (const [p, names] of map) if (names.length) reasons.push(`${p} on ${kind} ${names.slice(0, 5).join(', ')}${names.length > 5 ? `, ... (${names.length})` : ''}`);
  }
  const owned = await x.run(conn, 'Listing what the alternate user owns',
    `SELECT kind || ' ' || name AS object FROM (
       SELECT 'schema' AS kind, quote_ident(n.nspname) AS name FROM pg_namespace n JOIN pg_user u ON u.usesysid = n.nspowner WHERE u.usename = $1
       UNION ALL SELECT 'table', quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables WHERE tableowner = $1
       UNION ALL SELECT 'view', quote_ident(schemaname) || '.' || quote_ident(viewname) FROM pg_views WHERE viewowner = $1
     ) o ORDER BY 1 LIMIT 20`, [alternateUser]);
  for (const o of owned) reasons.push(`ownership of ${String(o.object)}`);
  if (reasons.length > 0) {
    throw new PrivilegeError(
      `${refuse}: it holds what "${currentUser}" does not: ${reasons.join('; ')}. Its password must not be handed to the readers of this secret. Nothing was changed.`,
      `If "${alternateUser}" really is "${currentUser}"'s pair, give both users the same privileges (e.g. through one group), then rotate again; otherwise fix the secret.`,
    );
  }
}

export async function setPrecreatedPassword(engine: DatabaseEngine<Client>, conn: Client, change: AlternateUserChange, ctx: EngineContext, x: RedshiftPairInternals): Promise<void> {
  await checkPrecreatedPair(conn, change, x);
  try {
    // setOwnPassword runs ALTER USER <the user it is given> PASSWORD ...: here, on the admin connection, the alternate user.
    await engine.setOwnPassword(conn, { username: change.alternateUser, oldPassword: '', newPassword: change.newPassword }, ctx);
  } catch (err) {
    if (err instanceof RotationError && err.code === 'PRIVILEGE') {
      throw new PrivilegeError(`The admin user may not set the password of "${change.alternateUser}": ${err.remedy ? err.message.slice(0, -(err.remedy.length + 1)) : err.message}`, PRECREATED_ADMIN_REMEDY, err);
    }
    throw err;
  }
  ctx.log.info('set the password of the pre-created alternate user', { username: change.alternateUser });
}
