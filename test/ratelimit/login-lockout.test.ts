import request, { type Response } from 'supertest';
import { createUser, sessionCookie, uniqueEmail } from '../support/factories';
import { eventOf } from '../support/log-lines';
import { expectRateLimited, fromIp, retryAfterOf, scanKeys, uniqueIp } from '../support/rate-limit';
import { setCookies } from '../support/sessions';
import { passwords } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';

/**
 * Brute-force protection on POST /api/auth/login (rate-limiter-flexible's login recipe): failures in a
 * row per (email, client IP) lock that pair for an hour; failures per client IP per day lock the IP for
 * a day. The app trusts one proxy hop, so each test speaks from addresses of its own via X-Forwarded-For.
 */

const CONSECUTIVE = 3;
const DAILY = 5;
const HOUR = { min: 3590, max: 3600 };
const DAY = { min: 86_390, max: 86_400 };
const WRONG = 'definitely not it 1';

// ASVS 5.0 2.4.1, 6.1.1, 6.3.1: the documented lockout against guessing.
describe('login lockout', () => {
  const t = useTestApp({
    TRUST_PROXY: '1',
    LOGIN_MAX_CONSECUTIVE_FAILS: String(CONSECUTIVE),
    LOGIN_MAX_FAILS_PER_IP_PER_DAY: String(DAILY),
  });
  afterEach(() => jest.restoreAllMocks());

  const attempt = (ip: string, email: string, password: string): Promise<Response> =>
    request(t.app).post('/api/auth/login').set(fromIp(ip)).send({ email, password });

  async function failTimes(n: number, ip: string, email: string): Promise<Response[]> {
    const responses: Response[] = [];
    for (let i = 0; i < n; i++) responses.push(await attempt(ip, email, WRONG));
    return responses;
  }

  describe('consecutive failures per (email, client IP)', () => {
    test('when the limit of failures in a row is reached, then the next attempt gets 429 rate_limited with Retry-After of about an hour', async () => {
      const { email } = await createUser(t);
      const ip = uniqueIp();

      const failures = await failTimes(CONSECUTIVE, ip, email);
      const blocked = await attempt(ip, email, WRONG);

      expect(failures.map((r) => r.status)).toEqual(Array(CONSECUTIVE).fill(401));
      expectRateLimited(blocked, HOUR);
    });

    test('when the pair is locked, then even the correct password gets 429 and no session cookie', async () => {
      const { email, password } = await createUser(t);
      const ip = uniqueIp();
      await failTimes(CONSECUTIVE, ip, email);

      const blocked = await attempt(ip, email, password);

      expectRateLimited(blocked, HOUR);
      expect(setCookies(blocked)).toEqual([]);
      expect(eventOf(t, blocked, 'auth.login_succeeded')).toBeUndefined();
      // A refused success does not reset the run: the lock still holds.
      expectRateLimited(await attempt(ip, email, password), HOUR);
    });

    // The limits are read before the password is looked at: a refused attempt calls neither verify nor
    // the dummy verification (both are argon2). The spies call through to the real hasher; they only count.
    test('when an attempt is refused by a lock, then no password hash is verified and no login failure is recorded', async () => {
      const { email, password } = await createUser(t);
      const ip = uniqueIp();
      const hasher = passwords();
      const verify = jest.spyOn(hasher, 'verify');
      const dummy = jest.spyOn(hasher, 'verifyAgainstDummy');
      await failTimes(CONSECUTIVE, ip, email);
      expect(verify).toHaveBeenCalledTimes(CONSECUTIVE);

      const refused = [
        await attempt(ip, email, password),
        await attempt(ip, email, WRONG),
        await attempt(ip, email, password),
      ];

      for (const res of refused) {
        expect(res.status).toBe(429);
        expect(eventOf(t, res, 'auth.login_failed')).toBeUndefined();
      }
      expect(verify).toHaveBeenCalledTimes(CONSECUTIVE);
      expect(dummy).not.toHaveBeenCalled();
      // Refused attempts spend nothing: the counter still holds exactly the lock, not more failures.
      const [dayKey] = await scanKeys(t, `${t.config.redisKeyPrefix}rl:login-ip-day*${ip}`);
      expect(await t.redis.get(dayKey!)).toBe(String(CONSECUTIVE));
    });

    test('when a login succeeds between failures, then the run restarts: 2 failures, success, 2 failures still leave the account open', async () => {
      const { email, password } = await createUser(t);
      const ip = uniqueIp();

      const before = await failTimes(CONSECUTIVE - 1, ip, email);
      const success = await attempt(ip, email, password);
      const after = await failTimes(CONSECUTIVE - 1, ip, email);
      const last = await attempt(ip, email, password);

      expect([...before, success, ...after, last].map((r) => r.status)).toEqual([
        ...Array(CONSECUTIVE - 1).fill(401),
        200,
        ...Array(CONSECUTIVE - 1).fill(401),
        200,
      ]);
      expect(sessionCookie(last, t.config.session.cookieName)).toBeDefined();
    });

    test('when one address locks an account, then the same email from another address still logs in', async () => {
      const { email, password } = await createUser(t);
      const attacker = uniqueIp();
      const owner = uniqueIp();
      await failTimes(CONSECUTIVE, attacker, email);
      expect((await attempt(attacker, email, password)).status).toBe(429);

      const res = await attempt(owner, email, password);

      expect(res.status).toBe(200);
      expect(sessionCookie(res, t.config.session.cookieName)).toBeDefined();
    });

    test('when one account is locked from an address, then another account from that address is not', async () => {
      const locked = await createUser(t);
      const other = await createUser(t);
      const ip = uniqueIp();
      await failTimes(CONSECUTIVE, ip, locked.email);

      const res = await attempt(ip, other.email, other.password);

      expect(res.status).toBe(200);
    });

    test('when the email is typed differently, then it is the same (email, IP) pair and stays locked', async () => {
      const { email, password } = await createUser(t);
      const ip = uniqueIp();
      await failTimes(CONSECUTIVE, ip, email);

      const res = await attempt(ip, `  ${email.toUpperCase()} `, password);

      expectRateLimited(res, HOUR);
    });
  });

  describe('failures per client IP per day', () => {
    test('when an address reaches the daily limit across emails, then any login from it gets 429 with Retry-After of about a day', async () => {
      const { email, password } = await createUser(t);
      const ip = uniqueIp();

      // Unknown emails count like wrong passwords: guessing which accounts exist is throttled alike.
      const failures: Response[] = [];
      for (let i = 0; i < DAILY; i++) failures.push(await attempt(ip, uniqueEmail('nobody'), WRONG));
      const blocked = await attempt(ip, email, password);

      expect(failures.map((r) => r.status)).toEqual(Array(DAILY).fill(401));
      expectRateLimited(blocked, DAY);
      expect(setCookies(blocked)).toEqual([]);
      // Another address is not affected.
      expect((await attempt(uniqueIp(), email, password)).status).toBe(200);
    });

    test('when logins succeed between failures, then the daily count keeps every failure', async () => {
      const { email, password } = await createUser(t);
      const ip = uniqueIp();

      const statuses: number[] = [];
      for (let i = 0; i < DAILY; i++) {
        statuses.push((await attempt(ip, email, WRONG)).status);
        if (i % 2 === 1) statuses.push((await attempt(ip, email, password)).status);
      }
      const blocked = await attempt(ip, email, password);

      expect(statuses).toEqual([401, 401, 200, 401, 401, 200, 401]);
      expectRateLimited(blocked, DAY);
    });

    // The day counts from the first failure; the block counts from the failure that reaches the limit.
    // Shortening the window's TTL stands in for "the first failure was almost a day ago".
    test('when the limit is reached late in the counting window, then the block still lasts a full day from then', async () => {
      const ip = uniqueIp();
      for (let i = 0; i < DAILY - 1; i++) await attempt(ip, uniqueEmail('nobody'), WRONG);
      const [dayKey] = await scanKeys(t, `${t.config.redisKeyPrefix}rl:login-ip-day*${ip}`);
      expect(dayKey).toBeDefined();
      await t.redis.pExpire(dayKey!, 30_000);

      const last = await attempt(ip, uniqueEmail('nobody'), WRONG);
      const blocked = await attempt(ip, uniqueEmail('nobody'), WRONG);

      expect(last.status).toBe(401);
      expectRateLimited(blocked, DAY);
    });
  });

  // ASVS 5.0 16.3.1: failed and refused logins are logged.
  describe('security events', () => {
    test('when a failure engages the consecutive lock and a locked attempt is refused, then auth.locked is logged for both with the reason, client IP and request id', async () => {
      const { user, email, password } = await createUser(t);
      const ip = uniqueIp();

      const failures = await failTimes(CONSECUTIVE, ip, email);
      const refused = await attempt(ip, email, password);

      for (const early of failures.slice(0, -1)) expect(eventOf(t, early, 'auth.locked')).toBeUndefined();
      const engaging = failures.at(-1)!;
      expect(engaging.status).toBe(401);
      expect(eventOf(t, engaging, 'auth.locked')).toMatchObject({
        level: 'warn',
        reason: 'consecutive_failures',
        clientIp: ip,
        targetUserId: user.id,
        requestId: engaging.headers['x-request-id'],
      });
      expect(eventOf(t, refused, 'auth.locked')).toMatchObject({
        level: 'warn',
        reason: 'consecutive_failures',
        clientIp: ip,
        requestId: refused.headers['x-request-id'],
      });
    });

    test('when a locked pair keeps being tried, then auth.locked is logged for the first refusals only, not per attempt', async () => {
      const { email, password } = await createUser(t);
      const ip = uniqueIp();
      await failTimes(CONSECUTIVE, ip, email);

      const flood: Response[] = [];
      for (let i = 0; i < 8; i++) flood.push(await attempt(ip, email, i % 2 ? password : WRONG));

      expect(flood.map((r) => r.status)).toEqual(Array(8).fill(429));
      const logged = flood.filter((r) => eventOf(t, r, 'auth.locked'));
      expect(logged.length).toBeGreaterThanOrEqual(1);
      expect(logged.length).toBeLessThanOrEqual(2);
    });

    test('when a burst of parallel attempts races the lock, then no more than the allowed number are verified', async () => {
      const { email } = await createUser(t);
      const ip = uniqueIp();
      const burst = await Promise.all(Array.from({ length: 20 }, () => attempt(ip, email, WRONG)));
      const statuses = burst.map((r) => r.status);
      expect(statuses.filter((s) => s === 401)).toHaveLength(CONSECUTIVE);
      expect(statuses.filter((s) => s === 429)).toHaveLength(20 - CONSECUTIVE);
    });

    test('when a failure engages the daily lock and a locked attempt is refused, then auth.locked is logged with reason daily_failures', async () => {
      const ip = uniqueIp();

      const failures: Response[] = [];
      for (let i = 0; i < DAILY; i++) failures.push(await attempt(ip, uniqueEmail('nobody'), WRONG));
      const refused = await attempt(ip, uniqueEmail('nobody'), WRONG);

      const engaging = failures.at(-1)!;
      expect(eventOf(t, engaging, 'auth.locked')).toMatchObject({
        reason: 'daily_failures',
        clientIp: ip,
        requestId: engaging.headers['x-request-id'],
      });
      expect(refused.status).toBe(429);
      expect(retryAfterOf(refused)).toBeGreaterThanOrEqual(DAY.min);
      expect(eventOf(t, refused, 'auth.locked')).toMatchObject({
        reason: 'daily_failures',
        clientIp: ip,
        requestId: refused.headers['x-request-id'],
      });
    });
  });
});
