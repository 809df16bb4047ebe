import { PasswordRejectedError } from '../errors';

/** Upper bound on what we hash: long enough for any passphrase, short enough to not be a DoS lever. */
export const PASSWORD_MAX_LENGTH = 128;

export interface PasswordPolicy {
  /** Throws 400 `password_rejected`, naming the rule, when the password is not acceptable. */
  check(password: string): void;
}

/**
 * One policy for every path that sets a password (register, admin create, change, seed).
 * NIST SP 800-63B / ASVS 6.2: length matters, composition rules do not; any character is allowed and
 * length counts Unicode code points, not UTF-16 units.
 */
export function createPasswordPolicy({ minLength }: { minLength: number }): PasswordPolicy {
  return {
    check(password) {
      const length = [...password].length;
      if (length < minLength) {
        throw new PasswordRejectedError(`The password must be at least ${minLength} characters long.`);
      }
      if (length > PASSWORD_MAX_LENGTH) {
        throw new PasswordRejectedError(
          `The password must be at most ${PASSWORD_MAX_LENGTH} characters long.`,
        );
      }
    },
  };
}
