/**
 * A per-invocation set of sensitive strings. Everything the framework reads from Secrets Manager
 * (every secret string, every password inside it, the RotationToken, generated passwords) is
 * registered here; log lines and error messages pass through scrub() before they leave the
 * function, so even a driver error that echoes a password cannot leak it.
 */
export class Redactor {
  private readonly values = new Set<string>();

  /** Register a value to be scrubbed. Very short values are ignored (they would scrub noise). */
  add(value: unknown): void {
    if (typeof value !== 'string' || value.length < 4) return;
    this.values.add(value);
    // JSON-encoded forms appear when a secret is serialised inside a larger string.
    const json = JSON.stringify(value).slice(1, -1);
    if (json !== value) this.values.add(json);
    const uri = safeEncode(value);
    if (uri && uri !== value) this.values.add(uri);
    // SQL literal forms, in case a driver echoes statement text: quotes doubled, backslashes escaped.
    const sql = value.replace(/'/g, "''");
    if (sql !== value) this.values.add(sql);
    const sqlBackslash = sql.replace(/\\/g, '\\\\');
    if (sqlBackslash !== sql) this.values.add(sqlBackslash);
  }

  /** Register a whole secret string and every string field of it when it is JSON. */
  addSecretString(secretString: string): void {
    this.add(secretString);
    try {
      const parsed: unknown = JSON.parse(secretString);
      collectStrings(parsed, (s) => this.add(s), SENSITIVE_KEY);
    } catch {
      // not JSON: the whole string is the secret, already added
    }
  }

  scrub(text: string): string {
    if (this.values.size === 0) return text;
    let out = text;
    // Longest first, so a password inside a registered secret string is not left half-scrubbed.
    const sorted = [...this.values].sort((a, b) => b.length - a.length);
    for (const v of sorted) {
      if (out.includes(v)) out = out.split(v).join('***');
    }
    return out;
  }
}

/** Keys whose values are credentials. Other string fields (host, username, engine) stay readable. */
const SENSITIVE_KEY = /pass|pwd|secret|token|key|credential|private/i;

function collectStrings(v: unknown, add: (s: string) => void, keyFilter: RegExp, key = ''): void {
  if (typeof v === 'string') {
    if (keyFilter.test(key)) add(v);
    return;
  }
  if (Array.isArray(v)) {
    for (const item of v) collectStrings(item, add, keyFilter, key);
    return;
  }
  if (v && typeof v === 'object') {
    for (const [k, val] of Object.entries(v)) collectStrings(val, add, keyFilter, k);
  }
}

function safeEncode(v: string): string | undefined {
  try {
    return encodeURIComponent(v);
  } catch {
    return undefined;
  }
}
