/**
 * Amazon Redshift (provisioned clusters and Serverless workgroups), over the PostgreSQL wire
 * protocol with the `pg` driver.
 *
 * Single user: `ALTER USER <name> PASSWORD <literal>` as the user itself.
 *
 * Alternating users, as the admin user. First checkAlternateUser (read-only) proves that an
 * existing alternate user is this pair's: a user (not only a group of that name), and holding
 * nothing the current user lacks (superuser, CREATEDB, groups, database/schema/table/view
 * privileges). Redshift has no place for a marker (COMMENT ON does not take users), so the
 * capability check is the whole proof. Then, in one transaction:
 *   1. `CREATE USER <clone> PASSWORD <literal>` when `pg_user` has no such user;
 *   2. copy from the current user, on every rotation (so grants added later reach the clone),
 *      per object kind as Redshift takes it: group memberships (`pg_group.grolist` ->
 *      `ALTER GROUP <g> ADD USER <clone>`); CREATE/USAGE on schemas (USAGE only on external
 *      (Spectrum) schemas, listed in pg_external_schema: CREATE there is skipped with a warning
 *      naming it); SELECT/INSERT/UPDATE/DELETE/REFERENCES on tables; SELECT on views and
 *      materialized views (other privileges on views are skipped with a warning). Only what the
 *      clone does not already have (directly, via a group or via PUBLIC) is granted. Copying is
 *      additive: a revocation on the current user is not mirrored onto the clone;
 *   3. `ALTER USER <clone> PASSWORD <literal>` when the user already existed.
 * A failure there rolls the transaction back, so a retry starts from a clean state. Then, after
 * the commit, CREATE/TEMP on databases: one GRANT per database, each its own transaction
 * (Redshift has no savepoints), so one odd database (e.g. a datashare consumer database) cannot
 * fail the others; what is still missing fails the step naming each database (the clone then
 * exists with its new password; the retry completes it, and AWSCURRENT is unchanged).
 * Lake Formation permissions (GRANT ... ON EXTERNAL SCHEMA/TABLE for Lake Formation-managed
 * schemas), datashares and RBAC roles are not copied.
 *
 * Every statement is bounded by STATEMENT_TIMEOUT_MS: `SET statement_timeout` right after the
 * login, and the driver's query timeout for a server that stops answering.
 *
 * Every identifier and literal is quoted by the server (`quote_ident`, `quote_literal`), so the
 * quoting follows the dialect of the server at hand (Redshift reads backslashes in string
 * literals as escapes; PostgreSQL 15 does not). Values are sent as bind parameters of those
 * SELECTs, never spliced into SQL text. The SQL stays in the subset Redshift and PostgreSQL share
 * (no `format()`, `DO`, `GRANT role TO user`, `IF NOT EXISTS`, `+` concatenation).
 *
 * Passwords follow Redshift's rules: 8 to 64 characters, at least one upper-case letter, one
 * lower-case letter and one digit, printable ASCII except `'`, `"`, `\`, `/`, `@` and space.
 */
import type { Client } from 'pg';
import {
  ConfigError,
  ConnectError,
  DEFAULT_PASSWORD_POLICY,
  type Env,
  envFlag,
  type Logger,
  type PasswordPolicy,
  passwordPolicyFromEnv,
  PrivilegeError,
  RotationError,
  RotationStateError,
  SecretFormatError,
} from '../../src/api';
import {
  type AlternateUserChange,
  type ConnectOptions,
  type DatabaseEngine,
  DatabaseRotator,
  type DatabaseRotatorOptions,
  type DbSecret,
  defineEngine,
  type EngineContext,
  type EngineProfile,
  type PasswordChange,
} from '../../src/db';
import { closePg, connectPg, describe, describePg, pgErrorCode, pgLoginFailure, timeoutError } from '../postgres/pg-connect';
import { redshiftManagedAdminLookup } from './managed-admin';

