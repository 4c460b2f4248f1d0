/**
 * PostgreSQL engine (secrets with engine `postgres` or `aurora-postgresql`), driver `pg`.
 *
 * Quoting. Identifiers go through the driver's `escapeIdentifier` (always double-quoted, `"`
 * doubled: the same rule as the server's quote_ident, without a round trip). `ALTER ROLE ...
 * PASSWORD` is a utility statement and cannot take bind parameters, so the password is sent as
 * a literal built by the driver's `escapeLiteral` (quotes and backslashes doubled, `E''` form
 * when a backslash is present, so it is correct whatever standard_conforming_strings says).
 * Values in ordinary queries are bind parameters.
 *
 * Password hashing. By default the new password never reaches the server in plaintext: the
 * engine computes the SCRAM-SHA-256 verifier itself (RFC 5802/7677, 4096 iterations, 16-byte
 * random salt, the format PostgreSQL stores) and sends that, so server logs (log_statement),
 * pg_stat_statements and pg_stat_activity can never show the password. PostgreSQL stores a
 * verifier given to ALTER ROLE as is. Set PASSWORD_ENCRYPTION=plaintext to send the password
 * and let the server hash it with its own `password_encryption` (needed for md5 on old
 * servers). Passwords with non-ASCII characters are always sent for server-side hashing
 * (PostgreSQL applies SASLprep to them, which this engine does not reimplement).
 *
 * Alternating users. The admin creates or updates the alternate user in one transaction: LOGIN
 * and the password; role attributes CREATEDB, CREATEROLE, REPLICATION, BYPASSRLS and the
 * connection limit copied from the current user (never SUPERUSER); membership in the current
 * user (so it inherits its privileges, as AWS's rotator does) unless that would be circular
 * (the way back, `user_clone` -> `user`); and every role the current user is a direct member
 * of that the alternate user does not already have (WITH ADMIN OPTION when the current user has
 * it). This runs on every rotation, so roles granted later reach both users; nothing is ever
 * revoked. Per-role settings (ALTER ROLE ... SET) and object ownership are not copied.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type { Client } from 'pg';
import type { DbSecret } from '../../src/db/secret';
import type { AlternateUserChange, ConnectOptions, DatabaseEngine, PasswordChange } from '../../src/db/engine';
import { ConfigError, ConnectError, PrivilegeError, SecretFormatError } from '../../src/errors';
import type { Logger } from '../../src/log';
import type { Env } from '../../src/password';
import { connectPg, describe, pgErrorCode, pgLoginFailure, scrub } from './pg-connect';

/** PostgreSQL's NAMEDATALEN is 64 bytes including the terminator. */
export const MAX_IDENTIFIER_BYTES = 63;

export const SCRAM_ITERATIONS = 4096;

export type PasswordEncryption = 'scram-sha-256' | 'plaintext';

export interface PostgresEngineOptions {
  /**
   * How a new password travels to the server. Default: PASSWORD_ENCRYPTION in the handler's
   * environment at the time of the change, else 'scram-sha-256'.
   */
  passwordEncryption?: PasswordEncryption;
  /** Where PASSWORD_ENCRYPTION is read instead of the handler's environment (tests). */
  env?: Env;
}

/** SQLSTATEs this engine treats specially. */
const INSUFFICIENT_PRIVILEGE = '42501';

export class PostgresEngine implements DatabaseEngine<Client> {
  readonly name = 'postgres';
  readonly engines = ['postgres', 'aurora-postgresql'] as const;
  readonly defaultPort = 5432;
  /** Pre-created pairs (`alternateUsername`): check both users, set only the alternate's password (precreated.ts). */
  readonly setAlternatePassword = (admin: Client, change: AlternateUserChange, log: Logger): Promise<void> => import('./precreated').then((m) => m.setPrecreatedPassword(this, admin, change, log));
  readonly defaultDatabase = 'postgres';
  /** In bytes: validateSecret counts UTF-8 bytes, which is what the server limits. */
  readonly maxUsernameLength = MAX_IDENTIFIER_BYTES;
  usernameLength(username: string): number {
    return Buffer.byteLength(username, 'utf8');
  }
  readonly passwordDefaults = { ExcludeCharacters: ':/@"\'\\' };

