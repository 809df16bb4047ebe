import type { AppConfig } from '../../config/config';
import { RateLimitedError } from '../errors';
import { clientLimitKey } from '../http/request-context';
import {
  createLimiter,
  DAY_S,
  HOUR_S,
  isRefused,
  retryAfterS,
  spendPoint,
  type Limiter,
} from '../lib/rate-limiter';
import type { RedisClient } from '../lib/redis';
import { createLoginPseudonyms } from './login-pseudonyms';

/** Which lock a failed login engaged. */
export type LoginLockout = 'consecutive_failures' | 'daily_failures';

interface Counter {
  limiter: Limiter;
  reason: LoginLockout;
  /** The counter's key for an attempt on `account` from `client` (a clientLimitKey). */
  key(account: string, client: string): string;
}

/**
 * The step of a sign-in a throttle guards: the password (the account is the email typed), or the
 * second factor (the account is the user id the password step proved). Each has counters of its own.
 */
export type SignInStep = 'password' | 'second_factor';

const COUNTER_NAMES: Record<SignInStep, { daily: string; consecutive: string }> = {
  password: { daily: 'login-ip-day', consecutive: 'login-email-ip' },
  second_factor: { daily: 'mfa-ip-day', consecutive: 'mfa-user' },
};

/**
 * Brute-force protection for login, after rate-limiter-flexible's "login endpoint protection" recipe
 * (the one the Express security best practices point to), OWASP Authentication Cheat Sheet:
 * - failures in a row per (email, client): blocked for an hour at the limit. Keyed by the pair, an
 *   attacker guessing one account from one address is stopped without locking the real owner out from
 *   their own address;
 * - failures per client per day, across all emails: blocked for a day (password spraying).
 * An attempt spends its point on both counters BEFORE the password is checked: Redis counts
 * atomically, so a burst of parallel attempts cannot all pass a check that only reads (exactly the
 * allowed number are verified), and a refused attempt costs no hashing.
 *
 * The second factor's code is throttled the same way, with the same limits, on counters of its own
 * (ASVS 5.0 6.3.1): failures in a row lock the account's code step for an hour, whatever the address.
 * Keyed by the user alone, not by (user, client): whoever reaches this step holds the password, and
 * a 6-digit code must not be guessable from many addresses at once (10 per address per hour would be
 * no bound at all). The price, that someone with the password can keep the owner from finishing a
 * login, is one a changed password ends.
 */
export function createLoginThrottle(config: AppConfig, redis: RedisClient, step: SignInStep = 'password') {
  const limits = config.rateLimits;
  const pseudonyms = createLoginPseudonyms(config);
  const daily: Counter = {
    limiter: createLimiter(config, redis, {
      name: COUNTER_NAMES[step].daily,
      points: limits.loginFailsPerIpPerDay,
      durationS: DAY_S,
      blockS: DAY_S,
    }),
    reason: 'daily_failures',
    key: (_email, client) => client,
  };
  const consecutive: Counter = {
    limiter: createLimiter(config, redis, {
      name: COUNTER_NAMES[step].consecutive,
      points: limits.loginConsecutiveFails,
      // Long window: "in a row" ends with a success (which resets the count), not with the clock.
      durationS: 90 * DAY_S,
      blockS: HOUR_S,
    }),
    reason: 'consecutive_failures',
    // The password step's pair is kept under a keyed name (ADR 0039): this key lives up to 90 days, and
    // in clear it would list who tried which address from where, or a password typed as the email,
    // to anyone who reads a Redis dump. The count is the same, so is the lock. The code step's user id
    // is an internal id and stays as it is.
    key: step === 'password' ? (email, client) => pseudonyms.ofAttempt(email, client) : (userId) => userId,
  };
  const counters = [daily, consecutive];

  return {
    /**
     * Spends one attempt; throws 429 when either counter was already spent. Returns what to call once
     * the password has been checked.
     */
    async beginAttempt(account: string, ip: string) {
      const client = clientLimitKey(ip);
      const spent = await Promise.all(counters.map((c) => spendPoint(c.limiter, c.key(account, client))));
      const refusedBy = counters.findIndex((c, i) => isRefused(c.limiter, spent[i]!));
      if (refusedBy >= 0) {
        const { limiter, reason } = counters[refusedBy]!;
        const state = spent[refusedBy]!;
        // A refused attempt is not a failure: give back the point it took from the other counter.
        await Promise.all(
          counters.map((c, i) =>
            isRefused(c.limiter, spent[i]!) ? null : c.limiter.reward(c.key(account, client), 1),
          ),
        );
        // Logged for the first refusals of a lock only (the count passes points+1 when the lock is
        // set): a flood of refused attempts stays a couple of log lines.
        const logged = state.consumedPoints <= limiter.points + 2;
        // The code step's account is a user id, named as every code-step event names it; the password
        // step's is whatever email was typed, left out as before.
        const named = step === 'second_factor' ? { targetUserId: account } : {};
        throw new RateLimitedError(
          retryAfterS(state),
          logged ? { name: 'auth.locked', fields: { reason, ...named } } : undefined,
        );
      }

      return {
        /** A wrong password. Says which lock, if any, this failure engaged. */
        async failed(): Promise<LoginLockout | undefined> {
          let engaged: LoginLockout | undefined;
          await Promise.all(
            counters.map(async ({ limiter, key, reason }, i) => {
              if (spent[i]!.consumedPoints !== limiter.points) return;
              // This failure spent the last point: the lock starts now and lasts blockS. (The library
              // applies blockDuration only to a consume past the points; without this the lock would
              // last as long as the counting window.)
              await limiter.block(key(account, client), limiter.blockDuration);
              if (reason === 'consecutive_failures' || !engaged) engaged = reason;
            }),
          );
          return engaged;
        },
        /**
         * The password was never checked (hashing refused it with 503): no guess was made, so the
         * attempt gives back its points, as a refused attempt does.
         */
        async withdrawn(): Promise<void> {
          await Promise.all(counters.map((c) => c.limiter.reward(c.key(account, client), 1)));
        },
        /** The right password: the run of failures ends, and this attempt does not count as one. */
        async succeeded(): Promise<void> {
          await Promise.all([
            consecutive.limiter.delete(consecutive.key(account, client)),
            daily.limiter.reward(daily.key(account, client), 1),
          ]);
        },
      };
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;