export const REDSHIFT_PASSWORD_MIN_LENGTH = 8;
export const REDSHIFT_PASSWORD_MAX_LENGTH = 64;
/** Characters Redshift refuses in passwords (besides anything outside printable ASCII). */
export const REDSHIFT_FORBIDDEN_PASSWORD_CHARACTERS = '\'"\\/@ ';
/** Always excluded from generated passwords, whatever EXCLUDE_CHARACTERS says. */
const ALWAYS_EXCLUDED = '/@"\'\\';
/** Redshift's NAMEDATALEN is 128: user names of at most 127 bytes. */
export const REDSHIFT_MAX_USERNAME_BYTES = 127;
export const REDSHIFT_DEFAULT_PORT = 5439;
export const REDSHIFT_DEFAULT_DATABASE = 'dev';

/** The engine's password defaults (`:` excluded as in AWS's reference rotator). */
export const REDSHIFT_PASSWORD_DEFAULTS: PasswordPolicy = {
  ...DEFAULT_PASSWORD_POLICY,
  PasswordLength: 32,
  ExcludeCharacters: '/@"\'\\:',
  ExcludeNumbers: false,
  ExcludeUppercase: false,
  ExcludeLowercase: false,
  RequireEachIncludedType: true,
};

const ENV_REMEDY = 'Redshift passwords need at least one upper-case letter, one lower-case letter and one digit.';

/**
 * The password policy for Redshift from the environment. Settings that would produce passwords
 * Redshift refuses are rejected with a ConfigError (createSecret fails before anything is
 * written, so AWSCURRENT is untouched) instead of being silently ignored as AWS's reference
 * rotator does: EXCLUDE_NUMBERS / EXCLUDE_UPPERCASE / EXCLUDE_LOWERCASE = true,
 * REQUIRE_EACH_INCLUDED_TYPE = false, PASSWORD_LENGTH outside 8..64. EXCLUDE_CHARACTERS replaces
 * the default list, but `/ @ " ' \` are always added to it.
 */
export function redshiftPasswordPolicy(env: Env): PasswordPolicy {
  for (const name of ['EXCLUDE_NUMBERS', 'EXCLUDE_UPPERCASE', 'EXCLUDE_LOWERCASE'] as const) {
    if (envFlag(env, name, false)) {
      throw new ConfigError(`${name} is set to true, which the Redshift rotator does not allow.`, `${ENV_REMEDY} Unset ${name}.`);
    }
  }
  if (!envFlag(env, 'REQUIRE_EACH_INCLUDED_TYPE', true)) {
    throw new ConfigError('REQUIRE_EACH_INCLUDED_TYPE is set to false, which the Redshift rotator does not allow.',
      `${ENV_REMEDY} Unset REQUIRE_EACH_INCLUDED_TYPE.`);
  }
  const policy = passwordPolicyFromEnv(env, REDSHIFT_PASSWORD_DEFAULTS);
  if (policy.PasswordLength < REDSHIFT_PASSWORD_MIN_LENGTH || policy.PasswordLength > REDSHIFT_PASSWORD_MAX_LENGTH) {
    throw new ConfigError(
      `PASSWORD_LENGTH is ${policy.PasswordLength}; Redshift accepts passwords of ${REDSHIFT_PASSWORD_MIN_LENGTH} to ${REDSHIFT_PASSWORD_MAX_LENGTH} characters.`,
    );
  }
  const excluded = new Set(policy.ExcludeCharacters);
  for (const c of ALWAYS_EXCLUDED) excluded.add(c);
  return { ...policy, ExcludeCharacters: [...excluded].join('') };
}

