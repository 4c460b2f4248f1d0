/**
 * What an account may do, read from its SHOW GRANTS rows (MySQL 5.7/8/9, MariaDB), and what one
 * account holds that another lacks: the capability half of checkAlternateUser's pair proof.
 *
 * Privileges are compared per level: a privilege on `db`.`t` is covered by the same privilege (or
 * ALL PRIVILEGES) on `db`.`t`, `db`.* or *.*; a column privilege also by the table privilege.
 * GRANT OPTION is compared per level the same way. Role grants (MySQL 8 `role`@`host`, MariaDB
 * `role`) with their ADMIN OPTION, PROXY grants, and MySQL partial revokes are compared as sets.
 * A database name with wildcards (`db\_%`.*) is compared literally: the check may refuse more
 * than it must, never less. Anything the parser does not understand counts as a capability the
 * other account lacks.
 */
import { parseGrant, tokenize } from './grants';

type Tok = ReturnType<typeof tokenize>[number];

export interface Capabilities {
  /** object key -> privileges held on it (upper case; column privileges as `SELECT(col)`). */
  privileges: Map<string, Set<string>>;
  /** object keys held WITH GRANT OPTION. */
  grantOption: Set<string>;
  /** role key -> held WITH ADMIN OPTION. */
  roles: Map<string, boolean>;
  /** PROXY grants (object text, with ` WITH GRANT OPTION` when so). */
  proxies: Set<string>;
  /** MySQL partial revokes: `PRIV|object key`. */
  revokes: Set<string>;
  /** Rows that could not be read (kept verbatim-ish for the message). */
  unreadable: string[];
}

const GLOBAL = key('', '*', '*');

function key(kind: string, db: string, obj: string): string {
  return JSON.stringify([kind, db, obj]);
}

