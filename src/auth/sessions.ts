import { createHmac, randomBytes } from 'node:crypto';
import { RedisStore } from 'connect-redis';
import type { Request, RequestHandler, Response } from 'express';
import session from 'express-session';
import type { AppConfig } from '../../config/config';
import { cookieAttributes } from '../http/cookies';
import { keyedNamer } from '../lib/keyed-names';
import type { RedisClient } from '../lib/redis';
import type { User } from '../users/user';
import { logSecurityEvent } from '../http/security-events';
import { summarizeUserAgent, truncateAddress, type SessionClient } from './session-client';

declare module 'express-session' {
  interface SessionData {
    userId: string;
    /** Epoch ms of the login; the absolute timeout counts from here whatever the activity. */
    authenticatedAt: number;
    /** The user's session epoch at login; a password or role change moves it and ends this session. */
    epoch: number;
    /** Epoch ms of the last renewal of the Redis TTL and the cookie (see renewalIntervalMs). */
    renewedAt: number;
    /** Where and with what the session signed in, reduced for its owner's list (session-client.ts). */
    clientAddress: SessionClient['clientAddress'];
    userAgent: SessionClient['userAgent'];
    /**
     * A login whose password was right and whose second factor is still to come (startMfaChallenge).
     * Such a session has no `userId`, so loadSessionUser never makes it a signed-in user: it grants
     * nothing but the code step.
     */
    mfaChallenge: MfaChallenge;
  }
}

type SessionConfig = AppConfig['session'];

/** The user a password step proved, in the session epoch it was proved in, and when the proof lapses. */
export interface MfaChallenge {
  userId: string;
  epoch: number;
  /** Epoch ms; the code must come before. */
  expiresAt: number;
}

/**
 * How long the code step waits after the password step: long enough to open an authenticator app,
 * short enough that a session left at that step is not an open door for long (ASVS 5.0 6.5.5 bounds a
 * code's life; this bounds the half-finished login's).
 */
export const MFA_CHALLENGE_S = 300;

/** The longest a session goes without its TTL and cookie being renewed while it is in use. */
export const MAX_RENEWAL_INTERVAL_S = 60;

/**
 * How often an active session's Redis TTL (and cookie) is renewed: at most once per
 * min(60 s, idle timeout / 10). Renewing on every request (express-session's `rolling`) costs a Redis
 * write on every read; renewing at most once per interval costs one write per interval per session.
 * The price: a session renewed at time r expires at r + idle even if a request came at r + x without
 * renewing it, so the idle timeout ends a session between idle - interval and idle after its last
 * request, never later. With the default 30 min idle timeout that is 29-30 min; with a 2 s one, 1.8-2 s.
 */
export function renewalIntervalMs(idleTimeoutS: number): number {
  return Math.min(MAX_RENEWAL_INTERVAL_S, idleTimeoutS / 10) * 1000;
}

/** Milliseconds left before the absolute timeout ends a session that logged in at `authenticatedAt`. */
function absoluteDeadline(authenticatedAt: number, config: SessionConfig): number {
  return authenticatedAt + config.absoluteTimeoutS * 1000;
}

/** The Redis TTL of a session: min(idle timeout, seconds left before its absolute deadline). */
function ttlOf(data: session.SessionData, s: SessionConfig): number {
  const idle = s.idleTimeoutS;
  // A login waiting for its code: Redis forgets it when the code step's time is up.
  if (data.mfaChallenge) return Math.min(idle, Math.ceil((data.mfaChallenge.expiresAt - Date.now()) / 1000));
  if (!data.authenticatedAt) return idle;
  const left = Math.ceil((absoluteDeadline(data.authenticatedAt, s) - Date.now()) / 1000);
  return Math.min(idle, left); // <= 0: the session is over, and saving it deletes it
}

/**
 * A new session id: 32 bytes (256 bits) from the operating system's CSPRNG, base64url without padding,
 * so 43 characters of [A-Za-z0-9_-] (ASVS 5.0 7.2.3, 11.5.1). express-session's default (uid-safe, 24
 * bytes) is random too, but a credential's strength is written here rather than left to a dependency's
 * default, and a test checks the ids the app really issues.
 */
export const generateSessionId = (): string => randomBytes(32).toString('base64url');

const sessionPrefixOf = (config: AppConfig) => `${config.redisKeyPrefix}sess:`;
const indexKeyOf = (config: AppConfig, userId: string) => `${config.redisKeyPrefix}user-sessions:${userId}`;