/** Check a password against Redshift's rules. The message says which rule failed, never the password. */
export function validateRedshiftPassword(password: string): void {
  const remedy = 'Check PASSWORD_LENGTH and EXCLUDE_CHARACTERS, or the AWSPENDING value if it was written by hand.';
  const length = [...password].length;
  if (length < REDSHIFT_PASSWORD_MIN_LENGTH || length > REDSHIFT_PASSWORD_MAX_LENGTH) {
    throw new SecretFormatError(
      `The new password is ${length} characters long; Redshift accepts ${REDSHIFT_PASSWORD_MIN_LENGTH} to ${REDSHIFT_PASSWORD_MAX_LENGTH}.`,
      remedy,
    );
  }
  const missing: string[] = [];
  if (!/[A-Z]/.test(password)) missing.push('an upper-case letter');
  if (!/[a-z]/.test(password)) missing.push('a lower-case letter');
  if (!/[0-9]/.test(password)) missing.push('a digit');
  if (missing.length) {
    throw new SecretFormatError(
      `The new password lacks ${missing.join(' and ')}; Redshift requires at least one upper-case letter, one lower-case letter and one digit.`,
      remedy,
    );
  }
  let bad = 0;
  for (const c of password) {
    const code = c.codePointAt(0)!;
    if (code < 0x21 || code > 0x7e || REDSHIFT_FORBIDDEN_PASSWORD_CHARACTERS.includes(c)) bad++;
  }
  if (bad) {
    throw new SecretFormatError(
      `The new password contains ${bad} character(s) Redshift does not accept (only printable ASCII except ' " \\ / @ and space).`,
      remedy,
    );
  }
}

/** Classify a `pg` connect failure as AUTH / TLS / NETWORK / PRIVILEGE / CONFIG. */
export function classifyConnectError(err: unknown, where: string, secrets: string[] = []): ConnectError {
  const code = pgErrorCode(err);
  const message = describePg(err, secrets);
  const detail = `${where}: ${message}${code ? ` (${code})` : ''}`;
  switch (pgLoginFailure(err)) {
    case 'tls-required':
      return new ConnectError('TLS', `The server requires TLS (require_ssl / pg_hba): ${detail}. Do not set the secret's "ssl" field to false.`, err);
    case 'password':
    case 'refused':
      return new ConnectError('AUTH', `Login refused by ${detail}`, err);
    case 'no-database':
      return new ConnectError('CONFIG', `The database does not exist on ${detail}`, err);
    case 'privilege':
      return new ConnectError('PRIVILEGE', `Not allowed to connect to ${detail}`, err);
    case 'unavailable':
      return new ConnectError('NETWORK', `The server is not accepting connections at ${detail}`, err);
    case 'tls':
      return new ConnectError('TLS', `TLS negotiation failed with ${detail}`, err);
    case 'network':
      return new ConnectError('NETWORK', `Cannot reach ${detail}`, err);
    case 'server':
      // Any other error the server sent is a refusal to log in.
      return new ConnectError('AUTH', `Connection failed to ${detail}`, err);
    case 'unknown':
      return new ConnectError('NETWORK', `Connection failed to ${detail}`, err);
  }
}

/** Wraps a failed statement: privilege errors become PrivilegeError, others keep SQLSTATE and message. */
function statementError(err: unknown, conn: Client, what: string, secrets: string[]): Error {
  if (err instanceof RotationError) return err;
  const timeout = timeoutError(err, conn, what.charAt(0).toLowerCase() + what.slice(1), 'Redshift');
  if (timeout) return timeout;
  const code = pgErrorCode(err);
  const message = describePg(err, secrets);
  if (code === '42501') {
    return new PrivilegeError(`${what} was refused: ${message} (${code}).`,
      'Give the user the privilege it needs (for the alternating-users strategy, the admin secret must be a superuser or hold CREATEUSER and the grant options).', err);
  }
  const wrapped = new Error(`${what} failed: ${message}${code ? ` (SQLSTATE ${code})` : ''}.`, { cause: err });
  wrapped.name = 'RedshiftStatementError';
  return wrapped;
}

