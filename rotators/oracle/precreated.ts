/**
 * Oracle pre-created pairs (the secret names both users: `alternateUsername`). The admin only
 * sets the inactive user's password; nothing is created or granted.
 *
 * Before anything changes: both users are in DBA_USERS (the alternate is not a role), and the
 * engine's pair proof (checkAlternateUser: not the admin, not locked, no system privilege, role,
 * object privilege or ADMIN/GRANT OPTION the current user lacks) passes. Oracle has no marker,
 * so nothing differs from the clone strategy's proof. Then `ALTER USER "ALT" IDENTIFIED BY
 * "<password>"`, quoted with the engine's quoteIdentifier / quotePassword; ORA-28007 (the same
 * password again, on a retried step) is left to the verification login.
 *
 * Minimal admin: the ALTER USER system privilege and SELECT_CATALOG_ROLE (to read DBA_USERS,
 * DBA_ROLES, DBA_SYS_PRIVS, DBA_ROLE_PRIVS and DBA_TAB_PRIVS).
 */
import { type AlternateUserChange, type DatabaseEngine, type EngineContext } from '../../src/db';
import { PrivilegeError, RotationError, RotationStateError } from '../../src/api';
import { type OracleConnectionLike, type OracleResult, oracleErrorCode, oracleUserName, quoteIdentifier, quotePassword } from './engine';

/** The engine internals this module reuses (passed by the engine's one-line wiring). */
export interface OraclePairInternals {
  run(conn: OracleConnectionLike, sql: string, what: string, binds?: Record<string, string>): Promise<OracleResult>;
  /** The engine's classification of a driver error (the statement text is never in it). */
  statementError(err: unknown, what: string): Error;
}

export const PRECREATED_ADMIN_REMEDY =
  'For a pre-created pair the admin needs the ALTER USER system privilege and SELECT_CATALOG_ROLE (to compare the two users in the DBA_ views); the RDS master user has both.';

const LOOKUP = 'SELECT username, account_status, USER FROM dba_users WHERE username = :u';

export async function setPrecreatedPassword(engine: DatabaseEngine<OracleConnectionLike>, admin: OracleConnectionLike, change: AlternateUserChange, ctx: EngineContext, x: OraclePairInternals): Promise<void> {
  const { log } = ctx;
  const names = [oracleUserName(change.currentUser, 'AWSCURRENT secret'), oracleUserName(change.alternateUser, 'AWSPENDING secret')];
  const to = names[1];
  const user = quoteIdentifier(to);
  for (const name of names) {
    const found = await x.run(admin, LOOKUP, `look up ${quoteIdentifier(name)} in DBA_USERS`, { u: name });
    if ((found.rows?.length ?? 0) === 0) {
      throw new RotationStateError(
        `Refusing to set the password of ${user} (the pre-created alternate of ${quoteIdentifier(names[0])}): the user ${quoteIdentifier(name)} does not exist (or is a role). A pre-created pair is never created by the rotation. Nothing was changed.`,
        `Create ${quoteIdentifier(name)} with the same privileges as the other user of the pair, or fix "username"/"alternateUsername" in the secret.`,
      );
    }
  }
  // The engine's pair proof (Oracle has no marker: the same as for a clone).
  await engine.checkAlternateUser(admin, { ...change, precreated: true }, ctx);
  const what = `set the password of ${user}`;
  try {
    await admin.execute(`ALTER USER ${user} IDENTIFIED BY ${quotePassword(change.newPassword, 'AWSPENDING secret')}`, {}, { outFormat: 4001 });
  } catch (err) {
    // A retried setSecret sets the same password again; a profile that forbids reuse answers
    // ORA-28007. The password is then already in place, which the verification login proves.
    if (oracleErrorCode(err) === 'ORA-28007') {
      log.info('the alternate user already has this password (ORA-28007 on setting it again); the verification login will confirm', { username: to });
      return;
    }
    const e = x.statementError(err, what);
    if (e instanceof RotationError && e.code === 'PRIVILEGE') throw new PrivilegeError(e.remedy ? e.message.slice(0, -(e.remedy.length + 1)) : e.message, PRECREATED_ADMIN_REMEDY, err);
    throw e;
  }
  log.info('set the password of the pre-created alternate user', { username: to });
}
