import { normalizeIp } from '../../src/http/request-context';
import { randomBytes } from 'node:crypto';
import request, { type Response } from 'supertest';
import { createUser } from '../support/factories';
import { listen, type Listening } from '../support/listen';
import { accessLineOf, eventOf, eventsNamed } from '../support/log-lines';
import { fromIp, scanKeys, uniqueIp } from '../support/rate-limit';
import { useTestApp } from '../support/use-test-app';

/**
 * Limits are keyed by the client IP: req.ip under exactly TRUST_PROXY hops, in one normal form
 * (`::ffff:a.b.c.d` is a.b.c.d). A client cannot pick its key by sending X-Forwarded-For.
 */

describe('with TRUST_PROXY=0, behind no proxy', () => {
  // Listening on '::' as a deployment does: an IPv4 client's socket address is ::ffff:127.0.0.1.
  describe('the global limiter', () => {
    const t = useTestApp({ TRUST_PROXY: '0', RATE_LIMIT_PER_MINUTE: '3' });
    let server: Listening;
    beforeAll(async () => {
      server = await listen(t.app, '::');
    });
    afterAll(() => server.close());

    test('when a client rotates forged X-Forwarded-For values, then it still spends one counter and is refused at the limit; the log and the key keep its real address', async () => {
      const forged = ['203.0.113.1', '203.0.113.2', '203.0.113.3', '203.0.113.4', '203.0.113.5'];

      const responses: Response[] = [];
      for (const address of forged)
        responses.push(await request(server.url).get('/api/auth/me').set(fromIp(address)));

      expect(responses.map((r) => r.status)).toEqual([401, 401, 401, 429, 429]);
      expect(responses.slice(0, 3).map((r) => r.headers['ratelimit-remaining'])).toEqual(['2', '1', '0']);
      expect(eventOf(t, responses[3]!, 'ratelimit.blocked')?.clientIp).toBe('127.0.0.1');
      for (const res of responses) expect(accessLineOf(t, res)?.clientIp).toBe('127.0.0.1');
      expect(t.logs.some((l) => String(l.clientIp).startsWith('203.0.113.'))).toBe(false);
      const keys = await scanKeys(t, `${t.config.redisKeyPrefix}rl:*`);
      expect(keys).toHaveLength(1);
      expect(keys[0]).toMatch(/ip-minute:+127\.0\.0\.1$/);
    });
  });

  describe('the login lockout', () => {
    const t = useTestApp({ TRUST_PROXY: '0', LOGIN_MAX_CONSECUTIVE_FAILS: '2' });
    let server: Listening;
    beforeAll(async () => {
      server = await listen(t.app, '::');
    });
    afterAll(() => server.close());

    test('when failed logins rotate forged X-Forwarded-For values, then the (email, IP) pair still locks', async () => {
      const { email, password } = await createUser(t);
      const attempt = (address: string, pass: string) =>
        request(server.url).post('/api/auth/login').set(fromIp(address)).send({ email, password: pass });

      const statuses = [
        (await attempt('203.0.113.10', 'wrong password 1')).status,
        (await attempt('203.0.113.11', 'wrong password 2')).status,
        (await attempt('203.0.113.12', password)).status,
      ];

      expect(statuses).toEqual([401, 401, 429]);
      expect(eventsNamed(t, 'auth.locked').map((l) => l.clientIp)).toEqual(['127.0.0.1', '127.0.0.1']);
    });
  });
});

describe('with TRUST_PROXY=1, behind one proxy', () => {
  const t = useTestApp({ TRUST_PROXY: '1', RATE_LIMIT_PER_MINUTE: '2' });

  const get = (forwardedFor: string) =>
    request(t.app).get('/api/auth/me').set('X-Forwarded-For', forwardedFor);

  test('when the proxy reports the same client as IPv4 and as IPv4-mapped IPv6, then both spend one counter', async () => {
    const ip = uniqueIp();

    const responses = [await get(ip), await get(`::ffff:${ip}`), await get(ip)];

    expect(responses.map((r) => r.status)).toEqual([401, 401, 429]);
    expect(eventOf(t, responses[2]!, 'ratelimit.blocked')?.clientIp).toBe(ip);
    expect(accessLineOf(t, responses[1]!)?.clientIp).toBe(ip);
  });

  test('when a client prepends addresses of its choosing, then only the hop the proxy added is the key', async () => {
    const ip = uniqueIp();

    const responses: Response[] = [];
    for (const madeUp of ['10.66.0.1', '10.66.0.2', '10.66.0.3'])
      responses.push(await get(`${madeUp}, ${ip}`));

    expect(responses.map((r) => r.status)).toEqual([401, 401, 429]);
    expect(eventOf(t, responses[2]!, 'ratelimit.blocked')?.clientIp).toBe(ip);
  });

  test('when an IPv6 client rotates addresses inside its /64, then they all spend one counter', async () => {
    const prefix = `2001:db8:${randomBytes(2).toString('hex')}:${randomBytes(2).toString('hex')}`;
    const responses = [
      await get(`${prefix}::1`),
      await get(`${prefix}:ffff:1:2:3`),
      await get(`${prefix.toUpperCase()}:0:0:0:9`),
    ];
    expect(responses.map((r) => r.status)).toEqual([401, 401, 429]);
    // The log keeps the exact address; only the limiter groups by network.
    expect(accessLineOf(t, responses[1]!)?.clientIp).toBe(normalizeIp(`${prefix}:ffff:1:2:3`));
  });

  test('when IPv6 clients are in different /64 networks, then their counters are separate', async () => {
    const site = `2001:db8:${randomBytes(2).toString('hex')}`;
    const responses = [await get(`${site}:1::1`), await get(`${site}:2::1`), await get(`${site}:3::1`)];
    expect(responses.map((r) => r.status)).toEqual([401, 401, 401]);
  });
});
