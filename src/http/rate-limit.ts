import type { Request, RequestHandler, Response } from 'express';
import type { AppConfig } from '../../config/config';
import { RateLimitedError } from '../errors';
import { consumeOrThrow, createLimiter, HOUR_S, retryAfterS, type Limiter } from '../lib/rate-limiter';
import type { RedisClient } from '../lib/redis';
import { clientLimitKey } from './request-context';

function setRateLimitHeaders(res: Response, limit: number, remaining: number, resetS: number): void {
  // IETF draft "RateLimit header fields for HTTP": the quota, what is left, seconds until it resets.
  res.setHeader('RateLimit-Limit', String(limit));
  res.setHeader('RateLimit-Remaining', String(Math.max(0, remaining)));
  res.setHeader('RateLimit-Reset', String(resetS));
}

/** A middleware that spends one point per request of `keyOf(req)` (a client IP). */
function limitRequests(limiter: Limiter, keyOf: (req: Request) => string, headers = false): RequestHandler {
  return async (req, res, next) => {
    try {
      const state = await consumeOrThrow(limiter, keyOf(req));
      if (headers) setRateLimitHeaders(res, limiter.points, state.remainingPoints, retryAfterS(state));
    } catch (error) {
      if (headers && error instanceof RateLimitedError) {
        setRateLimitHeaders(res, limiter.points, 0, error.retryAfterS);
      }
      throw error;
    }
    next();
  };
}

export type RequestLimits = ReturnType<typeof createRequestLimits>;

/**
 * The per-request limiters: everything per client IP, plus stricter ones on account creation and on
 * password reset. (The login throttle, the re-authentication budget and the per-address mail limit
 * are parts of their use cases, in src/auth and src/mail.)
 */
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
  const passwordReset = createLimiter(config, redis, {
    name: 'password-reset-ip',
    points: limits.passwordResetsPerIpPerHour,
    durationS: HOUR_S,
  });
  return {
    /** Every route but the health probes, with RateLimit-* headers on each answer. */
    perClient: limitRequests(global, (req) => clientLimitKey(req.clientIp), true),
    /** Account creation is cheap to ask for and costly to serve (a hash, a row): per client. */
    registration: limitRequests(register, (req) => clientLimitKey(req.clientIp)),
    /**
     * Asking for a reset link and using one share a budget per client: each ask sends a mail and
     * writes a token, each use may cost a hash. Spent before anything else, the mail-off 404 included.
     */
    passwordReset: limitRequests(passwordReset, (req) => clientLimitKey(req.clientIp)),
  };
}