/**
 * Writes a session (KEYS[1]) only if the user's index (KEYS[2]) lists its id (ARGV[1]). One script, so
 * Redis runs the check and the write with nothing in between: a revocation (which takes the id out of
 * the index and deletes the key, in one MULTI) happens either before the check, and the write does not
 * happen, or after the write, and deletes what it wrote.
 */
const SAVE_IF_LISTED = `
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0`;

/**
 * connect-redis, except that a signed-in session is saved only while its user's session index lists it.
 *
 * Why: express-session saves a session at the end of a request that changed it (a renewal, a login).
 * A plain SET there recreates a session that a logout, a password change or an admin revoked while
 * that request was in flight. ADR 0003 refused such a session on every later request by checking the
 * index (a ZSCORE, a second Redis round trip on every signed-in request, after the session GET that
 * names the user). Refusing the write instead makes the session key itself the answer: a key exists
 * only if its id was listed when it was written, and revoking takes the id out of the list and deletes
 * the key in one MULTI (SessionIndex.end, revokeAll; ADR 0011). A session without a user is written as
 * connect-redis writes it; nothing can revoke it.
 */
class IndexedSessionStore extends RedisStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly config: AppConfig,
  ) {
    super({
      client: redis,
      prefix: sessionPrefixOf(config),
      // express-session touches the store (an EXPIRE) on every response that does not save the session,
      // whatever `rolling` says: a Redis write per read. Renewal is a save instead (loadSessionUser).
      disableTouch: true,
      ttl: (data) => ttlOf(data, config.session),
    });
  }

  override async set(sid: string, sess: session.SessionData, cb?: (err?: unknown) => void): Promise<void> {
    const userId = sess.userId;
    if (!userId) return super.set(sid, sess, cb);
    const ttl = ttlOf(sess, this.config.session);
    if (ttl <= 0) return this.destroy(sid, cb);
    try {
      await this.redis.eval(SAVE_IF_LISTED, {
        keys: [this.prefix + sid, indexKeyOf(this.config, userId)],
        arguments: [sid, JSON.stringify(sess), String(ttl)],
      });
    } catch (error) {
      cb?.(error);
      return;
    }
    // Not written (revoked while the request ran) is no error: the request was served, the session is over.
    cb?.();
  }
}

/** The session store the app uses (exported for tests that save a session as a late request would). */
export const createSessionStore = (config: AppConfig, redis: RedisClient): session.Store =>
  new IndexedSessionStore(redis, config);

/**
 * express-session on Redis. The Redis TTL is min(idle timeout, time left before the absolute timeout),
 * so Redis itself forgets an expired session: nothing to sweep. It is renewed by loadSessionUser at most
 * once per renewalIntervalMs, not on every response: a read in between writes nothing to Redis.
 */
export function createSessionMiddleware(config: AppConfig, redis: RedisClient): RequestHandler {
  const s = config.session;
  return session({
    name: s.cookieName,
    secret: [...s.secrets],
    genid: generateSessionId,
    store: createSessionStore(config, redis),
    resave: false,
    // No session (and no cookie) until login: anonymous requests cost nothing in Redis.
    saveUninitialized: false,
    // The cookie is re-sent (with a new Expires) whenever the session is saved, so on each renewal.
    rolling: false,
    // Not 'destroy': express-session also counts a session it failed to load (a Redis timeout) as unset
    // and deletes it from the store, logging the user out once Redis answers again. Sessions end through
    // endSession(), never by unsetting req.session.
    unset: 'keep',
    cookie: { ...cookieAttributes(config), maxAge: s.idleTimeoutS * 1000 },
  });
}

/**
 * Lists a new session (ARGV[1]) in the user's index (KEYS[1]) at its absolute deadline (ARGV[2]), trims
 * what has passed its deadline (ARGV[3] is now), keeps the index key alive until its latest deadline,
 * then, if the user now holds more than ARGV[4] sessions, ends the oldest ones: out of the index and
 * their keys (ARGV[5] is the key prefix) deleted, as SessionIndex.end does. The score is the absolute
 * deadline, that is the login time plus a constant, so the lowest scores are the oldest logins.
 *
 * One script, so two logins at the same moment cannot both count "limit - 1 others" and both stay:
 * Redis runs one script at a time, and each sees the other's member. It builds session keys from the
 * prefix rather than receiving them in KEYS, which a single Redis (or a Sentinel-managed one) allows
 * and Redis Cluster would not: this app's keys are not spread over a cluster (ADR 0023).
 */
