/**
 * Read-only preflight checks for Amazon Redshift (src/ops/hooks.ts): catalog queries only, in the
 * SQL subset Redshift and PostgreSQL share (pg_user, pg_group, pg_class/pg_namespace ACLs), on
 * AWSCURRENT's connection (single user) or the admin's (alternating users).
 *
 * - single user: ALTER USER <self> PASSWORD needs no privilege in Redshift; the check only
 *   confirms the session is the secret's user.
 * - alternating users: CREATE USER / ALTER USER need a superuser, or (RBAC) the CREATE USER and
 *   ALTER USER system privileges (svv_system_privileges, granted directly or through a role:
 *   read only where that view exists; UNVERIFIED against a live cluster); ALTER GROUP ... ADD USER
 *   (copying group memberships) needs a superuser; GRANT on a schema, table or view the current
 *   user holds privileges on needs the admin to own it or to hold that privilege WITH GRANT OPTION
 *   (read from the objects' ACLs). Database-level CREATE/TEMP are not pre-checked (the engine
 *   copies them after the commit and names any it could not give).
 */
import type { Client } from 'pg';
import { type AdminPrivilegesInput, type Check, fail, type OwnPasswordInput, pass, type PreflightHooks } from '../../src/db';

/** ACL letters for the privileges the engine copies. */
const TABLE_LETTERS: Record<string, string> = { r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE', x: 'REFERENCES' };
const SCHEMA_LETTERS: Record<string, string> = { U: 'USAGE', C: 'CREATE' };

export interface AclItem {
  /** The grantee's name; '' for PUBLIC. */
  grantee: string;
  group: boolean;
  /** privilege letter -> with grant option */
  privileges: Map<string, boolean>;
}

/** One aclitem as the server prints it: `name=arw(*)(slash)grantor`, a double-quoted name with "" for a quote, a `group ` prefix, or an empty name for PUBLIC. */
export function parseAclItem(text: string): AclItem | undefined {
  let s = text.trim();
  let group = false;
  if (s.startsWith('group ')) {
    group = true;
    s = s.slice(6);
  }
  let grantee = '';
  let i = 0;
  if (s[0] === '"') {
    i = 1;
    while (i < s.length) {
      if (s[i] === '"' && s[i + 1] === '"') {
        grantee += '"';
        i += 2;
      } else if (s[i] === '"') {
        i++;
        break;
      } else grantee += s[i++];
    }
  } else {
    while (i < s.length && s[i] !== '=') grantee += s[i++];
  }
  if (s[i] !== '=') return undefined;
  const slash = s.indexOf('/', i);
  const letters = s.slice(i + 1, slash < 0 ? undefined : slash);
  const privileges = new Map<string, boolean>();
  for (let k = 0; k < letters.length; k++) {
    if (letters[k] === '*') continue;
    privileges.set(letters[k], letters[k + 1] === '*');
  }
  return { grantee, group, privileges };
}

/** An aclitem[] as array_to_string(acl, ',') prints it (a quoted name may hold a comma: split outside quotes). */
export function parseAcl(text: string | null): AclItem[] {
  if (!text) return [];
  const items: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      items.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur) items.push(cur);
  return items.map(parseAclItem).filter((x): x is AclItem => x !== undefined);
}

async function ownPassword(conn: Client, input: OwnPasswordInput): Promise<Check[]> {
  const { rows } = await conn.query<{ me: string }>('SELECT current_user AS me');
  const user = input.current.username;
  const title = 'The user may change its own password (ALTER USER ... PASSWORD)';
  return rows[0]?.me === user
    ? [pass('single.own-password', title, `Redshift lets every user change its own password; the session is "${user}".`)]
    : [fail('single.own-password', title, `The session runs as "${rows[0]?.me}", not "${user}".`, 'STATE', 'Check the username in AWSCURRENT.')];
}

interface ObjectRow {
  kind: 'schema' | 'table';
  name: string;
  owner: string;
  acl: string | null;
}

