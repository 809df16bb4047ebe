import { clientLimitKey, normalizeIp } from '../../src/http/request-context';
import request, { type Response } from 'supertest';
import { createUser } from '../support/factories';
import { listen } from '../support/listen';
import { accessLineOf, eventOf } from '../support/log-lines';
import type { LogLine } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';

describe('client addresses', () => {
  test.each([
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['127.0.0.1', '127.0.0.1'],
    ['2001:DB8:0:0::1', '2001:db8::1'],
    ['::1', '::1'],
    [undefined, 'unknown'],
    ['not an address', 'not an address'],
  ])('when the address is %p, then it is logged as %p', (raw, normal) => {
    expect(normalizeIp(raw)).toBe(normal);
  });

  test.each([
    ['203.0.113.9', '203.0.113.9'],
    ['::ffff:203.0.113.9', '203.0.113.9'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::ffff', '2001:db8:1:2::/64'],
    ['2001:DB8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
  ])('when limits count %p, then the key is %p', (ip, key) => {
    expect(clientLimitKey(ip)).toBe(key);
  });
});

// End to end: the address that security events and the access log record for a request.
describe('the client IP with TRUST_PROXY=0 (the default)', () => {
  const t = useTestApp();

  // Listening on '::' as a deployment does, an IPv4 client's socket address is ::ffff:127.0.0.1.
  test('when a client sends a forged X-Forwarded-For, then events and the access log keep the socket address, normalised', async () => {
    const { email, password } = await createUser(t);
    const forged = { 'X-Forwarded-For': '203.0.113.66' };
    const server = await listen(t.app, '::');
    let failed: Response;
    let succeeded: Response;
    try {
      failed = await request(server.url)
        .post('/api/auth/login')
        .set(forged)
        .send({ email, password: 'nope nope nope' });
      succeeded = await request(server.url).post('/api/auth/login').set(forged).send({ email, password });
    } finally {
      await server.close();
    }

    expect(failed.status).toBe(401);
    expect(succeeded.status).toBe(200);
    const access = accessLineOf(t, succeeded) as LogLine & { req: { remoteAddress: string } };
    expect(access.req.remoteAddress).toBe('::ffff:127.0.0.1');
    expect(access.clientIp).toBe('127.0.0.1');
    expect(eventOf(t, failed, 'auth.login_failed')?.clientIp).toBe('127.0.0.1');
    expect(eventOf(t, succeeded, 'auth.login_succeeded')?.clientIp).toBe('127.0.0.1');
    expect(t.logs.some((l) => l.clientIp === '203.0.113.66' || l.clientIp === '::ffff:127.0.0.1')).toBe(
      false,
    );
  });
});

// ASVS 5.0 4.1.3: only the hop the proxy added counts.
describe('the client IP with TRUST_PROXY=1', () => {
  const t = useTestApp({ TRUST_PROXY: '1' });

  test('when the proxy sends X-Forwarded-For, then events log that address', async () => {
    const { email, password } = await createUser(t);
    const viaProxy = { 'X-Forwarded-For': '198.51.100.23' };

    const failed = await request(t.app)
      .post('/api/auth/login')
      .set(viaProxy)
      .send({ email, password: 'nope nope nope' });
    const succeeded = await request(t.app).post('/api/auth/login').set(viaProxy).send({ email, password });

    expect(eventOf(t, failed, 'auth.login_failed')?.clientIp).toBe('198.51.100.23');
    expect(eventOf(t, succeeded, 'auth.login_succeeded')?.clientIp).toBe('198.51.100.23');
    expect(accessLineOf(t, succeeded)?.clientIp).toBe('198.51.100.23');
  });

  test('when a client prepends its own address to the chain, then only the hop the proxy added counts', async () => {
    const { email, password } = await createUser(t);

    const res = await request(t.app)
      .post('/api/auth/login')
      .set('X-Forwarded-For', '10.6.6.6, 198.51.100.24')
      .send({ email, password });

    expect(eventOf(t, res, 'auth.login_succeeded')?.clientIp).toBe('198.51.100.24');
  });
});