const ADD_WITHIN_LIMIT = `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[2], 'NX')
redis.call('PEXPIREAT', KEYS[1], ARGV[2], 'GT')
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if excess <= 0 then return {} end
local oldest = redis.call('ZRANGE', KEYS[1], 0, excess - 1)
redis.call('ZREM', KEYS[1], unpack(oldest))
for _, sid in ipairs(oldest) do redis.call('DEL', ARGV[5] .. sid) end
return oldest`;

/** A session as its user's list reads it back from Redis: its id and data, or null once expired. */
export interface IndexedSession {
  sid: string;
  data: session.SessionData | null;
}

/**
 * A per-user index of live session ids: a sorted set scored by each session's absolute deadline and
 * trimmed on every write, so it never outgrows the sessions a user can have at once. It lets us end all
 * of a user's sessions (delete, role change, password change), and a session is only ever saved while
 * the index lists it (IndexedSessionStore): an id leaves the index before, or together with, its key.
 */
export function createSessionIndex(config: AppConfig, redis: RedisClient) {
  const indexKey = (userId: string) => indexKeyOf(config, userId);
  const sessionKey = (sid: string) => sessionPrefixOf(config) + sid;
  // The public handles' names, under a key of their own (src/lib/keyed-names.ts).
  const handleName = keyedNamer(config.session.secrets[0]!, 'session-handle');

  return {
    /** SESSION_MAX_PER_USER, for what reports the limit acting. */
    maxPerUser: config.session.maxPerUser,

    /**
     * Lists a new session and ends the user's oldest ones beyond SESSION_MAX_PER_USER, in one script
     * (ADD_WITHIN_LIMIT); returns the ids it ended.
     */
    async add(userId: string, sid: string, authenticatedAt: number): Promise<string[]> {
      const deadline = absoluteDeadline(authenticatedAt, config.session);
      return (await redis.eval(ADD_WITHIN_LIMIT, {
        keys: [indexKey(userId)],
        arguments: [
          sid,
          String(deadline),
          String(Date.now()),
          String(config.session.maxPerUser),
          sessionPrefixOf(config),
        ],
      })) as string[];
    },

    /**
     * The name a session goes by wherever it is shown or addressed (the list of sessions, the routes
     * that end one, logs): the session id is the bearer credential and is never shown. An HMAC of the
     * id, cut to 128 bits: nobody without the server's secret can compute it or get the id back from
     * it, and it needs no storage of its own (sessions started before it existed have one too).
     */
    handleOf: (sid: string): string => handleName(sid),

    /** The ids the user's index lists, oldest sign-in first. */
    sidsOf: (userId: string): Promise<string[]> => redis.zRange(indexKey(userId), 0, -1),

    /**
     * The user's listed sessions with their data (one ZRANGE, one MGET). An id whose key expired (idle
     * timeout) before the index was next trimmed comes back with null data.
     */
    async sessionsOf(userId: string): Promise<IndexedSession[]> {
      const sids = await redis.zRange(indexKey(userId), 0, -1);
      if (sids.length === 0) return [];
      const values = await redis.mGet(sids.map(sessionKey));
      return sids.map((sid, i) => {
        const raw = values[i];
        return { sid, data: raw ? (JSON.parse(raw) as session.SessionData) : null };
      });
    },

    /**
     * Ends one session: its id leaves the index and its key is deleted in one MULTI, so no failure can
     * leave a key that serves without being listed, nor a listed id whose late save would come back.
     */
    async end(userId: string, sid: string): Promise<void> {
      await redis.multi().zRem(indexKey(userId), sid).del(sessionKey(sid)).exec();
    },

    /** Ends every session of the user, except `keepSid` when given (the one changing its password). */
    async revokeAll(userId: string, keepSid?: string): Promise<number> {
      const key = indexKey(userId);
      const sids = (await redis.zRange(key, 0, -1)).filter((sid) => sid !== keepSid);
      if (sids.length === 0) return 0;
      await redis.multi().zRem(key, sids).del(sids.map(sessionKey)).exec();
      return sids.length;
    },
  };
}

export type SessionIndex = ReturnType<typeof createSessionIndex>;