  constructor(private readonly options: PostgresEngineOptions = {}) {}

  async connect(secret: DbSecret, options: ConnectOptions): Promise<Client> {
    return connectPg(secret, options, { product: 'PostgreSQL', defaultPort: this.defaultPort, defaultDatabase: this.defaultDatabase, classify: classifyConnectError });
  }

  async close(conn: Client): Promise<void> {
    await conn.end();
  }

  async setOwnPassword(conn: Client, change: PasswordChange, log: Logger): Promise<void> {
    const password = this.passwordSql(conn, change.newPassword, change.env, log);
    try {
      await conn.query(`ALTER ROLE ${conn.escapeIdentifier(change.username)} WITH PASSWORD ${password.sql}`);
    } catch (err) {
      throw statementError(err, `change the password of "${change.username}"`, [change.newPassword, change.oldPassword, password.sql], {
        privilegeRemedy:
          'The user may not change its own password. On RDS with rds.restrict_password_commands, grant it the rds_password role, ' +
          'or use the alternating-users strategy with an admin secret (masterarn).',
      });
    }
    log.info('ALTER ROLE ... PASSWORD executed', { username: change.username, passwordEncryption: password.encryption });
  }

  async upsertAlternateUser(admin: Client, change: AlternateUserChange, log: Logger): Promise<void> {
    const { currentUser, alternateUser } = change;
    const alt = admin.escapeIdentifier(alternateUser);
    const password = this.passwordSql(admin, change.newPassword, change.env, log);
    const secrets = [change.newPassword, password.sql];
    const step = async (what: string, sql: string, params?: unknown[], privilegeRemedy?: string) => {
      try {
        return await admin.query(sql, params);
      } catch (err) {
        throw statementError(err, what, secrets, { privilegeRemedy });
      }
    };

    await step('begin a transaction', 'BEGIN');
    try {
      const exists = await step('look up the alternate user', 'SELECT 1 FROM pg_roles WHERE rolname = $1', [alternateUser]);
      const created = exists.rowCount === 0;
      await step(
        created ? `create role "${alternateUser}"` : `set the password of "${alternateUser}"`,
        `${created ? 'CREATE' : 'ALTER'} ROLE ${alt} WITH LOGIN PASSWORD ${password.sql}`,
        undefined,
        `The admin user needs the CREATEROLE attribute (or to be superuser / rds_superuser) to ${created ? 'create' : 'alter'} "${alternateUser}"` +
          (created ? '.' : '; a superuser alternate user can only be changed by a superuser.'),
      );
      const attributes = await this.copyAttributes(admin, currentUser, alternateUser, log);
      const granted = await this.copyMemberships(admin, currentUser, alternateUser, log);
      await step('commit', 'COMMIT');
      log.info(created ? 'created the alternate user' : 'updated the alternate user', {
        username: alternateUser,
        template: currentUser,
        attributesCopied: attributes,
        rolesGranted: granted,
        passwordEncryption: password.encryption,
      });
    } catch (err) {
      await admin.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  async check(conn: Client): Promise<void> {
    const { rows } = await conn.query<{ ok: number }>('SELECT 1 AS ok');
    if (rows[0]?.ok !== 1) throw new Error('The check query SELECT 1 returned an unexpected result.');
  }

  validateSecret(secret: DbSecret, label: string): void {
    const bytes = Buffer.byteLength(secret.username, 'utf8');
    if (bytes > MAX_IDENTIFIER_BYTES) {
      throw new SecretFormatError(
        `The ${label} secret's "username" field is ${bytes} bytes long in UTF-8; PostgreSQL role names are at most ${MAX_IDENTIFIER_BYTES} bytes.`,
        'Use a shorter username (for alternating users, leave room for the "_clone" suffix).',
      );
    }
    if (secret.username.includes('\u0000')) {
      throw new SecretFormatError(`The ${label} secret's "username" field contains a NUL character, which PostgreSQL does not allow.`);
    }
    if (secret.password.includes('\u0000')) {
      throw new SecretFormatError(`The ${label} secret's "password" field contains a NUL character, which PostgreSQL does not allow.`);
    }
  }

  validatePassword(password: string): void {
    if (password.includes('\u0000')) {
      throw new SecretFormatError('The generated password contains a NUL character, which PostgreSQL does not allow.');
    }
    // PostgreSQL stores a password that looks like a hash as that hash: it would not log in.
    if (/^md5[0-9a-f]{32}$/.test(password) || password.startsWith('SCRAM-SHA-256$')) {
      throw new SecretFormatError('The generated password has the shape of a PostgreSQL password hash.', 'Rotate again to generate another one.');
    }
  }

  /** The SQL literal to put after PASSWORD: a SCRAM verifier, or the password itself. */
  private passwordSql(conn: Client, password: string, env: Env, log: Logger): { sql: string; encryption: PasswordEncryption } {
    const mode = this.passwordEncryption(env);
    if (mode === 'plaintext') return { sql: conn.escapeLiteral(password), encryption: 'plaintext' };
    if (!/^[\x01-\x7f]*$/.test(password)) {
      log.warn('the new password has non-ASCII characters; sending it for server-side hashing (SASLprep)');
      return { sql: conn.escapeLiteral(password), encryption: 'plaintext' };
    }
    return { sql: conn.escapeLiteral(scramSha256Verifier(password)), encryption: 'scram-sha-256' };
  }

  private passwordEncryption(env: Env): PasswordEncryption {
    if (this.options.passwordEncryption) return this.options.passwordEncryption;
    const raw = (this.options.env ?? env).PASSWORD_ENCRYPTION?.trim().toLowerCase();
    if (!raw || raw === 'scram-sha-256') return 'scram-sha-256';
    if (raw === 'plaintext') return 'plaintext';
    throw new ConfigError(`PASSWORD_ENCRYPTION must be "scram-sha-256" (the default) or "plaintext", got "${raw.slice(0, 40)}".`);
  }

  /** Role attributes the current user has and the alternate user lacks. Returns what was copied. */
  private async copyAttributes(admin: Client, currentUser: string, alternateUser: string, log: Logger): Promise<string[]> {
    const q = `SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolconnlimit
                 FROM pg_roles WHERE rolname = ANY($1::text[])`;
    const { rows } = await admin.query<RoleAttributes>(q, [[currentUser, alternateUser]]);
    const cur = rows.find((r) => r.rolname === currentUser);
    const alt = rows.find((r) => r.rolname === alternateUser);
    if (!cur || !alt) {
      throw new PrivilegeError(`The admin user cannot see role "${cur ? alternateUser : currentUser}" in pg_roles.`);
    }
    if (cur.rolsuper && !alt.rolsuper) {
      log.warn('the current user is a superuser; SUPERUSER is never copied to the alternate user', { username: alternateUser });
    }
    const wanted: Array<[keyof RoleAttributes, string]> = [
      ['rolcreatedb', 'CREATEDB'],
      ['rolcreaterole', 'CREATEROLE'],
      ['rolreplication', 'REPLICATION'],
      ['rolbypassrls', 'BYPASSRLS'],
    ];
    const clauses = wanted.filter(([col]) => cur[col] === true && alt[col] !== true).map(([, kw]) => kw);
    if (cur.rolconnlimit !== alt.rolconnlimit && Number.isInteger(cur.rolconnlimit)) clauses.push(`CONNECTION LIMIT ${cur.rolconnlimit}`);
    const copied: string[] = [];
    for (const clause of clauses) {
      const ok = await this.optional(admin, `ALTER ROLE ${admin.escapeIdentifier(alternateUser)} WITH ${clause}`);
      if (ok) copied.push(clause);
      else log.warn('the admin user may not give this attribute; the alternate user lacks it', { username: alternateUser, attribute: clause });
    }
    return copied;
  }

  /**
   * Grant the alternate user membership in the current user, then in each role the current
   * user is a direct member of that it does not already have. Returns the roles granted.
   */
  private async copyMemberships(admin: Client, currentUser: string, alternateUser: string, log: Logger): Promise<string[]> {
    const alt = admin.escapeIdentifier(alternateUser);
    const granted: string[] = [];

    const link = await admin.query<{ alt_member: boolean; circular: boolean }>(
      `SELECT pg_has_role(a.oid, c.oid, 'MEMBER') AS alt_member, pg_has_role(c.oid, a.oid, 'MEMBER') AS circular
         FROM pg_roles c, pg_roles a WHERE c.rolname = $1 AND a.rolname = $2`,
      [currentUser, alternateUser],
    );
    const l = link.rows[0];
    if (l && !l.alt_member && !l.circular) {
      try {
        await admin.query(`GRANT ${admin.escapeIdentifier(currentUser)} TO ${alt}`);
      } catch (err) {
        throw statementError(err, `grant role "${currentUser}" to "${alternateUser}"`, [], {
          privilegeRemedy:
            `Give the admin user the right to grant "${currentUser}": on PostgreSQL 16+ a CREATEROLE user needs ADMIN OPTION on it ` +
            `(GRANT "${currentUser}" TO <admin> WITH ADMIN OPTION), or use the RDS master user.`,
        });
      }
      granted.push(currentUser);
    }

    const { rows } = await admin.query<MembershipRow>(
      `SELECT r.rolname AS role,
              bool_or(m.admin_option) AS admin,
              pg_has_role(a.oid, r.oid, 'MEMBER') AS alt_member,
              pg_has_role(r.oid, a.oid, 'MEMBER') AS circular,
              EXISTS (SELECT 1 FROM pg_auth_members x WHERE x.roleid = r.oid AND x.member = a.oid AND x.admin_option) AS alt_admin
         FROM pg_auth_members m
         JOIN pg_roles r ON r.oid = m.roleid
         JOIN pg_roles c ON c.oid = m.member
         JOIN pg_roles a ON a.rolname = $2
        WHERE c.rolname = $1
        GROUP BY r.rolname, r.oid, a.oid
        ORDER BY r.rolname`,
      [currentUser, alternateUser],
    );
    for (const row of rows) {
      if (row.role === alternateUser || row.circular) continue;
      if (row.alt_member && (!row.admin || row.alt_admin)) continue;
      const ok = await this.optional(admin, `GRANT ${admin.escapeIdentifier(row.role)} TO ${alt}${row.admin ? ' WITH ADMIN OPTION' : ''}`);
      if (ok) {
        granted.push(row.role);
      } else if (row.alt_member) {
        log.warn('the admin user may not grant ADMIN OPTION on this role; the alternate user is a member without it', { username: alternateUser, role: row.role });
      } else {
        throw new PrivilegeError(
          `The admin user may not grant role "${row.role}" (held by "${currentUser}") to "${alternateUser}".`,
          `Give the admin user ADMIN OPTION on "${row.role}" (GRANT "${row.role}" TO <admin> WITH ADMIN OPTION), or grant it to "${alternateUser}" yourself.`,
        );
      }
    }
    return granted;
  }

  /** Run a statement inside a savepoint; false if the server refused it for lack of privilege. */
  private async optional(admin: Client, sql: string): Promise<boolean> {
    await admin.query('SAVEPOINT rotation_optional');
    try {
      await admin.query(sql);
      await admin.query('RELEASE SAVEPOINT rotation_optional');
      return true;
    } catch (err) {
      await admin.query('ROLLBACK TO SAVEPOINT rotation_optional');
      if (sqlState(err) === INSUFFICIENT_PRIVILEGE) return false;
      throw statementError(err, 'copy a privilege to the alternate user', []);
    }
  }
}

interface RoleAttributes {
  rolname: string;
  rolsuper: boolean;
  rolcreatedb: boolean;
  rolcreaterole: boolean;
  rolreplication: boolean;
  rolbypassrls: boolean;
  rolconnlimit: number;
}

interface MembershipRow {
  role: string;
  admin: boolean;
  alt_member: boolean;
  circular: boolean;
  alt_admin: boolean;
}

/** The engine instance the packaged handler uses. */
export const postgresEngine = new PostgresEngine();

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802 / RFC 7677):
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64. The password must be
 * ASCII (SASLprep leaves ASCII unchanged, so no normalisation is needed).
 */
export function scramSha256Verifier(password: string, options: { salt?: Buffer; iterations?: number } = {}): string {
  const salt = options.salt ?? randomBytes(16);
  const iterations = options.iterations ?? SCRAM_ITERATIONS;
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** Turn a pg/Node connection failure into a ConnectError (AUTH, TLS, NETWORK, CONFIG, PRIVILEGE). */
export function classifyConnectError(err: unknown, secret: DbSecret, port: number): ConnectError {
  const code = pgErrorCode(err);
  const reason = scrub(describe(err), [secret.password]);
  const who = `"${secret.username}" at ${secret.host}:${port}`;
  const state = /^[0-9A-Z]{5}$/.test(code) ? ` (SQLSTATE ${code})` : code ? ` (${code})` : '';
  const detail = `${reason}${state}`;
  switch (pgLoginFailure(err)) {
    case 'password':
      return new ConnectError('AUTH', `PostgreSQL rejected the password of ${who}: ${detail}.`, err);
    case 'tls-required':
      return new ConnectError('TLS', `PostgreSQL requires TLS for ${who} (pg_hba.conf): ${detail}. Do not set the secret's "ssl" field to false.`, err);
    case 'refused':
      return new ConnectError('AUTH', `PostgreSQL refused the login of ${who}: ${detail}.`, err);
    case 'no-database':
      return new ConnectError('CONFIG', `PostgreSQL database "${secret.dbname || 'postgres'}" does not exist for ${who}: ${detail}. Check the secret's "dbname" field.`, err);
    case 'privilege':
      return new ConnectError('PRIVILEGE', `PostgreSQL refused ${who} access to the database: ${detail}. Grant it CONNECT on the database.`, err);
    case 'tls':
      return new ConnectError(
        'TLS',
        `TLS with PostgreSQL at ${secret.host}:${port} failed: ${detail}. Check the secret's "ssl" and "sslCa" fields, or SSL_CA_BUNDLE (the RDS CA bundle).`,
        err,
      );
    case 'unavailable':
    case 'network':
      return new ConnectError('NETWORK', `Cannot reach PostgreSQL at ${secret.host}:${port}: ${detail}. Check the host, port, security groups and the function's VPC settings.`, err);
    case 'server':
    case 'unknown':
      return new ConnectError('NETWORK', `Connecting to PostgreSQL as ${who} failed: ${detail}.`, err);
  }
}

function statementError(err: unknown, what: string, secrets: string[], opts: { privilegeRemedy?: string } = {}): Error {
  const code = sqlState(err);
  const reason = scrub(describe(err), secrets);
  if (code === INSUFFICIENT_PRIVILEGE) {
    return new PrivilegeError(`PostgreSQL refused to ${what}: ${reason} (SQLSTATE ${code}).`, opts.privilegeRemedy, err);
  }
  const e = new Error(`PostgreSQL failed to ${what}: ${reason}${code ? ` (SQLSTATE ${code})` : ''}.`, { cause: err });
  e.name = 'PostgresError';
  return e;
}

function sqlState(err: unknown): string {
  const code = pgErrorCode(err);
  return /^[0-9A-Z]{5}$/.test(code) ? code : '';
}
