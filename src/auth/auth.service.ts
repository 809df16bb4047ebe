import {
  InvalidCredentialsError,
  InvalidCurrentPasswordError,
  RateLimitedError,
  ServiceBusyError,
} from '../errors';
import type { Db } from '../lib/db';
import type { PasswordHashing } from '../lib/password-queue';
import type { User } from '../users/user';
import { createUsersRepository } from '../users/users.repository';
import { emailSchema } from '../users/users.schemas';
import type { LoginPseudonyms } from './login-pseudonyms';
import type { LoginLockout, LoginThrottle } from './login-throttle';
import type { PasswordPolicy } from './password-policy';
import type { Reauthentication } from './reauthentication';

export type AuthService = ReturnType<typeof createAuthService>;

/**
 * How the password step of a login can end; `error` is anything else (an outage, a bug). `success`
 * is a user signed in by the password; `mfa_required` a right password whose login goes on to the
 * code step, which counts its own outcome (CODE_STEP_OUTCOMES, src/auth/login.ts).
 */
export const LOGIN_OUTCOMES = [
  'success',
  'mfa_required',
  'invalid_credentials',
  'locked',
  'busy',
  'error',
] as const;
export type LoginOutcome = (typeof LOGIN_OUTCOMES)[number];

/** Who counts login outcomes and the locks failures start (src/metrics, when it is on). */
export interface LoginObserver {
  loginAttempt(outcome: LoginOutcome): void;
  lockout(reason: LoginLockout): void;
}

/**
 * What a successful login did with the stored hash (ASVS 11.2.2): left it (its parameters are the
 * current ones), replaced it with a hash under the current parameters, found it replaced meanwhile by a
 * password change (which wins), or failed to replace it (the login still succeeds; the caller logs it).
 */
export type RehashOutcome =
  | { outcome: 'current' }
  | { outcome: 'rehashed' }
  | { outcome: 'superseded' }
  | { outcome: 'failed'; error: unknown };

export interface Authenticated {
  user: User;
  rehash: RehashOutcome;
}

function outcomeOf(error: unknown): LoginOutcome {
  if (error instanceof InvalidCredentialsError) return 'invalid_credentials';
  // The only 429 authenticate raises is the login throttle's lock.
  if (error instanceof RateLimitedError) return 'locked';
  if (error instanceof ServiceBusyError) return 'busy';
  return 'error';
}

export function createAuthService(deps: {
  db: Db;
  passwords: PasswordHashing;
  passwordPolicy: PasswordPolicy;
  loginThrottle: LoginThrottle;
  loginPseudonyms: LoginPseudonyms;
  reauthentication: Reauthentication;
  loginObserver?: LoginObserver;
}) {
  const { passwords, passwordPolicy, loginThrottle, loginPseudonyms, reauthentication, loginObserver } = deps;
  const users = createUsersRepository(deps.db);

  /**
   * After OWASP's argon2 parameters (or ours) move on, each user's hash moves with them at their next
   * login, the one moment the password is known. The new hash waits for a turn in the same line, on the
   * login's own place. Only the hash that was verified is replaced (a change committed meanwhile wins),
   * and the session epoch stays: the password is the same, so no session ends. Any failure, a refusal
   * for capacity included, leaves the old hash in place and the login successful; the next login tries
   * again.
   */
  async function rehashIfOutdated(
    hashing: PasswordHashing,
    userId: string,
    verifiedHash: string,
    password: string,
  ): Promise<RehashOutcome> {
    if (!hashing.needsRehash(verifiedHash)) return { outcome: 'current' };
    try {
      const stored = await users.rehashPassword(userId, verifiedHash, await hashing.hash(password));
      return { outcome: stored ? 'rehashed' : 'superseded' };
    } catch (error) {
      return { outcome: 'failed', error };
    }
  }

  function checkCredentials(email: string, password: string, clientIp: string): Promise<Authenticated> {
    return passwords.withPlace(async (hashing) => {
      const attempt = await loginThrottle.beginAttempt(email, clientIp);
      const found = await users.findCredentialsByEmail(email);
      const valid = await (
        found ? hashing.verify(found.passwordHash, password) : hashing.verifyAgainstDummy(password)
      ).catch(async (error: unknown) => {
        // The wait for a turn ran out: the password was never checked, so this was no guess.
        if (error instanceof ServiceBusyError) await attempt.withdrawn();
        throw error;
      });
      if (!found || !valid) {
        // What the log may keep of the attempt (ADR 0039): whose account, if any, and a keyed name of
        // the email, never the typed text (a password typed into the email field would sit in the log).
        const account = {
          emailTag: loginPseudonyms.ofEmail(email),
          notAnEmail: !emailSchema.safeParse(email).success,
          ...(found && { targetUserId: found.user.id }),
        };
        throw new InvalidCredentialsError(account, await attempt.failed());
      }
      await attempt.succeeded();
      const rehash = await rehashIfOutdated(hashing, found.user.id, found.passwordHash, password);
      return { user: found.user, rehash };
    });
  }

  return {
    /**
     * The same error, and the same argon2 work, for an unknown email and a wrong password: neither the
     * body nor the timing tells an attacker which accounts exist. Throttled per (email, IP) and per IP
     * before any hashing; unknown emails count too, so guessing which accounts exist is throttled alike.
     *
     * A place at the hasher is taken first: when hashing is saturated the attempt is refused (503)
     * before it spends a throttle point or a query, and before the email is looked up, so the refusal is
     * the same for every email. The throttle still runs before any hash, so a locked login costs none.
     */
    async authenticate(email: string, password: string, clientIp: string): Promise<Authenticated> {
      if (!loginObserver) return checkCredentials(email, password, clientIp);
      // Every pathway (API, form) signs in through here, so each attempt is counted once, here.
      try {
        const authenticated = await checkCredentials(email, password, clientIp);
        // The same test logIn makes: a factor to come means nobody is signed in yet.
        loginObserver.loginAttempt(authenticated.user.mfaEnabled ? 'mfa_required' : 'success');
        return authenticated;
      } catch (error) {
        loginObserver.loginAttempt(outcomeOf(error));
        if (error instanceof InvalidCredentialsError && error.lockout) loginObserver.lockout(error.lockout);
        throw error;
      }
    },

    /**
     * Returns the new session epoch: every session from before the change is now refused. One place at
     * the hasher for both hashes, so a verified current password is not then refused for want of room.
     */
    async changePassword(userId: string, currentPassword: string, newPassword: string): Promise<number> {
      return passwords.withPlace(async (hashing) => {
        await reauthentication.verifyCurrentPassword(userId, currentPassword, hashing);
        const user = await users.findById(userId);
        if (!user) throw new InvalidCurrentPasswordError(); // deleted since the check
        // A configured breach lookup runs on this place, within its deadline, for a user who has just
        // proven the current password (ADR 0025).
        await passwordPolicy.check(newPassword, { email: user.email, name: user.name, currentPassword });
        const epoch = await users.updatePasswordHash(userId, await hashing.hash(newPassword));
        if (epoch === null) throw new InvalidCurrentPasswordError();
        return epoch;
      });
    },
  };
}
