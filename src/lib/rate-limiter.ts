import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { AppConfig } from '../../config/config';
import { RateLimitedError } from '../errors';
import type { RedisClient } from './redis';

export const HOUR_S = 3600;
export const DAY_S = 24 * HOUR_S;

export interface LimiterOptions {
  name: string;
  points: number;
  durationS: number;
  /** Once the points are spent, refuse for this long (instead of until the window ends). */
  blockS?: number;
}

export type Limiter = RateLimiterRedis;

/**
 * A Redis-backed limiter (shared by every instance of the app) with an in-memory insurance limiter of
 * the same shape: while Redis is unreachable each process still counts on its own, so limits hold per
 * process instead of vanishing, and nothing answers 500.
 */
export function createLimiter(config: AppConfig, redis: RedisClient, options: LimiterOptions): Limiter {
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

/** Whole seconds until the limiter lets `state`'s key through again, at least 1 (for Retry-After). */
export const retryAfterS = (state: RateLimiterRes) => Math.max(1, Math.ceil(state.msBeforeNext / 1000));

/**
 * Spends one point of `key` and returns the limiter's answer, refused or not: a refusal resolves to
 * the RateLimiterRes the library rejects with. Any other error means both Redis and the insurance
 * limiter failed, and is thrown.
 */
export function spendPoint(limiter: Limiter, key: string): Promise<RateLimiterRes> {
  return limiter.consume(key).catch((rejection: unknown) => {
    if (rejection instanceof RateLimiterRes) return rejection;
    throw rejection;
  });
}

/** True when `state` came from a consume past the limiter's points. */
export const isRefused = (limiter: Limiter, state: RateLimiterRes) => state.consumedPoints > limiter.points;

/**
 * Spends one point of `key`; throws 429 `rate_limited` once they are spent. Only the request that
 * crosses the limit carries the `ratelimit.blocked` event, so a flood cannot flood the log too.
 */
export async function consumeOrThrow(limiter: Limiter, key: string): Promise<RateLimiterRes> {
  const state = await spendPoint(limiter, key);
  if (!isRefused(limiter, state)) return state;
  const firstRefusal = state.consumedPoints === limiter.points + 1;
  throw new RateLimitedError(
    retryAfterS(state),
    firstRefusal ? { name: 'ratelimit.blocked', fields: { limiter: limiter.keyPrefix } } : undefined,
  );
}
