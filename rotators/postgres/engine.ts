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
 * Password hashing. The new password never reaches the server in plaintext by default: the
 * engine computes the verifier itself and sends that, so server logs (log_statement),
 * pg_stat_statements and pg_stat_activity can never show the password. PostgreSQL stores a
 * verifier given to ALTER ROLE as is. Which verifier (PASSWORD_ENCRYPTION, default `auto`):
 * `auto` keeps the type the user already has — single user: the exchange the server asked for
 * at login (an md5 server asks for md5 only when the stored verifier is md5); alternating users
 * (the admin cannot read other users' verifiers): the server's `password_encryption`.
 * `scram-sha-256` and `md5` force a type; `plaintext` sends the password for the server to hash
 * with its own `password_encryption`. Passwords with non-ASCII characters headed for SCRAM are
 * sent for server-side hashing (PostgreSQL applies SASLprep, which this engine does not
 * reimplement). The type used, and why, is logged.
 *
 * Alternating users. Before anything changes, checkAlternateUser proves that an existing
 * alternate user is this pair's (a login, holding nothing the current user lacks, and marked by
 * this framework: `COMMENT ON ROLE <x>_clone IS 'rotation-lambdas: alternate of "<x>"'`). Then
 * the admin creates or updates it in one transaction: LOGIN and the password; the marker; role
 * attributes CREATEDB, CREATEROLE, REPLICATION, BYPASSRLS and the connection limit copied from
 * the current user (never SUPERUSER); membership in the current user (so it inherits its
 * privileges, as AWS's rotator does) unless that would be circular (the way back,
 * `user_clone` -> `user`); every role the current user is a direct member of that the alternate
 * user does not already have (WITH ADMIN OPTION when the current user has it); and the current
 * user's per-role settings (pg_db_role_setting: `ALTER ROLE ... [IN DATABASE ...] SET`). This runs
 * on every rotation, so roles and settings added later reach both users; nothing is ever
 * revoked. Object ownership is not copied. A concurrent duplicate of the same step (two
 * invocations creating the role at once: 23505 / 42710, `tuple concurrently updated`) is
 * checked and applied once more instead of failing.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type { Client } from 'pg';
import {
  type AlternateUserChange,
  type ConnectOptions,
  type DatabaseEngine,
  type DbSecret,
  defineEngine,
  type EngineContext,
  type EngineProfile,
  type PasswordChange,
  type PreflightHooks,
} from '../../src/db';
import {
  ConfigError,
  ConnectError,
  type Env,
  envFlag,
  type Logger,
  PrivilegeError,
  RotationError,
  RotationStateError,
  SecretFormatError,
} from '../../src/api';
import { authMethodOf, closePg, connectPg, describePg, pgErrorCode, pgLoginFailure, timeoutError } from './pg-connect';

/** PostgreSQL's NAMEDATALEN is 64 bytes including the terminator. */
export const MAX_IDENTIFIER_BYTES = 63;

export const SCRAM_ITERATIONS = 4096;

export type PasswordEncryption = 'scram-sha-256' | 'md5' | 'plaintext';
/** PASSWORD_ENCRYPTION: a type, or `auto` (keep the type the user already has). */
export type PasswordEncryptionSetting = PasswordEncryption | 'auto';

export interface PostgresEngineOptions {
  /**
   * How a new password travels to the server. Default: PASSWORD_ENCRYPTION in the handler's
   * environment at the time of the change, else 'auto'.
   */
  passwordEncryption?: PasswordEncryptionSetting;
  /** Where PASSWORD_ENCRYPTION is read instead of the handler's environment (tests). */
  env?: Env;
}

/** SQLSTATEs this engine treats specially. */
const INSUFFICIENT_PRIVILEGE = '42501';

const CLONE_SUFFIX = '_clone';
const MARKER_PREFIX = 'rotation-lambdas: alternate of ';

/**
 * The comment that marks `<x>_clone` as the alternate user this framework created for `<x>`
 * (the name JSON-quoted, so no name can forge another's marker).
 */
export function alternateMarker(original: string): string {
  return MARKER_PREFIX + JSON.stringify(original);
}

/** The `_clone` side of the pair and the original user, whichever of them is current. */
export function pairSides(change: Pick<AlternateUserChange, 'currentUser' | 'alternateUser'>): { clone: string; original: string } {
  const { currentUser: cur, alternateUser: alt } = change;
  return cur.endsWith(CLONE_SUFFIX) && alt === cur.slice(0, -CLONE_SUFFIX.length) ? { clone: cur, original: alt } : { clone: alt, original: cur };
}

