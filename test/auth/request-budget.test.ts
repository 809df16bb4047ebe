import { randomBytes } from 'node:crypto';
import net from 'node:net';
import request from 'supertest';
import { loadConfig } from '../../config/config';
import { buildApp } from '../../src/app';
import { renewalIntervalMs } from '../../src/auth/sessions';
import { createDb, type Db, type Queryable } from '../../src/lib/db';
import { createLogger } from '../../src/lib/logger';
import { createRedisClient } from '../../src/lib/redis';
import { userCacheFor, type UserCache } from '../../src/users/user-cache';
import { signedIn } from '../support/factories';
import { createPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { runEnv } from '../support/env';
import { sessionKey, sidOf } from '../support/sessions';
import { passwords, TEST_SESSION_SECRET, type TestApp } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';
import { userRow } from '../support/users';
import { expectError } from '../support/assertions';

// What one signed-in read costs, in counts rather than times (a timed test would be flaky on a shared
// machine): Redis commands and round trips, SQL statements, and writes. The app runs against a Redis
// of its own, so the server's command statistics hold this app's commands only, reached through a
// proxy that counts what the app's client writes to its socket.

/**
 * The names of the commands in a stream of RESP requests (`*<n>` arrays of `$<len>` bulk strings, as
 * node-redis sends them). Commands a Lua script runs inside Redis are not on the wire, so an EVAL
 * counts once, as one round of work for the client.
 */
function createCommandReader() {
  let pending = Buffer.alloc(0);
  const names: string[] = [];
  const lineAt = (at: number) => {
    const end = pending.indexOf('\r\n', at);
    return end === -1 ? undefined : { text: pending.toString('latin1', at + 1, end), next: end + 2 };
  };
  function readOne(): boolean {
    const header = lineAt(0);
    if (!header) return false;
    let at = header.next;
    let name: string | undefined;
    for (let i = 0; i < Number(header.text); i++) {
      const length = lineAt(at);
      if (!length || pending.length < length.next + Number(length.text) + 2) return false;
      name ??= pending.toString('latin1', length.next, length.next + Number(length.text)).toLowerCase();
      at = length.next + Number(length.text) + 2;
    }
    names.push(name ?? '');
    pending = pending.subarray(at);
    return true;
  }
  return {
    push(chunk: Buffer) {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length > 0 && readOne());
    },
    take: () => names.splice(0),
  };
}

/**
 * A TCP proxy in front of Redis that reads the app's requests: the commands, and the chunks they came
 * in. node-redis writes every command queued before its next write (one event-loop turn) in one corked
 * socket write, so on loopback a chunk is one round trip's worth of commands.
 */
