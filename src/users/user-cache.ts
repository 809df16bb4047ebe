import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { AppConfig, DataStoreTls } from '../../config/config';
import {
  isPostgresUnavailableError,
  isSelect,
  listenTo,
  type ChannelListener,
  type Db,
  type QueryOptions,
  type Row,
} from '../lib/db';
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
 * - Entries are served only while a notification connection listens and has been verified: the
 *   triggers are there and enabled, and a notification sent through the pool came back on it. That is
 *   checked before the first entry is served and every 15 s after. When the connection is lost or a
 *   check fails, the cache is emptied and every request reads Postgres until a new connection passes.
 * - A read of a user that a notification about that user (or about everyone) overtook is not kept:
 *   it may have read the row as it was before the change.
 * - The app's own writes return only once this instance has seen the notifications of everything
 *   committed so far (`afterWrites`): a request that follows a change, in the same browser, reads the
 *   new row. Other instances drop it when their notification arrives, a moment after the commit.
 * - An entry lives USER_CACHE_TTL_S at most, whatever happens: the bound if changes fire no trigger
 *   (`session_replication_role = replica`, as logical replication's apply runs).
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
/** How long a notification sent through the pool may take to come back, counted from its commit. */
const MARKER_TIMEOUT_MS = 2_000;
/** How often a serving connection is verified again, and expired entries are purged from memory. */
const CHECK_INTERVAL_MS = 15_000;
/** Pauses before reconnecting, growing to the last one while Postgres stays unreachable. */
const RECONNECT_DELAYS_MS = [250, 1_000, 5_000];
/** A marker sent through the pool and waited for on the listening connection. */
const MARKER_PREFIX = 'sync:';
/** What the triggers send when more users changed than one payload holds, or a table was truncated. */
const EVERYONE = '*';
/** Migration 0008's triggers: every one of them must exist and be enabled for an entry to be served. */
const TRIGGERS = [
  'users_changed_on_update',
  'users_changed_on_delete',
  'users_changed_on_truncate',
  'user_totp_changed_on_insert',
  'user_totp_changed_on_update',
  'user_totp_changed_on_delete',
  'user_totp_changed_on_truncate',
];
// A table rebuilt or dropped, a trigger disabled by hand or left to replicas only ('R' fires in no
// ordinary session), or a database restored from a dump taken before migration 0008 shows here; so
// does an update trigger that does not see the rows as they became (tgnewtable).
const ENABLED_TRIGGERS = `SELECT count(*)::int AS enabled FROM pg_trigger
  WHERE tgrelid IN ('users'::regclass, 'user_totp'::regclass) AND tgname = ANY($1)
    AND tgenabled IN ('O', 'A')
    AND (tgnewtable IS NOT NULL OR tgname NOT IN ('users_changed_on_update', 'user_totp_changed_on_update'))`;

type FindUser = (id: string) => Promise<User | null>;

export interface UserCache {
  /** `find` (a read of Postgres) answered from memory while that is safe; the same signature. */
  through(find: FindUser): FindUser;
  /** Drops one user, so the next lookup reads Postgres (a caller that has reason to doubt the entry). */
  forget(id: string): void;
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
  /** True while entries are served: the connection listens and passed its last check. */
  readonly serving: boolean;
  /** Whether a user is held now (for tests). */
  has(id: string): boolean;
  /** Entries held now (for tests and the bench). */
  readonly size: number;
  /** Stops listening, empties the cache, and stops reconnecting. */
  close(): Promise<void>;
}

export interface UserCacheOptions {
  /** The pool the app queries through; the markers are sent through it like any write. */
  db: Db;
  url: string;
  tls: DataStoreTls | undefined;
  logger: Logger;
  ttlS: number;
}

/** What an instance logs when it stops serving entries (and when a new connection fails its check). */
const OFF =
  'user cache off: its Postgres notifications cannot be trusted; users are read from Postgres until they can';

const asError = (value: unknown): Error => (value instanceof Error ? value : new Error(String(value)));

/**
 * Why a check failed. `unsent`: the pool could not run it (a connection outage, a full pool), which says
 * nothing against the listening connection; otherwise the connection or the triggers failed it.
 */
interface CheckFailure {
  err: Error;
  unsent: boolean;
}

/** Starts listening at once (in the background; reads go to Postgres until it listens). */
export function createUserCache({ db, url, tls, logger, ttlS }: UserCacheOptions): UserCache {
  const entries = new LRUCache<string, User>({ max: USER_CACHE_MAX_ENTRIES, ttl: ttlS * 1000 });
  // Reads under way, per user: a notification about that user marks them overtaken, and they are
  // then returned but not kept. Only misses register here; a hit costs nothing of this.
  const reads = new Map<string, Set<{ overtaken: boolean }>>();
  // Moves when everyone is dropped (a `*`, a lost connection): every read under way is overtaken.
  let generation = 0;
  let listener: ChannelListener | undefined;
  let closed = false;
  let failures = 0;
  let reconnect: NodeJS.Timeout | undefined;
  let starting: Promise<void> = Promise.resolve();
  let ending: Promise<unknown> = Promise.resolve();
  const markers = new Map<string, () => void>();

  const forgetAll = () => {
    generation += 1;
    entries.clear();
  };
  const forget = (id: string) => {
    entries.delete(id);
    for (const read of reads.get(id) ?? []) read.overtaken = true;
  };

  function retryLater(): void {
    if (closed) return;
    const delay = RECONNECT_DELAYS_MS[Math.min(failures, RECONNECT_DELAYS_MS.length - 1)]!;
    failures += 1;
    reconnect = setTimeout(() => {
      starting = listen();
    }, delay);
    reconnect.unref();
  }

  /** The connection is gone or cannot be trusted: nothing is served until a new one passes its check. */
  function lose(lost: ChannelListener, err?: unknown): void {
    if (lost !== listener) return;
    listener = undefined;
    forgetAll();
    // Whoever waits for a marker has its answer: the cache is empty, so nothing stale can be served.
    for (const done of markers.values()) done();
    markers.clear();
    ending = lost.end();
    if (closed) return;
    logger.warn({ err }, OFF);
    retryLater();
  }

  function onNotification(payload: string): void {
    if (payload.startsWith(MARKER_PREFIX)) {
      // Everything committed before the marker was sent has been received before it (Postgres delivers
      // notifications in commit order), so its sender may go on. Another instance's marker is no change.
      markers.get(payload.slice(MARKER_PREFIX.length))?.();
      return;
    }
    if (payload === EVERYONE) forgetAll();
    else for (const id of payload.split(',')) forget(id);
  }

  /**
   * Sends a marker through the pool and waits for it on the listening connection: proof that a change
   * committed before the call has reached this instance. Undefined when it came back, else why not.
   */
  async function markerReturns(): Promise<CheckFailure | undefined> {
    const token = randomUUID();
    let timer: NodeJS.Timeout | undefined;
    const back = new Promise<boolean>((resolve) => markers.set(token, () => resolve(true)));
    try {
      await db.query('SELECT pg_notify($1, $2)', [USERS_CHANGED_CHANNEL, MARKER_PREFIX + token]);
    } catch (err) {
      markers.delete(token);
      return { err: asError(err), unsent: true };
    }
    try {
      // Timed from the commit: a wait for a pool connection before it is no fault of the listener. The
      // last pass of the event loop's I/O comes before the verdict, so a loop that was blocked past the
      // deadline reads a marker waiting on the socket before it blames the connection.
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => setImmediate(() => resolve(false)), MARKER_TIMEOUT_MS);
      });
      if (await Promise.race([back, timedOut])) return undefined;
      return {
        err: new Error(
          `a notification did not come back within ${MARKER_TIMEOUT_MS} ms (behind a connection pooler in transaction mode LISTEN hears nothing: set USER_CACHE_TTL_S=0)`,
        ),
        unsent: false,
      };
    } finally {
      clearTimeout(timer);
      markers.delete(token);
    }
  }

  /** What must hold for entries to be served: the triggers, then a marker's round trip. */
  async function verify(): Promise<CheckFailure | undefined> {
    let enabled: number;
    try {
      const [row] = await db.query<{ enabled: number }>(ENABLED_TRIGGERS, [TRIGGERS]);
      enabled = row?.enabled ?? 0;
    } catch (err) {
      // A missing table is a failed check, not an outage: its SQLSTATE is no connection's.
      return { err: asError(err), unsent: isPostgresUnavailableError(err) };
    }
    if (enabled !== TRIGGERS.length) {
      const err = new Error(
        `${TRIGGERS.length - enabled} of migration 0008's triggers on users and user_totp are missing, disabled or outdated: run the migrations, enable them, or set USER_CACHE_TTL_S=0`,
      );
      return { err, unsent: false };
    }
    return markerReturns();
  }

  async function listen(): Promise<void> {
    if (closed) return;
    let started: ChannelListener | undefined;
    let lostEarly: unknown;
    try {
      started = await listenTo({
        url,
        tls,
        channel: USERS_CHANGED_CHANNEL,
        applicationName: USER_CACHE_APPLICATION_NAME,
        onNotification,
        onLost: (err) => {
          if (started && started === listener) lose(started, err);
          else lostEarly = err ?? new Error('the listening connection ended');
        },
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
    const problem = closed
      ? undefined
      : ((await verify())?.err ?? (lostEarly === undefined ? undefined : asError(lostEarly)));
    if (closed || problem) {
      ending = started.end();
      if (problem && failures === 0) logger.warn({ err: problem }, OFF);
      retryLater();
      return;
    }
    // Changes made while nobody listened were never announced to this connection: start empty.
    forgetAll();
    listener = started;
    if (failures > 0) logger.info('user cache on: listening to Postgres notifications again');
    failures = 0;
  }

  async function sync(): Promise<void> {
    const serving = listener;
    if (!serving) return;
    const failure = await markerReturns();
    if (!failure) return;
    // Unsent, the marker proves nothing either way: the write's change may not have been applied yet,
    // so everything goes (this once), and the connection stays. Sent and not back, the connection goes.
    if (failure.unsent) forgetAll();
    else lose(serving, failure.err);
  }

  let checking = false;
  const check = setInterval(() => {
    // lru-cache drops an expired entry only when it is read or pushed out: purged here, so a user no
    // request reads any more leaves memory within CHECK_INTERVAL_MS of USER_CACHE_TTL_S.
    entries.purgeStale();
    const serving = listener;
    if (!serving || checking) return;
    checking = true;
    void verify()
      .then((failure) => {
        // The pool could not run the check: nothing against the connection, the next round tries again.
        if (failure && !failure.unsent) lose(serving, failure.err);
      })
      .finally(() => {
        checking = false;
      });
  }, CHECK_INTERVAL_MS);
  check.unref();
  starting = listen();

  return {
    through: (find) => async (id) => {
      if (!listener) return find(id);
      const kept = entries.get(id);
      if (kept) return kept;
      const before = generation;
      const read = { overtaken: false };
      const underWay = reads.get(id);
      if (underWay) underWay.add(read);
      else reads.set(id, new Set([read]));
      let user: User | null;
      try {
        user = await find(id);
      } finally {
        const others = reads.get(id)!;
        others.delete(read);
        if (others.size === 0) reads.delete(id);
      }
      // Kept only if nothing about this user changed (and the connection held) while it was read.
      // Frozen: every request of this user shares the object, so none may change it for the others.
      if (user && listener && generation === before && !read.overtaken) entries.set(id, Object.freeze(user));
      return user;
    },

    forget,

    afterWrites: (inner) => ({
      ...inner,
      async query<R extends Row>(text: string, params?: readonly unknown[], options?: QueryOptions) {
        const rows = await inner.query<R>(text, params, options);
        if (!isSelect(text)) await sync();
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
    has: (id) => entries.has(id),
    get size() {
      return entries.size;
    },

    async close() {
      closed = true;
      clearInterval(check);
      clearTimeout(reconnect);
      // A connection being made or checked now ends itself once that is over (it sees `closed`); waited
      // for a second at most, so a shutdown during an outage is not held up by it.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([starting, new Promise<void>((resolve) => (timer = setTimeout(resolve, 1_000)))]);
      clearTimeout(timer);
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