/** Settings that are lists of quoted names (GUC_LIST_QUOTE): each element is given as its own literal. */
const LIST_QUOTE_SETTINGS = new Set(['search_path', 'temp_tablespaces', 'session_preload_libraries', 'shared_preload_libraries', 'local_preload_libraries']);

const ATTRIBUTES: Array<[keyof RoleAttributes, string]> = [
  ['rolsuper', 'SUPERUSER'],
  ['rolcreaterole', 'CREATEROLE'],
  ['rolcreatedb', 'CREATEDB'],
  ['rolreplication', 'REPLICATION'],
  ['rolbypassrls', 'BYPASSRLS'],
];

export const POSTGRES_PROFILE: EngineProfile = {
  name: 'postgres',
  engines: ['postgres', 'aurora-postgresql'],
  defaultPort: 5432,
  defaultDatabase: 'postgres',
  // Role names are limited in UTF-8 bytes (NAMEDATALEN - 1).
  username: { maxLength: MAX_IDENTIFIER_BYTES, unit: 'UTF-8 bytes' },
  password: {
    defaults: { ExcludeCharacters: ':/@"\'\\' },
    validate(password: string): void {
      if (password.includes('\u0000')) {
        throw new SecretFormatError('The generated password contains a NUL character, which PostgreSQL does not allow.');
      }
      // PostgreSQL stores a password that looks like a hash as that hash: it would not log in.
      if (/^md5[0-9a-f]{32}$/.test(password) || password.startsWith('SCRAM-SHA-256$')) {
        throw new SecretFormatError('The generated password has the shape of a PostgreSQL password hash.', 'Rotate again to generate another one.');
      }
    },
  },
};

/** The Postgres engine, as `createPostgresEngine` builds it. */
export type PostgresEngine = DatabaseEngine<Client>;

