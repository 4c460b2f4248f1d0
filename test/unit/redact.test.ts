import { describe, expect, it } from 'vitest';
import { Logger } from '../../src/log';
import { Redactor } from '../../src/redact';

describe('Redactor', () => {
  it('scrubs a registered secret string and the credentials inside it, keeping metadata readable', () => {
    const r = new Redactor();
    const secret = JSON.stringify({ engine: 'postgres', host: 'db.example', username: 'app', password: 'p@ss"w\\ord;' });
    r.addSecretString(secret);
    const msg = `failed for app@db.example with p@ss"w\\ord; and ${secret}`;
    const out = r.scrub(msg);
    expect(out).not.toContain('p@ss"w\\ord;');
    expect(out).toContain('app@db.example');
    expect(out).toContain('***');
  });

  it('scrubs JSON-escaped and URI-encoded forms of a password', () => {
    const r = new Redactor();
    r.add('a"b\\c/d@e f');
    expect(r.scrub(JSON.stringify({ x: 'a"b\\c/d@e f' }))).not.toContain('a\\"b');
    expect(r.scrub(`mongodb://u:${encodeURIComponent('a"b\\c/d@e f')}@h`)).not.toContain(encodeURIComponent('a"b\\c/d@e f'));
  });

  it('ignores very short values so it does not scrub noise', () => {
    const r = new Redactor();
    r.add('ab');
    expect(r.scrub('abc')).toBe('abc');
  });

  it('Logger writes one JSON object per line with context and scrubs secrets', () => {
    const lines: string[] = [];
    const r = new Redactor();
    r.add('TopSecretValue');
    const log = new Logger((l) => lines.push(l), { secretId: 'arn:x' }, r, 'debug').child({ step: 'setSecret' });
    log.info('message mentioning TopSecretValue', { username: 'app' });
    expect(lines).toHaveLength(1);
    const rec = JSON.parse(lines[0]);
    expect(rec).toMatchObject({ level: 'INFO', secretId: 'arn:x', step: 'setSecret', username: 'app' });
    expect(lines[0]).not.toContain('TopSecretValue');
  });

  it('Logger honours the minimum level', () => {
    const lines: string[] = [];
    const log = new Logger((l) => lines.push(l), {}, new Redactor(), 'warn');
    log.info('hidden');
    log.debug('hidden');
    log.warn('shown');
    expect(lines.map((l) => JSON.parse(l).message)).toEqual(['shown']);
  });
});

describe('Redactor SQL forms', () => {
  it('scrubs the SQL literal forms of a password (quotes doubled, backslashes escaped)', () => {
    const r = new Redactor();
    r.add("it's\\secret");
    expect(r.scrub("ALTER ROLE x PASSWORD 'it''s\\secret'")).toBe("ALTER ROLE x PASSWORD '***'");
    expect(r.scrub("ALTER ROLE x PASSWORD E'it''s\\\\secret'")).toBe("ALTER ROLE x PASSWORD E'***'");
  });
});

describe('Redactor completeness', () => {
  it('registers every value below a credential-like key, nested or numeric', () => {
    const r = new Redactor();
    r.addSecretString(JSON.stringify({ host: 'db.example', credentials: { user: 'app', value: 'NestedSecret-1' }, passcode: 12345678 }));
    const out = r.scrub('NestedSecret-1 12345678 app db.example');
    expect(out).toBe('*** *** app db.example');
  });

  it('hides the slice of a secret that a JSON.parse error quotes, and its first character', () => {
    const r = new Redactor();
    const secret = 'hunter2-hunter2-hunter2';
    r.addSecretString(secret);
    const message = (() => {
      try {
        JSON.parse(secret);
      } catch (err) {
        return (err as Error).message;
      }
      return '';
    })();
    expect(message).toContain('"hunter2-hu"...'); // what V8 says
    const out = r.scrub(`Secret "app/db" (AWSCURRENT): ${message}`);
    expect(out).toBe('Secret "app/db" (AWSCURRENT): Unexpected token, "***"... is not valid JSON');
    // A whole short input, already scrubbed, keeps no first character either.
    r.add('short-pw');
    expect(r.scrub(`Unexpected token 's', "short-pw" is not valid JSON`)).toBe('Unexpected token, "***" is not valid JSON');
    // Input that is no secret is left alone.
    expect(r.scrub(`Unexpected token 'o', "not a secret" is not valid JSON`)).toBe(`Unexpected token 'o', "not a secret" is not valid JSON`);
  });

  it('Logger scrubs a field holding a serialised secret and still writes valid JSON', () => {
    const lines: string[] = [];
    const r = new Redactor();
    const pw = 'ends-with-backslash\\';
    const secret = JSON.stringify({ username: 'app', password: pw });
    r.addSecretString(secret);
    new Logger((l) => lines.push(l), {}, r, 'debug').info('oops', { detail: `value was ${JSON.stringify(secret)}`, other: `raw ${pw}"` });
    const rec = JSON.parse(lines[0]);
    expect(rec.detail).toBe('value was "***"');
    expect(rec.other).toBe('raw ***"');
    expect(lines[0]).not.toContain('ends-with-backslash');
  });
});
