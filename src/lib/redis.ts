import { setTimeout as delay } from 'node:timers/promises';
import { types } from 'node:util';
import {
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  ErrorReply,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
  TimeoutError,
  createClient,
  createSentinel,
} from 'redis';
import type { DataStoreTls, RedisSentinelSettings } from '../../config/config';
import { tlsConnectionOptions } from './data-store-tls';
import { withDeadline } from './deadline';
import type { Logger } from './logger';

/**
 * The single Redis client of the app: sessions, the session index and the rate limiters. Typed as the
 * single-node client whichever form config chose: the Sentinel client answers the same commands (GET,
 * SET, EVAL, ZRANGE, MULTI … exec, PING, connect/close, isOpen/isReady, 'error'/'ready' events), which is
 * all the app and its libraries call; test/faults/redis-sentinel.test.ts runs them all through it.
 */
export type RedisClient = ReturnType<typeof createSingleNodeClient>;

export interface RedisOptions {
  url: string;
  /** AppConfig.redisSentinel: when set, `url` is unused and the master is found through these sentinels. */
  sentinel?: RedisSentinelSettings | undefined;
  /** AppConfig.redisTls: set exactly when the URL is rediss://. */
  tls: DataStoreTls | undefined;
  logger: Logger;
  /** Per-command deadline: a Redis that stops answering fails requests fast instead of hanging them. */
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export function createRedisClient(options: RedisOptions): RedisClient {
  if (options.sentinel === undefined) return createSingleNodeClient(options);
  return createSentinelClient(options.sentinel, options);
}

/** Backs off to 2 s and keeps trying forever: the app recovers by itself when Redis returns. */
const reconnectStrategy = (retries: number) => Math.min(100 * 2 ** retries, 2000);

function createSingleNodeClient({
  url,
  tls,
  logger,
  commandTimeoutMs = 2000,
  connectTimeoutMs = 2000,
}: RedisOptions) {
  const client = createClient({
    url,
    // Without this, commands issued while disconnected wait in memory until Redis returns: requests
    // would hang instead of failing with 503 (and rate limiters' in-memory fallbacks never engage).
    disableOfflineQueue: true,
    // node-redis's own command timeout (5 s unless set) is off: it bounds only the wait to be written,
    // which withReplyDeadline below already bounds together with the wait for the reply, and it costs
    // every command an AbortSignal.timeout that lives for the whole timeout and, when it fires, builds
    // a DOMException with a stack: in a heap sampling of signed-in reads, about 15 % of the bytes that
    // reached the old generation, where only full collections free them (ADR 0011).
    commandOptions: { timeout: 0 },
    // No CLIENT SETINFO after connecting: a least-privilege user (the compose stack's, scripts/redis-acl.ts)
    // may not run CLIENT, and each refused handshake would add an entry to Redis's ACL LOG, where a
    // refusal should mean something went wrong. The library's name in CLIENT LIST is all it costs.
    disableClientInfo: true,
    socket: {
      connectTimeout: connectTimeoutMs,
      // rediss:// makes node-redis use TLS; these say against which CA, and that nothing goes unchecked.
      ...(tls === undefined ? {} : tlsConnectionOptions(tls)),
      reconnectStrategy,
    },
  });
  logStateChanges(client, logger);
  return withReplyDeadline(client, commandTimeoutMs);
}

/**
 * Redis Sentinel (ADR 0023): node-redis asks the sentinels for the master of `masterName`, connects to
 * it, and follows a failover (the sentinels' switch-master message, or a READONLY reply or a dropped
 * connection, make it ask again). While the master is gone, its commands wait for the new topology
 * (re-asking every second, up to 16 times): the reply deadline below is what turns that wait into a 503.
 * Every command goes to the master (no replica pool): a read from a replica could miss a session
 * write or revocation the master already acknowledged.
 */
function createSentinelClient(
  sentinel: RedisSentinelSettings,
  { logger, commandTimeoutMs = 2000, connectTimeoutMs = 2000 }: RedisOptions,
): RedisClient {
  const client = createSentinel({
    name: sentinel.masterName,
    sentinelRootNodes: sentinel.nodes.map((node) => ({ host: node.host, port: node.port })),
    // The same reasons as the single client's: fail fast while disconnected, one deadline per command.
    commandOptions: { timeout: 0 },
    nodeClientOptions: {
      disableOfflineQueue: true,
      disableClientInfo: true,
      socket: { connectTimeout: connectTimeoutMs, reconnectStrategy },
    },
    sentinelClientOptions: {
      disableOfflineQueue: true,
      socket: { connectTimeout: connectTimeoutMs, reconnectStrategy },
    },
    // One connection to the master, as the single-node form has: commands are pipelined on it.
    masterPoolSize: 1,
    // The sentinels' pub/sub announces a failover at once; the scan is the fallback if it is missed.
    scanInterval: 2000,
  });
  logStateChanges(client, logger);

  // The single client retries its connection forever; the Sentinel client's connect() gives up when
  // no sentinel answers (after maxCommandRediscovers rounds, about 16 s) and tears itself down, so an
  // app started before its sentinels would answer 503 until restarted. Try again until it works or
  // the app closes the client.
  let closing = false;
  const overrides = {
    async connect() {
      for (;;) {
        try {
          await client.connect();
          return wrapped;
        } catch (err) {
          if (closing) throw err;
          logger.error({ err }, 'redis sentinel: no master found, trying again');
          await delay(SENTINEL_RETRY_MS);
          if (closing) throw err;
        }
      }
    },
    close: () => ((closing = true), client.close()),
    destroy: () => ((closing = true), client.destroy()),
  };
  const wrapped = withReplyDeadline(client, commandTimeoutMs, overrides);
  // The cast is the one place the two client types meet: see RedisClient above for why it holds.
  return wrapped as unknown as RedisClient;
}

/** The pause between two rounds of asking the sentinels for a master at start. */
const SENTINEL_RETRY_MS = 2000;

/** The emitter part both node-redis clients share. */
interface StateEvents {
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'ready', listener: () => void): unknown;
}

