import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors';
import {
  DEFAULT_PASSWORD_POLICY,
  DIGITS,
  envFlag,
  generatePassword,
  LOWERCASE,
  type PasswordPolicy,
  PasswordPolicyError,
  passwordPolicyFromEnv,
  passwordSourceFromEnv,
  PUNCTUATION,
  UPPERCASE,
} from '../../src/password';

describe('password policy from the environment', () => {
  it('uses AWS reference defaults when nothing is set', () => {
    expect(passwordPolicyFromEnv({})).toEqual({
      PasswordLength: 32,
      ExcludeCharacters: '/@"\'\\',
      ExcludeNumbers: false,
      ExcludePunctuation: false,
      ExcludeUppercase: false,
      ExcludeLowercase: false,
      RequireEachIncludedType: true,
    });
  });

  it('engine defaults apply before environment overrides', () => {
    const p = passwordPolicyFromEnv({ PASSWORD_LENGTH: '48' }, { PasswordLength: 30, ExcludeCharacters: ':' });
    expect(p.PasswordLength).toBe(48);
    expect(p.ExcludeCharacters).toBe(':');
  });

  it('honours every documented variable', () => {
    const p = passwordPolicyFromEnv({
      PASSWORD_LENGTH: '20',
      EXCLUDE_CHARACTERS: 'abc',
      EXCLUDE_NUMBERS: 'true',
      EXCLUDE_PUNCTUATION: 'YES',
      EXCLUDE_UPPERCASE: '1',
      EXCLUDE_LOWERCASE: 'n',
      REQUIRE_EACH_INCLUDED_TYPE: 'false',
    });
    expect(p).toEqual({
      PasswordLength: 20,
      ExcludeCharacters: 'abc',
      ExcludeNumbers: true,
      ExcludePunctuation: true,
      ExcludeUppercase: true,
      ExcludeLowercase: false,
      RequireEachIncludedType: false,
    });
  });

  it('an empty EXCLUDE_CHARACTERS excludes nothing (it is a value, not unset)', () => {
    expect(passwordPolicyFromEnv({ EXCLUDE_CHARACTERS: '' }).ExcludeCharacters).toBe('');
  });

  it('rejects a bad PASSWORD_LENGTH with a ConfigError', () => {
    expect(() => passwordPolicyFromEnv({ PASSWORD_LENGTH: 'abc' })).toThrow(ConfigError);
    expect(() => passwordPolicyFromEnv({ PASSWORD_LENGTH: '2' })).toThrow(/between 4 and 4096/);
    expect(() => passwordPolicyFromEnv({ PASSWORD_LENGTH: '5000' })).toThrow(/between 4 and 4096/);
  });

  it('rejects a policy that excludes every character type', () => {
    expect(() =>
      passwordPolicyFromEnv({ EXCLUDE_NUMBERS: 'y', EXCLUDE_PUNCTUATION: 'y', EXCLUDE_UPPERCASE: 'y', EXCLUDE_LOWERCASE: 'y' }),
    ).toThrow(/excludes every character type/);
  });

  it('parses flags like the reference rotators, and refuses a value that is neither true nor false', () => {
    for (const v of ['true', 'TRUE', '1', 'y', 'Yes', 'on']) expect(envFlag({ X: v }, 'X', false)).toBe(true);
    for (const v of ['false', '0', 'no', 'off', ' N ']) expect(envFlag({ X: v }, 'X', true)).toBe(false);
    for (const v of ['ture', 'anything', '2']) expect(() => envFlag({ X: v }, 'X', true)).toThrow(/^X must be true or false, got "/);
    expect(envFlag({}, 'X', true)).toBe(true);
    expect(envFlag({ X: '  ' }, 'X', true)).toBe(true);
  });

  it('does not mutate the shared defaults', () => {
    passwordPolicyFromEnv({ PASSWORD_LENGTH: '99' });
    expect(DEFAULT_PASSWORD_POLICY.PasswordLength).toBe(32);
  });
});

describe('generatePassword: GetRandomPassword semantics in the function (node:crypto)', () => {
  const many = (policy: Partial<PasswordPolicy>, n = 300): string[] => Array.from({ length: n }, () => generatePassword(policy));
  const charsOf = (pws: string[]): Set<string> => new Set(pws.join(''));

  it('defaults to GetRandomPassword\'s: 32 characters from all four types, the 32 punctuation characters included, each type present', () => {
    expect(PUNCTUATION).toBe('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');
    expect(PUNCTUATION).toHaveLength(32);
    const pws = many({});
    for (const pw of pws) {
      expect(pw).toHaveLength(32);
      for (const type of [LOWERCASE, UPPERCASE, DIGITS, PUNCTUATION]) expect([...pw].some((c) => type.includes(c))).toBe(true);
      expect(pw).not.toContain(' ');
    }
    // Every one of the 94 characters is reachable (300 x 32 draws: each misses with p < 1e-40).
    expect(charsOf(pws)).toEqual(new Set(LOWERCASE + UPPERCASE + DIGITS + PUNCTUATION));
  });

  it('the framework\'s default policy (AWS reference rotators): 32 characters, none of /@"\'\\, every type', () => {
    const pws = many(DEFAULT_PASSWORD_POLICY);
    for (const pw of pws) {
      expect(pw).toHaveLength(32);
      expect(pw).not.toMatch(/[/@"'\\]/);
      expect(pw).toMatch(/[a-z]/);
      expect(pw).toMatch(/[A-Z]/);
      expect(pw).toMatch(/[0-9]/);
      expect(pw).toMatch(/[^A-Za-z0-9]/);
    }
    expect(charsOf(pws).size).toBe(94 - 5);
  });

  it.each([
    [{ ExcludeNumbers: true }, LOWERCASE + UPPERCASE + PUNCTUATION],
    [{ ExcludePunctuation: true }, LOWERCASE + UPPERCASE + DIGITS],
    [{ ExcludeUppercase: true }, LOWERCASE + DIGITS + PUNCTUATION],
    [{ ExcludeLowercase: true }, UPPERCASE + DIGITS + PUNCTUATION],
    [{ ExcludeLowercase: true, ExcludeUppercase: true, ExcludePunctuation: true }, DIGITS],
    [{ ExcludeCharacters: 'abcXYZ019!~ ' }, [...LOWERCASE + UPPERCASE + DIGITS + PUNCTUATION].filter((c) => !'abcXYZ019!~'.includes(c)).join('')],
    [{ IncludeSpace: true }, LOWERCASE + UPPERCASE + DIGITS + PUNCTUATION + ' '],
    [{ IncludeSpace: true, ExcludeCharacters: ' ' }, LOWERCASE + UPPERCASE + DIGITS + PUNCTUATION],
  ] as Array<[Partial<PasswordPolicy>, string]>)('%o uses exactly its alphabet', (policy, alphabet) => {
    const pws = many({ PasswordLength: 64, ...policy });
    expect(charsOf(pws)).toEqual(new Set(alphabet));
  });

  it('RequireEachIncludedType: every included type with characters left is present; false really allows a missing type', () => {
    // Only "a" is left of the lower case letters: required, so every password has it.
    for (const pw of many({ PasswordLength: 4, ExcludeCharacters: LOWERCASE.slice(1) })) expect(pw).toContain('a');
    // A type excluded entirely by ExcludeCharacters is not required (no password could satisfy it).
    for (const pw of many({ PasswordLength: 8, ExcludeCharacters: DIGITS })) expect(pw).not.toMatch(/[0-9]/);
    const loose = many({ PasswordLength: 4, RequireEachIncludedType: false }, 2000);
    expect(loose.some((pw) => !/[0-9]/.test(pw) || !/[a-z]/.test(pw))).toBe(true);
    // The space is never required.
    expect(many({ PasswordLength: 4, IncludeSpace: true }, 200).some((pw) => !pw.includes(' '))).toBe(true);
  });

  it('required characters are not at predictable positions', () => {
    // One digit required in a 32-character password of letters and one digit type: its position varies.
    const positions = new Set(many({ PasswordLength: 32, ExcludeCharacters: DIGITS.slice(1) + PUNCTUATION, ExcludeUppercase: true }, 400).map((pw) => pw.indexOf('0')));
    expect(positions.size).toBeGreaterThan(20);
  });

  it('rejects what GetRandomPassword rejects, with a ConfigError', () => {
    expect(() => generatePassword({ PasswordLength: 3 })).toThrow(/too short based on the required types/);
    expect(generatePassword({ PasswordLength: 3, RequireEachIncludedType: false })).toHaveLength(3);
    expect(() => generatePassword({ PasswordLength: 0 })).toThrow(PasswordPolicyError);
    expect(() => generatePassword({ PasswordLength: 4097 })).toThrow(PasswordPolicyError);
    expect(generatePassword({ PasswordLength: 4096 })).toHaveLength(4096);
    expect(() => generatePassword({ ExcludeCharacters: LOWERCASE + UPPERCASE + DIGITS + PUNCTUATION })).toThrow(/exclude every character/);
    expect(() => generatePassword({ ExcludeLowercase: true, ExcludeUppercase: true, ExcludeNumbers: true, ExcludePunctuation: true })).toThrow(ConfigError);
  });

  it('is uniform enough: each digit of a digits-only alphabet within 10 % of its expected count', () => {
    const counts = new Map<string, number>();
    for (const c of many({ PasswordLength: 1000, ExcludeLowercase: true, ExcludeUppercase: true, ExcludePunctuation: true }, 20).join('')) {
      counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    for (const d of DIGITS) expect(Math.abs(counts.get(d)! - 2000)).toBeLessThan(200);
  });

  it('PASSWORD_SOURCE: local by default, secretsmanager on request, anything else a ConfigError', () => {
    expect(passwordSourceFromEnv({})).toBe('local');
    expect(passwordSourceFromEnv({ PASSWORD_SOURCE: ' Local ' })).toBe('local');
    expect(passwordSourceFromEnv({ PASSWORD_SOURCE: 'SecretsManager' })).toBe('secretsmanager');
    expect(() => passwordSourceFromEnv({ PASSWORD_SOURCE: 'kms' })).toThrow(ConfigError);
  });
});
