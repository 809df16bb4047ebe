import { randomBytes } from 'node:crypto';
import type { Express } from 'express';
import { loadConfig, type AppConfig } from '../../config/config';
import { buildApp } from '../../src/app';
import type { Lifecycle } from '../../src/http/health';
import { createDb, type Db } from '../../src/lib/db';
import { createPasswordHasher, type PasswordHasher } from '../../src/lib/passwords';
import { createRedisClient, type RedisClient } from '../../src/lib/redis';
import { createMailTransport } from '../../src/mail/mail-transport';
import { createOutbox } from '../../src/mail/outbox';
import { createMetrics, type Metrics } from '../../src/metrics/metrics';
import { userCacheFor, type UserCache } from '../../src/users/user-cache';
import { createCapturedLogger, type LogLine } from './captured-logger';
import { runEnv } from './env';

export type { LogLine };

export interface TestApp {
  app: Express;
  config: AppConfig;
  db: Db;
  redis: RedisClient;
  lifecycle: Lifecycle;
  /** The app's metrics when `env` sets METRICS_PORT (as main.ts makes them); the test serves them itself. */
  metrics?: Metrics;
  /**
   * The app's user cache, as main.ts makes it (unless `env` sets USER_CACHE_TTL_S=0). A test that
   * changes a user behind the app's back (SQL of its own) awaits `userCache.sync()` before its next
   * request, as it would wait for any other instance to see the change.
   */
  userCache?: UserCache;
  /** Every log line the app wrote, parsed. */
  logs: LogLine[];
  /** The raw log text, for "this never appears anywhere" assertions. */
  rawLogs(): string;
  close(): Promise<void>;
}

export const TEST_SESSION_SECRET = 'test-session-secret-0123456789abcdefghijklmnop';

let sharedHasher: PasswordHasher | undefined;
/** One hasher per worker: building it computes the dummy hash. */
export function passwords(): PasswordHasher {
  sharedHasher ??= createPasswordHasher();
  return sharedHasher;
}

/**
 * The outbox's pauses between attempts in tests: three attempts still, but a mail to a relay that is
 * down is given up within a second instead of half a minute.
 */
const TEST_RETRY_DELAYS_MS = [50, 100];

/**
 * Builds the real app (buildApp) with real Postgres and Redis, exactly as main.ts wires it, with its own
 * Redis key prefix so apps in one run never share sessions. Mail is off unless `env` sets SMTP_URL (and
 * MAIL_FROM): then it goes through the real outbox and nodemailer to that server (test/support/smtp.ts). `env` overrides the test environment;
 * `passwords` replaces the shared hasher (a test's wrapper around the real one, to hold or count hashes).
 * Suites get their apps through useTestApp()/withTestApp() (use-test-app.ts), which add the leak check;
 * call this directly only where a test must run the app's life itself.
 */
export async function createTestApp(
  env: Record<string, string> = {},
  options: { passwords?: PasswordHasher } = {},
): Promise<TestApp> {
  const run = runEnv();
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: run.databaseUrl,
    REDIS_URL: run.redisUrl,
    REDIS_KEY_PREFIX: `${run.keyPrefix}${randomBytes(4).toString('hex')}:`,
    SESSION_SECRET: TEST_SESSION_SECRET,
    LOG_LEVEL: 'info',
    // Every request of a test file comes from 127.0.0.1: limits far above what a file sends, so only
    // the rate-limit tests (which set their own small limits) ever see a 429.
    RATE_LIMIT_PER_MINUTE: '1000000',
    LOGIN_MAX_CONSECUTIVE_FAILS: '1000',
    LOGIN_MAX_FAILS_PER_IP_PER_DAY: '100000',
    REGISTER_MAX_PER_IP_PER_HOUR: '100000',
    PASSWORD_CHANGE_MAX_PER_USER_PER_HOUR: '100000',
    PASSWORD_RESET_MAX_PER_IP_PER_HOUR: '100000',
    // Likewise a line no file fills and a wait no busy machine exceeds: only the capacity tests (which
    // set their own bound) ever see a 503 service_busy.
    HASH_QUEUE_MAX: '10000',
    HASH_QUEUE_WAIT_MS: '60000',
    ...env,
  });
  const { logger, logs, rawLogs } = createCapturedLogger(config.logLevel);
  const db = createDb({ url: config.databaseUrl, tls: config.databaseTls, logger });
  const redis = createRedisClient({
    url: config.redisUrl,
    tls: config.redisTls,
    sentinel: config.redisSentinel,
    logger,
  });
  await redis.connect();
  const lifecycle: Lifecycle = { shuttingDown: false };
  const transport = createMailTransport(config.mail, logger);
  const outbox = transport && createOutbox({ transport, logger, retryDelaysMs: TEST_RETRY_DELAYS_MS });
  const metrics = config.metrics ? createMetrics() : undefined;
  const userCache = userCacheFor(config, db, logger);
  const app = buildApp({
    config,
    db,
    redis,
    logger,
    passwords: options.passwords ?? passwords(),
    lifecycle,
    outbox,
    metrics,
    userCache,
  });
  return {
    app,
    config,
    db,
    redis,
    lifecycle,
    metrics,
    userCache,
    logs,
    rawLogs,
    async close() {
      // As main.ts does at shutdown: the mails still queued are sent or given up first.
      await outbox?.drain(2000);
      await userCache?.close();
      await db.close();
      if (redis.isOpen) await redis.close();
    },
  };
}
