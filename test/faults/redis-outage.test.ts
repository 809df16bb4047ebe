import request from 'supertest';
import { createUser, login, sleep, type TestUser } from '../support/factories';
import { createPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { useTestApp } from '../support/use-test-app';
import { describeWithTool } from '../support/tools';
import { expectError, expectServiceUnavailable } from '../support/assertions';
import { ErrorReply } from 'redis';
import { isRedisUnavailableError } from '../../src/lib/redis';

/**
 * A real Redis outage: the app runs against a Redis server of this file's own, which the tests kill
 * (SIGKILL) and restart. Sessions live in Redis, so while it is gone anything touching a session must
 * fail fast with 503, never hang and never 500, and the app must recover by itself when Redis returns.
 */

/** A hang is a failure: every request in this file must be answered within this deadline. */
const ANSWER_WITHIN_MS = 5000;

describeWithTool(
  'redis-server',
  'apt-get install redis-server',
  'when Redis goes down and comes back',
  () => {
    let redis: PrivateRedis;
    let user: TestUser;

    beforeAll(async () => {
      redis = await createPrivateRedis();
      await redis.start();
    });
    const t = useTestApp(() => ({ REDIS_URL: redis.url }));
    beforeAll(async () => {
      user = await createUser(t);
    });
    afterAll(() => redis?.kill());
    // Each test starts from a running Redis that the app is connected to, whatever the last one did.
    beforeEach(async () => {
      await redis.start().catch((error: Error) => {
        if (!/already running/.test(error.message)) throw error;
      });
      await waitUntilReady();
    });

    const api = () => request(t.app);
    const loginAttempt = () =>
      api()
        .post('/api/auth/login')
        .timeout(ANSWER_WITHIN_MS)
        .send({ email: user.email, password: user.password });

    async function waitUntilReady(deadlineMs = 10_000): Promise<void> {
      const until = Date.now() + deadlineMs;
      for (;;) {
        const res = await api().get('/readyz').timeout(ANSWER_WITHIN_MS);
        if (res.status === 200) return;
        if (Date.now() > until) throw new Error(`/readyz still ${res.status} after ${deadlineMs} ms`);
        await sleep(100);
      }
    }

    // ASVS 5.0 16.5.2, 16.5.3: no login without a stored session: fail closed.
    test('when Redis is killed, then session requests and logins get 503 fast, /readyz is 503 and /healthz stays 200', async () => {
      const cookie = await login(t, user);
      expect((await api().get('/api/auth/me').set('Cookie', cookie)).status).toBe(200);

      await redis.kill();

      expectServiceUnavailable(
        await api().get('/api/auth/me').set('Cookie', cookie).timeout(ANSWER_WITHIN_MS),
      );
      expectServiceUnavailable(await loginAttempt());
      const ready = await api().get('/readyz').timeout(ANSWER_WITHIN_MS);
      expect(ready.status).toBe(503);
      expect(ready.body).toEqual({ status: 'unavailable', checks: { database: 'ok', redis: 'fail' } });
      expect((await api().get('/healthz').timeout(ANSWER_WITHIN_MS)).status).toBe(200);
      // The outage was reported as one, not as a bug.
      expect(t.logs.filter((line) => line.msg === 'unhandled error')).toEqual([]);
      expect(t.logs.some((line) => line.msg === 'redis unavailable' && line.service === 'redis')).toBe(true);
    });

    test('when Redis is down, then requests without a session are still served', async () => {
      await redis.kill();

      // Wrong credentials are decided by Postgres alone: no session is created, so Redis is not needed.
      const res = await api()
        .post('/api/auth/login')
        .timeout(ANSWER_WITHIN_MS)
        .send({ email: user.email, password: 'not the right password' });

      expectError(res, 401, 'invalid_credentials');
    });

    test('when Redis stops answering without closing the connection, then session requests get 503 after the command timeout and recover when it answers again', async () => {
      const cookie = await login(t, user);

      redis.freeze();
      let meDuringFreeze: request.Response;
      let readyDuringFreeze: request.Response;
      try {
        meDuringFreeze = await api().get('/api/auth/me').set('Cookie', cookie).timeout(ANSWER_WITHIN_MS);
        readyDuringFreeze = await api().get('/readyz').timeout(ANSWER_WITHIN_MS);
      } finally {
        redis.thaw();
      }

      expectServiceUnavailable(meDuringFreeze);
      expect(readyDuringFreeze.status).toBe(503);
      await waitUntilReady();
      // Replies to the commands that timed out arrive late; they must not be mistaken for later replies.
      const me = await api().get('/api/auth/me').set('Cookie', cookie).timeout(ANSWER_WITHIN_MS);
      expect(me.status).toBe(200);
      expect(me.body.id).toBe(user.user.id);
      const fresh = await loginAttempt();
      expect(fresh.status).toBe(200);
    });

    test('when Redis restarts on the same port, then /readyz turns 200 again and logins work, without restarting the app', async () => {
      const oldCookie = await login(t, user);
      await redis.kill();
      expectServiceUnavailable(await loginAttempt());

      await redis.start();

      await waitUntilReady();
      const res = await loginAttempt();
      expect(res.status).toBe(200);
      expect(res.body.id).toBe(user.user.id);
      // That Redis kept nothing, so the session from before the outage is gone: a plain 401, not a 500.
      const me = await api().get('/api/auth/me').set('Cookie', oldCookie).timeout(ANSWER_WITHIN_MS);
      expectError(me, 401, 'unauthenticated');
      expect(t.logs.some((line) => line.msg === 'redis connection restored')).toBe(true);
    });
  },
);

describe('transient Redis replies', () => {
  test.each([
    'LOADING Redis is loading the dataset in memory',
    "READONLY You can't write against a read only replica.",
    'OOM command not allowed when used memory > maxmemory',
    'MASTERDOWN Link with MASTER is down',
  ])('when Redis answers %p, then it counts as unavailable (503), not a bug (500)', (message) => {
    expect(isRedisUnavailableError(new ErrorReply(message))).toBe(true);
  });

  test('when Redis answers a real command error, then it is not mistaken for an outage', () => {
    expect(isRedisUnavailableError(new ErrorReply("ERR wrong number of arguments for 'get' command"))).toBe(
      false,
    );
    expect(
      isRedisUnavailableError(
        new ErrorReply('WRONGTYPE Operation against a key holding the wrong kind of value'),
      ),
    ).toBe(false);
  });
});