const promisify = (fn: (cb: (err?: unknown) => void) => void): Promise<void> =>
  new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));

/**
 * Logs the request in under a new session id (ASVS 7.2.4: a pre-login id is never promoted, which
 * defeats session fixation), carrying `authenticatedAt` so the absolute timeout keeps counting. The id
 * is listed in the user's index before the session is saved: the store writes only listed sessions.
 */
export async function startSession(
  req: Request,
  index: SessionIndex,
  user: Pick<User, 'id' | 'sessionEpoch'>,
  authenticatedAt = Date.now(),
): Promise<void> {
  // A session already signed in (a second login in the same browser, a rotation) ends for good first:
  // regenerate alone would delete its key but leave it listed, where a late save could revive it.
  const previous = req.session.userId;
  if (previous) await index.end(previous, req.sessionID);
  await promisify((cb) => req.session.regenerate(cb));
  const ended = await index.add(user.id, req.sessionID, authenticatedAt);
  if (ended.length > 0) {
    // ASVS 5.0 7.1.2: the documented limit acted. Logged by handle: the ids are credentials.
    logSecurityEvent(req, 'session.limit_ended_oldest', {
      targetUserId: user.id,
      limit: index.maxPerUser,
      endedSessions: ended.map((sid) => index.handleOf(sid)),
    });
  }
  req.session.userId = user.id;
  req.session.authenticatedAt = authenticatedAt;
  req.session.epoch = user.sessionEpoch;
  req.session.renewedAt = Date.now();
  req.session.clientAddress = truncateAddress(req.clientIp);
  req.session.userAgent = summarizeUserAgent(req.get('user-agent'));
  await promisify((cb) => req.session.save(cb));
}

/**
 * The password step of a login that needs a second factor: a new session id (the pre-login one is never
 * promoted, ASVS 7.2.4) holding only the challenge, saved with a TTL of MFA_CHALLENGE_S. It has no
 * `userId`: every route sees an anonymous visitor, and only completing the code step (which calls
 * startSession, a new id again) signs the user in.
 */
export async function startMfaChallenge(
  req: Request,
  index: SessionIndex,
  user: Pick<User, 'id' | 'sessionEpoch'>,
): Promise<void> {
  const previous = req.session.userId;
  if (previous) await index.end(previous, req.sessionID);
  // Whoever was signed in here is not any more: nothing later in this request may act or log as them.
  req.user = undefined;
  await promisify((cb) => req.session.regenerate(cb));
  req.session.mfaChallenge = {
    userId: user.id,
    epoch: user.sessionEpoch,
    expiresAt: Date.now() + MFA_CHALLENGE_S * 1000,
  };
  await promisify((cb) => req.session.save(cb));
}

/** The challenge this session is waiting on, unless there is none or its time is up. */
export function pendingMfaChallenge(req: Request): MfaChallenge | null {
  const challenge = req.session.mfaChallenge;
  return challenge && Date.now() < challenge.expiresAt ? challenge : null;
}

/**
 * New id for the same login, in the user's new epoch (after a password change): startSession ends the
 * old session first (unlisted and deleted together, so no request still running under it can save it
 * again); the absolute timeout keeps counting from the original login.
 */
export async function rotateSession(req: Request, index: SessionIndex, epoch: number): Promise<void> {
  const { userId, authenticatedAt } = req.session;
  if (!userId || !authenticatedAt) return;
  await startSession(req, index, { id: userId, sessionEpoch: epoch }, authenticatedAt);
}

/**
 * What a browser is told to forget when its session ends here (ASVS 5.0 14.3.1): the origin's HTTP
 * cache, which also evicts its pages from the back/forward cache so Back cannot show a signed-in page
 * again, and its storage (localStorage, sessionStorage, IndexedDB, service workers), where a page or
 * a later extension of this template may keep data of the user. Not "cookies": browsers apply that
 * directive to the whole registrable domain (every `*.example.com`), so signing out here would sign the
 * user out of sibling applications too; this app's cookies are host-only and are expired by name
 * instead (ADR 0029). Browsers honour the header only from a
 * secure origin (https, or localhost), which production always is.
 */
export const CLEAR_SITE_DATA = '"cache", "storage"';

/**
 * Destroys the session server-side and tells the browser to drop the cookie and the site's data. The id
 * leaves the index together with the key (SessionIndex.end), so a request of this session still running
 * cannot save it again; express-session's own destroy then finds nothing left to delete.
 */
