/**
 * The `iconv-lite` stand-in of the MySQL bundle (scripts/shims/iconv-lite.ts):
 * - CESU-8 and Node's encodings: parity with the real iconv-lite (still in node_modules for the
 *   tests) on strings chosen to hit every width (ASCII, Latin, CJK, astral, lone and reversed
 *   surrogates, U+FEFF, NUL), split at every byte (and one byte at a time), through one reused
 *   decoder as mysql2 caches it, and on malformed bytes.
 * - Every other MySQL character set: ASCII decodes as iconv-lite does (proved byte by byte for
 *   the list); anything else, and every encoder, throws a message naming the encoding and the fix.
 * - mysql2 uses nothing else of iconv-lite, and nothing else in the MySQL bundle requires it.
 * - On the real MariaDB 10.11 server: the built MySQL bundle, alone in a fresh process, rotates a
 *   hostile unicode user (single user, and alternating with the RDS-like admin); mysql2 bundled
 *   with the alias decodes a utf8mb3 session (CESU-8) exactly as the real driver does, and refuses
 *   non-ASCII text of a cp1251 session loudly.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import * as shim from '../scripts/shims/iconv-lite';
import { type Bundle, buildBundles, esbuildOptions, packagesOf } from '../scripts/build';
import { engineByName } from '../scripts/engines';
import { createHandler } from '../src';
import { type SecretsManagerServer, startSecretsManagerServer } from '../src/testing';
import { runBundle } from './support/bundle-run';
import { createRdsLikeMaster } from './support/mariadb';
import type { MariaDbInfo } from './support/provided';
import { assertNoLeaksInAll, createRotationHarness } from './support/rotation-harness';

const ROOT = join(__dirname, '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const real = require('iconv-lite') as typeof shim & { encode(s: string, e: string): Buffer };
const MYSQL2_ENCODINGS = require(join(ROOT, 'node_modules/mysql2/lib/constants/charset_encodings.js')) as Array<string | undefined>;

const STRINGS = [
  '', 'a', 'plain ASCII 0123 ~!@#$%^&*()', 'café Ünïcödé ß ÿ', 'Ā ɐ ʼ ̀ Ͱ ߿', 'ࠀ 中文 日本語 한국어 ￿ ￾',
  '😀', 'emoji 😀🎉👍🏽 mixed ü中', '𝄞𐍈𠜎 astral', '\u{10ffff}\u{10000}', 'lone high \ud83d end', 'lone low \ude00 end',
  'reversed \ude00\ud83d pair', '\ud83d', '\udfff', 'ends with high \ud800', '\ufeffBOM first', 'mid \ufeff BOM', 'NUL \u0000 byte',
  `Shim q'"\\; %_?ü中😀 --$$`, 'x'.repeat(5000) + '😀' + 'é'.repeat(3000),
];

/** iconv-lite's decoder without its first-write BOM stripping (data, not a file: the stand-in never strips). */
const realDecode = (bytes: Buffer, chunks: Buffer[] = [bytes]): string => {
  const d = real.getDecoder('cesu8', { stripBOM: false });
  return chunks.map((c) => d.write(c)).join('') + (d.end() || '');
};
const shimDecode = (chunks: Buffer[], d = shim.getDecoder('cesu8')): string => chunks.map((c) => d.write(c)).join('') + (d.end() ?? '');