async function createCountingProxy(port: number) {
  let writes = 0;
  const commands = createCommandReader();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    client.on('data', (chunk: Buffer) => {
      writes += 1;
      commands.push(chunk);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    /** What the app sent since the last call: its commands in order, and how many writes carried them. */
    take: () => {
      const taken = { commands: commands.take(), writes };
      writes = 0;
      return taken;
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The real pool, counting every statement it is asked to run (BEGIN and COMMIT included). */
function countingDb(db: Db) {
  let statements = 0;
  const counted = (q: Queryable): Queryable => ({
    query: (text, params, options) => {
      statements += 1;
      return q.query(text, params, options);
    },
  });
  const wrapped: Db = {
    ...db,
    ...counted(db),
    withTransaction: (work) => {
      statements += 2;
      return db.withTransaction((tx) => work(counted(tx)));
    },
  };
  return {
    db: wrapped,
    takeStatements: () => {
      const taken = statements;
      statements = 0;
      return taken;
    },
  };
}

const WRITES = ['set', 'setex', 'getex', 'expire', 'pexpire', 'expireat', 'pexpireat', 'del', 'zadd', 'zrem'];

describe('the cost of a signed-in read', () => {
  let redisServer: PrivateRedis;
  let proxy: Awaited<ReturnType<typeof createCountingProxy>>;
  let t: TestApp;
  let takeStatements: () => number;
  let userCache: UserCache;

  beforeAll(async () => {
    redisServer = await createPrivateRedis();
    await redisServer.start();
    proxy = await createCountingProxy(redisServer.port);

    const config = loadConfig({
      NODE_ENV: 'test',
      DATABASE_URL: runEnv().databaseUrl,
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      REDIS_KEY_PREFIX: `budget-${randomBytes(4).toString('hex')}:`,
      SESSION_SECRET: TEST_SESSION_SECRET,
      LOG_LEVEL: 'silent',
      RATE_LIMIT_PER_MINUTE: '1000000',
    });
    const logger = createLogger({ level: config.logLevel, pretty: false });
    const realDb = createDb({ url: config.databaseUrl, tls: config.databaseTls, logger });
    const counted = countingDb(realDb);
    takeStatements = counted.takeStatements;
    const redis = createRedisClient({ url: config.redisUrl, tls: config.redisTls, logger });
    await redis.connect();
    const lifecycle = { shuttingDown: false };
    // As main.ts makes it; its own checks go through the uncounted pool, and they are not requests.
    const cache = userCacheFor(config, realDb, logger);
    if (!cache) throw new Error('USER_CACHE_TTL_S is 0 by default?');
    userCache = cache;
    // Mail is off in this configuration (no SMTP_URL), as in every test app that does not ask for it.
    const app = buildApp({
      config,
      db: counted.db,
      redis,
      logger,
      passwords: passwords(),
      lifecycle,
      outbox: null,
      userCache,
    });
    t = {
      app,
      config,
      db: realDb,
      redis,
      lifecycle,
      logs: [],
      rawLogs: () => '',
      close: async () => {
        await userCache.close();
        await realDb.close();
        await redis.close();
      },
    };
  });

  afterAll(async () => {
    await t?.close();
    await proxy?.close();
    await redisServer?.kill();
  });

  /**
   * Signs in and makes one read, so what follows is the steady state (connections open, script sent,
   * the user in the cache, which listens by then).
   */
  async function steadySession() {
    const deadline = Date.now() + 10_000;
    while (!userCache.serving && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(userCache.serving).toBe(true);
    const session = await signedIn(t);
    expect((await request(t.app).get('/api/auth/me').set('Cookie', session.cookie)).status).toBe(200);
    return session;
  }

  async function measure(send: () => Promise<{ status: number }>) {
    proxy.take();
    takeStatements();
    const res = await send();
    const { commands, writes } = proxy.take();
    return { status: res.status, commands, roundTrips: writes, statements: takeStatements() };
  }

  test.each([
    ['GET /api/auth/me', () => '/api/auth/me'],
    ['GET /api/users/:id of oneself', (id: string) => `/api/users/${id}`],
  ])(
    'when a signed-in client reads (%s) again, then it costs at most 2 Redis commands in 1 round trip and no SQL statement (the user cache)',
    async (_name, path) => {
      const { user, cookie } = await steadySession();

      const cost = await measure(() => request(t.app).get(path(user.id)).set('Cookie', cookie));

      expect(cost.status).toBe(200);
      expect(cost.commands.length).toBeLessThanOrEqual(2);
      expect(cost.roundTrips).toBeLessThanOrEqual(1);
      expect(cost.statements).toBe(0);
    },
  );

  test(`when a second read follows within the renewal interval (${renewalIntervalMs(1800) / 1000} s at the default idle timeout), then it writes nothing to Redis`, async () => {
    expect(t.config.session.idleTimeoutS).toBe(1800);
    const { cookie } = await steadySession();

    const cost = await measure(() => request(t.app).get('/api/auth/me').set('Cookie', cookie));

    expect(cost.status).toBe(200);
    expect(cost.commands.filter((name) => WRITES.includes(name))).toEqual([]);
    // The limiter's script and the session's read, nothing else: a renewal would be a second script.
    expect([...cost.commands].sort()).toEqual(['eval', 'get']);
  });
});

describe('the limiter and the session load running side by side', () => {
  const t = useTestApp({ RATE_LIMIT_PER_MINUTE: '3' });

  test('when a signed-in client goes over the limit, then the 429 comes first: no route runs, the cross-origin guard is not reached and the session is left as it was', async () => {
    const { user, cookie } = await signedIn(t); // 1 point: the login
    expect((await request(t.app).get('/api/auth/me').set('Cookie', cookie)).status).toBe(200);
    expect((await request(t.app).get('/api/auth/me').set('Cookie', cookie)).status).toBe(200);
    const key = sessionKey(t, sidOf(cookie));
    const stored = await t.redis.get(key);

    const res = await request(t.app)
      .delete(`/api/users/${user.id}`)
      .set('Cookie', cookie)
      .set('Sec-Fetch-Site', 'cross-site');

    expectError(res, 429, 'rate_limited');
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(await userRow(t, user.id)).not.toBeNull();
    expect(await t.redis.get(key)).toBe(stored);
  });
});
