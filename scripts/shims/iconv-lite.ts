/**
 * Bundle-only stand-in for `iconv-lite` (483 KiB of code pages) in the MySQL bundle (esbuild
 * `alias`, SAM `BuildProperties.Alias`; scripts/engines.ts). Its only user there is mysql2's
 * lib/parsers/string.js, which calls `getDecoder(encoding)` / `getEncoder(encoding)` (and nothing
 * else) for the encodings `Buffer.isEncoding` does not know; Node's own encodings never reach it.
 * With the rotator's connections (no `charset` option: mysql2 sends utf8mb4_unicode_ci, so the
 * session's character_set_client/connection/results are utf8mb4, which mysql2 reads as 'utf8'),
 * the encodings that reach it are:
 * - 'cesu8': on every connection (mysql2 reads the handshake's server version and an auth switch's
 *   plugin name as CESU-8), and for text and column names a session sends in utf8mb3 (mysql2
 *   maps utf8mb3 to CESU-8: UTF-8 in which a character above U+FFFF is two 3-byte surrogates).
 * - the server's default character set (the handshake's), for OK packets' info text and session
 *   state changes (empty or ASCII on the statements the rotator runs), and the session's
 *   character_set_results for result text and column names, when a server ignores the client's
 *   character set (skip-character-set-client-handshake, an init_connect running SET NAMES).
 *
 * So this decodes and encodes Node's encodings and CESU-8 exactly as iconv-lite does (streaming:
 * a character split across write() calls is kept until its last byte; test/iconv-shim.test.ts
 * compares them on every split point), except that it never strips a leading U+FEFF (iconv-lite
 * drops it from the first string a decoder sees: data, not a file, here) and that end() after a
 * truncated sequence returns "\uFFFD" and starts afresh (iconv-lite's returns "0\uFFFD" and keeps
 * the state). For the other MySQL character sets whose bytes 0x00-0x7F are ASCII in iconv-lite
 * (latin2, cp1251, sjis, gbk, ...), pure ASCII text decodes as itself; any other byte, character
 * set or encoding throws an error naming the encoding (never the text, which may be a password)
 * and what to change, so a rotation fails loudly instead of decoding a name wrongly.
 */
import { StringDecoder } from 'node:string_decoder';

export interface Decoder {
  write(buf: Buffer): string;
  end(): string | undefined;
}

export interface Encoder {
  write(str: string): Buffer;
  end(): Buffer | undefined;
}

/** mysql2's names (lib/constants/charset_encodings.js) whose bytes 0x00-0x7F iconv-lite decodes as ASCII. */
export const ASCII_COMPATIBLE = new Set([
  'armscii8', 'big5', 'cp1250', 'cp1251', 'cp1256', 'cp1257', 'cp850', 'cp852', 'cp866', 'cp932', 'eucjp', 'euckr',
  'gb18030', 'gb2312', 'gbk', 'greek', 'hebrew', 'koi8r', 'koi8u', 'latin2', 'latin5', 'latin7', 'macintosh', 'macroman',
  'sjis', 'tis620',
]);

/**
 * The encodings iconv-lite itself hands to Node (its "internal" codecs, minus base64 and hex), by
 * its normalised name ('utf-8' -> 'utf8', mysql2's 'utf16-le' -> 'utf16le'). latin1 and ascii are
 * not among them (iconv-lite has its own tables), and mysql2 never asks for them: Node knows them.
 */
const NODE: Record<string, BufferEncoding> = { utf8: 'utf8', unicode11utf8: 'utf8', ucs2: 'utf16le', utf16le: 'utf16le', binary: 'latin1' };

const REMEDY =
  'this rotation bundle decodes only UTF-8 (utf8mb4), latin1, binary and CESU-8 (utf8mb3) text. Make the server answer this client in utf8mb4: ' +
  'do not run it with skip-character-set-client-handshake, and do not set character_set_results (or SET NAMES in init_connect) to another character set.';

function unsupported(encoding: unknown, what: string): Error {
  return new Error(`The MySQL server sent ${what} in the character set mysql2 calls "${String(encoding)}": ${REMEDY}`);
}

