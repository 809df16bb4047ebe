/**
 * Where the tests find Postgres and Redis. TEST_DATABASE_URL points at a server (any database on it);
 * each run creates a database of its own there and drops it afterwards. Redis keys of a run share
 * one prefix and are deleted afterwards.
 */
export const TEST_DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Set by global-setup for the workers. */
export function runEnv(): { databaseUrl: string; redisUrl: string; keyPrefix: string } {
  const databaseUrl = process.env.TEST_RUN_DATABASE_URL;
  const keyPrefix = process.env.TEST_RUN_KEY_PREFIX;
  if (!databaseUrl || !keyPrefix) throw new Error('test run environment missing: run the tests through jest');
  return { databaseUrl, redisUrl: TEST_REDIS_URL, keyPrefix };
}

export function databaseUrlFor(name: string): string {
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}