function logStateChanges(client: StateEvents, logger: Logger): void {
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
}

/**
 * Connection lifecycle calls take as long as they take; only commands get a deadline (a blocking
 * command such as BLPOP would need a client of its own).
 */
const NO_DEADLINE = new Set<PropertyKey>(['connect', 'close', 'quit', 'disconnect', 'destroy']);

/**
 * node-redis's command timeout stops counting once the command is written to the socket
 * (redis/node-redis#3008), so a Redis that stops answering while its connection stays open (a hung
 * server, a network black hole) would hang every request touching a session. This wraps the client so
 * every command, and every MULTI's exec, also rejects with TimeoutError (a 503) when its reply is late.
 * A reply that arrives later is still read in order by node-redis and simply ignored.
 * `overrides` are returned as they are for their keys (the Sentinel client's connect, close, destroy).
 * Clients derived with duplicate(), withCommandOptions() or withTypeMapping() are NOT wrapped and
 * have no 'error' listener: give any such client (pub/sub, blocking commands) its own setup.
 */
function withReplyDeadline<T extends object>(
  target: T,
  ms: number,
  overrides: Readonly<Record<PropertyKey, unknown>> = {},
): T {
  const wrapped: T = new Proxy(target, {
    get(object, key) {
      if (Object.hasOwn(overrides, key)) return overrides[key];
      // Getters and methods run against the real object: node-redis keeps its state in private fields.
      const value: unknown = Reflect.get(object, key, object);
      if (typeof value !== 'function' || NO_DEADLINE.has(key)) return value;
      return (...args: unknown[]) => {
        const result: unknown = Reflect.apply(value, object, args);
        if (result === object) return wrapped; // chained calls (multi().zAdd(...)) keep the deadline
        if (types.isPromise(result)) return withDeadline(result, ms, () => new TimeoutError());
        if (key === 'multi' && typeof result === 'object' && result !== null)
          return withReplyDeadline(result, ms);
        return result;
      };
    },
  });
  return wrapped;
}

/**
 * Replies with which a working Redis says "not now": still loading its data, a replica during
 * failover, a busy script, out of memory. Retrying later can succeed, so they are 503s too.
 */
const TRANSIENT_REPLY = /^(LOADING|READONLY|MASTERDOWN|BUSY|OOM|TRYAGAIN|CLUSTERDOWN)\b/;

/** True for errors that mean "Redis is unreachable right now", which the API answers with 503. */
export function isRedisUnavailableError(error: unknown): boolean {
  return (
    (error instanceof ErrorReply && TRANSIENT_REPLY.test(error.message)) ||
    error instanceof ClientOfflineError ||
    error instanceof ClientClosedError ||
    error instanceof ConnectionTimeoutError ||
    error instanceof SocketClosedUnexpectedlyError ||
    error instanceof SocketTimeoutError ||
    error instanceof TimeoutError
  );
}

/**
 * The key this app reads to learn whether its Redis user may use the keys under its prefix: PTTL of a
 * key nothing writes, which the app's ACL allows (scripts/redis-acl.ts) and which changes nothing.
 */
const KEY_ACCESS_CHECK = 'key-access-check';

/**
 * Whether Redis refuses this app's keys: the NOPERM reply's text when the connected user may not touch
 * keys under `keyPrefix` (an ACL written for another REDIS_KEY_PREFIX, or none), else undefined. Any
 * other failure (the connection dropped, a deadline) is not an answer to that question: undefined too.
 */
export async function keyAccessRefusal(redis: RedisClient, keyPrefix: string): Promise<string | undefined> {
  try {
    await redis.pTTL(`${keyPrefix}${KEY_ACCESS_CHECK}`);
    return undefined;
  } catch (error) {
    return error instanceof ErrorReply && error.message.startsWith('NOPERM') ? error.message : undefined;
  }
}
