import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { renewalIntervalMs } from '../../src/auth/sessions';
import { expectError } from '../support/assertions';
import { createUser, login, sessionCookie, sessionSetCookie, signedIn, sleep } from '../support/factories';
import { parseSetCookie, sessionKey, setCookies, sidOf } from '../support/sessions';
import { createTestApp } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';

const randomSecret = () => randomBytes(30).toString('base64url'); // 40 characters
const HTTPS = { 'X-Forwarded-Proto': 'https' };

function expectExpiresAboutIdleFromNow(expires: string | undefined, idleS: number): void {
  expect(expires).toBeDefined();
  const expected = Date.now() + idleS * 1000;
  const actual = new Date(expires!).getTime();
  // The header has whole seconds; allow for that and for the request's own duration.
  expect(actual).toBeGreaterThan(expected - 3000);
  expect(actual).toBeLessThanOrEqual(expected + 1000);
}

describe.each(['test', 'development'])('the session cookie when NODE_ENV=%s', (nodeEnv) => {
  const t = useTestApp({ NODE_ENV: nodeEnv, SESSION_IDLE_TIMEOUT_S: '900' });

  test('when logging in, then the cookie is sid, HttpOnly, SameSite=Lax, Path=/, host-only, not Secure, and lives for the idle timeout', async () => {
    const creds = await createUser(t);

    const res = await request(t.app)
      .post('/api/auth/login')
      .send({ email: creds.email, password: creds.password });

    expect(res.status).toBe(200);
    const lines = setCookies(res);
    expect(lines).toHaveLength(1);
    const cookie = parseSetCookie(lines[0]!);
    expect(cookie.name).toBe('sid');
    expect(cookie.value).toMatch(/^s%3A[^.]+\..+$/);
    expect(cookie.attributes.has('httponly')).toBe(true);
    expect(cookie.attributes.get('samesite')).toBe('Lax');
    expect(cookie.attributes.get('path')).toBe('/');
    expect(cookie.attributes.has('domain')).toBe(false);
    expect(cookie.attributes.has('secure')).toBe(false);
    expectExpiresAboutIdleFromNow(cookie.attributes.get('expires'), 900);
    if (cookie.attributes.has('max-age')) expect(cookie.attributes.get('max-age')).toBe('900');
  });
});

describe('rolling sessions', () => {
  // An idle timeout of 10 s renews at most once a second (renewalIntervalMs): short enough to wait out.
  const t = useTestApp({ SESSION_IDLE_TIMEOUT_S: '10' });

  test('when an authenticated request comes after the renewal interval, then the same session cookie is re-sent with a later expiry and the Redis TTL is renewed', async () => {
    const { cookie } = await signedIn(t);
    const first = await request(t.app).get('/api/auth/me').set('Cookie', cookie);
    expect(first.status).toBe(200);
    await sleep(renewalIntervalMs(10) + 100);
    const pttlBefore = await t.redis.pTTL(sessionKey(t, sidOf(cookie)));

    const second = await request(t.app).get('/api/auth/me').set('Cookie', cookie);

    expect(second.status).toBe(200);
    const again = parseSetCookie(sessionSetCookie(second)!);
    expect(sidOf(`sid=${again.value}`)).toBe(sidOf(cookie));
    expectExpiresAboutIdleFromNow(again.attributes.get('expires'), 10);
    expect(await t.redis.pTTL(sessionKey(t, sidOf(cookie)))).toBeGreaterThan(pttlBefore);
  });

  test('when an authenticated request comes within the renewal interval, then no cookie is re-sent and the Redis TTL keeps running down', async () => {
    const { cookie } = await signedIn(t);
    const key = sessionKey(t, sidOf(cookie));
    const stored = await t.redis.get(key);
    const pttlBefore = await t.redis.pTTL(key);

    const res = await request(t.app).get('/api/auth/me').set('Cookie', cookie);

    expect(res.status).toBe(200);
    expect(setCookies(res)).toEqual([]);
    expect(await t.redis.pTTL(key)).toBeLessThanOrEqual(pttlBefore);
    expect(await t.redis.get(key)).toBe(stored);
  });

  // ASVS 5.0 7.6.2: a session is created only by signing in.
  test('when a request has no session, then no cookie is issued', async () => {
    const res = await request(t.app).get('/api/auth/me');
    expect(res.status).toBe(401);
    expect(setCookies(res)).toEqual([]);
  });
});

