/**
 * Read-only preflight checks for MongoDB / Amazon DocumentDB (src/ops/hooks.ts): connectionStatus
 * (with showPrivileges where the server takes it) and usersInfo only, on AWSCURRENT's connection
 * (single user) or the admin's (alternating users). They mirror what the engine will send:
 *
 * - single user: `updateUser: <self>, pwd` needs the changeOwnPassword action on the user's
 *   database (or changePassword there, which userAdmin/dbOwner/userAdminAnyDatabase/root give);
 * - alternating users: `createUser` (or, for an existing alternate, `updateUser` with pwd and
 *   roles: changePassword, grantRole and revokeRole) with the current user's roles, which needs
 *   grantRole on every role's database; with the customData marker, changeCustomData; usersInfo of
 *   other users needs viewUser.
 *
 * Where connectionStatus does not list privileges (DocumentDB refuses showPrivileges, or answers
 * without them), the built-in roles decide: root / userAdminAnyDatabase in admin, userAdmin or
 * dbOwner in a database; a custom role cannot be judged from its name and yields a warning.
 */
import type { Document } from 'mongodb';
import { type AdminPrivilegesInput, type Check, fail, type OwnPasswordInput, pass, type PreflightHooks, warn } from '../../src/db';
import type { MongoConnection } from './engine';
import { authDatabaseOf, markerModeFor } from './settings';

interface Privilege {
  resource: { db?: string; collection?: string; anyResource?: boolean; cluster?: boolean };
  actions: string[];
}
interface RoleRef {
  role: string;
  db: string;
}
interface Status {
  roles: RoleRef[];
  /** undefined: the server did not list privileges. */
  privileges?: Privilege[];
}

const ANY_DB_ADMIN = ['root', 'userAdminAnyDatabase'];
const DB_ADMIN = ['userAdmin', 'dbOwner'];
/** Built-in roles that hold no user-administration action (MongoDB's and DocumentDB's references; restore and backup excluded). */
const NO_USER_ADMIN = new Set(['read', 'readWrite', 'dbAdmin', 'enableSharding', 'readAnyDatabase', 'readWriteAnyDatabase', 'dbAdminAnyDatabase', 'clusterAdmin', 'clusterManager', 'clusterMonitor', 'hostManager']);

async function status(conn: MongoConnection): Promise<Status> {
  let reply: Document;
  try {
    reply = await conn.client.db(conn.authDb).command({ connectionStatus: 1, showPrivileges: true });
  } catch {
    // DocumentDB (and older servers) may refuse the argument: the roles are still listed without it.
    reply = await conn.client.db(conn.authDb).command({ connectionStatus: 1 });
  }
  const info = (reply.authInfo ?? {}) as { authenticatedUserRoles?: unknown; authenticatedUserPrivileges?: unknown };
  const roles = Array.isArray(info.authenticatedUserRoles)
    ? (info.authenticatedUserRoles as RoleRef[]).filter((r) => typeof r?.role === 'string' && typeof r.db === 'string').map((r) => ({ role: r.role, db: r.db }))
    : [];
  const privileges = Array.isArray(info.authenticatedUserPrivileges) ? (info.authenticatedUserPrivileges as Privilege[]) : undefined;
  return { roles, privileges };
}

/** Whether the session holds `action` on database `db`: true, false, or undefined (cannot tell). */
function holds(s: Status, action: string, db: string): boolean | undefined {
  if (s.privileges) {
    return s.privileges.some((p) => Array.isArray(p.actions) && p.actions.includes(action) &&
      (p.resource?.anyResource === true || ((p.resource?.db === db || p.resource?.db === '') && p.resource?.collection === '')));
  }
  if (s.roles.some((r) => (r.db === 'admin' && ANY_DB_ADMIN.includes(r.role)) || (r.db === db && DB_ADMIN.includes(r.role)))) return true;
  // Only built-in roles without user administration (and no custom role): surely not.
  if (s.roles.every((r) => NO_USER_ADMIN.has(r.role) || (DB_ADMIN.includes(r.role) && r.db !== db))) return false;
  return undefined;
}

