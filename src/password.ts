import { randomInt } from 'node:crypto';
import { ConfigError } from './errors';

/**
 * The password policy: GetRandomPassword's request members, which the local generator
 * (generatePassword) honours with the same meaning. Field names follow the API.
 */
export interface PasswordPolicy {
  PasswordLength: number;
  ExcludeCharacters: string;
  ExcludeNumbers: boolean;
  ExcludePunctuation: boolean;
  ExcludeUppercase: boolean;
  ExcludeLowercase: boolean;
  RequireEachIncludedType: boolean;
  /** GetRandomPassword's IncludeSpace (default false): a space may appear; it is never required. */
  IncludeSpace?: boolean;
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

// ---- generating a password ------------------------------------------------------------------

/** GetRandomPassword's four character types. */
export const LOWERCASE = 'abcdefghijklmnopqrstuvwxyz';
export const UPPERCASE = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
export const DIGITS = '0123456789';
/** All 32 ASCII punctuation characters: GetRandomPassword's punctuation set. */
export const PUNCTUATION = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';

/** A policy no password can satisfy (GetRandomPassword answers InvalidParameterException). */
export class PasswordPolicyError extends ConfigError {
  override name = 'PasswordPolicyError';
}

/**
 * Where passwords come from: `local` (default) generates them in the function with node:crypto
 * (no API call, no extra round trip); `secretsmanager` calls GetRandomPassword. Both honour the
 * same policy the same way. PASSWORD_SOURCE in the function's environment.
 */
export type PasswordSource = 'local' | 'secretsmanager';

export function passwordSourceFromEnv(env: Env): PasswordSource {
  const raw = env.PASSWORD_SOURCE?.trim().toLowerCase();
  if (!raw || raw === 'local') return 'local';
  if (raw === 'secretsmanager') return 'secretsmanager';
  throw new ConfigError(`PASSWORD_SOURCE must be "local" or "secretsmanager", got "${env.PASSWORD_SOURCE!.slice(0, 40)}".`);
}

/**
 * A password under GetRandomPassword's semantics, from a CSPRNG (node:crypto randomInt, which
 * draws without modulo bias):
 *
 * - Alphabet: lower + upper letters, digits and the 32 ASCII punctuation characters, each type
 *   unless its Exclude* flag is set; a space only with IncludeSpace. Every character of
 *   ExcludeCharacters is removed.
 * - RequireEachIncludedType: at least one character of each included type that still has
 *   characters after the exclusions (a space is not a type). The required characters are
 *   shuffled in (Fisher-Yates), so their positions are not predictable.
 * - PasswordLength 1-4096 (the API's range); shorter than the number of required types, or an
 *   empty alphabet, is a PasswordPolicyError.
 */
export function generatePassword(policy: Partial<PasswordPolicy> = {}): string {
  const length = policy.PasswordLength ?? 32;
  if (!Number.isInteger(length) || length < 1 || length > 4096) {
    throw new PasswordPolicyError(`The password length must be a whole number from 1 to 4096, got ${length}.`);
  }
  const excluded = new Set(policy.ExcludeCharacters ?? '');
  const keep = (chars: string): string => [...chars].filter((c) => !excluded.has(c)).join('');
  const types = [
    policy.ExcludeLowercase ? '' : keep(LOWERCASE),
    policy.ExcludeUppercase ? '' : keep(UPPERCASE),
    policy.ExcludeNumbers ? '' : keep(DIGITS),
    policy.ExcludePunctuation ? '' : keep(PUNCTUATION),
  ].filter((t) => t.length > 0);
  const alphabet = types.join('') + (policy.IncludeSpace && !excluded.has(' ') ? ' ' : '');
  if (alphabet.length === 0) {
    throw new PasswordPolicyError('The password constraints exclude every character; include at least one character type.');
  }
  const required = (policy.RequireEachIncludedType ?? true) ? types : [];
  if (length < required.length) throw new PasswordPolicyError('Password length is too short based on the required types.');
  const chars = required.map(pick);
  while (chars.length < length) chars.push(pick(alphabet));
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j], chars[i]];
  }
  return chars.join('');
}

function pick(chars: string): string {
  return chars[randomInt(chars.length)];
}
