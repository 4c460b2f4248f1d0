/**
 * A per-invocation set of sensitive strings. Everything the framework reads from Secrets Manager
 * (every secret string, every password inside it, the RotationToken, generated passwords) is
 * registered here; log lines and error messages pass through scrub() before they leave the
 * function, so even a driver error that echoes a password cannot leak it.
 */
export class Redactor {
  private readonly values = new Set<string>();
  /** The values longest first, so a password inside a registered secret string is not left half-scrubbed. */
  private sorted: string[] = [];

  /** Register a value to be scrubbed. Very short values are ignored (they would scrub noise). */
  add(value: unknown): void {
    if (typeof value !== 'string' || value.length < 4) return;
    const forms = [value];
    // JSON-encoded forms appear when a secret is serialised inside a larger string.
    forms.push(JSON.stringify(value).slice(1, -1));
    const uri = safeEncode(value);
    if (uri) forms.push(uri);
    // SQL literal forms, in case a driver echoes statement text: quotes doubled, backslashes escaped.
    const sql = value.replace(/'/g, "''");
    forms.push(sql, sql.replace(/\\/g, '\\\\'));
    for (const f of forms) this.values.add(f);
    this.sorted = [...this.values].sort((a, b) => b.length - a.length);
  }

  /** Register a whole secret string and every string field of it when it is JSON. */
  addSecretString(secretString: string): void {
    this.add(secretString);
    try {
      const parsed: unknown = JSON.parse(secretString);
      collectSensitive(parsed, (s) => this.add(s));
    } catch {
      // not JSON: the whole string is the secret, already added
    }
  }

  scrub(text: string): string {
    if (this.values.size === 0) return text;
    let out = text;
    for (const v of this.sorted) {
      if (out.includes(v)) out = out.split(v).join('***');
    }
    // JSON.parse errors quote a slice of their input (`Unexpected token 'h', "hunter2hun"... is not
    // valid JSON`): a slice of a secret matches no registered value, so hide it, and its first
    // character, when it belongs to one.
    return out.replace(JSON_EXCERPT, (match, before: string, excerpt: string, after: string) =>
      excerpt === '***' || this.sorted.some((v) => v.includes(excerpt))
        ? `Unexpected token, ${before ?? ''}"***"${after ?? ''} is not valid JSON`
        : match,
    );
  }
}

/** V8's JSON.parse message quoting the input: all of it up to 20 characters, else 20 around the error. */
const JSON_EXCERPT = /(?:Unexpected token '.+?', )?(\.\.\.)?"([\s\S]{1,20}?)"(\.\.\.)? is not valid JSON/g;

/** Keys whose values are credentials. Other string fields (host, username, engine) stay readable. */
const SENSITIVE_KEY = /pass|pwd|secret|token|key|credential|private/i;

/** Every string (and number) under a credential-like key, at any depth below it. */
function collectSensitive(v: unknown, add: (s: string) => void, sensitive = false): void {
  if (typeof v === 'string' || typeof v === 'number') {
    if (sensitive) add(String(v));
    return;
  }
  if (Array.isArray(v)) {
    for (const item of v) collectSensitive(item, add, sensitive);
    return;
  }
  if (v && typeof v === 'object') {
    for (const [k, val] of Object.entries(v)) collectSensitive(val, add, sensitive || SENSITIVE_KEY.test(k));
  }
}

function safeEncode(v: string): string | undefined {
  try {
    return encodeURIComponent(v);
  } catch {
    return undefined;
  }
}
