import request, { type Response } from 'supertest';
import { expectServiceUnavailable } from '../support/assertions';
import { createUser, sleep, type TestUser } from '../support/factories';
import { createPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { eventOf } from '../support/log-lines';
import { expectRateLimited, fromIp, uniqueIp } from '../support/rate-limit';
import { useTestApp } from '../support/use-test-app';
import { describeWithTool } from '../support/tools';

/**
 * The limiters' insurance: while Redis is unreachable each process counts in memory, so limits hold per
 * process instead of vanishing, and a limiter never turns a request into a 500. The app runs against a
 * Redis of this file's own, killed for the whole file.
 */

/** A hang is a failure: every request in this file must be answered within this deadline. */
const ANSWER_WITHIN_MS = 5000;
const CONSECUTIVE = 3;
const PER_MINUTE = 6;

describeWithTool('redis-server', 'apt-get install redis-server', 'rate limits while Redis is down', () => {
  let redis: PrivateRedis;
  let user: TestUser;

  beforeAll(async () => {
    redis = await createPrivateRedis();
    await redis.start();
  });
  const t = useTestApp(() => ({
    REDIS_URL: redis.url,
    TRUST_PROXY: '1',
    LOGIN_MAX_CONSECUTIVE_FAILS: String(CONSECUTIVE),
    RATE_LIMIT_PER_MINUTE: String(PER_MINUTE),
  }));
  beforeAll(async () => {
    user = await createUser(t);
    await redis.kill();
    await untilRedisIsSeenDown();
  });
  afterAll(() => redis?.kill());

  /** /readyz is never rate limited: poll it until the app's client has noticed the outage. */
  async function untilRedisIsSeenDown(deadlineMs = 10_000): Promise<void> {
    const until = Date.now() + deadlineMs;
    for (;;) {
      const res = await request(t.app).get('/readyz').timeout(ANSWER_WITHIN_MS);
      if (res.status === 503) return;
      if (Date.now() > until) throw new Error(`/readyz still ${res.status} after ${deadlineMs} ms`);
      await sleep(50);
    }
  }

  const attempt = (ip: string, password: string) =>
    request(t.app)
      .post('/api/auth/login')
      .set(fromIp(ip))
      .timeout(ANSWER_WITHIN_MS)
      .send({ email: user.email, password });

  test('when wrong passwords are tried, then they get 401 up to the limit and 429 after it, even with the right password', async () => {
    const ip = uniqueIp();

    const failures: Response[] = [];
    for (let i = 0; i < CONSECUTIVE; i++) failures.push(await attempt(ip, `wrong password ${i}`));
    const refused = [await attempt(ip, 'wrong password again'), await attempt(ip, user.password)];

    expect(failures.map((r) => r.status)).toEqual(Array(CONSECUTIVE).fill(401));
    for (const res of refused) expectRateLimited(res, { min: 3590, max: 3600 });
    expect(eventOf(t, failures.at(-1)!, 'auth.locked')).toMatchObject({
      reason: 'consecutive_failures',
      clientIp: ip,
    });
    expect(eventOf(t, refused[0]!, 'auth.locked')).toMatchObject({ reason: 'consecutive_failures' });
  });

  test('when the right password is given before any lock, then the login gets 503: the session cannot be stored', async () => {
    expectServiceUnavailable(await attempt(uniqueIp(), user.password));
  });

  test('when a client keeps sending requests, then the global limiter still counts and refuses past the limit', async () => {
    const ip = uniqueIp();
    const get = () => request(t.app).get('/api/auth/me').set(fromIp(ip)).timeout(ANSWER_WITHIN_MS);

    const allowed: Response[] = [];
    for (let i = 0; i < PER_MINUTE; i++) allowed.push(await get());
    const refused = [await get(), await get()];

    expect(allowed.map((r) => r.status)).toEqual(Array(PER_MINUTE).fill(401));
    expect(allowed.map((r) => r.headers['ratelimit-remaining'])).toEqual(['5', '4', '3', '2', '1', '0']);
    for (const res of refused) {
      expectRateLimited(res, { min: 1, max: 60 });
      expect(res.headers['ratelimit-remaining']).toBe('0');
    }
    expect(eventOf(t, refused[0]!, 'ratelimit.blocked')).toMatchObject({ clientIp: ip });
    expect(eventOf(t, refused[1]!, 'ratelimit.blocked')).toBeUndefined();
  });

  afterEach(() => {
    // Outages are reported as outages (503), never as bugs.
    expect(t.logs.filter((line) => line.msg === 'unhandled error')).toEqual([]);
  });
});
