import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import * as zxcvbnCommon from '@zxcvbn-ts/language-common';
import * as zxcvbnEn from '@zxcvbn-ts/language-en';
import type { AppConfig } from '../../config/config';
import { PasswordRejectedError } from '../errors';
import type { BreachedPasswords } from './breached-passwords';

/** Upper bound on what we hash: long enough for any passphrase, short enough to not be a DoS lever. */
const PASSWORD_MAX_LENGTH = 128;

/** Shorter email local parts and name words are not checked for: see `personalWords`. */
const MIN_PERSONAL_WORD_LENGTH = 3;

/** What the policy knows about the account, to refuse passwords built from it. */
export interface PasswordContext {
  email: string;
  name: string;
  /** The password the user just proved (on a change); the new one must differ from it. */
  currentPassword?: string | undefined;
}

export interface PasswordPolicy {
  /** Rejects with 400 `password_rejected`, naming the rule, when the password is not acceptable. */
  check(password: string, context: PasswordContext): Promise<void>;
}

/**
 * One policy for every path that sets a password (register, admin create, change, reset, seed).
 * NIST SP 800-63B 3.1.1.2 / ASVS 6.2: length matters, composition rules do not; any character is allowed
 * and length counts Unicode code points, not UTF-16 units. Instead of composition rules, a password is
 * checked against lists of common passwords (ASVS 6.2.4), against words from the account itself and
 * from the deployment's documented list (ASVS 6.1.2, 6.2.11; 800-63B: "context-specific words, such as
 * the name of the service, the username"), and, when `breaches` is given, against breached passwords
 * (ASVS 6.2.12). The rules run in that order, and the first one broken is named; the breach lookup,
 * the only one that leaves the process, runs last, for passwords every local rule accepted.
 */
export function createPasswordPolicy(
  config: Pick<AppConfig, 'passwordMinLength' | 'passwordMinScore' | 'passwordContextWords'>,
  breaches?: BreachedPasswords,
): PasswordPolicy {
  const minLength = config.passwordMinLength;
  // The zxcvbn score (0-4) a password needs; 0 turns the strength estimate off.
  const minScore = config.passwordMinScore;
  // Built once per policy: ranking the dictionaries takes ~100 ms and ~15 MB.
  const zxcvbn = new ZxcvbnFactory({
    dictionary: { ...zxcvbnCommon.dictionary, ...zxcvbnEn.dictionary },
    graphs: zxcvbnCommon.adjacencyGraphs,
    translations: zxcvbnEn.translations,
    // The estimate is synchronous CPU on an unauthenticated route. With the defaults, a 128-character
    // random password holds the event loop for ~0.7 s; scoring the first 64 characters with fewer l33t
    // substitutions keeps the worst case under ~0.1 s. Only the estimate is cut (the whole password is
    // hashed), and a guessable first 64 characters refuses the password: the safe side.
    // (useLevenshteinDistance stays off: it costs up to seconds per check.)
    maxLength: 64,
    l33tMaxSubstitutions: 20,
  });

  /**
   * The deployment's words (product, organisation, system names) refuse a password that contains
   * one, in any case, as the account's own words do: the first guesses of an attacker who targets
   * this service are built on them. Disguised forms ("@cm3") are left to the strength estimate,
   * which gets the words as user inputs and scores a password built around one low.
   */
  const contextWords = config.passwordContextWords;

  function checkLocally(password: string, { email, name, currentPassword }: PasswordContext): void {
    const length = [...password].length;
    if (length < minLength) {
      throw new PasswordRejectedError(`The password must be at least ${minLength} characters long.`);
    }
    if (length > PASSWORD_MAX_LENGTH) {
      throw new PasswordRejectedError(`The password must be at most ${PASSWORD_MAX_LENGTH} characters long.`);
    }
    // Exact comparison: passwords are hashed as given, so only the identical string is "the same".
    if (currentPassword !== undefined && password === currentPassword) {
      throw new PasswordRejectedError('The new password must be different from the current one.');
    }
    const lowered = password.toLowerCase();
    const { localPart, nameWords } = personalWords(email, name);
    if (localPart.length >= MIN_PERSONAL_WORD_LENGTH && lowered.includes(localPart)) {
      throw new PasswordRejectedError(
        'The password must not contain your email address (the part before the @).',
      );
    }
    if (nameWords.some((word) => word.length >= MIN_PERSONAL_WORD_LENGTH && lowered.includes(word))) {
      throw new PasswordRejectedError('The password must not contain your name.');
    }
    const contextWord = contextWords.find((word) => lowered.includes(word));
    if (contextWord !== undefined) {
      throw new PasswordRejectedError(
        `The password must not contain "${contextWord}": names tied to this service are guessed first.`,
      );
    }
    if (minScore === 0) return;
    // The account's and the deployment's words go in as user inputs too, so a password built
    // around them scores low.
    const result = zxcvbn.check(password, [email, localPart, name, ...nameWords, ...contextWords]);
    if (result.score < minScore) {
      const hint = result.feedback.warning ?? result.feedback.suggestions[0];
      throw new PasswordRejectedError(
        `The password is too common or easy to guess.${hint ? ` ${hint}` : ''}`,
      );
    }
  }

  return {
    async check(password, context) {
      checkLocally(password, context);
      if (breaches && (await breaches.isBreached(password))) {
        throw new PasswordRejectedError(
          'The password appears in a known data breach, so attackers try it early. Choose another one.',
        );
      }
    },
  };
}

/**
 * The email's local part and the name's words, lowercased. Names split on anything that is not a letter
 * or digit, so "Mary-Jane O'Neil" gives mary, jane, o, neil: an attacker guessing from the account
 * tries each part, not only the full name. The contains-rules skip parts under three characters
 * ("jo@...", "Li", the "o" above): they turn up inside unrelated passwords ("total" holds "al") and
 * would refuse them for no gain; zxcvbn still sees every part as a user input.
 */
function personalWords(email: string, name: string): { localPart: string; nameWords: string[] } {
  const at = email.lastIndexOf('@');
  const localPart = (at === -1 ? email : email.slice(0, at)).toLowerCase();
  const nameWords = name
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((word) => word.length > 0);
  return { localPart, nameWords };
}
