import type { AppConfig } from '../../config/config';
import { keyedNamer } from '../lib/keyed-names';

/**
 * Names for what a failed login typed, for the log and for Redis, that do not hold what was typed
 * (ASVS 5.0 14.2.4, 16.2.5; ADR 0039). The email field of a login takes any string, so it sometimes
 * holds a password typed into the wrong box; and a list of who tried which address from where is
 * personal data nobody needs to read back. A keyed HMAC gives each value a stable name, so repeated
 * attempts on one address still line up in the log and still count against one lockout, while neither
 * a reader of the log nor of a Redis dump can get the value back or test a guess without the key.
 *
 * The key is HMAC-SHA256(first SESSION_SECRET entry, "login-pseudonym"), the same one-step derivation
 * with a label as the CSRF key and the session handles: never the key that signs cookies. Rotating
 * SESSION_SECRET gives every value a new name (ADR 0039 says what that costs).
 */
export function createLoginPseudonyms(config: AppConfig) {
  const nameOf = keyedNamer(config.session.secrets[0]!, 'login-pseudonym');

  return {
    /** The email a login typed (trimmed and lowercased), as failure events name it. */
    ofEmail: (email: string): string => nameOf(`email\n${email}`),
    /**
     * An (email, client) pair, as the consecutive-failure counter is keyed. Neither part has a line
     * break (the login refuses control characters; a client key is an address), so pairs cannot blur.
     */
    ofAttempt: (email: string, client: string): string => nameOf(`attempt\n${client}\n${email}`),
  };
}

export type LoginPseudonyms = ReturnType<typeof createLoginPseudonyms>;
