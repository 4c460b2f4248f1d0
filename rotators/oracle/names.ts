/**
 * Oracle user-name and password rules and the RDS detection query, without the driver, shared by
 * the engine (engine.ts) and the preflight checks (preflight.ts).
 */
import { SecretFormatError } from '../../src/api';

/** Oracle's limit for a password (12.2+; older releases allow 30 bytes, the default generated length). */
export const MAX_PASSWORD_BYTES = 1024;

/** Why a password cannot be sent in `IDENTIFIED BY "..."`, or undefined if it can. Never includes the password. */
export function passwordProblem(password: string): string | undefined {
  if (password.length === 0) return 'is empty';
  if (password.includes('"')) return 'contains a double quote ("), which an Oracle quoted password cannot hold';
  if (password.includes('\u0000')) return 'contains a NUL character';
  const bytes = Buffer.byteLength(password, 'utf8');
  if (bytes > MAX_PASSWORD_BYTES) return `is ${bytes} bytes long; Oracle allows ${MAX_PASSWORD_BYTES}`;
  return undefined;
}

/**
 * The exact Oracle user name a secret's `username` designates (see the rule at the top of this
 * file): `"Exact Name"` -> `Exact Name`; anything else -> upper case.
 */
export function oracleUserName(username: string, where = 'secret'): string {
  const { name } = designated(username);
  if (name.length === 0 || name.includes('"') || name.includes('\u0000')) {
    throw new SecretFormatError(
      `The ${where}'s "username" field is not a usable Oracle user name: it is empty or contains a double quote (") or NUL ` +
        '(only a pair of surrounding double quotes is allowed, to give an exact, case-sensitive name).',
    );
  }
  return name;
}

/** `"Exact Name"` -> exact, quoted; anything else -> upper case (unchecked). */
export function designated(username: string): { quoted: boolean; name: string } {
  const quoted = username.length >= 2 && username.startsWith('"') && username.endsWith('"');
  return { quoted, name: quoted ? username.slice(1, -1) : username.toUpperCase() };
}

export const RDS_DETECT_SQL = "SELECT COUNT(*) FROM dba_objects WHERE owner = 'RDSADMIN' AND object_name = 'RDSADMIN_UTIL' AND object_type = 'PACKAGE'";
