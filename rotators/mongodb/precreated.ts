/**
 * MongoDB / DocumentDB pre-created pairs (the secret names both users: `alternateUsername`). The
 * admin only sets the inactive user's password; nothing is created, and no role is granted.
 *
 * Before anything changes: the engine's pair proof (both users of the child's authentication
 * database, the admin is neither of them as the server identifies it, the alternate has a
 * password (SCRAM) login where the server lists mechanisms and no role the current user lacks),
 * without the marker rule; and the alternate user must exist. Then one command,
 * `updateUser: <alternate>, pwd: <new>` (no `roles`, no `customData`): BSON values, no quoting.
 *
 * Minimal admin: the changePassword and viewUser actions on the users' database (MongoDB: a
 * custom role, or the built-in userAdmin on that database, which can do more); DocumentDB has
 * no userAdmin: its built-in userAdminAnyDatabase (or the primary user).
 */
import type { Document } from 'mongodb';
import { type AlternateUserChange, type EngineContext } from '../../src/db';
import { RotationStateError } from '../../src/api';
import { authDatabaseOf, type MongoConnection } from './engine';

/** The engine internals this module reuses (passed by the engine's one-line wiring). */
export interface MongoPairInternals {
  /** The engine's pair proof; `alternate` is undefined when the alternate user does not exist. */
  provePair(admin: MongoConnection, change: AlternateUserChange, ctx: EngineContext): Promise<{ alternate?: unknown }>;
  runUserCommand(conn: MongoConnection, db: string, command: Document, what: string, privilegeRemedy: string): Promise<Document>;
}

export function precreatedAdminRemedy(db: string): string {
  return `For a pre-created pair the admin needs the changePassword and viewUser actions on database "${db}" (MongoDB: a custom role with them, or userAdmin on "${db}"; DocumentDB: userAdminAnyDatabase).`;
}

export async function setPrecreatedPassword(admin: MongoConnection, change: AlternateUserChange, ctx: EngineContext, x: MongoPairInternals): Promise<void> {
  const { log } = ctx;
  const db = authDatabaseOf(change.current);
  const { currentUser, alternateUser } = change;
  // The engine's pair proof, without the marker rule (change.precreated).
  const pair = await x.provePair(admin, { ...change, precreated: true }, ctx);
  if (!pair.alternate) {
    throw new RotationStateError(
      `Refusing to set the password of "${alternateUser}" (the pre-created alternate of "${currentUser}"): it does not exist in database "${db}". A pre-created pair is never created by the rotation. Nothing was changed.`,
      `Create "${alternateUser}" in "${db}" with the same roles as "${currentUser}", or fix "alternateUsername" (and "dbname"/"authSource") in the secret.`,
    );
  }
  await x.runUserCommand(admin, db, { updateUser: alternateUser, pwd: change.newPassword }, `set the password of "${alternateUser}"`, precreatedAdminRemedy(db));
  log.info('set the password of the pre-created alternate user', { username: alternateUser, authDb: db });
}
