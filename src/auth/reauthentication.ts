import type { AppConfig } from '../../config/config';
import { InvalidCurrentPasswordError, ServiceBusyError } from '../errors';
import type { Db } from '../lib/db';
import type { PasswordHashing } from '../lib/password-queue';
import { consumeOrThrow, createLimiter, HOUR_S } from '../lib/rate-limiter';
import type { RedisClient } from '../lib/redis';
import { createUsersRepository } from '../users/users.repository';

export type Reauthentication = ReturnType<typeof createReauthentication>;

/**
 * The one check of a signed-in user's current password, for every change that asks for it (password,
 * sign-in email). With a stolen session but not the password, each such check is a password oracle,
 * so all of them spend one per-user budget, and they spend it before the hash is compared: a refused
 * guess costs no argon2 work and tells nothing (ASVS 6.3.1, 7.5.1).
 */
export function createReauthentication(deps: {
  config: AppConfig;
  redis: RedisClient;
  db: Db;
  passwords: PasswordHashing;
}) {
  const users = createUsersRepository(deps.db);
  const budget = createLimiter(deps.config, deps.redis, {
    name: 'password-user',
    points: deps.config.rateLimits.passwordChangesPerUserPerHour,
    durationS: HOUR_S,
  });

  return {
    /**
     * Resolves when `password` is the user's; 429 once the budget is spent, 403 when it is wrong, 503
     * when hashing is saturated. The place at the hasher comes first (from `hashing`, when the caller
     * already holds one), so a 503 spends none of the budget: it was no guess.
     */
    async verifyCurrentPassword(
      userId: string,
      password: string,
      hashing: PasswordHashing = deps.passwords,
    ): Promise<void> {
      await hashing.withPlace(async (place) => {
        await consumeOrThrow(budget, userId);
        const hash = await users.findPasswordHash(userId);
        if (!hash) throw new InvalidCurrentPasswordError();
        const valid = await place.verify(hash, password).catch(async (error: unknown) => {
          // The wait for a turn ran out: the password was never checked, so the point comes back.
          if (error instanceof ServiceBusyError) await budget.reward(userId, 1);
          throw error;
        });
        if (!valid) throw new InvalidCurrentPasswordError();
      });
    },
  };
}
