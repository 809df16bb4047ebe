import request, { type Response } from 'supertest';
import { login, sessionCookie, signedIn, uniqueEmail } from '../support/factories';
import { eventOf, eventsNamed } from '../support/log-lines';
import { expectRateLimited, fromIp, strongPassword, uniqueIp } from '../support/rate-limit';
import { useTestApp } from '../support/use-test-app';

/**
 * The per-request limiters: one per client IP on every route but the health probes (with RateLimit-*
 * headers), and stricter ones on registration (per IP) and password changes (per user). The apps trust
 * one proxy hop, so each test speaks from addresses of its own via X-Forwarded-For.
 */

const PER_MINUTE = 5;
const MINUTE = { min: 1, max: 60 };
const HOUR = { min: 3590, max: 3600 };

// ASVS 5.0 2.3.2, 2.4.1: the documented per-client limit is enforced.
describe('the global per-client limiter', () => {
  const t = useTestApp({ TRUST_PROXY: '1', RATE_LIMIT_PER_MINUTE: String(PER_MINUTE) });

  const get = (ip: string, path = '/api/auth/me') => request(t.app).get(path).set(fromIp(ip));

  test('when a client sends requests, then each answer carries RateLimit-Limit, a decreasing RateLimit-Remaining and RateLimit-Reset', async () => {
    const ip = uniqueIp();

    const responses: Response[] = [];
    for (let i = 0; i < PER_MINUTE; i++) responses.push(await get(ip));

    for (const res of responses) {
      expect(res.status).toBe(401);
      expect(res.headers['ratelimit-limit']).toBe(String(PER_MINUTE));
      expect(Number(res.headers['ratelimit-reset'])).toBeGreaterThanOrEqual(MINUTE.min);
      expect(Number(res.headers['ratelimit-reset'])).toBeLessThanOrEqual(MINUTE.max);
    }
    expect(responses.map((r) => r.headers['ratelimit-remaining'])).toEqual(['4', '3', '2', '1', '0']);
  });

  test('when a client goes over the limit, then 429 rate_limited with Retry-After and RateLimit-Remaining 0, on any route', async () => {
    const ip = uniqueIp();
    for (let i = 0; i < PER_MINUTE; i++) expect((await get(ip)).status).toBe(401);

    const refused = [
      await get(ip),
      await get(ip, '/api/users'),
      await request(t.app)
        .post('/api/auth/login')
        .set(fromIp(ip))
        .send({ email: uniqueEmail(), password: 'x' }),
      await get(ip, '/api/no-such-thing'),
    ];

    for (const res of refused) {
      expectRateLimited(res, MINUTE);
      expect(res.headers['ratelimit-limit']).toBe(String(PER_MINUTE));
      expect(res.headers['ratelimit-remaining']).toBe('0');
      expect(res.headers['ratelimit-reset']).toBe(res.headers['retry-after']);
    }
    // Refused before the login route: nothing was attempted, so nothing was counted as a failure.
    expect(eventOf(t, refused[2]!, 'auth.login_failed')).toBeUndefined();
  });

  test('when one client is over the limit, then another client is not affected', async () => {
    const noisy = uniqueIp();
    for (let i = 0; i <= PER_MINUTE; i++) await get(noisy);
    expect((await get(noisy)).status).toBe(429);

    const res = await get(uniqueIp());

    expect(res.status).toBe(401);
    expect(res.headers['ratelimit-remaining']).toBe(String(PER_MINUTE - 1));
  });

  test('when /healthz and /readyz are polled far past the limit, then they answer 200 without RateLimit headers and spend nothing', async () => {
    const ip = uniqueIp();

    const probes: Response[] = [];
    for (let i = 0; i < PER_MINUTE * 2; i++) {
      probes.push(await get(ip, '/healthz'));
      probes.push(await get(ip, '/readyz'));
    }
    const afterwards = await get(ip);

    for (const res of probes) {
      expect(res.status).toBe(200);
      expect(Object.keys(res.headers).filter((h) => h.startsWith('ratelimit'))).toEqual([]);
      expect(res.headers['retry-after']).toBeUndefined();
    }
    expect(afterwards.headers['ratelimit-remaining']).toBe(String(PER_MINUTE - 1));
  });

  test('when a client is refused repeatedly, then ratelimit.blocked is logged once, for the first refusal', async () => {
    const ip = uniqueIp();
    for (let i = 0; i < PER_MINUTE; i++) await get(ip);

    const first = await get(ip);
    const more = [await get(ip), await get(ip), await get(ip)];

    expect([first, ...more].map((r) => r.status)).toEqual([429, 429, 429, 429]);
    expect(eventOf(t, first, 'ratelimit.blocked')).toMatchObject({
      level: 'warn',
      clientIp: ip,
      requestId: first.headers['x-request-id'],
      limiter: expect.stringContaining('ip-minute'),
    });
    expect(eventsNamed(t, 'ratelimit.blocked').filter((l) => l.clientIp === ip)).toHaveLength(1);
  });
});

