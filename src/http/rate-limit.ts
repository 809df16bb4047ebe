import type { Request, RequestHandler, Response } from 'express';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { AppConfig } from '../../config/config';
import { RateLimitedError } from '../errors';
import type { RedisClient } from '../lib/redis';
import { clientLimitKey } from './request-context';

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
    // The library adds ':' between prefix and key: app:rl:ip-minute:203.0.113.7
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
 * - failures in a row per (email, client): blocked for an hour at the limit. Keyed by the pair, an
 *   attacker guessing one account from one address is stopped without locking the real owner out from
 *   their own address;
 * - failures per client per day, across all emails: blocked for a day (password spraying).
 * An attempt spends its point on both counters BEFORE the password is checked: Redis counts
 * atomically, so a burst of parallel attempts cannot all pass a check that only reads (exactly the
 * allowed number are verified), and a refused attempt costs no hashing.
 */
export function createLoginThrottle(config: AppConfig, redis: RedisClient) {
  const limits = config.rateLimits;
  const daily = createLimiter(config, redis, {
    name: 'login-ip-day',
    points: limits.loginFailsPerIpPerDay,
    durationS: DAY_S,
    blockS: DAY_S,
  });
  const consecutive = createLimiter(config, redis, {
    name: 'login-email-ip',
    points: limits.loginConsecutiveFails,
    // Long window: "in a row" ends with a success (which resets the count), not with the clock.
    durationS: 90 * DAY_S,
    blockS: HOUR_S,
  });
  const counters = [
    { limiter: daily, reason: 'daily_failures' as const, key: (_email: string, client: string) => client },
    {
      limiter: consecutive,
      reason: 'consecutive_failures' as const,
      key: (email: string, client: string) => `${email}|${client}`,
    },
  ];

  return {
    /**
     * Spends one attempt; throws 429 when either counter was already spent. Returns what to call once
     * the password has been checked.
     */
    async beginAttempt(email: string, ip: string) {
      const client = clientLimitKey(ip);
      const spent = await Promise.all(
        counters.map(({ limiter, key }) =>
          limiter.consume(key(email, client)).catch((rejection: unknown) => {
            if (rejection instanceof RateLimiterRes) return rejection;
            throw rejection;
          }),
        ),
      );
      const refusedBy = counters.findIndex(({ limiter }, i) => spent[i]!.consumedPoints > limiter.points);
      if (refusedBy >= 0) {
        const { limiter, reason } = counters[refusedBy]!;
        const state = spent[refusedBy]!;
        // A refused attempt is not a failure: give back the point it took from the other counter.
        await Promise.all(
          counters.map((c, i) =>
            spent[i]!.consumedPoints <= c.limiter.points ? c.limiter.reward(c.key(email, client), 1) : null,
          ),
        );
        // Logged for the first refusals of a lock only (the count passes points+1 when the lock is
        // set): a flood of refused attempts stays a couple of log lines.
        const event = state.consumedPoints <= limiter.points + 2 ? 'auth.locked' : undefined;
        throw new RateLimitedError(retryAfterS(state), event, { reason });
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
              await limiter.block(key(email, client), limiter.blockDuration);
              if (reason === 'consecutive_failures' || !engaged) engaged = reason;
            }),
          );
          return engaged;
        },
        /** The right password: the run of failures ends, and this attempt does not count as one. */
        async succeeded(): Promise<void> {
          await Promise.all([consecutive.delete(`${email}|${client}`), daily.reward(client, 1)]);
        },
      };
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;

export type RequestLimits = ReturnType<typeof createRequestLimits>;

/** The per-request limiters: everything per client IP, plus stricter ones on costly routes. */
export function createRequestLimits(config: AppConfig, redis: RedisClient) {
  const limits = config.rateLimits;
  const global = createLimiter(config, redis, {
    name: 'ip-minute',
    points: limits.requestsPerMinute,
    durationS: 60,
  });
  const register = createLimiter(config, redis, {
    name: 'register-ip',
    points: limits.registrationsPerIpPerHour,
    durationS: HOUR_S,
  });
  const passwordChange = createLimiter(config, redis, {
    name: 'password-user',
    points: limits.passwordChangesPerUserPerHour,
    durationS: HOUR_S,
  });
  return {
    /** Every route but the health probes, with RateLimit-* headers on each answer. */
    perClient: limitRequests(global, (req) => clientLimitKey(req.clientIp), true),
    /** Account creation is cheap to ask for and costly to serve (a hash, a row): per client. */
    registration: limitRequests(register, (req) => clientLimitKey(req.clientIp)),
    /**
     * Every check of the current password (password change, email change), per signed-in user: with
     * a stolen session and no password, these checks are a password oracle (use after requireAuth).
     */
    reauthentication: limitRequests(passwordChange, (req) => req.user?.id ?? clientLimitKey(req.clientIp)),
  };
}
