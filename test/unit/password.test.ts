import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors';
import { DEFAULT_PASSWORD_POLICY, envFlag, passwordPolicyFromEnv } from '../../src/password';

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
