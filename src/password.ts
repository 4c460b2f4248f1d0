import { ConfigError } from './errors';

/** The password policy sent to GetRandomPassword. Field names follow the API. */
export interface PasswordPolicy {
  PasswordLength: number;
  ExcludeCharacters: string;
  ExcludeNumbers: boolean;
  ExcludePunctuation: boolean;
  ExcludeUppercase: boolean;
  ExcludeLowercase: boolean;
  RequireEachIncludedType: boolean;
}

/**
 * AWS's reference rotators' defaults: length 32, exclude `/@"'\` (PostgreSQL also `:`), every
 * included character type required. Engines override what their server or clients need.
 */
export const DEFAULT_PASSWORD_POLICY: PasswordPolicy = {
  PasswordLength: 32,
  ExcludeCharacters: '/@"\'\\',
  ExcludeNumbers: false,
  ExcludePunctuation: false,
  ExcludeUppercase: false,
  ExcludeLowercase: false,
  RequireEachIncludedType: true,
};

export type Env = Record<string, string | undefined>;

/** True for `true`, `1`, `y`, `yes` (any case), as the reference rotators parse these variables. */
export function envFlag(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const v = raw.trim().toLowerCase();
  if (['true', '1', 'y', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'n', 'no', 'off'].includes(v)) return false;
  // A typo ("ture") must not silently mean false: it fails createSecret, before anything is stored.
  throw new ConfigError(`${name} must be true or false, got "${raw.slice(0, 40)}".`);
}

/**
 * Resolve the policy: engine defaults, overridden by the documented environment variables
 * PASSWORD_LENGTH, EXCLUDE_CHARACTERS, EXCLUDE_NUMBERS, EXCLUDE_PUNCTUATION, EXCLUDE_UPPERCASE,
 * EXCLUDE_LOWERCASE and REQUIRE_EACH_INCLUDED_TYPE.
 */
export function passwordPolicyFromEnv(env: Env, engineDefaults: Partial<PasswordPolicy> = {}): PasswordPolicy {
  const base: PasswordPolicy = { ...DEFAULT_PASSWORD_POLICY, ...engineDefaults };
  let length = base.PasswordLength;
  const rawLength = env.PASSWORD_LENGTH;
  if (rawLength !== undefined && rawLength.trim() !== '') {
    if (!/^\d+$/.test(rawLength.trim())) {
      throw new ConfigError(`PASSWORD_LENGTH must be a whole number, got "${rawLength}".`);
    }
    length = Number(rawLength.trim());
    if (length < 4 || length > 4096) {
      throw new ConfigError(`PASSWORD_LENGTH must be between 4 and 4096, got ${length}.`);
    }
  }
  const policy: PasswordPolicy = {
    PasswordLength: length,
    ExcludeCharacters: env.EXCLUDE_CHARACTERS ?? base.ExcludeCharacters,
    ExcludeNumbers: envFlag(env, 'EXCLUDE_NUMBERS', base.ExcludeNumbers),
    ExcludePunctuation: envFlag(env, 'EXCLUDE_PUNCTUATION', base.ExcludePunctuation),
    ExcludeUppercase: envFlag(env, 'EXCLUDE_UPPERCASE', base.ExcludeUppercase),
    ExcludeLowercase: envFlag(env, 'EXCLUDE_LOWERCASE', base.ExcludeLowercase),
    RequireEachIncludedType: envFlag(env, 'REQUIRE_EACH_INCLUDED_TYPE', base.RequireEachIncludedType),
  };
  if (policy.ExcludeNumbers && policy.ExcludePunctuation && policy.ExcludeUppercase && policy.ExcludeLowercase) {
    throw new ConfigError('The password policy excludes every character type; unset one of the EXCLUDE_* variables.');
  }
  return policy;
}

/** Characters of each class, for engines that check a generated password. */
export function passwordClasses(pw: string): { upper: boolean; lower: boolean; digit: boolean; punct: boolean } {
  return {
    upper: /[A-Z]/.test(pw),
    lower: /[a-z]/.test(pw),
    digit: /[0-9]/.test(pw),
    punct: /[^A-Za-z0-9]/.test(pw),
  };
}
