import {
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
  TimeoutError,
  createClient,
} from 'redis';
import type { Logger } from './logger';

/** The single Redis client of the app (sessions, the session index, and later the rate limiters). */
export type RedisClient = ReturnType<typeof createRedisClient>;

export interface RedisOptions {
  url: string;
  logger: Logger;
  /** Per-command deadline: a Redis that stops answering fails requests fast instead of hanging them. */
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export function createRedisClient({
  url,
  logger,
  commandTimeoutMs = 2000,
  connectTimeoutMs = 2000,
}: RedisOptions) {
  const client = createClient({
    url,
    // Without this, commands issued while disconnected wait in memory until Redis returns: requests
    // would hang instead of failing with 503 (and rate limiters' in-memory fallbacks never engage).
    disableOfflineQueue: true,
    commandOptions: { timeout: commandTimeoutMs },
    socket: {
      connectTimeout: connectTimeoutMs,
      // Keep trying forever, backing off to 2 s: the app recovers by itself when Redis returns.
      reconnectStrategy: (retries) => Math.min(100 * 2 ** retries, 2000),
    },
  });

  // node-redis emits 'error' on every failed reconnect; without a listener that would crash the process.
  // Log state changes, not every retry.
  let down = false;
  client.on('error', (err: Error) => {
    if (!down) logger.error({ err }, 'redis connection lost');
    down = true;
  });
  client.on('ready', () => {
    if (down) logger.info('redis connection restored');
    down = false;
  });
  return client;
}

/** True for errors that mean "Redis is unreachable right now", which the API answers with 503. */
export function isRedisUnavailableError(error: unknown): boolean {
  return (
    error instanceof ClientOfflineError ||
    error instanceof ClientClosedError ||
    error instanceof ConnectionTimeoutError ||
    error instanceof SocketClosedUnexpectedlyError ||
    error instanceof SocketTimeoutError ||
    error instanceof TimeoutError
  );
}
