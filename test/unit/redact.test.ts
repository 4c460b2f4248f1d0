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
    expect(rec).toMatchObject({ level: 'info', secretId: 'arn:x', step: 'setSecret', username: 'app' });
    expect(lines[0]).not.toContain('TopSecretValue');
  });

  it('Logger honours the minimum level', () => {
    const lines: string[] = [];
    const log = new Logger((l) => lines.push(l), {}, new Redactor(), 'warn');
    log.info('hidden');
    log.debug('hidden');
    log.warn('shown');
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(['shown']);
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
