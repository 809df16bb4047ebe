import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { AppConfig, DataStoreTls } from '../../config/config';
import { listenTo, type ChannelListener, type Db, type QueryOptions, type Row } from '../lib/db';
import type { Logger } from '../lib/logger';
import type { User } from './user';

/**
 * The signed-in user of a request, kept in this process's memory between requests instead of read
 * from Postgres on every one (ADR 0044). What it saves: the one SQL statement of a signed-in read
 * (a pool checkout, a round trip, a row decoded), the largest share of that request's CPU.
 *
 * What keeps it correct: Postgres tells every instance which users changed (migration 0008's triggers
 * notify `users_changed` on any change to a users or user_totp row, whoever makes it), and this
 * module drops them.
 * - An entry is served only while the notification connection is up and listening. When it is lost
 *   (or a check of it fails) the cache is emptied and every request reads Postgres until the
 *   connection is back and listening again, so no notification can be missed unnoticed.
 * - A read that was under way when a notification arrived is not kept (the generation check in
 *   `through`): it may have read the row as it was before that change.
 * - The app's own writes return only once this instance has seen the notifications of everything
 *   committed so far (`afterWrites`): a request that follows a change, in the same browser, reads the
 *   new row. Other instances drop it when their notification arrives, a moment after the commit.
 * - An entry lives USER_CACHE_TTL_S at most, whatever happens: the bound if notifications stopped
 *   without the connection failing (triggers disabled, changes applied by logical replication).
 * Revocation does not depend on any of this: an ended session has no key in Redis (src/auth/sessions.ts).
 */

/** The channel migration 0008's triggers notify: comma-separated user ids, or `*` for all of them. */
export const USERS_CHANGED_CHANNEL = 'users_changed';
/** What this module's connection calls itself in pg_stat_activity (and what the tests look for). */
export const USER_CACHE_APPLICATION_NAME = 'express-hardened-starter:user-cache';
/**
 * Users kept at most: each entry is a few hundred bytes, so ~5 MB when full. Beyond it, the least
 * recently used one goes. More users active at once than this only costs their reads a query again.
 */
export const USER_CACHE_MAX_ENTRIES = 10_000;
/** How long a write waits for its own notification before it gives up on the connection (and the cache). */
const SYNC_TIMEOUT_MS = 2_000;
/** How often an idle connection is checked end to end (a notification sent and received). */
const CHECK_INTERVAL_MS = 15_000;
/** Pauses before reconnecting, growing to the last one while Postgres stays unreachable. */
const RECONNECT_DELAYS_MS = [250, 1_000, 5_000];
/** A marker `sync` sends through the pool and waits for on the listening connection. */
const SYNC_PREFIX = 'sync:';
/** What the triggers send when more users changed than one payload holds, or a table was truncated. */
const EVERYONE = '*';

type FindUser = (id: string) => Promise<User | null>;

export interface UserCache {
  /** `find` (a read of Postgres) answered from memory while that is safe; the same signature. */
  through(find: FindUser): FindUser;
  /**
   * `db`, except that a write (any statement but a SELECT, any transaction) resolves only once this
   * instance's cache no longer holds what it changed.
   */
  afterWrites(db: Db): Db;
  /**
   * Resolves once every change committed before the call has been applied to the cache (or the cache
   * was emptied because that could not be shown). Never rejects.
   */
  sync(): Promise<void>;
  /** True while entries are served: the connection is listening. */
  readonly serving: boolean;
  /** Entries held now (for tests and the bench). */
  readonly size: number;
  /** Stops listening, empties the cache, and stops reconnecting. */
  close(): Promise<void>;
}

export interface UserCacheOptions {
  /** The pool the app queries through; the sync marker is sent through it like any write. */
  db: Db;
  url: string;
  tls: DataStoreTls | undefined;
  logger: Logger;
  ttlS: number;
}

