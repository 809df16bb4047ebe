import { createHash } from 'node:crypto';
import { DEFAULT_REDIS_KEY_PREFIX, REDIS_KEY_PREFIX_PATTERN } from '../config/config';

/**
 * The compose stack's Redis users (ASVS 13.2.1, 13.2.2: a backend connection authenticates, as a
 * service account holding only the privileges it needs; docs/decisions/0031). Rendered by
 * scripts/deploy-secrets.ts into the redis-secrets volume as users.acl, which redis-server loads with
 * `--aclfile` (docker-compose.yml); test/deploy/redis-acl.test.ts runs the app through this very file.
 *
 *   default      off: a client that sends no user name (or only a password) gets nothing at all
 *   app          the app: the commands below, on keys under REDIS_KEY_PREFIX only, no pub/sub channel
 *   healthcheck  the container's health check: PING, and no key
 *   admin        the operator (docs/deploy.md, "Redis users"): everything, for maintenance by hand
 *
 * A stolen app credential (a leaked REDIS_URL, code execution in the app) then cannot wipe the
 * server (FLUSHALL), reconfigure it (CONFIG SET dir/dbfilename, the classic write-a-file attack),
 * load a module, read ACLs or other tenants' keys, or shut it down.
 */

/**
 * Every command the app sends, and why. Lua scripts run with the caller's permissions, so what a script
 * calls is listed too (and its keys must be under the prefix). The connection's own handshake is AUTH,
 * which needs no permission; node-redis's CLIENT SETINFO is switched off in src/lib/redis.ts.
 */
export const APP_REDIS_COMMANDS = [
  // GET /readyz (src/http/health.ts).
  'ping',
  // connect-redis: a session's read, write (SET … EX) and deletion (logout, regenerate).
  'get',
  'set',
  'del',
  // The session index (src/auth/sessions.ts): MULTI … EXEC of ZREM, DEL; ZRANGE to revoke all; EVAL
  // of SAVE_IF_LISTED (ZSCORE, SET) and of ADD_WITHIN_LIMIT (ZADD, ZREMRANGEBYSCORE, PEXPIREAT, ZCARD,
  // ZRANGE, ZREM, DEL: the per-user session limit). A user's session list (src/auth/user-sessions.ts):
  // ZRANGE, then MGET of the listed sessions.
  'multi',
  'exec',
  'eval',
  'zadd',
  'zremrangebyscore',
  'pexpireat',
  'zrem',
  'zrange',
  'zscore',
  'zcard',
  'mget',
  // rate-limiter-flexible's RateLimiterRedis (every limiter, login throttle, mail address limit): its
  // consume script (EVAL: SET … NX EX, INCRBY, PTTL, EXPIRE), get (GET, PTTL), block (SET, PTTL),
  // delete (DEL). PTTL is also the app's check, at each connection, that its keys are allowed
  // (keyAccessRefusal in src/lib/redis.ts, from src/main.ts).
  'incrby',
  'pttl',
  'expire',
] as const;

export interface RedisAclPasswords {
  app: string;
  healthcheck: string;
  admin: string;
}

/** Redis stores SHA-256 of passwords; the file says `#<hex>`, so it holds no password itself. */
const hashed = (password: string) => `#${createHash('sha256').update(password).digest('hex')}`;

/**
 * users.acl for these passwords and key prefix. Each rule starts from `reset` (no password, no key, no
 * channel, no command, off), so nothing Redis grants by default (all channels, before Redis 7) remains.
 */
export function redisAcl(passwords: RedisAclPasswords, keyPrefix = DEFAULT_REDIS_KEY_PREFIX): string {
  if (!REDIS_KEY_PREFIX_PATTERN.test(keyPrefix))
    throw new Error(`REDIS_KEY_PREFIX ${JSON.stringify(keyPrefix)} is not a valid key prefix`);
  const app = APP_REDIS_COMMANDS.map((command) => `+${command}`).join(' ');
  return [
    'user default reset',
    `user app reset on ${hashed(passwords.app)} ~${keyPrefix}* ${app}`,
    `user healthcheck reset on ${hashed(passwords.healthcheck)} +ping`,
    `user admin reset on ${hashed(passwords.admin)} ~* &* +@all`,
    '',
  ].join('\n');
}
