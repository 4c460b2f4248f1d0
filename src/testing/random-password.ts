/**
 * The double's GetRandomPassword: the framework's own generator (src/password.ts), which
 * implements the API's documented semantics. The moto cross-check compares its output's traits
 * with moto's GetRandomPassword.
 */
import { generatePassword, PasswordPolicyError, type PasswordPolicy } from '../password';

export { DIGITS, LOWERCASE, PUNCTUATION, UPPERCASE } from '../password';

export type RandomPasswordRequest = Partial<PasswordPolicy>;

/** Why a request cannot produce a password (the double maps this to InvalidParameterException). */
export { PasswordPolicyError as PasswordConstraintError };

/** GetRandomPassword with crypto-strength randomness (defaults: length 32, nothing excluded, each type required). */
export function randomPassword(req: RandomPasswordRequest = {}): string {
  return generatePassword(req);
}