/** Starts listening at once (in the background; reads go to Postgres until it listens). */
export function createUserCache({ db, url, tls, logger, ttlS }: UserCacheOptions): UserCache {
  const entries = new LRUCache<string, User>({ max: USER_CACHE_MAX_ENTRIES, ttl: ttlS * 1000 });
  // Moves on every notification and every loss of the connection: a read that started before cannot
  // know whether it saw the row before or after that change, so it is not kept.
  let generation = 0;
  let listener: ChannelListener | undefined;
  let closed = false;
  let failures = 0;
  let reconnect: NodeJS.Timeout | undefined;
  let ending: Promise<unknown> = Promise.resolve();
  const waiting = new Map<string, () => void>();

  const forgetAll = () => {
    generation += 1;
    entries.clear();
  };

  function retryLater(): void {
    if (closed) return;
    const delay = RECONNECT_DELAYS_MS[Math.min(failures, RECONNECT_DELAYS_MS.length - 1)]!;
    failures += 1;
    reconnect = setTimeout(() => void listen(), delay);
    reconnect.unref();
  }

  /** The connection is gone or cannot be trusted: nothing is served until a new one listens. */
  function lose(lost: ChannelListener, err?: unknown): void {
    if (lost !== listener) return;
    listener = undefined;
    forgetAll();
    // Whoever waits for a sync has its answer: the cache is empty, so nothing stale can be served.
    for (const done of waiting.values()) done();
    waiting.clear();
    ending = lost.end();
    if (closed) return;
    logger.warn(
      { err },
      'user cache off: its Postgres notifications are lost; users are read from Postgres until they are back',
    );
    retryLater();
  }

  function onNotification(payload: string): void {
    if (payload.startsWith(SYNC_PREFIX)) {
      // Everything committed before the marker was sent has been received before it (Postgres delivers
      // notifications in commit order), so its sender may go on. Another instance's marker is no change.
      waiting.get(payload.slice(SYNC_PREFIX.length))?.();
      return;
    }
    generation += 1;
    if (payload === EVERYONE) entries.clear();
    else for (const id of payload.split(',')) entries.delete(id);
  }

  async function listen(): Promise<void> {
    if (closed) return;
    let started: ChannelListener;
    try {
      started = await listenTo({
        url,
        tls,
        channel: USERS_CHANGED_CHANNEL,
        applicationName: USER_CACHE_APPLICATION_NAME,
        onNotification,
        onLost: (err) => lose(started, err),
      });
    } catch (err) {
      // Logged once per streak of failures: Postgres may be down for a while.
      if (failures === 0 && !closed) {
        logger.warn(
          { err },
          'user cache cannot listen to Postgres yet; users are read from Postgres meanwhile',
        );
      }
      retryLater();
      return;
    }
    if (closed) {
      ending = started.end();
      return;
    }
    // Changes made while nobody listened were never announced to this connection: start empty.
    forgetAll();
    listener = started;
    if (failures > 0) logger.info('user cache on: listening to Postgres notifications again');
    failures = 0;
  }

  async function sync(): Promise<void> {
    const listening = listener;
    if (!listening) return;
    const token = randomUUID();
    let timer: NodeJS.Timeout | undefined;
    const seen = new Promise<boolean>((resolve) => {
      waiting.set(token, () => resolve(true));
      timer = setTimeout(() => resolve(false), SYNC_TIMEOUT_MS);
    });
    try {
      await db.query('SELECT pg_notify($1, $2)', [USERS_CHANGED_CHANNEL, SYNC_PREFIX + token]);
      if (!(await seen)) lose(listening, new Error(`no notification within ${SYNC_TIMEOUT_MS} ms`));
    } catch (err) {
      // The marker could not be sent: whether the connection still hears every change is unknown.
      lose(listening, err);
    } finally {
      clearTimeout(timer);
      waiting.delete(token);
    }
  }

  const check = setInterval(() => void sync(), CHECK_INTERVAL_MS);
  check.unref();
  void listen();

  return {
    through: (find) => async (id) => {
      if (!listener) return find(id);
      const kept = entries.get(id);
      if (kept) return kept;
      const before = generation;
      const user = await find(id);
      // Kept only if nothing changed (and the connection was not lost) while it was read. Frozen: every
      // request of this user shares the object, so none may change it for the others.
      if (user && listener && generation === before) entries.set(id, Object.freeze(user));
      return user;
    },

    afterWrites: (inner) => ({
      ...inner,
      async query<R extends Row>(text: string, params?: readonly unknown[], options?: QueryOptions) {
        const rows = await inner.query<R>(text, params, options);
        if (!/^\s*SELECT\b/i.test(text)) await sync();
        return rows;
      },
      async withTransaction(work) {
        const result = await inner.withTransaction(work);
        await sync();
        return result;
      },
    }),

    sync,
    get serving() {
      return listener !== undefined;
    },
    get size() {
      return entries.size;
    },

    async close() {
      closed = true;
      clearInterval(check);
      clearTimeout(reconnect);
      if (listener) lose(listener);
      forgetAll();
      await ending;
    },
  };
}

/** The cache USER_CACHE_TTL_S asks for on the app's database, or none when it is 0. */
export function userCacheFor(config: AppConfig, db: Db, logger: Logger): UserCache | undefined {
  if (config.userCacheTtlS === 0) return undefined;
  return createUserCache({
    db,
    url: config.databaseUrl,
    tls: config.databaseTls,
    logger,
    ttlS: config.userCacheTtlS,
  });
}