describe('the iconv-lite stand-in: CESU-8 and Node encodings, as iconv-lite', () => {
  it('encodes CESU-8 byte for byte as iconv-lite (astral characters as two 3-byte surrogates), whole and split at every character', () => {
    for (const s of STRINGS) {
      const expected = real.encode(s, 'cesu8');
      const e = shim.getEncoder('cesu8');
      expect(Buffer.concat([e.write(s), e.end() ?? Buffer.alloc(0)]).equals(expected), JSON.stringify(s.slice(0, 40))).toBe(true);
      if (s.length > 100) continue;
      for (let i = 0; i <= s.length; i++) {
        const enc = shim.getEncoder('cesu8');
        expect(Buffer.concat([enc.write(s.slice(0, i)), enc.write(s.slice(i)), enc.end() ?? Buffer.alloc(0)]).equals(expected)).toBe(true);
      }
    }
    expect(real.encode('😀', 'cesu8').toString('hex')).toBe('eda0bdedb880');
  });

  it('decodes CESU-8 as iconv-lite, split at every byte and one byte at a time, through one reused decoder', () => {
    const reused = shim.getDecoder('cesu8'); // mysql2 caches one decoder per encoding for the process
    for (const s of STRINGS) {
      const bytes = real.encode(s, 'cesu8');
      expect(realDecode(bytes)).toBe(s);
      expect(shimDecode([bytes]), JSON.stringify(s.slice(0, 40))).toBe(s);
      expect(shimDecode([bytes], reused)).toBe(s);
      if (bytes.length > 200) continue;
      for (let i = 0; i <= bytes.length; i++) {
        const parts = [bytes.subarray(0, i), bytes.subarray(i)];
        expect(shimDecode(parts), `${JSON.stringify(s)} split at ${i}`).toBe(realDecode(bytes, parts));
        expect(shimDecode(parts, reused)).toBe(s);
      }
      const single = [...bytes].map((b) => Buffer.from([b]));
      expect(shimDecode(single)).toBe(realDecode(bytes, single));
    }
  });

  it('decodes malformed CESU-8 as iconv-lite (U+FFFD), and end() after a cut sequence gives U+FFFD and starts afresh', () => {
    const malformed = ['80', 'bf41', 'f09f9880', 'c080', 'c1bf', 'e08080', 'e282', 'e28241', 'c3', 'ff41fe', 'eda0bd', 'edb880', 'c3a9e282ac80'];
    for (const hex of malformed) {
      const bytes = Buffer.from(hex, 'hex');
      const d = real.getDecoder('cesu8', { stripBOM: false });
      const s = shim.getDecoder('cesu8');
      expect(s.write(bytes), hex).toBe(d.write(bytes));
    }
    // iconv-lite's end() after a cut sequence returns "0\uFFFD" and keeps the state (mysql2 would append it).
    const r = real.getDecoder('cesu8', { stripBOM: false });
    expect([r.write(Buffer.from('41e282', 'hex')), r.end(), r.end()]).toEqual(['A', '0\ufffd', '0\ufffd']);
    const d = shim.getDecoder('cesu8');
    expect(d.write(Buffer.from('41e282', 'hex'))).toBe('A');
    expect(d.end()).toBe('\ufffd');
    expect(d.write(Buffer.from('ac', 'hex'))).toBe('\ufffd'); // the cut sequence is not continued
    expect(d.end()).toBeUndefined();
  });

  it("decodes and encodes Node's encodings as iconv-lite (UTF-8 split at every byte; a surrogate pair split between writes)", () => {
    for (const enc of ['utf8', 'utf-8', 'binary', 'ucs2', 'utf16le', 'utf16-le']) {
      for (const s of STRINGS.filter((x) => !x.startsWith('\ufeff'))) {
        const bytes = real.encode(s, enc);
        const e = shim.getEncoder(enc);
        expect(Buffer.concat([e.write(s), e.end() ?? Buffer.alloc(0)]).equals(bytes), `${enc} ${JSON.stringify(s.slice(0, 30))}`).toBe(true);
        const d = shim.getDecoder(enc);
        const r = real.getDecoder(enc, { stripBOM: false });
        expect(d.write(bytes) + (d.end() ?? ''), `${enc} ${JSON.stringify(s.slice(0, 30))}`).toBe(r.write(bytes) + (r.end() ?? ''));
        if (enc !== 'utf8' || bytes.length > 200) continue;
        for (let i = 0; i <= bytes.length; i++) expect(shimDecode([bytes.subarray(0, i), bytes.subarray(i)], shim.getDecoder(enc))).toBe(bytes.toString('utf8'));
      }
    }
    const e = shim.getEncoder('utf8');
    expect(Buffer.concat([e.write('a\ud83d'), e.write('\ude00b'), e.end() ?? Buffer.alloc(0)]).toString('hex')).toBe('61f09f988062');
  });
});

