import { randomInt } from 'node:crypto';

/** The four character types of GetRandomPassword, in the API's terms. */
export const LOWERCASE = 'abcdefghijklmnopqrstuvwxyz';
export const UPPERCASE = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
export const DIGITS = '0123456789';
/** All 32 ASCII punctuation characters: the service's default punctuation set. */
export const PUNCTUATION = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';

export interface RandomPasswordRequest {
  PasswordLength?: number;
  ExcludeCharacters?: string;
  ExcludeNumbers?: boolean;
  ExcludePunctuation?: boolean;
  ExcludeUppercase?: boolean;
  ExcludeLowercase?: boolean;
  IncludeSpace?: boolean;
  RequireEachIncludedType?: boolean;
}

/** Why a request cannot produce a password (the double maps this to InvalidParameterException). */
export class PasswordConstraintError extends Error {}

/**
 * GetRandomPassword with crypto-strength randomness (node:crypto randomInt).
 *
 * - Alphabet: lower + upper letters, digits and the 32 ASCII punctuation characters; a space only
 *   with IncludeSpace. Every character of ExcludeCharacters is removed from it.
 * - RequireEachIncludedType (default true): at least one character of each included type
 *   (lower, upper, digit, punctuation) that still has characters after the exclusions. A space is
 *   not a type and is never required.
 * - Defaults: length 32, nothing excluded.
 */
export function randomPassword(req: RandomPasswordRequest = {}): string {
  const length = req.PasswordLength ?? 32;
  const excluded = new Set(req.ExcludeCharacters ?? '');
  const keep = (chars: string): string => [...chars].filter((c) => !excluded.has(c)).join('');
  const types = [
    req.ExcludeLowercase ? '' : keep(LOWERCASE),
    req.ExcludeUppercase ? '' : keep(UPPERCASE),
    req.ExcludeNumbers ? '' : keep(DIGITS),
    req.ExcludePunctuation ? '' : keep(PUNCTUATION),
  ].filter((t) => t.length > 0);
  const alphabet = types.join('') + (req.IncludeSpace && !excluded.has(' ') ? ' ' : '');
  if (alphabet.length === 0) {
    throw new PasswordConstraintError('The password constraints exclude every character; include at least one character type.');
  }
  const required = (req.RequireEachIncludedType ?? true) ? types : [];
  if (length < required.length) {
    throw new PasswordConstraintError('Password length is too short based on the required types.');
  }
  const chars = required.map(pick);
  while (chars.length < length) chars.push(pick(alphabet));
  // Fisher-Yates, so the required characters are not at predictable positions.
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j], chars[i]];
  }
  return chars.join('');
}

function pick(chars: string): string {
  return chars[randomInt(chars.length)];
}
