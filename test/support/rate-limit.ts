import { randomBytes, randomInt } from 'node:crypto';
import type { Response } from 'supertest';
import { expectError } from './assertions';
import type { TestApp } from './test-app';

/**
 * A client address of the test's own (TEST-NET-3 would be too small to stay unique across a run): with
 * TRUST_PROXY=1 it is sent as X-Forwarded-For, so each test counts against limits nobody else touches.
 */
export function uniqueIp(): string {
  return `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;
}

/** The headers a proxy one hop in front of the app adds for `ip`. */
export const fromIp = (ip: string) => ({ 'X-Forwarded-For': ip });

/** A passphrase the password policy accepts (long, random, built from no account data). */
export const strongPassword = () => `quartz ${randomBytes(6).toString('hex')} lantern`;

/** Retry-After in seconds, as a number (NaN when it is missing). */
export const retryAfterOf = (res: Response): number => Number(res.headers['retry-after']);

/** The 429 every limiter answers with: the JSON envelope and a Retry-After in whole seconds. */
export function expectRateLimited(res: Response, retryAfter: { min: number; max: number }): void {
  expectError(res, 429, 'rate_limited');
  expect(res.body.error.details).toBeUndefined();
  expect(res.headers['retry-after']).toMatch(/^\d+$/);
  expect(retryAfterOf(res)).toBeGreaterThanOrEqual(retryAfter.min);
  expect(retryAfterOf(res)).toBeLessThanOrEqual(retryAfter.max);
}

/** Every Redis key matching `pattern` (SCAN, never KEYS). */
export async function scanKeys(t: TestApp, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const batch of t.redis.scanIterator({ MATCH: pattern, COUNT: 1000 })) keys.push(...batch);
  return keys;
}