export async function endSession(
  req: Request,
  res: Response,
  index: SessionIndex,
  config: AppConfig,
): Promise<void> {
  const { userId } = req.session;
  if (userId) await index.end(userId, req.sessionID);
  await promisify((cb) => req.session.destroy(cb));
  clearSessionCookie(res, config);
  res.set('Clear-Site-Data', CLEAR_SITE_DATA);
}

/** Expires the cookie in the browser, with the attributes it was set with (or browsers ignore it). */
function clearSessionCookie(res: Response, config: AppConfig): void {
  res.clearCookie(config.session.cookieName, cookieAttributes(config));
}

/**
 * True when the request's session cookie is signed with an older secret of the list: the answer should
 * carry it re-signed with the first one, so that secret can be dropped later without logging anyone
 * out. Only computed while a rotation is under way (more than one secret).
 */
function signedWithOldSecret(req: Request, config: AppConfig): boolean {
  const { cookieName, secrets } = config.session;
  if (secrets.length < 2) return false;
  const sid = req.sessionID;
  // cookie-signature's format, as express-session writes it: s:<sid>.<base64 HMAC-SHA256, no padding>.
  // A SHA-256 digest is 32 bytes: 44 base64 characters, the last one a single '=' of padding.
  const signature = createHmac('sha256', secrets[0]!).update(sid).digest('base64').slice(0, -1);
  const current = `${cookieName}=${encodeURIComponent(`s:${sid}.${signature}`)}`;
  return !(req.headers.cookie ?? '').includes(current);
}

/**
 * Turns a session into `req.user`, or ends it. Checked on every request, server-side: the absolute
 * timeout, that the user still exists and that the session belongs to the user's current epoch. The
 * user comes from `findUser`: in the app, the user cache (src/users/user-cache.ts, ADR 0044), which
 * answers from memory only while Postgres has announced no change to the row. Revocation
 * needs no check of its own: a revoked session has no key in Redis, and the store never writes it back
 * (IndexedSessionStore), so express-session found no session to load.
 *
 * A live session is renewed here, not by express-session on every response: when more than
 * renewalIntervalMs has passed since the last renewal, `renewedAt` changes, which makes express-session
 * save the session (one script: SET, with the TTL from ttlOf so the absolute timeout stays exact, if the
 * index still lists it) and re-send the cookie with a new Expires. Any other read writes nothing.
 */
export function loadSessionUser(deps: {
  config: AppConfig;
  index: SessionIndex;
  findUser: (id: string) => Promise<User | null>;
  /**
   * With a `findUser` that may answer from memory (the user cache): the user read anew from Postgres.
   * Asked only when the session is of a newer epoch than the row found, which a row kept from before
   * the change can be (a password changed on another instance, whose notification has not come yet):
   * the session may be valid, and ending it would sign the user out just after their change.
   */
  rereadUser?: (id: string) => Promise<User | null>;
}): RequestHandler {
  const { config, index, findUser, rereadUser } = deps;
  const renewalInterval = renewalIntervalMs(config.session.idleTimeoutS);
  return async (req, res, next) => {
    const { userId, authenticatedAt } = req.session ?? {};
    if (!userId) return next();
    const expired = !authenticatedAt || Date.now() >= absoluteDeadline(authenticatedAt, config.session);
    let found = expired ? null : await findUser(userId);
    if (found && rereadUser && found.sessionEpoch < (req.session.epoch ?? 0))
      found = await rereadUser(userId);
    // A session from before the user's last password or role change is over, even if Redis still
    // holds it (a login that raced the change, a revocation that failed during an outage).
    const user = found && found.sessionEpoch === req.session.epoch ? found : null;
    if (user) {
      req.user = user;
      const now = Date.now();
      const renewedAt = req.session.renewedAt ?? 0;
      // now < renewedAt: this clock is behind the one that renewed (a step back, another instance);
      // renewing is the safe answer.
      if (now - renewedAt >= renewalInterval || now < renewedAt || signedWithOldSecret(req, config)) {
        req.session.renewedAt = now;
      }
    } else {
      // Unlisted and deleted together, so nothing saves it again; then an empty session takes its place,
      // so a route that follows (a new login) still has one to work with. An empty session is never
      // saved.
      await index.end(userId, req.sessionID);
      await promisify((cb) => req.session.regenerate(cb));
      clearSessionCookie(res, config);
    }
    next();
  };
}