async function adminPrivileges(admin: Client, input: AdminPrivilegesInput): Promise<Check[]> {
  const checks: Check[] = [];
  const cur = input.current.username;
  const alt = input.alternateUser;
  const { rows: [me] } = await admin.query<{ name: string; usesuper: boolean }>('SELECT usename AS name, usesuper FROM pg_user WHERE usename = current_user');
  const self = me?.name ?? input.adminUser;
  const superuser = me?.usesuper === true;
  const { rows: exists } = await admin.query('SELECT 1 FROM pg_user WHERE usename = $1', [alt]);
  const createTitle = `The admin may ${exists.length ? 'alter' : 'create'} "${alt}"`;
  if (superuser) {
    checks.push(pass('admin.create-user', createTitle, `"${self}" is a superuser.`));
    checks.push(pass('admin.copy-grants', `The admin may give "${alt}" the groups and privileges of "${cur}"`, 'A superuser may give every group membership and privilege.'));
    return checks;
  }
  // RBAC (Redshift): CREATE USER / ALTER USER system privileges, directly or through a role.
  const { rows: [rbac] } = await admin.query<{ n: string }>("SELECT count(*) AS n FROM pg_class WHERE relname = 'svv_system_privileges'");
  let system = new Set<string>();
  if (Number(rbac?.n) > 0) {
    const { rows } = await admin.query<{ p: string }>(
      `SELECT upper(system_privilege) AS p FROM svv_system_privileges
        WHERE (identity_type = 'user' AND identity_name = current_user)
           OR (identity_type = 'role' AND identity_name IN (SELECT role_name FROM svv_user_grants WHERE user_name = current_user))`);
    system = new Set(rows.map((r) => r.p));
  }
  const need = exists.length ? 'ALTER USER' : 'CREATE USER';
  checks.push(system.has(need)
    ? pass('admin.create-user', createTitle, `"${self}" holds the ${need} system privilege (RBAC).`)
    : fail('admin.create-user', createTitle, `"${self}" is not a superuser${Number(rbac?.n) > 0 ? ` and holds no ${need} system privilege` : ' (and this server has no RBAC system privileges)'}.`, 'PRIVILEGE',
        `Use the cluster's admin user (a superuser), or GRANT ${need} TO "${self}" (Redshift RBAC; directly or through a role).`));

  const missing: string[] = [];
  const { rows: groups } = await admin.query<{ name: string }>(
    `SELECT g.groname AS name FROM pg_group g, pg_user c WHERE c.usename = $1 AND c.usesysid = ANY (g.grolist) ORDER BY g.groname`, [cur]);
  for (const g of groups) missing.push(`membership of group "${g.name}" (ALTER GROUP needs a superuser)`);

  const { rows: objects } = await admin.query<ObjectRow>(
    `SELECT 'schema' AS kind, quote_ident(n.nspname) AS name, u.usename AS owner, array_to_string(n.nspacl, ',') AS acl
       FROM pg_namespace n LEFT JOIN pg_user u ON u.usesysid = n.nspowner
      WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' AND n.nspacl IS NOT NULL
     UNION ALL
     SELECT 'table' AS kind, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name, u.usename AS owner, array_to_string(c.relacl, ',') AS acl
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_user u ON u.usesysid = c.relowner
      WHERE c.relkind IN ('r', 'v', 'm') AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' AND c.relacl IS NOT NULL
      ORDER BY 1, 2`);
  let total = 0;
  for (const o of objects) {
    const acl = parseAcl(o.acl);
    const held = acl.find((a) => !a.group && a.grantee === cur);
    if (!held) continue;
    const mine = acl.find((a) => !a.group && a.grantee === self);
    const letters = o.kind === 'schema' ? SCHEMA_LETTERS : TABLE_LETTERS;
    for (const letter of held.privileges.keys()) {
      const privilege = letters[letter];
      if (!privilege) continue;
      total++;
      if (o.owner === self || mine?.privileges.get(letter) === true) continue;
      missing.push(`${privilege} on ${o.kind} ${o.name} (owner "${o.owner}")`);
    }
  }
  const copyTitle = `The admin may give "${alt}" the groups and privileges of "${cur}"`;
  checks.push(missing.length
    ? fail('admin.copy-grants', copyTitle, `"${self}" may not give ${missing.length}: ${missing.slice(0, 10).join('; ')}${missing.length > 10 ? '; ...' : ''}.`, 'PRIVILEGE',
        `Use a superuser admin, or have each object's owner GRANT the privilege to "${self}" WITH GRANT OPTION (group memberships always need a superuser).`)
    : pass('admin.copy-grants', copyTitle, `${groups.length} group(s); ${total} direct privilege(s) on schemas, tables and views, each owned by the admin or held WITH GRANT OPTION.`));
  return checks;
}

export const redshiftPreflight: PreflightHooks<Client> = { ownPassword, adminPrivileges };