/** The one way to build it: `defineEngine` checks the profile and the operations. */
export function createPostgresEngine(options: PostgresEngineOptions = {}): PostgresEngine {
  /** What `alt` holds and the current user does not: memberships, admin options, object privileges, owned objects. */
  async function extraCapabilities(admin: Client, curOid: number, altOid: number, currentUser: string, ownedMayStay: boolean, log: Logger): Promise<string[]> {
    const reasons: string[] = [];
    const { rows: memberships } = await exec<{ role: string; admin: boolean; cur_member: boolean; cur_admin: boolean }>(
      admin,
      'list the alternate user\'s role memberships',
      `SELECT r.rolname AS role, m.admin_option AS admin, pg_has_role($1::oid, r.oid, 'MEMBER') AS cur_member,
              EXISTS (SELECT 1 FROM pg_auth_members x WHERE x.roleid = r.oid AND x.member = $1::oid AND x.admin_option) AS cur_admin
         FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
        WHERE m.member = $2::oid ORDER BY r.rolname`,
      [curOid, altOid],
    );
    for (const m of memberships) {
      if (m.role !== currentUser && !m.cur_member) reasons.push(`membership of role "${m.role}"`);
      else if (m.admin && (m.role === currentUser || !m.cur_admin)) reasons.push(`ADMIN OPTION on role "${m.role}"`);
    }
    const { rows: grants } = await exec<{ object: string; privilege: string }>(
      admin,
      'compare the alternate user\'s object privileges',
      `SELECT object, privilege FROM (
         SELECT 'table ' || c.oid::regclass::text AS object, x.privilege_type || CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END AS privilege,
                CASE WHEN c.relkind = 'S' THEN has_sequence_privilege($2::oid, c.oid, x.privilege_type || CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
                     ELSE has_table_privilege($2::oid, c.oid, x.privilege_type || CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) END AS ok
           FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) x WHERE x.grantee = $1::oid
         UNION ALL
         SELECT 'schema ' || quote_ident(n.nspname), x.privilege_type, has_schema_privilege($2::oid, n.oid, x.privilege_type || CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
           FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) x WHERE x.grantee = $1::oid
         UNION ALL
         SELECT 'database ' || quote_ident(d.datname), x.privilege_type, has_database_privilege($2::oid, d.oid, x.privilege_type || CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
           FROM pg_database d CROSS JOIN LATERAL aclexplode(d.datacl) x WHERE x.grantee = $1::oid
         UNION ALL
         SELECT 'function ' || p.oid::regprocedure::text, x.privilege_type, has_function_privilege($2::oid, p.oid, x.privilege_type || CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
           FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) x WHERE x.grantee = $1::oid
       ) g WHERE NOT ok ORDER BY 1, 2 LIMIT 10`,
      [altOid, curOid],
    );
    for (const g of grants) reasons.push(`${g.privilege} on ${g.object}`);
    // What the catalog comparison above cannot see: owned objects, row-level security policies,
    // column privileges, and privileges in other databases or on other kinds of object.
    const { rows: deps } = await exec<{ what: string; n: number }>(
      admin,
      'list the objects the alternate user owns or is named in',
      `SELECT CASE d.deptype WHEN 'o' THEN 'owns' WHEN 'r' THEN 'is named in row-level security policies:' ELSE 'holds privileges not compared here (other databases, columns, other kinds of object):' END AS what,
              count(*)::int AS n
         FROM pg_shdepend d
        WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = $1::oid AND d.deptype IN ('o', 'a', 'r')
          AND NOT (d.deptype = 'a' AND d.objsubid = 0 AND (
                (d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND d.classid IN ('pg_class'::regclass, 'pg_namespace'::regclass, 'pg_proc'::regclass))
             OR (d.dbid = 0 AND d.classid = 'pg_database'::regclass)))
        GROUP BY 1 ORDER BY 1`,
      [altOid],
    );
    for (const d of deps) {
      if (d.what === 'owns' && ownedMayStay) {
        log.warn('the alternate user owns objects it created while it was the current user; set POSTGRES_CLONE_SET_ROLE=true so they belong to the original user', { owned: d.n });
        continue;
      }
      reasons.push(`${d.what} ${d.n} object(s)`);
    }
    return reasons;
  }

  async function upsertOnce(admin: Client, change: AlternateUserChange, { log, env }: EngineContext): Promise<void> {
    const { currentUser, alternateUser } = change;
    const alt = admin.escapeIdentifier(alternateUser);
    const password = await passwordSql(admin, alternateUser, change.newPassword, env, 'admin');
    const secrets = [change.newPassword, password.sql];
    const version = await serverVersion(admin);
    await exec(admin, 'begin a transaction', 'BEGIN');
    try {
      const exists = await exec(admin, 'look up the alternate user', 'SELECT 1 FROM pg_roles WHERE rolname = $1', [alternateUser]);
      const created = exists.rowCount === 0;
      await exec(admin, created ? `create role "${alternateUser}"` : `set the password of "${alternateUser}"`, `${created ? 'CREATE' : 'ALTER'} ROLE ${alt} WITH LOGIN PASSWORD ${password.sql}`, undefined, {
        secrets,
        privilegeRemedy: created
          ? `The admin user needs the CREATEROLE attribute (or to be superuser / rds_superuser) to create "${alternateUser}".`
          : adminOptionRemedy(version, alternateUser, 'alter'),
      });
      const marked = await mark(admin, change, env, created, version, log);
      const attributes = await copyAttributes(admin, currentUser, alternateUser, log);
      const granted = await copyMemberships(admin, currentUser, alternateUser, version, log);
      const settings = await copySettings(admin, currentUser, alternateUser, log);
      const actsAs = await actAsOriginal(admin, change, env);
      await exec(admin, 'commit', 'COMMIT');
      log.info(created ? 'created the alternate user' : 'updated the alternate user', {
        username: alternateUser,
        template: currentUser,
        attributesCopied: attributes,
        rolesGranted: granted,
        settingsCopied: settings,
        markerSet: marked,
        ...(actsAs ? { sessionRole: actsAs } : {}),
        passwordEncryption: password.encryption,
        passwordEncryptionFrom: password.source,
      });
    } catch (err) {
      await admin.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /**
   * POSTGRES_CLONE_SET_ROLE=true: the clone's sessions start as the original user
   * (`ALTER ROLE <x>_clone SET role = '<x>'`), so objects it creates are owned by `<x>` and the
   * two users are interchangeable for DDL. Needs the clone's membership in `<x>` (granted above;
   * on 16+ with the SET option, the default). Returns the role set, if any.
   */
  async function actAsOriginal(admin: Client, change: AlternateUserChange, env: Env): Promise<string | undefined> {
    if (!cloneSetsRole(env)) return undefined;
    const { clone, original } = pairSides(change);
    if (clone !== change.alternateUser) return undefined; // the original user keeps its own sessions
    await exec(admin, `make "${clone}" sessions start as "${original}"`, `ALTER ROLE ${admin.escapeIdentifier(clone)} SET role = ${admin.escapeLiteral(original)}`);
    return original;
  }

  /** Mark the `_clone` side when this upsert created the pair's other user, or when adopting. Returns whether it wrote. */
  async function mark(admin: Client, change: AlternateUserChange, env: Env, created: boolean, version: number, log: Logger): Promise<boolean> {
    const { clone, original } = pairSides(change);
    const marker = alternateMarker(original);
    const { rows: [row] } = await exec<{ marker: string | null }>(admin, 'read the pair marker', `SELECT shobj_description(oid, 'pg_authid') AS marker FROM pg_roles WHERE rolname = $1`, [clone]);
    if (!row || row.marker === marker) return false;
    if (!created && !adoptUnmarked(env)) {
      log.warn('the alternating pair is not marked; it is left unmarked (set ADOPT_UNMARKED_ALTERNATE=true to mark it)', { clone });
      return false;
    }
    await exec(admin, `mark "${clone}" as the alternate of "${original}"`, `COMMENT ON ROLE ${admin.escapeIdentifier(clone)} IS ${admin.escapeLiteral(marker)}`, undefined, {
      privilegeRemedy: adminOptionRemedy(version, clone, 'comment on'),
    });
    return true;
  }

  /**
   * The SQL literal to put after PASSWORD, and which verifier type it is and why. `who`: the
   * logged-in user's own password ('self': its login tells how it is stored), or another user's
   * on the admin connection ('admin': the server's password_encryption).
   */
  async function passwordSql(conn: Client, username: string, password: string, env: Env, who: 'self' | 'admin'): Promise<{ sql: string; encryption: PasswordEncryption; source: string }> {
    let mode = encryptionSetting(env);
    let source = 'PASSWORD_ENCRYPTION';
    if (mode === 'auto') {
      const auth = who === 'self' ? authMethodOf(conn) : 'none';
      if (auth === 'md5' || auth === 'scram-sha-256') {
        mode = auth;
        source = `the user's login (${auth})`;
      } else {
        const { rows } = await exec<{ password_encryption: string }>(conn, 'read password_encryption', 'SHOW password_encryption');
        const setting = String(rows[0]?.password_encryption ?? '');
        mode = setting === 'md5' || setting === 'on' ? 'md5' : 'scram-sha-256';
        source = `the server's password_encryption (${setting.slice(0, 20)})`;
      }
    }
    if (mode === 'plaintext') return { sql: conn.escapeLiteral(password), encryption: 'plaintext', source };
    if (mode === 'md5') return { sql: conn.escapeLiteral(md5Verifier(password, username)), encryption: 'md5', source };
    if (!/^[\x01-\x7f]*$/.test(password)) {
      return { sql: conn.escapeLiteral(password), encryption: 'plaintext', source: `${source}; non-ASCII password sent for server-side SCRAM hashing (SASLprep)` };
    }
    return { sql: conn.escapeLiteral(scramSha256Verifier(password)), encryption: 'scram-sha-256', source };
  }

  function encryptionSetting(env: Env): PasswordEncryptionSetting {
    if (options.passwordEncryption) return options.passwordEncryption;
    const raw = (options.env ?? env).PASSWORD_ENCRYPTION?.trim().toLowerCase();
    if (!raw || raw === 'auto') return 'auto';
    if (raw === 'scram-sha-256' || raw === 'md5' || raw === 'plaintext') return raw;
    throw new ConfigError(
      `PASSWORD_ENCRYPTION must be "auto" (the default: keep the verifier type the user has), "scram-sha-256", "md5" or "plaintext", got "${raw.slice(0, 40)}".`,
    );
  }

  /** Role attributes the current user has and the alternate user lacks. Returns what was copied. */
  async function copyAttributes(admin: Client, currentUser: string, alternateUser: string, log: Logger): Promise<string[]> {
    const q = `SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolconnlimit
                 FROM pg_roles WHERE rolname = ANY($1::text[])`;
    const { rows } = await exec<RoleAttributes>(admin, 'read role attributes', q, [[currentUser, alternateUser]]);
    const cur = rows.find((r) => r.rolname === currentUser);
    const alt = rows.find((r) => r.rolname === alternateUser);
    if (!cur || !alt) {
      throw new PrivilegeError(`The admin user cannot see role "${cur ? alternateUser : currentUser}" in pg_roles.`);
    }
    if (cur.rolsuper && !alt.rolsuper) {
      log.warn('the current user is a superuser; SUPERUSER is never copied to the alternate user', { username: alternateUser });
    }
    const clauses = ATTRIBUTES.filter(([col]) => col !== 'rolsuper' && cur[col] === true && alt[col] !== true).map(([, kw]) => kw);
    if (cur.rolconnlimit !== alt.rolconnlimit && Number.isInteger(cur.rolconnlimit)) clauses.push(`CONNECTION LIMIT ${cur.rolconnlimit}`);
    const copied: string[] = [];
    for (const clause of clauses) {
      const ok = await optional(admin, `ALTER ROLE ${admin.escapeIdentifier(alternateUser)} WITH ${clause}`);
      if (ok) copied.push(clause);
      else log.warn('the admin user may not give this attribute; the alternate user lacks it', { username: alternateUser, attribute: clause });
    }
    return copied;
  }

  /**
   * Grant the alternate user membership in the current user, then in each role the current
   * user is a direct member of that it does not already have. Returns the roles granted.
   */
  async function copyMemberships(admin: Client, currentUser: string, alternateUser: string, version: number, log: Logger): Promise<string[]> {
    const alt = admin.escapeIdentifier(alternateUser);
    const granted: string[] = [];

    const link = await exec<{ alt_member: boolean; circular: boolean }>(
      admin,
      'compare memberships',
      `SELECT pg_has_role(a.oid, c.oid, 'MEMBER') AS alt_member, pg_has_role(c.oid, a.oid, 'MEMBER') AS circular
         FROM pg_roles c, pg_roles a WHERE c.rolname = $1 AND a.rolname = $2`,
      [currentUser, alternateUser],
    );
    const l = link.rows[0];
    if (l && !l.alt_member && !l.circular) {
      await exec(admin, `grant role "${currentUser}" to "${alternateUser}"`, `GRANT ${admin.escapeIdentifier(currentUser)} TO ${alt}`, undefined, {
        privilegeRemedy: adminOptionRemedy(version, currentUser, 'grant'),
      });
      granted.push(currentUser);
    }

    const { rows } = await exec<MembershipRow>(
      admin,
      'list the current user\'s roles',
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
      const ok = await optional(admin, `GRANT ${admin.escapeIdentifier(row.role)} TO ${alt}${row.admin ? ' WITH ADMIN OPTION' : ''}`);
      if (ok) {
        granted.push(row.role);
      } else if (row.alt_member) {
        log.warn('the admin user may not grant ADMIN OPTION on this role; the alternate user is a member without it', { username: alternateUser, role: row.role });
      } else {
        throw new PrivilegeError(
          `The admin user may not grant role "${row.role}" (held by "${currentUser}") to "${alternateUser}".`,
          `${adminOptionRemedy(version, row.role, 'grant')} Or grant it to "${alternateUser}" yourself.`,
        );
      }
    }
    return granted;
  }

  /**
   * Copy the current user's per-role settings (`ALTER ROLE ... [IN DATABASE ...] SET`, e.g.
   * search_path) that the alternate user lacks or has with another value. A setting the admin
   * may not set (a superuser-only parameter) is skipped with a warning naming it.
   */
  async function copySettings(admin: Client, currentUser: string, alternateUser: string, log: Logger): Promise<string[]> {
    const { rows } = await exec<{ rolname: string; datname: string | null; setconfig: string[] }>(
      admin,
      'read per-role settings',
      `SELECT r.rolname, d.datname, s.setconfig
         FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase
        WHERE r.rolname = ANY($1::text[]) AND (s.setdatabase = 0 OR d.oid IS NOT NULL)`,
      [[currentUser, alternateUser]],
    );
    const settings = (role: string) => {
      const out = new Map<string, { db: string | null; name: string; value: string }>();
      for (const r of rows.filter((x) => x.rolname === role)) {
        for (const item of r.setconfig ?? []) {
          const eq = item.indexOf('=');
          if (eq <= 0) continue;
          const name = item.slice(0, eq);
          out.set(`${r.datname ?? ''}\u0000${name}`, { db: r.datname, name, value: item.slice(eq + 1) });
        }
      }
      return out;
    };
    const want = settings(currentUser);
    const have = settings(alternateUser);
    const copied: string[] = [];
    for (const [key, s] of want) {
      // `role` is the clone's own POSTGRES_CLONE_SET_ROLE setting: never given to the original user.
      if (s.name === 'role' || s.name === 'session_authorization') continue;
      if (have.get(key)?.value === s.value) continue;
      const where = s.db === null ? '' : ` IN DATABASE ${admin.escapeIdentifier(s.db)}`;
      const name = s.name.split('.').map((p) => admin.escapeIdentifier(p)).join('.');
      const value = LIST_QUOTE_SETTINGS.has(s.name.toLowerCase())
        ? splitQuotedList(s.value).map((v) => admin.escapeLiteral(v)).join(', ')
        : admin.escapeLiteral(s.value);
      const label = `${s.name}${s.db === null ? '' : ` (database ${s.db})`}`;
      const ok = await optional(admin, `ALTER ROLE ${admin.escapeIdentifier(alternateUser)}${where} SET ${name} = ${value}`, true);
      if (ok) copied.push(label);
      else log.warn('the admin user may not copy this per-role setting; the alternate user lacks it', { username: alternateUser, setting: label });
    }
    return copied;
  }

  /**
   * Run a statement inside a savepoint; false if the server refused it for lack of privilege
   * (or, with `anyError`, for any reason).
   */
  async function optional(admin: Client, sql: string, anyError = false): Promise<boolean> {
    await exec(admin, 'set a savepoint', 'SAVEPOINT rotation_optional');
    try {
      await admin.query(sql);
      await exec(admin, 'release a savepoint', 'RELEASE SAVEPOINT rotation_optional');
      return true;
    } catch (err) {
      if (timeoutError(err, admin, 'copy a privilege to the alternate user', 'PostgreSQL')) throw statementError(err, admin, 'copy a privilege to the alternate user', []);
      await exec(admin, 'roll back to a savepoint', 'ROLLBACK TO SAVEPOINT rotation_optional');
      if (sqlState(err) === INSUFFICIENT_PRIVILEGE || anyError) return false;
      throw statementError(err, admin, 'copy a privilege to the alternate user', []);
    }
  }

  const engine: PostgresEngine = defineEngine<Client>({
    profile: POSTGRES_PROFILE,

    /** Pre-created pairs (`alternateUsername`): check both users, set only the alternate's password (precreated.ts). */
    setAlternatePassword: (admin: Client, change: AlternateUserChange, ctx: EngineContext): Promise<void> => import('./precreated').then((m) => m.setPrecreatedPassword(engine, admin, change, ctx)),

    preflight: (): Promise<PreflightHooks<Client>> => import('./preflight').then((m) => m.postgresPreflight),

    async connect(secret: DbSecret, options: ConnectOptions): Promise<Client> {
      return connectPg(secret, options, {
        product: 'PostgreSQL',
        defaultPort: POSTGRES_PROFILE.defaultPort,
        defaultDatabase: POSTGRES_PROFILE.defaultDatabase!,
        classify: classifyConnectError,
        serverTimeout: 'startup',
      });
    },

    async close(conn: Client): Promise<void> {
      await closePg(conn);
    },

    async setOwnPassword(conn: Client, change: PasswordChange, { log, env }: EngineContext): Promise<void> {
      const password = await passwordSql(conn, change.username, change.newPassword, env, 'self');
      const alter = () =>
        exec(conn, `change the password of "${change.username}"`, `ALTER ROLE ${conn.escapeIdentifier(change.username)} WITH PASSWORD ${password.sql}`, undefined, {
          secrets: [change.newPassword, change.oldPassword, password.sql],
          privilegeRemedy:
            'The user may not change its own password. On RDS with rds.restrict_password_commands, grant it the rds_password role, ' +
            'or use the alternating-users strategy with an admin secret (masterarn).',
        });
      try {
        await alter();
      } catch (err) {
        // A concurrent duplicate of this step changed the same role at the same moment
        // (`tuple concurrently updated`): setting the same password again converges.
        const state = concurrentDuplicate(err);
        if (!state) throw err;
        log.warn('a concurrent invocation changed the password at the same time; setting it once more', { username: change.username, sqlstate: state });
        await alter();
      }
      log.info('ALTER ROLE ... PASSWORD executed', { username: change.username, passwordEncryption: password.encryption, passwordEncryptionFrom: password.source });
    },

    async checkAlternateUser(admin: Client, change: AlternateUserChange, ctx: EngineContext): Promise<void> {
      const { log, env } = ctx;
      const { currentUser, alternateUser } = change;
      const { rows } = await exec<RoleAttributes & { oid: number; rolcanlogin: boolean; marker: string | null }>(
        admin,
        'look up the current and alternate users',
        `SELECT oid, rolname, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolconnlimit,
                shobj_description(oid, 'pg_authid') AS marker
           FROM pg_roles WHERE rolname = ANY($1::text[])`,
        [[currentUser, alternateUser]],
      );
      const alt = rows.find((r) => r.rolname === alternateUser);
      if (!alt) return; // upsertAlternateUser creates it, with the marker
      const cur = rows.find((r) => r.rolname === currentUser);
      if (!cur) throw new PrivilegeError(`The admin user cannot see the current user "${currentUser}" in pg_roles.`);
      const refuse = `Refusing to change the existing role "${alternateUser}" for a secret whose current user is "${currentUser}"`;
      if (!alt.rolcanlogin) {
        throw new RotationStateError(
          `${refuse}: it is not a login (NOLOGIN, e.g. a group role), so it cannot be "${currentUser}"'s alternate user. Nothing was changed.`,
          `If this secret really belongs to "${currentUser}", rename or drop the role "${alternateUser}"; otherwise fix the secret's username.`,
        );
      }
      const { clone, original } = pairSides(change);
      const marked = (clone === alternateUser ? alt : cur).marker === alternateMarker(original);
      // Objects a marked clone created while it was the current user are the application's own;
      // never accepted for the original user (alt = `<x>`), whose ownership a forged clone must not reach.
      const ownedMayStay = marked && clone === alternateUser;
      const reasons: string[] = [];
      for (const [col, kw] of ATTRIBUTES) if (alt[col] === true && cur[col] !== true) reasons.push(`${kw} (which "${currentUser}" lacks)`);
      // A current user with the privileges of the alternate one (membership with INHERIT: the way
      // back, user_clone -> user) already has everything it owns, holds and can grant.
      const { rows: [reach] } = await exec<{ inherits: boolean }>(admin, 'compare the two users', `SELECT pg_has_role($1::oid, $2::oid, 'USAGE') AS inherits`, [cur.oid, alt.oid]);
      if (!reach?.inherits) reasons.push(...(await extraCapabilities(admin, cur.oid, alt.oid, currentUser, ownedMayStay, log)));
      if (reasons.length) {
        throw new PrivilegeError(
          `${refuse}: it holds what "${currentUser}" does not: ${reasons.join('; ')}. It is not this pair's alternate user, and its password must not be reset. Nothing was changed.`,
          `If "${alternateUser}" really is "${currentUser}"'s alternate, remove from it what "${currentUser}" lacks (or give that to "${currentUser}"); otherwise use another username for this secret.`,
        );
      }
      if (!marked) {
        if (!adoptUnmarked(env)) {
          throw new PrivilegeError(
            `${refuse}: the pair is not marked as created by this function (role "${clone}" has no comment ${alternateMarker(original)}), so "${alternateUser}" cannot be proven to be "${currentUser}"'s alternate. Nothing was changed.`,
            `If "${original}" and "${clone}" are one application's alternating pair (for example created by AWS's rotation function, or by this project before pairs were marked), set ADOPT_UNMARKED_ALTERNATE=true for one rotation: the pair is then accepted on the capability check alone and marked.`,
          );
        }
        log.warn('adopting an unmarked alternating pair (ADOPT_UNMARKED_ALTERNATE=true); it passed the capability check and is marked now', { username: alternateUser, clone });
      }
      log.info('the existing alternate user is this pair\'s', { username: alternateUser, template: currentUser, marked });
    },

    async upsertAlternateUser(admin: Client, change: AlternateUserChange, ctx: EngineContext): Promise<void> {
      const { log } = ctx;
      try {
        await upsertOnce(admin, change, ctx);
      } catch (err) {
        const state = concurrentDuplicate(err);
        if (!state) throw err;
        // Another invocation of the same step created or changed the role at the same moment.
        // Its work is the same as ours: prove the pair again, then apply the idempotent upsert.
        log.warn('a concurrent invocation changed the alternate user at the same time; checking and applying once more', { username: change.alternateUser, sqlstate: state });
        await engine.checkAlternateUser(admin, change, ctx);
        await upsertOnce(admin, change, ctx);
      }
    },

    async check(conn: Client, _ctx: EngineContext): Promise<void> {
      const { rows } = await exec<{ ok: number }>(conn, 'run the check query', 'SELECT 1 AS ok');
      if (rows[0]?.ok !== 1) throw new Error('The check query SELECT 1 returned an unexpected result.');
    },

    validateSecret(secret: DbSecret, label: string, env: Env = {}): void {
      if (secret.username.includes('\u0000')) {
        throw new SecretFormatError(`The ${label} secret's "username" field contains a NUL character, which PostgreSQL does not allow.`);
      }
      if (secret.password.includes('\u0000')) {
        throw new SecretFormatError(`The ${label} secret's "password" field contains a NUL character, which PostgreSQL does not allow.`);
      }
      // Environment variables this engine reads fail here, in createSecret, before AWSPENDING exists.
      encryptionSetting(env);
      cloneSetsRole(env);
    },
  });
  return engine;
}

/** POSTGRES_CLONE_SET_ROLE: `true` or `false` (default); anything else is a ConfigError. */
function cloneSetsRole(env: Env): boolean {
  const raw = env.POSTGRES_CLONE_SET_ROLE?.trim().toLowerCase();
  if (!raw || raw === 'false') return false;
  if (raw === 'true') return true;
  throw new ConfigError(`POSTGRES_CLONE_SET_ROLE must be "true" or "false", got "${raw.slice(0, 40)}".`);
}

/** ADOPT_UNMARKED_ALTERNATE=true: accept (and mark) an unmarked pair that passes the capability check. */
function adoptUnmarked(env: Env): boolean {
  return envFlag(env, 'ADOPT_UNMARKED_ALTERNATE', false);
}

/** Elements of a flattened GUC_LIST_QUOTE value (`a, "B c", "$user"`), unquoted. */
export function splitQuotedList(value: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < value.length) {
    while (value[i] === ' ' || value[i] === ',') i++;
    if (i >= value.length) break;
    let item = '';
    if (value[i] === '"') {
      i++;
      while (i < value.length) {
        if (value[i] === '"' && value[i + 1] === '"') { item += '"'; i += 2; }
        else if (value[i] === '"') { i++; break; }
        else item += value[i++];
      }
      while (i < value.length && value[i] !== ',') i++;
    } else {
      while (i < value.length && value[i] !== ',') item += value[i++];
      item = item.trim();
    }
    out.push(item);
  }
  return out;
}

/**
 * What a non-superuser admin needs to `action` role `role`: PostgreSQL 16+ ties it to ADMIN
 * OPTION on that role (which a CREATEROLE user has only on roles it created itself), 15 and
 * older to CREATEROLE.
 */
function adminOptionRemedy(version: number, role: string, action: 'alter' | 'grant' | 'comment on'): string {
  if (version >= 160000) {
    return (
      `On PostgreSQL 16+ a CREATEROLE admin may ${action} only roles it holds ADMIN OPTION on (those it created itself): ` +
      `as a superuser (or, on RDS, the master user), run GRANT ${JSON.stringify(role)} TO <admin> WITH ADMIN OPTION. ` +
      'This is typical of a role created by another user, or of a pair created before an upgrade to 16.'
    );
  }
  return `The admin user needs the CREATEROLE attribute (or to be superuser / rds_superuser) to ${action} ${JSON.stringify(role)}; a superuser role can only be changed by a superuser.`;
}

const versions = new WeakMap<Client, number>();
async function serverVersion(conn: Client): Promise<number> {
  const known = versions.get(conn);
  if (known !== undefined) return known;
  const { rows } = await exec<{ v: string }>(conn, 'read the server version', "SELECT current_setting('server_version_num') AS v");
  const v = Number(rows[0]?.v) || 0;
  versions.set(conn, v);
  return v;
}

/** The SQLSTATE of a concurrent duplicate of the same change (retry once), or ''. */
function concurrentDuplicate(err: unknown): string {
  for (let e: unknown = err, depth = 0; e && depth < 3; e = (e as { cause?: unknown }).cause, depth++) {
    const code = sqlState(e);
    if (code === '23505' || code === '42710' || code === '40001' || code === '40P01') return code;
    if (code === 'XX000' && /tuple concurrently (updated|deleted)/i.test(e instanceof Error ? e.message : '')) return code;
  }
  return '';
}

/** Run one statement; a failure becomes a classified error (privilege, timeout, ...) whose message never holds `secrets`. */
async function exec<R extends object = Record<string, unknown>>(
  conn: Client,
  what: string,
  sql: string,
  params?: unknown[],
  opts: { secrets?: string[]; privilegeRemedy?: string } = {},
) {
  try {
    return await conn.query<R>(sql, params);
  } catch (err) {
    throw statementError(err, conn, what, opts.secrets ?? [], opts);
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
export const postgresEngine = createPostgresEngine();

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
  const reason = describePg(err, [secret.password]);
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

/** A failed statement as the error this engine throws (exported for tests). */
export function classifyStatementError(err: unknown, conn: Client, what: string, secrets: string[] = [], opts: { privilegeRemedy?: string } = {}): Error {
  return statementError(err, conn, what, secrets, opts);
}

function statementError(err: unknown, conn: Client, what: string, secrets: string[], opts: { privilegeRemedy?: string } = {}): Error {
  if (err instanceof RotationError) return err;
  const timeout = timeoutError(err, conn, what, 'PostgreSQL');
  if (timeout) return timeout;
  const code = sqlState(err);
  const reason = describePg(err, secrets);
  if (code === INSUFFICIENT_PRIVILEGE) {
    return new PrivilegeError(`PostgreSQL refused to ${what}: ${reason} (SQLSTATE ${code}).`, opts.privilegeRemedy, err);
  }
  // PostgreSQL 16+: the admin holds no ADMIN OPTION through which the grant could be made.
  if (code === 'XX000' && /no possible grantors/i.test(reason)) {
    return new PrivilegeError(
      `PostgreSQL refused to ${what}: ${reason} (SQLSTATE ${code}).`,
      opts.privilegeRemedy ?? 'On PostgreSQL 16+ the admin user needs ADMIN OPTION on the role concerned (GRANT <role> TO <admin> WITH ADMIN OPTION, run by a superuser or the RDS master user).',
      err,
    );
  }
  const e = new Error(`PostgreSQL failed to ${what}: ${reason}${code ? ` (SQLSTATE ${code})` : ''}.`, { cause: err });
  e.name = 'PostgresError';
  return e;
}

/** The md5 verifier PostgreSQL stores: `md5` + md5(password || username), hex. */
export function md5Verifier(password: string, username: string): string {
  return 'md5' + createHash('md5').update(password + username, 'utf8').digest('hex');
}

function sqlState(err: unknown): string {
  const code = pgErrorCode(err);
  return /^[0-9A-Z]{5}$/.test(code) ? code : '';
}
