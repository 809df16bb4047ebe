import type { Request, RequestHandler, Response } from 'express';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { AppConfig } from '../../config/config';
import { RateLimitedError } from '../errors';
import type { RedisClient } from '../lib/redis';

const HOUR_S = 3600;
const DAY_S = 24 * HOUR_S;

interface LimiterOptions {
  name: string;
  points: number;
  durationS: number;
  /** Once the points are spent, refuse for this long (instead of until the window ends). */
  blockS?: number;
}

/**
 * A Redis-backed limiter (shared by every instance of the app) with an in-memory insurance limiter of
 * the same shape: while Redis is unreachable each process still counts on its own, so limits hold per
 * process instead of vanishing, and nothing answers 500.
 */
function createLimiter(config: AppConfig, redis: RedisClient, options: LimiterOptions): RateLimiterRedis {
  const shape = {
    points: options.points,
    duration: options.durationS,
    blockDuration: options.blockS ?? 0,
    keyPrefix: `${config.redisKeyPrefix}rl:${options.name}`,
  };
  return new RateLimiterRedis({
    ...shape,
    storeClient: redis,
    useRedisPackage: true,
    // Fall to the insurance limiter at once when Redis is not connected, instead of timing out.
    rejectIfRedisNotReady: true,
    // The memory store expires each record with a setTimeout, and Node fires a timer longer than
    // 2^31-1 ms (~24.8 days) after 1 ms: the 90-day login window would forget every failure at once,
    // leaving logins unthrottled during an outage. A day at most also bounds what an outage keeps in memory.
    insuranceLimiter: new RateLimiterMemory({ ...shape, duration: Math.min(shape.duration, DAY_S) }),
  });
}

const retryAfterS = (res: RateLimiterRes) => Math.max(1, Math.ceil(res.msBeforeNext / 1000));

/**
 * Consumes one point for `key`; throws 429 `rate_limited` once they are spent. A rejection by the
 * limiter resolves to a RateLimiterRes; any other error means both Redis and the insurance failed.
 */
async function consumeOrThrow(limiter: RateLimiterRedis, key: string): Promise<RateLimiterRes> {
  try {
    return await limiter.consume(key);
  } catch (rejection) {
    if (!(rejection instanceof RateLimiterRes)) throw rejection;
    // Only the request that crosses the limit is logged, so a flood cannot flood the log too.
    const firstRefusal = rejection.consumedPoints === limiter.points + 1;
    throw new RateLimitedError(retryAfterS(rejection), firstRefusal ? 'ratelimit.blocked' : undefined, {
      limiter: limiter.keyPrefix,
    });
  }
}

function setRateLimitHeaders(res: Response, limit: number, state: RateLimiterRes): void {
  // IETF draft "RateLimit header fields for HTTP": the quota, what is left, seconds until it resets.
  res.setHeader('RateLimit-Limit', String(limit));
  res.setHeader('RateLimit-Remaining', String(Math.max(0, state.remainingPoints)));
  res.setHeader('RateLimit-Reset', String(retryAfterS(state)));
}

/** A middleware that spends one point per request of `keyOf(req)` (a client IP, a user id). */
function limitRequests(
  limiter: RateLimiterRedis,
  keyOf: (req: Request) => string,
  headers = false,
): RequestHandler {
  return async (req, res, next) => {
    try {
      const state = await consumeOrThrow(limiter, keyOf(req));
      if (headers) setRateLimitHeaders(res, limiter.points, state);
    } catch (error) {
      if (headers && error instanceof RateLimitedError) {
        res.setHeader('RateLimit-Limit', String(limiter.points));
        res.setHeader('RateLimit-Remaining', '0');
        res.setHeader('RateLimit-Reset', String(error.retryAfterS));
      }
      throw error;
    }
    next();
  };
}

export type LoginLockout = 'consecutive_failures' | 'daily_failures';

/**
 * Brute-force protection for login, after rate-limiter-flexible's "login endpoint protection" recipe
 * (the one the Express security best practices point to), OWASP Authentication Cheat Sheet:
 * - failures in a row per (email, client IP): blocked for an hour at the limit. Keyed by the pair, an
 *   attacker guessing one account from one address is stopped without locking the real owner out from
 *   their own address;
 * - failures per client IP per day, across all emails: blocked for a day (password spraying).
 * Both are checked before the password is verified, so a blocked attempt costs no hashing.
 */