function describeKey(k: string): string {
  const [kind, db, obj] = JSON.parse(k) as [string, string, string];
  const q = (s: string) => (s === '*' ? '*' : '`' + s.replace(/`/g, '``') + '`');
  return `${kind ? kind + ' ' : ''}${q(db)}${obj === '' ? '' : '.' + q(obj)}`;
}

const isWord = (t: Tok | undefined, w: string) => t?.kind === 'word' && t.value.toUpperCase() === w;
const isPunct = (t: Tok | undefined, p: string) => t?.kind === 'punct' && t.value === p;

/** Splits tokens at top-level commas. */
function splitCommas(toks: Tok[]): Tok[][] {
  const parts: Tok[][] = [[]];
  let depth = 0;
  for (const t of toks) {
    if (isPunct(t, '(')) depth++;
    if (isPunct(t, ')')) depth--;
    if (depth === 0 && isPunct(t, ',')) parts.push([]);
    else parts[parts.length - 1].push(t);
  }
  return parts.filter((p) => p.length > 0);
}

/** `[TABLE|PROCEDURE|FUNCTION|PACKAGE [BODY]] db.obj | db.* | *.* | obj` -> key. */
function objectKey(toks: Tok[]): string | undefined {
  let i = 0;
  const kinds: string[] = [];
  while (toks[i]?.kind === 'word' && ['TABLE', 'PROCEDURE', 'FUNCTION', 'PACKAGE', 'BODY'].includes(toks[i].value.toUpperCase())) {
    kinds.push(toks[i].value.toUpperCase());
    i++;
  }
  const kind = kinds.filter((k) => k !== 'TABLE').join(' ');
  const name = (t: Tok | undefined) => (t === undefined ? undefined : isPunct(t, '*') ? '*' : t.kind === 'punct' ? undefined : t.value);
  const first = name(toks[i]);
  if (first === undefined) return undefined;
  if (isPunct(toks[i + 1], '.')) {
    const second = name(toks[i + 2]);
    if (second === undefined || toks.length !== i + 3) return undefined;
    return key(kind, first, second);
  }
  if (toks.length !== i + 1) return undefined;
  // `*` alone is the current database, a bare name a table in it: compare literally.
  return key(kind, '', first);
}

/** `SELECT (`a`, `b`)` -> ['SELECT(a)', 'SELECT(b)']; `CREATE TEMPORARY TABLES` -> ['CREATE TEMPORARY TABLES']. */
function privilegeNames(part: Tok[]): string[] | undefined {
  const open = part.findIndex((t) => isPunct(t, '('));
  const words = (open < 0 ? part : part.slice(0, open));
  if (words.length === 0 || words.some((t) => t.kind !== 'word')) return undefined;
  let name = words.map((t) => t.value.toUpperCase()).join(' ');
  if (name === 'ALL') name = 'ALL PRIVILEGES';
  if (open < 0) return [name];
  if (!isPunct(part[part.length - 1], ')')) return undefined;
  const cols = splitCommas(part.slice(open + 1, -1));
  if (cols.some((c) => c.length !== 1 || c[0].kind === 'punct')) return undefined;
  return cols.map((c) => `${name}(${c[0].value.toLowerCase()})`);
}

function roleKey(toks: Tok[]): string | undefined {
  const name = toks[0];
  if (!name || name.kind === 'punct') return undefined;
  if (toks.length === 1) return JSON.stringify([name.value]);
  if (toks.length === 3 && isPunct(toks[1], '@') && toks[2].kind !== 'punct') return JSON.stringify([name.value, toks[2].value]);
  return undefined;
}

function describeRole(k: string): string {
  const [name, host] = JSON.parse(k) as [string, string?];
  return host === undefined ? `\`${name}\`` : `\`${name}\`@\`${host}\``;
}

/** Reads the SHOW GRANTS rows of one account. */
export function capabilitiesOf(rows: string[]): Capabilities {
  const caps: Capabilities = { privileges: new Map(), grantOption: new Set(), roles: new Map(), proxies: new Set(), revokes: new Set(), unreadable: [] };
  for (const row of rows) {
    try {
      if (!readRow(row, caps)) caps.unreadable.push(shown(row));
    } catch {
      caps.unreadable.push(shown(row));
    }
  }
  return caps;
}

/**
 * An unreadable row as an error message may quote it: without MariaDB's `IDENTIFIED BY PASSWORD
 * '<hash>'` / `IDENTIFIED VIA ... USING '<hash>'` (a password hash is a secret too), cut short.
 */
function shown(row: string): string {
  return row.replace(/\sIDENTIFIED\b[\s\S]*$/i, ' IDENTIFIED ...').slice(0, 120);
}

function readRow(row: string, caps: Capabilities): boolean {
  const toks = tokenize(row);
  if (isWord(toks[0], 'GRANT') && isWord(toks[1], 'PROXY')) {
    const to = toks.findIndex((t) => isWord(t, 'TO'));
    if (to < 0) return false;
    const grantOption = /\bWITH\s+GRANT\s+OPTION\s*$/i.test(row);
    caps.proxies.add(row.slice(toks[2].start, toks[to].start).trim() + (grantOption ? ' WITH GRANT OPTION' : ''));
    return true;
  }
  const g = parseGrant(row);
  if (g.kind === 'skip') return false;
  if (g.kind === 'default-role') return true; // which granted roles are active at login: not a capability
  const head = tokenize(g.head).slice(1, -1); // without GRANT/REVOKE and TO/FROM
  const on = head.findIndex((t) => isWord(t, 'ON'));
  const withGrant = /^WITH\b.*\bGRANT\s+OPTION\b/i.test(g.tail);
  if (on < 0) {
    if (g.kind !== 'grant') return false;
    const admin = /^WITH\b.*\bADMIN\s+OPTION\b/i.test(g.tail);
    for (const part of splitCommas(head)) {
      const r = roleKey(part);
      if (r === undefined) return false;
      caps.roles.set(r, admin || caps.roles.get(r) === true);
    }
    return true;
  }
  const obj = objectKey(head.slice(on + 1));
  if (obj === undefined) return false;
  const privs: string[] = [];
  for (const part of splitCommas(head.slice(0, on))) {
    const names = privilegeNames(part);
    if (names === undefined) return false;
    privs.push(...names);
  }
  if (g.kind === 'revoke') {
    for (const p of privs) caps.revokes.add(`${p}|${obj}`);
    return true;
  }
  const held = caps.privileges.get(obj) ?? new Set<string>();
  for (const p of privs) if (p !== 'USAGE') held.add(p);
  caps.privileges.set(obj, held);
  if (withGrant) caps.grantOption.add(obj);
  return true;
}

/** The levels whose privileges cover `obj`: itself, its database, the global level. */
function coveringKeys(obj: string): string[] {
  const [kind, db, name] = JSON.parse(obj) as [string, string, string];
  const keys = [obj];
  if (name !== '*' && db !== '*') keys.push(key('', db, '*'));
  if (kind !== '' && name !== '*') keys.push(key(kind, db, name), key('', db, name));
  keys.push(GLOBAL);
  return [...new Set(keys)];
}

function holds(caps: Capabilities, obj: string, privilege: string): boolean {
  const base = privilege.replace(/\(.*\)$/, '');
  return coveringKeys(obj).some((k) => {
    const held = caps.privileges.get(k);
    return !!held && (held.has(privilege) || held.has(base) || (held.has('ALL PRIVILEGES') && base !== 'PROXY'));
  });
}

/**
 * What `alt` holds that `cur` does not, one human-readable item each (at most `limit`); empty
 * when `cur` covers everything `alt` holds.
 */
export function excessCapabilities(alt: Capabilities, cur: Capabilities, limit = 5): string[] {
  const out: string[] = [];
  for (const row of alt.unreadable) out.push(`a grant this check cannot read (${row})`);
  for (const [obj, privs] of alt.privileges) {
    const missing = [...privs].filter((p) => !holds(cur, obj, p));
    if (missing.length) out.push(`${missing.join(', ')} ON ${describeKey(obj)}`);
  }
  for (const obj of alt.grantOption) {
    if (!coveringKeys(obj).some((k) => cur.grantOption.has(k))) out.push(`GRANT OPTION ON ${describeKey(obj)}`);
  }
  for (const [role, admin] of alt.roles) {
    if (!cur.roles.has(role)) out.push(`role ${describeRole(role)}`);
    else if (admin && !cur.roles.get(role)) out.push(`ADMIN OPTION on role ${describeRole(role)}`);
  }
  for (const proxy of alt.proxies) if (!cur.proxies.has(proxy)) out.push(`GRANT PROXY ${proxy}`);
  for (const revoke of cur.revokes) {
    if (!alt.revokes.has(revoke)) {
      const [p, obj] = revoke.split('|');
      out.push(`${p} ON ${describeKey(obj)} (revoked from the current user only)`);
    }
  }
  return out.slice(0, limit).concat(out.length > limit ? [`${out.length - limit} more`] : []);
}
