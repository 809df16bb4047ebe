import { loadConfig, type AppConfig } from '../../config/config';
import { createDb } from '../../src/lib/db';
import { createRedisClient } from '../../src/lib/redis';
import { createCapturedLogger } from './captured-logger';
import { TEST_SESSION_SECRET } from './test-app';

/** The app's clients of Postgres and Redis, built from a configuration as main.ts builds them. */

export const configWith = (env: Record<string, string>): AppConfig =>
  loadConfig({ NODE_ENV: 'test', SESSION_SECRET: TEST_SESSION_SECRET, ...env });

/** Runs `SELECT ssl FROM pg_stat_ssl` (and the role) for this connection through createDb, as the app would. */
export async function queryOverConfig(
  config: AppConfig,
  sql = 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
): Promise<unknown> {
  const { logger } = createCapturedLogger();
  const db = createDb({ url: config.databaseUrl, tls: config.databaseTls, logger });
  try {
    return await db.query(sql);
  } finally {
    await db.close();
  }
}

/** Connects as the app would and resolves with PING's answer, or rejects with the first error. */
export async function pingOverConfig(config: AppConfig): Promise<string> {
  const { logger } = createCapturedLogger();
  const client = createRedisClient({ url: config.redisUrl, tls: config.redisTls, logger });
  // node-redis retries a failed connection forever (the app's reconnect strategy): the first
  // error is the answer here.
  const failed = new Promise<never>((_resolve, reject) => client.once('error', reject));
  try {
    await Promise.race([client.connect(), failed]);
    return await Promise.race([client.ping(), failed]);
  } finally {
    client.destroy();
  }
}