describe('the iconv-lite stand-in: every other character set', () => {
  // mysql2's names Node does not know, but CESU-8 and 'utf16-le' (which iconv-lite, and the stand-in, read as Node's utf16le).
  const others = [...new Set(MYSQL2_ENCODINGS.filter((x): x is string => x !== undefined && !Buffer.isEncoding(x) && x !== 'cesu8' && x !== 'utf16-le'))].sort();
  const ascii = Buffer.from(Array.from({ length: 128 }, (_, i) => i));

  it('decodes pure ASCII as iconv-lite only for the character sets whose bytes 0x00-0x7F iconv-lite reads as ASCII', () => {
    for (const name of shim.ASCII_COMPATIBLE) {
      expect(others, name).toContain(name);
      expect(real.getDecoder(name).write(ascii), name).toBe(ascii.toString('latin1'));
      expect(shim.getDecoder(name).write(ascii), name).toBe(ascii.toString('latin1'));
    }
    // The rest: iconv-lite does not know them, or they are not ASCII-compatible (utf16, utf32).
    expect(others.filter((n) => !shim.ASCII_COMPATIBLE.has(n))).toEqual(['dec8', 'eucjpms', 'geostd8', 'hp8', 'keybcs2', 'swe7', 'utf16', 'utf32']);
  });

  it('refuses any other byte, character set and encoder with a message naming the encoding and the fix, never the text', () => {
    const message = /the character set mysql2 calls "cp1251": this rotation bundle decodes only UTF-8 \(utf8mb4\), latin1, binary and CESU-8 \(utf8mb3\) text\. .*skip-character-set-client-handshake.*character_set_results/;
    const secret = Buffer.from('Пароль-секрет', 'latin1');
    const cp1251 = real.encode('Пароль-секрет', 'cp1251');
    expect(real.getDecoder('cp1251').write(cp1251)).toBe('Пароль-секрет'); // what the real one would have decoded
    let thrown: Error | undefined;
    try {
      shim.getDecoder('cp1251').write(cp1251);
    } catch (e) {
      thrown = e as Error;
    }
    expect(thrown?.message).toMatch(message);
    expect(thrown?.message).not.toContain('Пароль');
    expect(thrown?.message).not.toContain(secret.toString('latin1'));
    for (const name of shim.ASCII_COMPATIBLE) expect(() => shim.getDecoder(name).write(Buffer.from([0x41, 0x80])), name).toThrow(/non-ASCII text/);
    for (const name of others.filter((n) => !shim.ASCII_COMPATIBLE.has(n))) expect(() => shim.getDecoder(name), name).toThrow(`calls "${name}"`);
    for (const name of others) expect(() => shim.getEncoder(name), name).toThrow(`mysql2 asked to send text in "${name}"`);
  });

  it('mysql2 uses only getDecoder and getEncoder of iconv-lite, from lib/parsers/string.js only', () => {
    const users: string[] = [];
    const members = new Set<string>();
    const walk = (dir: string) => {
      for (const f of readdirSync(dir)) {
        const p = join(dir, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.js')) {
          const src = readFileSync(p, 'utf8');
          if (src.includes('iconv-lite')) users.push(p.slice(ROOT.length + 1));
          for (const m of src.matchAll(/\bIconv\.(\w+)/g)) members.add(m[1]);
        }
      }
    };
    walk(join(ROOT, 'node_modules/mysql2/lib'));
    expect([...new Set(users)]).toEqual(['node_modules/mysql2/lib/parsers/string.js']);
    expect([...members].sort()).toEqual(['getDecoder', 'getEncoder']);
  });
});