// ASVS 5.0 3.3.1, 3.3.2, 3.3.3, 3.3.4: __Host-, Secure, HttpOnly, SameSite=Lax.
describe('the session cookie in production behind one proxy', () => {
  const t = useTestApp({
    NODE_ENV: 'production',
    PUBLIC_URL: 'https://app.example.test',
    TRUST_PROXY: '1',
    SESSION_SECRET: randomSecret(),
  });

  test('when logging in over https (X-Forwarded-Proto), then the cookie is __Host-sid, Secure, HttpOnly, SameSite=Lax, Path=/, no Domain', async () => {
    const creds = await createUser(t);

    const res = await request(t.app)
      .post('/api/auth/login')
      .set(HTTPS)
      .send({ email: creds.email, password: creds.password });

    expect(res.status).toBe(200);
    const lines = setCookies(res);
    expect(lines).toHaveLength(1);
    const cookie = parseSetCookie(lines[0]!);
    expect(cookie.name).toBe('__Host-sid');
    expect(cookie.attributes.has('secure')).toBe(true);
    expect(cookie.attributes.has('httponly')).toBe(true);
    expect(cookie.attributes.get('samesite')).toBe('Lax');
    expect(cookie.attributes.get('path')).toBe('/');
    expect(cookie.attributes.has('domain')).toBe(false);
    expectExpiresAboutIdleFromNow(cookie.attributes.get('expires'), t.config.session.idleTimeoutS);
    const me = await request(t.app)
      .get('/api/auth/me')
      .set(HTTPS)
      .set('Cookie', sessionCookie(res, '__Host-sid')!);
    expect(me.status).toBe(200);
    expect(me.body.id).toBe(creds.user.id);
  });

  test('when logging in over plain http, then no session cookie is issued at all', async () => {
    const creds = await createUser(t);

    const res = await request(t.app)
      .post('/api/auth/login')
      .send({ email: creds.email, password: creds.password });

    expect(res.status).toBe(200);
    expect(setCookies(res)).toEqual([]);
  });

  test('when logging out over https, then the cleared cookie keeps the __Host- attributes', async () => {
    const creds = await createUser(t);
    const cookie = await login(t, creds, HTTPS);

    const res = await request(t.app).post('/api/auth/logout').set(HTTPS).set('Cookie', cookie);

    expect(res.status).toBe(204);
    const cleared = parseSetCookie(sessionSetCookie(res, '__Host-sid')!);
    expect(cleared.value).toBe('');
    expect(cleared.attributes.has('secure')).toBe(true);
    expect(cleared.attributes.get('path')).toBe('/');
    expect(cleared.attributes.has('domain')).toBe(false);
    expect(new Date(cleared.attributes.get('expires')!).getTime()).toBeLessThan(Date.now());
  });

  test.each([
    ['401', () => request(t.app).get('/api/auth/me').set(HTTPS), 401],
    ['404', () => request(t.app).get('/api/no-such-thing').set(HTTPS), 404],
    [
      '400',
      () => request(t.app).post('/api/auth/login').set(HTTPS).send({ email: 1, password: 2, extra: 3 }),
      400,
    ],
  ])('when an error is answered (%s), then the body has no stack', async (_case, send, status) => {
    const res = await send();
    expect(res.status).toBe(status);
    expect(res.body.error).toBeDefined();
    expect(res.body.error.stack).toBeUndefined();
    expect(res.text).not.toMatch(/\.ts:\d|at .*\(|node_modules/);
  });
  test('when a request fails unexpectedly (5xx), then the body has no stack either', async () => {
    const broken = await createTestApp({
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://app.example.test',
      TRUST_PROXY: '1',
      SESSION_SECRET: randomSecret(),
    });
    try {
      // A real failure, not a mock: the pool is gone, so the login query throws a plain Error.
      await broken.db.close();

      const res = await request(broken.app)
        .post('/api/auth/login')
        .set(HTTPS)
        .send({ email: 'someone@example.test', password: 'whatever it is' });

      expectError(res, 500, 'internal_error');
      expect(res.body.error.stack).toBeUndefined();
      expect(res.text).not.toMatch(/\.ts:\d|at .*\(|node_modules|pool/i);
    } finally {
      await broken.redis.close();
      await broken.userCache?.close();
    }
  });
});

describe('session secret rotation', () => {
  const OLD = `old-secret-${randomSecret()}`;
  const NEW = `new-secret-${randomSecret()}`;
  // One key prefix for the three apps: they share sessions the way successive deployments do.
  const REDIS_KEY_PREFIX = `${process.env.TEST_RUN_KEY_PREFIX}${randomBytes(4).toString('hex')}:`;
  const signer = useTestApp({ REDIS_KEY_PREFIX, SESSION_SECRET: OLD });
  const rotated = useTestApp({ REDIS_KEY_PREFIX, SESSION_SECRET: `${NEW},${OLD}` });
  const newOnly = useTestApp({ REDIS_KEY_PREFIX, SESSION_SECRET: NEW });

  test('when the secret list is "new,old", then cookies signed with the old secret still work and come back signed with the new one', async () => {
    const creds = await createUser(signer);
    const oldCookie = await login(signer, creds);

    const res = await request(rotated.app).get('/api/auth/me').set('Cookie', oldCookie);

    expect(res.status).toBe(200);
    expect(res.body.id).toBe(creds.user.id);
    const resigned = sessionCookie(res)!;
    expect(sidOf(resigned)).toBe(sidOf(oldCookie));
    expect(resigned).not.toBe(oldCookie);
    expect((await request(newOnly.app).get('/api/auth/me').set('Cookie', resigned)).status).toBe(200);
  });

  test('when the old secret is dropped from the list, then cookies signed with it are refused', async () => {
    const creds = await createUser(signer);
    const oldCookie = await login(signer, creds);

    const res = await request(newOnly.app).get('/api/auth/me').set('Cookie', oldCookie);

    expectError(res, 401, 'unauthenticated');
    // Refusing a cookie it cannot verify does not end the session for apps that can.
    expect((await request(rotated.app).get('/api/auth/me').set('Cookie', oldCookie)).status).toBe(200);
  });
});
