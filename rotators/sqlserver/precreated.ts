/**
 * SQL Server pre-created pairs (the secret names both users: `alternateUsername`). The admin
 * only sets the inactive user's password; nothing is created, mapped, granted or marked.
 *
 * Before anything changes: both users exist (SQL logins, or contained database users when the
 * current user is one), and the engine's pair proof (checkAlternateUser) passes without the
 * marker rule: the alternate is an enabled SQL login (or a contained user with a password) and
 * holds no server role, server permission, database role or database permission the current
 * user lacks. Then `ALTER LOGIN [alt] WITH PASSWORD = N'...'` (contained: `ALTER USER`),
 * quoted with the engine's quoteName / nLiteral.
 *
 * Minimal admin: ALTER ANY LOGIN and VIEW ANY DEFINITION on the server, VIEW DEFINITION in the
 * secret's database (contained users: ALTER ANY USER and VIEW DEFINITION in that database).
 */
import { type AlternateUserChange, type EngineContext } from '../../src/db';
import { PrivilegeError, RotationError, RotationStateError } from '../../src/api';
import { nLiteral, quoteName, type Row, SQL, type SqlServerConnectionLike } from './engine';

/** The engine internals this module reuses (passed by the engine's one-line wiring). */
export interface SqlServerPairInternals {
  checkAlternateUser(conn: SqlServerConnectionLike, change: AlternateUserChange, ctx: EngineContext): Promise<void>;
  run(conn: SqlServerConnectionLike, sql: string, label: string, params?: Record<string, string>): Promise<Row[]>;
}

export const PRECREATED_LOGIN_REMEDY =
  'For a pre-created pair of logins the admin needs ALTER ANY LOGIN and VIEW ANY DEFINITION on the server and VIEW DEFINITION in the secret\'s database (the RDS master user has them); ' +
  'a sysadmin login\'s password can only be reset with CONTROL SERVER.';
export const PRECREATED_CONTAINED_REMEDY = 'For a pre-created pair of contained users the admin needs ALTER ANY USER and VIEW DEFINITION in the secret\'s database (db_owner has them).';

export async function setPrecreatedPassword(conn: SqlServerConnectionLike, change: AlternateUserChange, ctx: EngineContext, x: SqlServerPairInternals): Promise<void> {
  const { log } = ctx;
  const { currentUser, alternateUser: alt } = change;
  const missing = (name: string, what: string) =>
    new RotationStateError(
      `Refusing to set the password of "${alt}" (the pre-created alternate of "${currentUser}"): ${what} "${name}" does not exist, or the admin cannot see it. A pre-created pair is never created by the rotation. Nothing was changed.`,
      `Create "${name}" with the same roles and permissions as the other user of the pair (and give the admin VIEW ANY DEFINITION), or fix "username"/"alternateUsername" in the secret.`,
    );
  const [template] = await x.run(conn, SQL.dbPrincipal, 'the database principal lookup', { name: currentUser });
  const contained = template !== undefined && Number(template.authenticationType) === 2;
  if (contained) {
    const [other] = await x.run(conn, SQL.dbPrincipal, 'the database principal lookup', { name: alt });
    if (!other) throw missing(alt, 'the contained database user');
  } else {
    for (const name of [currentUser, alt]) {
      const [login] = await x.run(conn, SQL.login, 'the login lookup', { name });
      if (!login) throw missing(name, 'the login');
      if (login.type !== 'S') {
        throw new RotationStateError(`The server principal "${name}" is not a SQL login (a Windows login or a server role); a pre-created pair is two SQL logins. Nothing was changed.`,
          'Fix "username"/"alternateUsername" in the secret.');
      }
    }
  }
  // The engine's pair proof, without the marker rule (change.precreated).
  await x.checkAlternateUser(conn, { ...change, precreated: true }, ctx);
  const kind = contained ? 'USER' : 'LOGIN';
  try {
    await x.run(conn, `ALTER ${kind} ${quoteName(alt)} WITH PASSWORD = ${nLiteral(change.newPassword, 'new password')}`, `ALTER ${kind} ${quoteName(alt)}`);
  } catch (err) {
    if (err instanceof RotationError && err.code === 'PRIVILEGE') {
      throw new PrivilegeError(err.remedy ? err.message.slice(0, -(err.remedy.length + 1)) : err.message, contained ? PRECREATED_CONTAINED_REMEDY : PRECREATED_LOGIN_REMEDY, err);
    }
    throw err;
  }
  log.info('set the password of the pre-created alternate user', { username: alt, principal: contained ? 'contained database user' : 'login' });
}