/** Run one statement; `secrets` are scrubbed from the error message if it fails. */
async function run(conn: Client, what: string, text: string, values?: unknown[], secrets: string[] = []): Promise<Record<string, unknown>[]> {
  try {
    const res = await conn.query(text, values);
    return res.rows as Record<string, unknown>[];
  } catch (err) {
    throw statementError(err, conn, what, secrets);
  }
}

/** `user` and password as the server quotes them. */
async function quoted(conn: Client, username: string, password: string): Promise<{ user: string; password: string }> {
  const [row] = await run(conn, 'Quoting the user name and password', 'SELECT quote_ident($1::varchar) AS u, quote_literal($2::varchar) AS p',
    [username, password], [password]);
  return { user: String(row.u), password: String(row.p) };
}

/**
 * Tables and views are looked at only in schemas the admin itself may use: naming a table in
 * has_table_privilege needs USAGE on its schema. A schema the current user may use but the
 * admin may not is still caught, by the schema check (the admin cannot grant its USAGE).
 */
const adminCanUse = (col: string) => `has_schema_privilege(${col}, 'USAGE')`;

/** Schemas whose privileges are never copied: every `pg_*` schema (pg_catalog, pg_toast*, pg_temp*, pg_internal, pg_automv, ...) and information_schema. */
const userSchema = (col: string) => `${col} NOT LIKE 'pg!_%' ESCAPE '!' AND ${col} <> 'information_schema'`;

const DATABASE_PRIVILEGES = ['CREATE', 'TEMP'] as const;
const SCHEMA_PRIVILEGES = ['CREATE', 'USAGE'] as const;
const TABLE_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'REFERENCES'] as const;
/** Objects per GRANT statement (Redshift caps a statement at 16 MB; keep them small). */
const GRANT_CHUNK = 200;