describe('the MySQL bundle with the stand-in, on the real MariaDB 10.11 server', () => {
  const info: MariaDbInfo = inject('mariadb');
  const RUN = Math.random().toString(36).slice(2, 6);
  const h = createRotationHarness({ handler: (opts) => createHandler({ name: 'unused' } as never, opts) });
  let sm: SecretsManagerServer;
  let outdir: string;
  let bundle: Bundle;
  let driver: typeof import('mysql2/promise');
  let driverPackages: string[];
  let root: Connection;
  let adminUser: string;
  let adminPassword: string;
  const env = () => ({
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'secret-key-example',
    SECRETS_MANAGER_ENDPOINT: sm.endpoint,
    CONNECT_TIMEOUT_MS: '5000',
    EXCLUDE_CHARACTERS: '',
    LOG_LEVEL: 'info',
  });
  const STEPS = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;

  async function login(user: string, password: string): Promise<string> {
    try {
      const c = await createConnection({ host: info.host, port: info.port, user, password, connectTimeout: 5000 });
      await c.query('SELECT 1');
      await c.end();
      return 'ok';
    } catch (err) {
      return String((err as { code?: string }).code ?? (err as Error).message);
    }
  }

  async function rotate(arn: string): Promise<void> {
    const run = h.begin(arn);
    const events = STEPS.map((s) => run.event(s));
    const r = await runBundle(bundle.file, events, env());
    h.logs.push(...r.logs.map((l) => JSON.stringify(l)));
    h.errors.push(...r.raw);
    expect(r.steps.map((s) => [s.step, s.code, s.message])).toEqual(events.map((e) => [e.Step, null, undefined]));
    run.complete();
  }

  beforeAll(async () => {
    sm = await startSecretsManagerServer(h.sm);
    outdir = mkdtempSync(join(tmpdir(), 'rl-iconv-shim-'));
    const mysql = engineByName('mysql');
    [bundle] = (await buildBundles({ outdir, engines: [mysql] })).bundles;
    // mysql2 alone, bundled with the MySQL bundle's settings (the same alias), to drive sessions directly.
    const result = await build({
      ...esbuildOptions(mysql, outdir),
      entryPoints: undefined,
      outdir: undefined,
      stdin: { contents: "module.exports = require('mysql2/promise');", resolveDir: ROOT, loader: 'js' },
      outfile: join(outdir, 'mysql2-driver.js'),
    });
    driverPackages = packagesOf(Object.keys(result.metafile!.inputs));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    driver = require(join(outdir, 'mysql2-driver.js')) as typeof import('mysql2/promise');
    root = await createConnection({ host: info.host, port: info.port, user: info.rootUser, password: info.rootPassword });
    adminUser = `rl shim admin 'A' ${RUN}`;
    adminPassword = `Adm'"\\;--%?Ü ${RUN}-Pw9`;
    h.sensitive(info.rootPassword, adminPassword);
    await createRdsLikeMaster(root, adminUser, adminPassword);
  }, 180_000);

  afterAll(async () => {
    await root?.end();
    await sm?.close();
    if (outdir) rmSync(outdir, { recursive: true, force: true });
    assertNoLeaksInAll();
  });

  it('carries the stand-in, not iconv-lite', () => {
    expect(bundle.packages).toContain('mysql2');
    expect(bundle.packages).not.toContain('iconv-lite');
    expect(bundle.inputs).toContain('scripts/shims/iconv-lite.ts');
    expect(bundle.bytes).toBeLessThanOrEqual(1024 * 1024);
    expect(driverPackages).toContain('mysql2');
    expect(driverPackages).not.toContain('iconv-lite');
  });

  it('single user: the bundle rotates a user with a hostile unicode name and password (emoji in both) twice; the new password logs in', async () => {
    const user = `Shim q'"\\; %_?ü中😀 ${RUN}`;
    const pw0 = `Init'"\\;--%?Ü 😀 ${RUN}-Pw9`;
    h.sensitive(pw0);
    await root.query('CREATE USER ?@? IDENTIFIED BY ?', [user, '%', pw0]);
    expect(await login(user, pw0)).toBe('ok');
    const arn = await h.createSecret({ engine: 'mariadb', host: info.host, port: info.port, username: user, password: pw0, ssl: false });
    let previous = pw0;
    for (let i = 0; i < 2; i++) {
      await rotate(arn);
      const cur = await h.credentials(arn);
      h.sensitive(cur.password);
      expect(cur.username).toBe(user);
      expect(cur.password).not.toBe(previous);
      expect(await login(user, cur.password)).toBe('ok');
      expect(await login(user, previous)).toBe('ER_ACCESS_DENIED_ERROR');
      previous = cur.password;
    }
  }, 120_000);

  // No emoji in this name: MariaDB's mysql.user is utf8mb3, and the engine's lookup of a name with
  // a 4-byte character fails on the server (ER_CANT_AGGREGATE_2COLLATIONS), whichever decoder.
  it('alternating users with the RDS-like admin: user -> user_clone -> user, each new password (with an emoji) logs in', async () => {
    const user = `Alt q'"\\; %_?ü中 ${RUN}`;
    const pw0 = `Alt'"\\;--%?Ü 😀 ${RUN}-Pw9`;
    h.sensitive(pw0);
    await root.query('CREATE USER ?@? IDENTIFIED BY ?', [user, '%', pw0]);
    await root.query('GRANT SELECT ON mysql.db TO ?@?', [user, '%']);
    const adminArn = await h.createSecret({ engine: 'mariadb', host: info.host, port: info.port, username: adminUser, password: adminPassword, ssl: false });
    const arn = await h.createSecret({ engine: 'mariadb', host: info.host, port: info.port, username: user, password: pw0, ssl: false, masterarn: adminArn });
    const seen: Array<{ username: string; password: string }> = [];
    for (const expected of [`${user}_clone`, user]) {
      await rotate(arn);
      const cur = await h.credentials(arn);
      h.sensitive(cur.password);
      expect(cur.username).toBe(expected);
      expect(await login(expected, cur.password)).toBe('ok');
      seen.push(cur);
    }
    expect(await login(seen[0].username, seen[0].password)).toBe('ok'); // AWSPREVIOUS (the clone) still logs in
    expect(await login(user, pw0)).toBe('ER_ACCESS_DENIED_ERROR');
  }, 120_000);

  it('a utf8mb3 session (CESU-8 through the stand-in, both ways) reads names and an emoji exactly as the real driver', async () => {
    const name = `Ünï q'"\\; 中文 한국 ￿ ${RUN}`;
    const probes = [name, 'plain', 'emoji 😀🎉 in utf8mb3'];
    const read = async (createConn: typeof createConnection) => {
      const c = await createConn({ host: info.host, port: info.port, user: info.rootUser, password: info.rootPassword, charset: 'UTF8_GENERAL_CI' });
      try {
        const [vars] = await c.query<RowDataPacket[]>('SELECT @@character_set_results AS results, @@character_set_client AS client');
        const out: unknown[] = [vars[0].results, vars[0].client];
        for (const p of probes) {
          const [rows, fields] = await c.query<RowDataPacket[]>('SELECT ? AS `välue 中`, CONVERT(? USING utf8mb4) AS wide, HEX(?) AS hex', [p, p, p]);
          out.push([Object.keys(rows[0]), rows[0]['välue 中'], rows[0].wide, rows[0].hex, fields.map((f) => f.encoding)]);
        }
        return out;
      } finally {
        await c.end();
      }
    };
    const viaShim = await read(driver.createConnection as typeof createConnection);
    const viaReal = await read(createConnection);
    expect(viaShim).toEqual(viaReal);
    expect(viaShim.slice(0, 2)).toEqual(['utf8mb3', 'utf8mb3']);
    expect(viaShim[2]).toEqual([['välue 中', 'wide', 'hex'], name, name, Buffer.from(name).toString('hex').toUpperCase(), ['cesu8', 'cesu8', 'cesu8']]);
    // The emoji travels as CESU-8 both ways (two 3-byte surrogates each, as the server's HEX shows) and decodes back.
    const emoji = 'emoji 😀🎉 in utf8mb3';
    expect(viaShim[4]).toEqual([['välue 中', 'wide', 'hex'], emoji, emoji, real.encode(emoji, 'cesu8').toString('hex').toUpperCase(), ['cesu8', 'cesu8', 'cesu8']]);
    expect(String((viaShim[4] as unknown[])[3])).toContain('EDA0BDEDB880');
  });

  it('a session whose character_set_results is cp1251 (as SET NAMES in init_connect makes it): ASCII reads; other text fails loudly instead of decoding wrongly', async () => {
    const c = await driver.createConnection({ host: info.host, port: info.port, user: info.rootUser, password: info.rootPassword });
    try {
      await c.query('SET character_set_results = cp1251');
      const [rows, fields] = await c.query<RowDataPacket[]>("SELECT 'ascii only' AS v");
      expect([rows[0].v, fields[0].encoding]).toEqual(['ascii only', 'cp1251']);
      await expect(c.query("SELECT _utf8mb4'Жж' AS v")).rejects.toThrow(/character set mysql2 calls "cp1251".*utf8mb4/);
    } finally {
      c.destroy();
    }
    // The real driver would have decoded it: the stand-in refuses rather than answer differently.
    const r = await createConnection({ host: info.host, port: info.port, user: info.rootUser, password: info.rootPassword });
    try {
      await r.query('SET character_set_results = cp1251');
      const [rows] = await r.query<RowDataPacket[]>("SELECT _utf8mb4'Жж' AS v");
      expect(rows[0].v).toBe('Жж');
    } finally {
      await r.end();
    }
  });
});
