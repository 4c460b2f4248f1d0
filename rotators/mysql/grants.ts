/**
 * Reading `SHOW GRANTS` output (MySQL 5.7/8/9, MariaDB) and re-targeting each statement at
 * another account. The privilege part of a statement is the server's own SQL (object names
 * already quoted by the server) and is kept verbatim; only the grantee is replaced, by an
 * account quoted here. Nothing is done with a string match on ` TO `: the statement is tokenised
 * (backtick identifiers with doubled backticks, quoted strings with doubled quotes or backslash
 * escapes), so names holding quotes, backslashes, `%`, ` TO ` or `?` cannot confuse it.
 */

/** What a SHOW GRANTS row becomes. */
export type GrantStatement =
  | {
      kind: 'grant' | 'revoke' | 'default-role';
      /** Up to and including the keyword before the grantee (`... TO`, `... FROM`, `... FOR`). */
      head: string;
      user: string;
      host: string;
      /** Kept trailing clauses: `WITH GRANT OPTION`, `WITH ADMIN OPTION`, MariaDB resource limits; '' if none. */
      tail: string;
    }
  | { kind: 'skip'; reason: string };

type TokKind = 'word' | 'quoted' | 'punct';
interface Tok {
  kind: TokKind;
  /** Decoded text (identifier or string contents) for quoted tokens; raw text otherwise. */
  value: string;
  start: number;
  end: number;
}

/** Split SQL into words, quoted tokens and punctuation (whitespace dropped). */
export function tokenize(sql: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '`' || c === "'" || c === '"') {
      const start = i;
      let value = '';
      i++;
      for (;;) {
        if (i >= sql.length) throw new GrantParseError('unterminated quoted name or string');
        const d = sql[i];
        if (d === c) {
          if (sql[i + 1] === c) {
            value += c;
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (d === '\\' && c !== '`') {
          // Backslash escapes apply to strings, not to backtick identifiers.
          const e = sql[i + 1];
          if (e === undefined) throw new GrantParseError('unterminated string');
          value += ESCAPES[e] ?? e;
          i += 2;
          continue;
        }
        value += d;
        i++;
      }
      toks.push({ kind: 'quoted', value, start, end: i });
      continue;
    }
    const word = /^[\p{L}\p{N}_$]+/u.exec(sql.slice(i));
    if (word) {
      toks.push({ kind: 'word', value: word[0], start: i, end: i + word[0].length });
      i += word[0].length;
      continue;
    }
    toks.push({ kind: 'punct', value: c, start: i, end: i + 1 });
    i++;
  }
  return toks;
}

const ESCAPES: Record<string, string> = { '0': '\0', n: '\n', r: '\r', t: '\t', b: '\b', Z: '\x1a' };

export class GrantParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GrantParseError';
  }
}

const isWord = (t: Tok | undefined, w: string) => t?.kind === 'word' && t.value.toUpperCase() === w;

/**
 * Parse one SHOW GRANTS row. `GRANT ... TO acct`, `REVOKE ... FROM acct` (MySQL partial revokes)
 * and MariaDB's `SET DEFAULT ROLE r FOR acct` are re-targetable; `GRANT PROXY` is skipped (it is
 * an impersonation right, not a privilege of the account's own), and so is anything else.
 *
 * After the grantee, MariaDB may print `IDENTIFIED BY PASSWORD '*hash'` / `IDENTIFIED VIA ...`
 * and `REQUIRE ...`: both are dropped (the password is set separately; the TLS requirement is
 * copied with ALTER USER ... REQUIRE). A `WITH ...` clause is kept as printed.
 */
export function parseGrant(sql: string): GrantStatement {
  const toks = tokenize(sql);
  let keyword: 'TO' | 'FROM' | 'FOR';
  let kind: 'grant' | 'revoke' | 'default-role';
  if (isWord(toks[0], 'GRANT')) {
    if (isWord(toks[1], 'PROXY')) return { kind: 'skip', reason: 'GRANT PROXY' };
    keyword = 'TO';
    kind = 'grant';
  } else if (isWord(toks[0], 'REVOKE')) {
    keyword = 'FROM';
    kind = 'revoke';
  } else if (isWord(toks[0], 'SET') && isWord(toks[1], 'DEFAULT') && isWord(toks[2], 'ROLE')) {
    keyword = 'FOR';
    kind = 'default-role';
  } else {
    return { kind: 'skip', reason: `unknown statement ${toks[0]?.value ?? ''}`.trim() };
  }
  const at = toks.findIndex((t, i) => i > 0 && isWord(t, keyword));
  if (at < 0) throw new GrantParseError(`no ${keyword} clause`);
  const userTok = toks[at + 1];
  if (!userTok || userTok.kind === 'punct') throw new GrantParseError('no grantee');
  let host = '%';
  let next = at + 2;
  if (toks[next]?.kind === 'punct' && toks[next].value === '@') {
    const hostTok = toks[next + 1];
    if (!hostTok || hostTok.kind === 'punct') throw new GrantParseError('no grantee host');
    host = hostTok.value;
    next += 2;
  }
  const withAt = toks.findIndex((t, i) => i >= next && isWord(t, 'WITH'));
  return {
    kind,
    head: sql.slice(0, toks[at].end),
    user: userTok.value,
    host,
    tail: withAt >= 0 ? sql.slice(toks[withAt].start).trim() : '',
  };
}

/** An account as MySQL and MariaDB print it: `user`@`host`, backticks doubled. */
export function quoteAccount(user: string, host: string): string {
  return `${quoteName(user)}@${quoteName(host)}`;
}

function quoteName(s: string): string {
  if (s.includes('\0')) throw new GrantParseError('a user or host name contains a NUL character');
  return '`' + s.replace(/`/g, '``') + '`';
}

/** The statement re-targeted at `user`@`host`. */
export function retarget(grant: Extract<GrantStatement, { head: string }>, user: string, host: string): string {
  return `${grant.head} ${quoteAccount(user, host)}${grant.tail ? ' ' + grant.tail : ''}`;
}
