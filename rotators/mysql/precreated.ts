/**
 * MySQL / MariaDB / Aurora MySQL pre-created pairs (the secret names both users:
 * `alternateUsername`). The admin only sets the inactive user's password; nothing is created,
 * granted or copied.
 *
 * Before anything changes: both users have accounts (mysql.user), and every account of the
 * alternate user passes the engine's own pair proof (checkPair): a login (not a role, not
 * locked), on a host the current user also has, holding no privilege, role or grant option the
 * current user's account on that host lacks. The marker rule does not apply (a DBA created the
 * pair). Then `ALTER USER 'alt'@'host' IDENTIFIED [WITH <its plugin>] BY ...` for each of its
 * accounts, the password quoted by mysql2's escaping.
 *
 * Minimal admin: CREATE USER (global) and SELECT on the `mysql` schema (to read mysql.user and
 * SHOW GRANTS of the two users). MySQL 8.0.16+: also SYSTEM_USER if the pair's accounts have it.
 */
import { type AlternateUserChange } from '../../src/db';
import { type Logger, RotationStateError } from '../../src/api';
import type { MysqlConnection } from './engine';

/** The engine internals this module reuses (passed by the engine's one-line wiring). */
export interface MysqlPairInternals {
  checkPair(admin: MysqlConnection, change: AlternateUserChange, log: Logger, adopt: boolean): Promise<void>;
  accounts(conn: MysqlConnection, user: string): Promise<Array<{ host: string; plugin: string }>>;
  run(conn: MysqlConnection, sql: string, values: unknown[] | undefined, what: string, remedy?: string, tolerate?: number[]): Promise<unknown>;
  requireAlternatingSupport(server: MysqlConnection['server']): void;
}

const PASSWORD_PLUGINS = new Set(['mysql_native_password', 'caching_sha2_password', 'sha256_password']);
const ER_CREDENTIALS_CONTRADICT_TO_HISTORY = 3638;

export const PRECREATED_ADMIN_REMEDY =
  'For a pre-created pair the admin needs CREATE USER (to change another account\'s password) and SELECT on the mysql schema (to compare the two users); ' +
  'on MySQL 8.0.16+ also SYSTEM_USER if the pair\'s accounts have it. The RDS/Aurora master user has them.';

export async function setPrecreatedPassword(admin: MysqlConnection, change: AlternateUserChange, log: Logger, x: MysqlPairInternals): Promise<void> {
  const { currentUser, alternateUser, newPassword } = change;
  x.requireAlternatingSupport(admin.server);
  for (const user of [currentUser, alternateUser]) {
    if ((await x.accounts(admin, user)).length === 0) {
      throw new RotationStateError(
        `Refusing to set the password of "${alternateUser}" (the pre-created alternate of "${currentUser}"): the user "${user}" has no account on the server (mysql.user has no row for it). A pre-created pair is never created by the rotation. Nothing was changed.`,
        `Create "${user}" with the same privileges as the other user of the pair, or fix "username"/"alternateUsername" in the secret.`,
      );
    }
  }
  // The engine's pair proof, without the marker rule (change.precreated).
  await x.checkPair(admin, { ...change, precreated: true }, log, false);
  const targets = await x.accounts(admin, alternateUser);
  for (const t of targets) {
    const plugin = admin.server.flavor === 'mysql' && PASSWORD_PLUGINS.has(t.plugin) ? t.plugin : undefined;
    await x.run(admin, `ALTER USER ?@? IDENTIFIED ${plugin ? `WITH ${plugin} ` : ''}BY ?`, [alternateUser, t.host, newPassword],
      `setting the password of "${alternateUser}"@"${t.host}"`, PRECREATED_ADMIN_REMEDY, [ER_CREDENTIALS_CONTRADICT_TO_HISTORY]);
  }
  log.info('set the password of the pre-created alternate user', { username: alternateUser, accounts: targets.length });
}