const how = (s: Status) => (s.privileges ? 'connectionStatus lists the session\'s privileges' : `connectionStatus lists no privileges here; judged from the roles ${s.roles.map((r) => `${r.role}@${r.db}`).join(', ') || '(none)'}`);

async function ownPassword(conn: MongoConnection, input: OwnPasswordInput): Promise<Check[]> {
  const user = input.current.username;
  const db = conn.authDb;
  const s = await status(conn);
  const title = 'The user may change its own password (changeOwnPassword)';
  const can = holds(s, 'changeOwnPassword', db) || holds(s, 'changePassword', db);
  if (can) return [pass('single.own-password', title, `"${user}" may run updateUser on itself in "${db}" (${how(s)}).`)];
  const remedy = `Create a role with the changeOwnPassword (and changeOwnCustomData) actions on database "${db}" and grant it to "${user}" (see README), or use the alternating-users strategy.`;
  if (can === undefined || !s.privileges) {
    return [warn('single.own-password', title, `Cannot tell whether "${user}" holds changeOwnPassword: ${how(s)}, none of which is a user-administration role (DocumentDB may let users change their own password; setSecret will tell).`, remedy)];
  }
  return [fail('single.own-password', title, `"${user}" holds neither changeOwnPassword nor changePassword on "${db}" (${how(s)}).`, 'PRIVILEGE', remedy)];
}

async function adminPrivileges(admin: MongoConnection, input: AdminPrivilegesInput): Promise<Check[]> {
  const checks: Check[] = [];
  const db = authDatabaseOf(input.current);
  const cur = input.current.username;
  const alt = input.alternateUser;
  const s = await status(admin);
  const need = (action: string, on: string) => holds(s, action, on);
  const unknown: string[] = [];
  const missing: string[] = [];
  const require = (action: string, on: string) => {
    const r = need(action, on);
    if (r === false) missing.push(`${action} on "${on}"`);
    else if (r === undefined) unknown.push(`${action} on "${on}"`);
  };
  // What the current user holds, and whether the alternate exists (the admin's viewUser).
  require('viewUser', db);
  let roles: RoleRef[] = [];
  let altExists = false;
  const lookup = async (user: string) => {
    const reply = await admin.client.db(db).command({ usersInfo: { user, db } });
    return ((Array.isArray(reply.users) ? reply.users : []) as Array<{ user?: string; roles?: RoleRef[] }>).find((u) => u.user === user);
  };
  try {
    roles = ((await lookup(cur))?.roles ?? []).map((r) => ({ role: r.role, db: r.db }));
    altExists = (await lookup(alt)) !== undefined;
  } catch {
    // Reported as missing viewUser (the engine's own pair check names the server's error).
  }
  if (altExists) {
    require('changePassword', db);
    require('revokeRole', db);
  } else {
    require('createUser', db);
  }
  if (markerModeFor(input.env, admin.host) === 'customData') require('changeCustomData', db);
  for (const on of [...new Set(roles.map((r) => r.db))]) require('grantRole', on);

  const title = `The admin may ${altExists ? 'update' : 'create'} "${alt}" with the roles of "${cur}"`;
  const remedy = `Grant the admin userAdminAnyDatabase (or root) in admin, or userAdmin on "${db}" and on every database of the copied roles (${[...new Set(roles.map((r) => r.db))].join(', ') || 'none'}); on DocumentDB use the primary (root) user or a userAdminAnyDatabase user.`;
  if (missing.length) {
    checks.push(fail('admin.user-admin', title, `"${input.adminUser}" lacks ${missing.join(', ')} (${how(s)}).`, 'PRIVILEGE', remedy));
  } else if (unknown.length) {
    checks.push(warn('admin.user-admin', title, `Cannot tell whether "${input.adminUser}" holds ${unknown.join(', ')}: ${how(s)}, none of which is a user-administration role.`, remedy));
  } else {
    checks.push(pass('admin.user-admin', title, `Holds what ${altExists ? 'updateUser' : 'createUser'} needs, and grantRole for ${roles.length} role(s) (${how(s)}).`));
  }
  return checks;
}

export const mongoPreflight: PreflightHooks<MongoConnection> = { ownPassword, adminPrivileges };