describe('the registration limiter (per client IP)', () => {
  const PER_HOUR = 2;
  const t = useTestApp({ TRUST_PROXY: '1', REGISTER_MAX_PER_IP_PER_HOUR: String(PER_HOUR) });

  const register = (ip: string) =>
    request(t.app)
      .post('/api/auth/register')
      .set(fromIp(ip))
      .send({ email: uniqueEmail('reg'), password: strongPassword(), name: 'Reg User' });

  test('when an address registers more than the hourly limit, then 429 with Retry-After of about an hour, logged once, and other addresses still register', async () => {
    const ip = uniqueIp();

    const allowed = [await register(ip), await register(ip)];
    const first = await register(ip);
    const second = await register(ip);
    const elsewhere = await register(uniqueIp());

    expect(allowed.map((r) => r.status)).toEqual([201, 201]);
    expectRateLimited(first, HOUR);
    expectRateLimited(second, HOUR);
    expect(elsewhere.status).toBe(201);
    expect(eventOf(t, first, 'ratelimit.blocked')).toMatchObject({
      clientIp: ip,
      requestId: first.headers['x-request-id'],
      limiter: expect.stringContaining('register'),
    });
    expect(eventOf(t, second, 'ratelimit.blocked')).toBeUndefined();
    expect(eventsNamed(t, 'ratelimit.blocked').filter((l) => l.clientIp === ip)).toHaveLength(1);
  });

  test('when registrations fail validation, then they count too: asking is what costs', async () => {
    const ip = uniqueIp();
    const invalid = () =>
      request(t.app).post('/api/auth/register').set(fromIp(ip)).send({ email: 'not an email' });

    const statuses = [(await invalid()).status, (await invalid()).status];
    const res = await register(ip);

    expect(statuses).toEqual([400, 400]);
    expect(res.status).toBe(429);
  });
});

describe('the password change limiter (per user)', () => {
  const PER_HOUR = 2;
  const t = useTestApp({ PASSWORD_CHANGE_MAX_PER_USER_PER_HOUR: String(PER_HOUR) });

  const change = (cookie: string, currentPassword: string, newPassword = strongPassword()) =>
    request(t.app).put('/api/auth/password').set('Cookie', cookie).send({ currentPassword, newPassword });

  test('when a user goes over the hourly limit, then 429 with Retry-After of about an hour, whatever the outcome of the earlier attempts', async () => {
    const { password, cookie } = await signedIn(t);
    const next = strongPassword();

    const changed = await change(cookie, password, next);
    const rotated = sessionCookie(changed)!;
    const wrong = await change(rotated, 'not the current one');
    const refused = await change(rotated, next);

    expect([changed.status, wrong.status]).toEqual([204, 403]);
    expectRateLimited(refused, HOUR);
  });

  test("when one user is over the limit, then another user's changes from the same address are not limited", async () => {
    const first = await signedIn(t);
    const second = await signedIn(t);
    for (let i = 0; i < PER_HOUR; i++) await change(first.cookie, 'wrong current password');
    expect((await change(first.cookie, 'wrong current password')).status).toBe(429);

    const res = await change(second.cookie, second.password);

    expect(res.status).toBe(204);
  });

  test('when a user is refused repeatedly, then ratelimit.blocked is logged once, with the user', async () => {
    const { user, cookie } = await signedIn(t);
    for (let i = 0; i < PER_HOUR; i++) await change(cookie, 'wrong current password');

    const first = await change(cookie, 'wrong current password');
    const second = await change(cookie, 'wrong current password');

    expect([first.status, second.status]).toEqual([429, 429]);
    expect(eventOf(t, first, 'ratelimit.blocked')).toMatchObject({
      userId: user.id,
      requestId: first.headers['x-request-id'],
      limiter: expect.stringContaining('password'),
    });
    expect(eventOf(t, second, 'ratelimit.blocked')).toBeUndefined();
    expect(eventsNamed(t, 'ratelimit.blocked').filter((l) => l.userId === user.id)).toHaveLength(1);
  });

  test('when a password change is refused by the limiter, then the password is unchanged', async () => {
    const { email, password, cookie } = await signedIn(t);
    for (let i = 0; i < PER_HOUR; i++) await change(cookie, 'wrong current password');

    const refused = await change(cookie, password);

    expect(refused.status).toBe(429);
    await expect(login(t, { email, password })).resolves.toMatch(/^sid=/);
  });
});

describe('apps with their own counters', () => {
  const a = useTestApp({ RATE_LIMIT_PER_MINUTE: '2' });
  const b = useTestApp({ RATE_LIMIT_PER_MINUTE: '2' });

  test('when two apps with the same limits serve the same client, then one app exhausting its limit does not throttle the other', async () => {
    expect(a.config.redisKeyPrefix).not.toBe(b.config.redisKeyPrefix);
    const statusesA: number[] = [];
    for (let i = 0; i < 3; i++) statusesA.push((await request(a.app).get('/api/auth/me')).status);

    const fromB = await request(b.app).get('/api/auth/me');

    expect(statusesA).toEqual([401, 401, 429]);
    expect(fromB.status).toBe(401);
    expect(fromB.headers['ratelimit-remaining']).toBe('1');
  });
});