/** iconv-lite's normalisation of an encoding name. */
function canonical(encoding: unknown): string {
  return String(encoding).toLowerCase().replace(/:\d{4}$|[^0-9a-z]/g, '');
}

const HIGH_SURROGATE = /[\ud800-\udbff]$/;

export function getDecoder(encoding: string, _options?: unknown): Decoder {
  const name = canonical(encoding);
  if (NODE[name]) {
    let d = new StringDecoder(NODE[name]);
    return {
      write: (buf) => d.write(buf),
      end: () => {
        const rest = d.end();
        d = new StringDecoder(NODE[name]);
        return rest;
      },
    };
  }
  if (name === 'cesu8') return new Cesu8Decoder();
  if (ASCII_COMPATIBLE.has(name)) {
    return {
      write: (buf) => {
        for (const b of buf) if (b >= 0x80) throw unsupported(encoding, 'non-ASCII text');
        return buf.toString('latin1');
      },
      end: () => undefined,
    };
  }
  throw unsupported(encoding, 'text');
}

export function getEncoder(encoding: string, _options?: unknown): Encoder {
  const name = canonical(encoding);
  if (name === 'cesu8') return { write: encodeCesu8, end: () => undefined };
  const enc = NODE[name];
  if (!enc) throw new Error(`mysql2 asked to send text in "${String(encoding)}": ${REMEDY}`);
  // A surrogate pair split across write() calls is encoded once both halves are there (UTF-8).
  let held = '';
  return {
    write: (str) => {
      str = held + str;
      held = enc === 'utf8' && HIGH_SURROGATE.test(str) ? str.slice(-1) : '';
      return Buffer.from(held ? str.slice(0, -1) : str, enc);
    },
    end: () => {
      const rest = held;
      held = '';
      return rest ? Buffer.from(rest, enc) : undefined;
    },
  };
}

/**
 * CESU-8 to UTF-16, one byte at a time: a 1-, 2- or 3-byte sequence is one UTF-16 code unit
 * (surrogates included, so an astral character's two 3-byte halves make its surrogate pair).
 * As iconv-lite: a 4-byte lead, a stray continuation byte, an overlong form (except C0 80, NUL in
 * modified UTF-8) and a sequence cut short by another lead byte each give U+FFFD.
 */
class Cesu8Decoder implements Decoder {
  private value = 0;
  private needed = 0;
  private length = 0;

  write(buf: Buffer): string {
    const units: number[] = [];
    let out = '';
    for (const b of buf) {
      if ((b & 0xc0) === 0x80) {
        if (this.needed === 0) {
          units.push(0xfffd);
        } else {
          this.value = (this.value << 6) | (b & 0x3f);
          if (--this.needed === 0) {
            const overlong = this.length === 2 ? this.value > 0 && this.value < 0x80 : this.value < 0x800;
            units.push(overlong ? 0xfffd : this.value);
          }
        }
      } else {
        if (this.needed > 0) units.push(0xfffd);
        this.needed = 0;
        if (b < 0x80) {
          units.push(b);
        } else if (b < 0xe0) {
          [this.value, this.needed, this.length] = [b & 0x1f, 1, 2];
        } else if (b < 0xf0) {
          [this.value, this.needed, this.length] = [b & 0x0f, 2, 3];
        } else {
          units.push(0xfffd);
        }
      }
      if (units.length >= 4096) out += String.fromCharCode(...units.splice(0));
    }
    return out + String.fromCharCode(...units);
  }

  end(): string | undefined {
    const cut = this.needed > 0;
    this.needed = 0;
    return cut ? '\ufffd' : undefined;
  }
}

/** UTF-16 to CESU-8, one code unit at a time (stateless, so any split is safe). */
function encodeCesu8(str: string): Buffer {
  const out = Buffer.alloc(str.length * 3);
  let n = 0;
  for (let i = 0; i < str.length; i++) {
    const c = str.charCodeAt(i);
    if (c < 0x80) {
      out[n++] = c;
    } else if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 0x3f);
    } else {
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    }
  }
  return out.subarray(0, n);
}