export function createLoginThrottle(config: AppConfig, redis: RedisClient) {
  const limits = config.rateLimits;
  const byIpPerDay = createLimiter(config, redis, {
    name: 'login-ip-day:',
    points: limits.loginFailsPerIpPerDay,
    durationS: DAY_S,
    blockS: DAY_S,
  });
  const consecutive = createLimiter(config, redis, {
    name: 'login-email-ip:',
    points: limits.loginConsecutiveFails,
    // Long window: "in a row" ends with a success (which resets the count), not with the clock.
    durationS: 90 * DAY_S,
    blockS: HOUR_S,
  });
  const pairKey = (email: string, ip: string) => `${email}|${ip}`;

  return {
    /** Throws 429 when either limit is reached; spends nothing. */
    async assertAllowed(email: string, ip: string): Promise<void> {
      const [ipState, pairState] = await Promise.all([
        byIpPerDay.get(ip),
        consecutive.get(pairKey(email, ip)),
      ]);
      const blocked = [
        [ipState, byIpPerDay, 'daily_failures'],
        [pairState, consecutive, 'consecutive_failures'],
      ] as const;
      for (const [state, limiter, reason] of blocked) {
        if (state && state.consumedPoints >= limiter.points && state.msBeforeNext > 0) {
          throw new RateLimitedError(retryAfterS(state), 'auth.locked', { reason });
        }
      }
    },

    /** Counts a failure; says which lock, if any, this failure just engaged. */
    async recordFailure(email: string, ip: string): Promise<LoginLockout | undefined> {
      const spend = async (limiter: RateLimiterRedis, key: string): Promise<boolean> => {
        const state = await limiter.consume(key).catch((rejection: unknown) => {
          if (rejection instanceof RateLimiterRes) return rejection;
          throw rejection;
        });
        if (state.consumedPoints !== limiter.points) return false;
        // This failure spent the last point: the lock starts now, for blockS. The library applies
        // blockDuration only to a consume that goes past the points, which never comes (assertAllowed
        // refuses first); without this the lock would last as long as the counting window (90 days for
        // the pair, the rest of the day for the IP) instead of an hour and a day.
        await limiter.block(key, limiter.blockDuration);
        return true;
      };
      const [dailyLocked, pairLocked] = await Promise.all([
        spend(byIpPerDay, ip),
        spend(consecutive, pairKey(email, ip)),
      ]);
      if (pairLocked) return 'consecutive_failures';
      if (dailyLocked) return 'daily_failures';
      return undefined;
    },

    /** A success ends the run of failures for this (email, IP); the daily count stays. */
    async recordSuccess(email: string, ip: string): Promise<void> {
      await consecutive.delete(pairKey(email, ip));
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;

export type RequestLimits = ReturnType<typeof createRequestLimits>;

/** The per-request limiters: everything per client IP, plus stricter ones on costly routes. */
export function createRequestLimits(config: AppConfig, redis: RedisClient) {
  const limits = config.rateLimits;
  const global = createLimiter(config, redis, {
    name: 'ip-minute:',
    points: limits.requestsPerMinute,
    durationS: 60,
  });
  const register = createLimiter(config, redis, {
    name: 'register-ip:',
    points: limits.registrationsPerIpPerHour,
    durationS: HOUR_S,
  });
  const passwordChange = createLimiter(config, redis, {
    name: 'password-user:',
    points: limits.passwordChangesPerUserPerHour,
    durationS: HOUR_S,
  });
  return {
    /** Every route but the health probes, with RateLimit-* headers on each answer. */
    perClient: limitRequests(global, (req) => req.clientIp, true),
    /** Account creation is cheap to ask for and costly to serve (a hash, a row): per client IP. */
    registration: limitRequests(register, (req) => req.clientIp),
    /** Password changes verify and hash: per signed-in user (use after requireAuth). */
    passwordChange: limitRequests(passwordChange, (req) => req.user?.id ?? req.clientIp),
  };
}
