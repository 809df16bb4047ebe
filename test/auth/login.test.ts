import request from 'supertest';
import { expectError } from '../support/assertions';
import { createUser, login, sessionCookie, uniqueEmail } from '../support/factories';
import { listen } from '../support/listen';
import { setCookies, sidOf, signedSessionCookie } from '../support/sessions';
import { TEST_SESSION_SECRET } from '../support/test-app';
import { unknownToKnownTimeRatio } from '../support/timing';
import { useTestApp } from '../support/use-test-app';

describe('POST /api/auth/login', () => {
  const t = useTestApp();

  test('when the credentials are right, then 200 with the user and a session cookie that works', async () => {
    const { user, email, password } = await createUser(t, { name: 'Ada' });

    const res = await request(t.app).post('/api/auth/login').send({ email, password });

    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      id: user.id,
      email,
      name: 'Ada',
      role: 'user',
      createdAt: user.createdAt.toISOString(),
      updatedAt: user.updatedAt.toISOString(),
      emailVerifiedAt: null,
    });
    expect(res.headers['cache-control']).toBe('no-store');
    const cookie = sessionCookie(res);
    expect(cookie).toBeDefined();
    const me = await request(t.app).get('/api/auth/me').set('Cookie', cookie!);
    expect(me.status).toBe(200);
    expect(me.body.id).toBe(user.id);
  });

  test('when the email is typed with spaces and capitals, then it is matched trimmed and lowercased', async () => {
    const email = uniqueEmail('mixed');
    const { user, password } = await createUser(t, { email });
    const typed = `  ${email.replace('mixed', 'MiXeD').replace('example.test', 'Example.TEST')} `;
    expect(typed.trim().toLowerCase()).toBe(email);

    const res = await request(t.app).post('/api/auth/login').send({ email: typed, password });

    expect(res.status).toBe(200);
    expect(res.body.id).toBe(user.id);
    expect(res.body.email).toBe(email);
    expect(sessionCookie(res)).toBeDefined();
  });

  test('when the email is unknown or the password is wrong, then the same 401 invalid_credentials body', async () => {
    const { email } = await createUser(t);

    const unknown = await request(t.app)
      .post('/api/auth/login')
      .send({ email: uniqueEmail('nobody'), password: 'some password 123' });
    const wrong = await request(t.app).post('/api/auth/login').send({ email, password: 'some password 123' });

    for (const res of [unknown, wrong]) {
      expectError(res, 401, 'invalid_credentials');
      expect(res.body.error.requestId).toBe(res.headers['x-request-id']);
      expect(setCookies(res)).toEqual([]);
    }
    const withoutRequestId = (body: { error: Record<string, unknown> }) => ({
      ...body,
      error: { ...body.error, requestId: undefined },
    });
    expect(withoutRequestId(unknown.body)).toEqual(withoutRequestId(wrong.body));
    expect(Object.keys(unknown.body.error).sort()).toEqual(Object.keys(wrong.body.error).sort());
  });

  // One of the suite's two timing comparisons (the other: password-reset-abuse.test.ts). Without
  // the dummy argon2 verification an unknown email costs one indexed lookup (~1 ms) while a wrong
  // password costs a verification (~10 ms): a ratio near 0.1-0.2, far outside the band below. Medians
  // over interleaved attempts shrug off scheduler noise.
  test('when an email is unknown, then the login takes as long as a wrong password for an existing account', async () => {
    const { email } = await createUser(t);
    // One listening server for all attempts: no per-request listen() in the measurement.
    const server = await listen(t.app);
    try {
      const ratio = await unknownToKnownTimeRatio({
        send: async (loginEmail) => {
          const res = await request(server.url)
            .post('/api/auth/login')
            .send({ email: loginEmail, password: 'not the password 0' });
          expect(res.status).toBe(401);
        },
        knownEmail: email,
        unknownEmail: () => uniqueEmail('nobody'),
      });

      expect(ratio).toBeGreaterThanOrEqual(0.5);
      expect(ratio).toBeLessThanOrEqual(2);
    } finally {
      await server.close();
    }
  });

  test.each([
    ['an unknown field', { email: 'a@example.test', password: 'x'.repeat(12), remember: true }, 'body'],
    ['an email that is not a string', { email: 42, password: 'x'.repeat(12) }, 'body.email'],
    ['a password that is not a string', { email: 'a@example.test', password: ['x'] }, 'body.password'],
    ['no password', { email: 'a@example.test' }, 'body.password'],
    ['no email', { password: 'x'.repeat(12) }, 'body.email'],
    ['an empty object', {}, 'body.email'],
  ])('when the body has %s, then 400 validation_failed naming the field', async (_case, body, path) => {
    const res = await request(t.app).post('/api/auth/login').send(body);

    expectError(res, 400, 'validation_failed');
    expect(res.body.error.details).toEqual(expect.arrayContaining([{ path, message: expect.any(String) }]));
    expect(setCookies(res)).toEqual([]);
  });

  test('when a password over 1024 characters is sent, then 400 validation_failed before any hashing', async () => {
    const { email } = await createUser(t);
    const res = await request(t.app)
      .post('/api/auth/login')
      .send({ email, password: 'y'.repeat(1025) });
    expectError(res, 400, 'validation_failed');
    expect(res.body.error.details).toEqual([{ path: 'body.password', message: expect.any(String) }]);
  });
});