/** `has_x_privilege(current, obj, p) AND NOT has_x_privilege(clone, obj, p)` per privilege, as columns p0, p1, ... */
function missingPrivilegeColumns(fn: string, object: string, privileges: readonly string[]): string {
  return privileges.map((p, i) => `(${fn}($1, ${object}, '${p}') AND NOT ${fn}($2, ${object}, '${p}')) AS p${i}`).join(', ');
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export interface CopyCounts {
  groups: number;
  databaseGrants: number;
  schemaGrants: number;
  tableGrants: number;
}

/** What `clone` lacks of `current`'s privileges: quoted names per privilege, per object kind. */
interface Missing {
  groups: string[];
  databases: Map<string, string[]>;
  schemas: Map<string, string[]>;
  tables: Map<string, string[]>;
  /** Views and materialized views: SELECT only. */
  views: Map<string, string[]>;
  /**
   * Privileges not copied because the object kind does not take them: CREATE on an external
   * (Spectrum) schema, INSERT/UPDATE/DELETE/REFERENCES on a view. Named in a warning.
   */
  skipped: string[];
}

async function missingGroups(conn: Client, current: string, clone: string): Promise<string[]> {
  const rows = await run(conn, 'Listing the current user\'s groups',
    `SELECT quote_ident(g.groname) AS name FROM pg_group g, pg_user c, pg_user a
      WHERE c.usename = $1 AND a.usename = $2 AND c.usesysid = ANY (g.grolist) AND NOT (a.usesysid = ANY (g.grolist))
      ORDER BY g.groname`, [current, clone]);
  return rows.map((g) => String(g.name));
}

/** Whether a catalog relation exists (Redshift's pg_external_schema, PostgreSQL's pg_matviews), found through search_path. */
async function hasCatalog(conn: Client, relname: string): Promise<boolean> {
  const [row] = await run(conn, `Looking for ${relname}`, 'SELECT count(*) AS n FROM pg_class WHERE relname = $1', [relname]);
  return Number(row?.n) > 0;
}

/** The object privileges `current` has and `clone` lacks (group memberships: missingGroups). */
async function missingPrivileges(conn: Client, current: string, clone: string): Promise<Omit<Missing, 'groups'>> {
  const params = [current, clone];
  const dbs = await run(conn, 'Listing database privileges',
    `SELECT quote_ident(datname) AS name, ${missingPrivilegeColumns('has_database_privilege', 'datname', DATABASE_PRIVILEGES)}
       FROM pg_database ORDER BY datname`, params);
  // External (Spectrum) schemas are in pg_namespace too; Redshift lists them in pg_external_schema.
  const external = (await hasCatalog(conn, 'pg_external_schema'))
    ? `(SELECT e.esoid FROM pg_external_schema e)`
    : '(SELECT NULL::oid WHERE false)';
  const schemas = await run(conn, 'Listing schema privileges',
    `SELECT quote_ident(nspname) AS name, oid IN ${external} AS external, ${missingPrivilegeColumns('has_schema_privilege', 'nspname', SCHEMA_PRIVILEGES)}
       FROM pg_namespace WHERE ${userSchema('nspname')} ORDER BY nspname`, params);
  const tables = await run(conn, 'Listing table privileges',
    `SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) AS name,
            ${missingPrivilegeColumns('has_table_privilege', "quote_ident(schemaname) || '.' || quote_ident(tablename)", TABLE_PRIVILEGES)}
       FROM pg_tables WHERE ${userSchema('schemaname')} AND ${adminCanUse('schemaname')}
      ORDER BY 1`, params);
  const matviews = (await hasCatalog(conn, 'pg_matviews'))
    ? `UNION SELECT quote_ident(schemaname) || '.' || quote_ident(matviewname) AS name FROM pg_matviews
        WHERE ${userSchema('schemaname')} AND ${adminCanUse('schemaname')}`
    : '';
  const views = await run(conn, 'Listing view privileges',
    `SELECT name, ${missingPrivilegeColumns('has_table_privilege', 'name', TABLE_PRIVILEGES)}
       FROM (SELECT quote_ident(schemaname) || '.' || quote_ident(viewname) AS name FROM pg_views
              WHERE ${userSchema('schemaname')} AND ${adminCanUse('schemaname')} ${matviews}) objs
      ORDER BY name`, params);
  const byPrivilege = (rows: Record<string, unknown>[], privileges: readonly string[], keep: (r: Record<string, unknown>, p: string) => boolean = () => true) =>
    new Map(privileges.map((p, i) => [p, rows.filter((r) => r[`p${i}`] === true && keep(r, p)).map((r) => String(r.name))]));
  const skipped: string[] = [];
  for (const r of schemas) if (r.external === true && r.p0 === true) skipped.push(`CREATE on external schema ${String(r.name)}`);
  views.forEach((r) => TABLE_PRIVILEGES.forEach((p, i) => {
    if (p !== 'SELECT' && r[`p${i}`] === true) skipped.push(`${p} on view ${String(r.name)}`);
  }));
  return {
    databases: byPrivilege(dbs, DATABASE_PRIVILEGES),
    schemas: byPrivilege(schemas, SCHEMA_PRIVILEGES, (r, p) => !(r.external === true && p === 'CREATE')),
    tables: byPrivilege(tables, TABLE_PRIVILEGES),
    views: byPrivilege(views, ['SELECT']),
    skipped,
  };
}

const sample = (names: string[]) => names.slice(0, 5).join(', ') + (names.length > 5 ? `, ... (${names.length})` : '');

function describeMissing(m: Partial<Missing>): string[] {
  const out: string[] = [];
  if (m.groups?.length) out.push(`membership of ${sample(m.groups)}`);
  const kinds = [['database', m.databases], ['schema', m.schemas], ['table', m.tables], ['view', m.views]] as const;
  for (const [kind, map] of kinds) {
    for (const [p, names] of map ?? []) if (names.length) out.push(`${p} on ${kind} ${sample(names)}`);
  }
  return out;
}

/**
 * Give `clone` what `current` has and `clone` lacks, per object kind, as Redshift takes it:
 * group memberships first (so privileges arriving through those groups are not duplicated),
 * then CREATE/USAGE on schemas (USAGE only on external schemas: Redshift's documented way to
 * share Spectrum tables is GRANT USAGE ON SCHEMA; CREATE there, and Lake Formation permissions,
 * are not copied and are named in a warning), SELECT/INSERT/UPDATE/DELETE/REFERENCES on tables,
 * SELECT on views and materialized views (what a view accepts; other privileges on views are
 * named in a warning). Then check again: PostgreSQL only warns when a GRANT grants nothing (an
 * admin without the grant option), so a copy is trusted only once nothing is missing any more.
 * `q` is the server-quoted clone name. Runs inside the caller's transaction; database privileges
 * are left to copyDatabasePrivileges, after the commit.
 */
export async function copyPrivileges(conn: Client, current: string, clone: string, q: string, log?: Logger): Promise<CopyCounts> {
  const counts: CopyCounts = { groups: 0, databaseGrants: 0, schemaGrants: 0, tableGrants: 0 };
  for (const g of await missingGroups(conn, current, clone)) {
    await run(conn, `Adding the alternate user to group ${g}`, `ALTER GROUP ${g} ADD USER ${q}`);
    counts.groups++;
  }
  const before = await missingPrivileges(conn, current, clone);
  for (const [p, names] of before.schemas) {
    for (const part of chunks(names, GRANT_CHUNK)) {
      await run(conn, `Granting ${p} on ${part.length} schema(s)`, `GRANT ${p} ON SCHEMA ${part.join(', ')} TO ${q}`);
      counts.schemaGrants += part.length;
    }
  }
  for (const [kind, map] of [['table(s)', before.tables], ['view(s)', before.views]] as const) {
    for (const [p, names] of map) {
      for (const part of chunks(names, GRANT_CHUNK)) {
        await run(conn, `Granting ${p} on ${part.length} ${kind}`, `GRANT ${p} ON TABLE ${part.join(', ')} TO ${q}`);
        counts.tableGrants += part.length;
      }
    }
  }
  if (before.skipped.length) {
    log?.warn('privileges this object kind does not take on Redshift were not copied', { username: clone, skipped: before.skipped.slice(0, 20) });
  }

  const again = await missingPrivileges(conn, current, clone);
  const after = describeMissing({ groups: await missingGroups(conn, current, clone), schemas: again.schemas, tables: again.tables, views: again.views });
  if (after.length) {
    throw new PrivilegeError(
      `The admin user could not give "${clone}" everything "${current}" has; still missing: ${after.join('; ')}.`,
      'Use an admin secret whose user is a superuser (or owns the objects / holds the grant options); nothing was changed.',
    );
  }
  return counts;
}

/**
 * CREATE/TEMP on databases, one GRANT per database, each in its own transaction (Redshift has
 * no savepoints): one odd database (e.g. a datashare consumer database, which takes no GRANT)
 * cannot fail the others. Run after the main transaction committed; what is still missing at
 * the end is reported with each database's own error.
 */
export async function copyDatabasePrivileges(conn: Client, current: string, clone: string, q: string): Promise<number> {
  const before = await missingPrivileges(conn, current, clone);
  const failures: string[] = [];
  let granted = 0;
  for (const [p, names] of before.databases) {
    for (const db of names) {
      try {
        await run(conn, `Granting ${p} on database ${db}`, `GRANT ${p} ON DATABASE ${db} TO ${q}`);
        granted++;
      } catch (err) {
        failures.push(describe(err));
      }
    }
  }
  const after = describeMissing({ databases: (await missingPrivileges(conn, current, clone)).databases });
  if (after.length) {
    throw new PrivilegeError(
      `The admin user could not give "${clone}" every database privilege "${current}" has; still missing: ${after.join('; ')}` +
        `${failures.length ? ` (${failures.slice(0, 3).join(' | ')})` : ''}. "${clone}" exists with its new password and every other privilege; AWSCURRENT is unchanged.`,
      'Give the admin user the right to grant on those databases (or grant them yourself), then let the rotation retry.',
    );
  }
  return granted;
}

export const REDSHIFT_PROFILE: EngineProfile = {
  name: 'redshift',
  engines: ['redshift'],
  defaultPort: REDSHIFT_DEFAULT_PORT,
  defaultDatabase: REDSHIFT_DEFAULT_DATABASE,
  username: { maxLength: REDSHIFT_MAX_USERNAME_BYTES, unit: 'UTF-8 bytes' },
  password: { policy: redshiftPasswordPolicy, validate: validateRedshiftPassword },
};

export const redshiftEngine: DatabaseEngine<Client> = defineEngine<Client>({
  profile: REDSHIFT_PROFILE,
  preflight: () => import('./preflight').then((m) => m.redshiftPreflight),

  async connect(secret: DbSecret, options: ConnectOptions): Promise<Client> {
    return connectPg(secret, options, {
      product: 'Redshift',
      defaultPort: REDSHIFT_DEFAULT_PORT,
      defaultDatabase: REDSHIFT_DEFAULT_DATABASE,
      classify: (err, s, port) => classifyConnectError(err, `${s.host}:${port}`, [s.password]),
      serverTimeout: 'set',
    });
  },

  async close(conn: Client): Promise<void> {
    await closePg(conn);
  },

  async setOwnPassword(conn: Client, change: PasswordChange, { log }: EngineContext): Promise<void> {
    validateRedshiftPassword(change.newPassword);
    const q = await quoted(conn, change.username, change.newPassword);
    await run(conn, `Changing the password of ${change.username}`, `ALTER USER ${q.user} PASSWORD ${q.password}`, undefined,
      [q.password, change.newPassword]);
    log.debug('ALTER USER ... PASSWORD done', { username: change.username });
  },

  /** Pre-created pairs (`alternateUsername`): check both users, set only the alternate's password (precreated.ts). */
  setAlternatePassword(conn, change, ctx) { return import('./precreated').then((m) => m.setPrecreatedPassword(this, conn, change, ctx, { run, missingGroups, missingPrivileges })); },

  async upsertAlternateUser(conn: Client, change: AlternateUserChange, { log }: EngineContext): Promise<void> {
    validateRedshiftPassword(change.newPassword);
    let q: { user: string; password: string };
    let exists = false;
    let counts: CopyCounts;
    await run(conn, 'BEGIN', 'BEGIN');
    try {
      const [template] = await run(conn, 'Looking up the current user', 'SELECT usesuper FROM pg_user WHERE usename = $1', [change.currentUser]);
      if (!template) {
        throw new RotationStateError(`The current user "${change.currentUser}" does not exist in pg_user.`);
      }
      if (template.usesuper === true) {
        throw new RotationError('UNSUPPORTED',
          `The current user "${change.currentUser}" is a superuser; its privileges cannot be copied to "${change.alternateUser}".`,
          { remedy: 'Use the single-user strategy (remove masterarn) for superusers.' });
      }
      q = await quoted(conn, change.alternateUser, change.newPassword);
      exists = (await run(conn, 'Looking up the alternate user', 'SELECT 1 FROM pg_user WHERE usename = $1', [change.alternateUser])).length > 0;
      if (!exists) {
        await run(conn, `Creating user ${change.alternateUser}`, `CREATE USER ${q.user} PASSWORD ${q.password}`, undefined, [q.password, change.newPassword]);
      }
      counts = await copyPrivileges(conn, change.currentUser, change.alternateUser, q.user, log);
      if (exists) {
        await run(conn, `Changing the password of ${change.alternateUser}`, `ALTER USER ${q.user} PASSWORD ${q.password}`, undefined,
          [q.password, change.newPassword]);
      }
      await run(conn, 'COMMIT', 'COMMIT');
    } catch (err) {
      await conn.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    counts.databaseGrants = await copyDatabasePrivileges(conn, change.currentUser, change.alternateUser, q.user);
    log.info(exists ? 'alternate user updated' : 'alternate user created', {
      username: change.alternateUser,
      template: change.currentUser,
      ...counts,
    });
  },

  /**
   * Redshift has no place for a marker (COMMENT ON takes tables, columns, constraints, databases
   * and views, not users), so the proof is the capability check alone: the existing alternate
   * user must be a user (not only a group of that name), not a superuser or CREATEDB unless the
   * current user is, in no group the current user is not in, and hold no database, schema,
   * table or view privilege in this database that the current user lacks.
   */
  async checkAlternateUser(conn: Client, change: AlternateUserChange, { log }: EngineContext): Promise<void> {
    const { currentUser, alternateUser } = change;
    const users = await run(conn, 'Looking up the current and alternate users',
      'SELECT usename, usesuper, usecreatedb FROM pg_user WHERE usename = $1 OR usename = $2', [currentUser, alternateUser]);
    const alt = users.find((u) => u.usename === alternateUser);
    const refuse = `Refusing to change the existing "${alternateUser}" for a secret whose current user is "${currentUser}"`;
    if (!alt) {
      const group = await run(conn, 'Looking up groups', 'SELECT 1 FROM pg_group WHERE groname = $1', [alternateUser]);
      if (group.length) {
        throw new RotationStateError(`${refuse}: it is a group, not a user that can log in. Nothing was changed.`,
          `Rename the group, or use another username for this secret.`);
      }
      return;
    }
    const cur = users.find((u) => u.usename === currentUser);
    if (!cur) throw new RotationStateError(`The current user "${currentUser}" does not exist in pg_user.`);
    const reasons: string[] = [];
    if (alt.usesuper === true && cur.usesuper !== true) reasons.push(`superuser (CREATEUSER), which "${currentUser}" is not`);
    if (alt.usecreatedb === true && cur.usecreatedb !== true) reasons.push(`CREATEDB, which "${currentUser}" lacks`);
    const groups = await missingGroups(conn, alternateUser, currentUser);
    // Privileges the copy skips by design (CREATE on an external schema, INSERT/UPDATE/DELETE/
    // REFERENCES on a view: nothing on Redshift uses them) are not counted either.
    reasons.push(...describeMissing({ groups, ...(await missingPrivileges(conn, alternateUser, currentUser)) }));
    if (reasons.length) {
      throw new PrivilegeError(
        `${refuse}: it holds what "${currentUser}" does not: ${reasons.join('; ')}. It is not this pair's alternate user, and its password must not be reset. Nothing was changed.`,
        `If "${alternateUser}" really is "${currentUser}"'s alternate, revoke from it what "${currentUser}" lacks (or grant that to "${currentUser}"); otherwise use another username for this secret.`,
      );
    }
    log.info('the existing alternate user holds nothing the current user lacks', { username: alternateUser, template: currentUser });
  },

  async check(conn: Client): Promise<void> {
    await run(conn, 'The check query', 'SELECT 1');
  },

});

/**
 * The Redshift rotator: the framework's DatabaseRotator with Redshift's engine (whose
 * passwordPolicy checks Redshift's rules before a password is generated) and Redshift's lookup
 * of managed admin secrets.
 */
export class RedshiftRotator extends DatabaseRotator<Client> {
  /** Admin secrets managed by Redshift (credentials only) are traced through the Redshift APIs. */
  constructor(engine: DatabaseEngine<Client> = redshiftEngine, options: DatabaseRotatorOptions = {}) {
    super(engine, { managedAdmin: redshiftManagedAdminLookup(), ...options });
  }
}