// ASVS 5.0 7.2.2, 7.2.4: a new, dynamically generated session id at every login.
describe('session fixation on login', () => {
  const t = useTestApp();

  test('when a client already holding a session logs in again, then it gets a new id and the old cookie is dead', async () => {
    const creds = await createUser(t);
    const cookieA = await login(t, creds);

    const res = await request(t.app)
      .post('/api/auth/login')
      .set('Cookie', cookieA)
      .send({ email: creds.email, password: creds.password });

    expect(res.status).toBe(200);
    const cookieB = sessionCookie(res);
    expect(cookieB).toBeDefined();
    expect(sidOf(cookieB!)).not.toBe(sidOf(cookieA));
    const oldMe = await request(t.app).get('/api/auth/me').set('Cookie', cookieA);
    expectError(oldMe, 401, 'unauthenticated');
    const newMe = await request(t.app).get('/api/auth/me').set('Cookie', cookieB!);
    expect(newMe.status).toBe(200);
    expect(newMe.body.id).toBe(creds.user.id);
  });

  test("when a victim logs in carrying an attacker's planted session cookie, then the attacker's cookie does not become the victim's session", async () => {
    const attacker = await createUser(t);
    const victim = await createUser(t);
    const planted = await login(t, attacker);

    const res = await request(t.app)
      .post('/api/auth/login')
      .set('Cookie', planted)
      .send({ email: victim.email, password: victim.password });

    expect(res.status).toBe(200);
    expect(res.body.id).toBe(victim.user.id);
    expect(sidOf(sessionCookie(res)!)).not.toBe(sidOf(planted));
    const attackerView = await request(t.app).get('/api/auth/me').set('Cookie', planted);
    expect(attackerView.status).toBe(401);
  });

  test('when a client sends a pre-login cookie with a made-up session id, then login issues a different id', async () => {
    const creds = await createUser(t);
    // A correctly signed cookie for an id the server never issued (an attacker who knew the secret
    // could do no better): express-session must not adopt it.
    const preLogin = signedSessionCookie('sid', 'fixated-session-id-0123456789abcd', TEST_SESSION_SECRET);

    const res = await request(t.app)
      .post('/api/auth/login')
      .set('Cookie', preLogin)
      .send({ email: creds.email, password: creds.password });

    expect(res.status).toBe(200);
    const cookie = sessionCookie(res)!;
    expect(sidOf(cookie)).not.toBe('fixated-session-id-0123456789abcd');
    expect((await request(t.app).get('/api/auth/me').set('Cookie', preLogin)).status).toBe(401);
    expect((await request(t.app).get('/api/auth/me').set('Cookie', cookie)).status).toBe(200);
  });
});
