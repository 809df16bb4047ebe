import { randomBytes } from 'node:crypto';
import net from 'node:net';
import request, { type Response } from 'supertest';
import { createUser, sessionCookie, signedIn, uniqueEmail } from '../support/factories';
import { listen } from '../support/listen';
import { accessLineOf, eventOf } from '../support/log-lines';
import { sidOf } from '../support/sessions';
import { createTestApp, type LogLine, type TestApp } from '../support/test-app';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const secret = (label: string) => `${label}-${randomBytes(12).toString('hex')}`;

describe('security events', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  test('when a login succeeds, then auth.login_succeeded is logged with the user, client IP and request id', async () => {
    const { user, email, password } = await createUser(t);

    const res = await request(t.app).post('/api/auth/login').send({ email, password });

    expect(res.status).toBe(200);
    expect(eventOf(t, res, 'auth.login_succeeded')).toMatchObject({
      level: 'info',
      event: 'auth.login_succeeded',
      userId: user.id,
      clientIp: '127.0.0.1',
      requestId: res.headers['x-request-id'],
    });
  });

  test.each([
    ['the password is wrong', true],
    ['the email is unknown', false],
  ])(
    'when a login fails because %s, then auth.login_failed is logged at warn with the attempted email',
    async (_case, exists) => {
      const email = exists ? (await createUser(t)).email : uniqueEmail('unknown');

      const res = await request(t.app).post('/api/auth/login').send({ email, password: 'wrong password 1' });

      expect(res.status).toBe(401);
      const line = eventOf(t, res, 'auth.login_failed');
      expect(line).toMatchObject({
        level: 'warn',
        event: 'auth.login_failed',
        userId: null,
        clientIp: '127.0.0.1',
        requestId: res.headers['x-request-id'],
        email,
      });
    },
  );

  test('when a user logs out, then auth.logout is logged with the user, client IP and request id', async () => {
    const { user, cookie } = await signedIn(t);

    const res = await request(t.app).post('/api/auth/logout').set('Cookie', cookie);

    expect(res.status).toBe(204);
    expect(eventOf(t, res, 'auth.logout')).toMatchObject({
      level: 'info',
      userId: user.id,
      clientIp: '127.0.0.1',
      requestId: res.headers['x-request-id'],
    });
  });

  test('when a password is changed, then auth.password_changed is logged with the user, client IP and request id', async () => {
    const { user, password, cookie } = await signedIn(t);

    const res = await request(t.app)
      .put('/api/auth/password')
      .set('Cookie', cookie)
      .send({ currentPassword: password, newPassword: 'the next passphrase 9' });

    expect(res.status).toBe(204);
    expect(eventOf(t, res, 'auth.password_changed')).toMatchObject({
      level: 'info',
      userId: user.id,
      clientIp: '127.0.0.1',
      requestId: res.headers['x-request-id'],
      otherSessionsEnded: 0,
    });
  });
});

describe('the client IP with TRUST_PROXY=0 (the default)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

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

describe('the client IP with TRUST_PROXY=1', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ TRUST_PROXY: '1' });
  });
  afterAll(() => t.close());

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

describe('X-Request-Id', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  test('when a well-formed id is sent, then it is echoed, used in the error body and in every log line', async () => {
    const id = `trace.${randomBytes(6).toString('hex')}_A-1`;

    const res = await request(t.app)
      .post('/api/auth/login')
      .set('X-Request-Id', id)
      .send({ email: uniqueEmail('nobody'), password: 'whatever it is' });

    expect(res.status).toBe(401);
    expect(res.headers['x-request-id']).toBe(id);
    expect(res.body.error.requestId).toBe(id);
    expect(eventOf(t, res, 'auth.login_failed')).toBeDefined();
    expect(accessLineOf(t, res)).toBeDefined();
  });

  test.each([
    ['8 characters', 'abcdEFG8'],
    ['64 characters', 'x'.repeat(64)],
  ])('when the id is exactly %s, then it is kept', async (_case, id) => {
    const res = await request(t.app).get('/api/auth/me').set('X-Request-Id', id);
    expect(res.headers['x-request-id']).toBe(id);
    expect(res.body.error.requestId).toBe(id);
  });

  test.each([
    ['is too short', 'abc1234'],
    ['is too long', 'x'.repeat(65)],
    ['has spaces', 'abc def ghi'],
    ['has a tab', 'abcd\tefghij'],
    ['has a quote and braces', 'abcd"}{"injected":1'],
    ['has slashes', '../../etc/passwd'],
    ['has a semicolon', 'abcdefgh;x=y'],
    ['has a non-ASCII letter', 'caf\u00e9-12345678'],
  ])('when the id %s, then it is replaced by a UUID everywhere', async (_case, id) => {
    const res = await request(t.app).get('/api/auth/me').set('X-Request-Id', id);

    const replaced = res.headers['x-request-id'];
    expect(replaced).toMatch(UUID);
    expect(res.body.error.requestId).toBe(replaced);
    expect(accessLineOf(t, res)).toBeDefined();
    expect(t.logs.some((l) => l.requestId === id)).toBe(false);
  });

  test('when the id carries a line break, then the request is refused before the app and nothing is logged from it', async () => {
    const marker = `injected${randomBytes(6).toString('hex')}`;
    const { port, close } = await listen(t.app);
    try {
      const statusLine = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () =>
          socket.write(
            `GET /api/auth/me HTTP/1.1\r\nHost: x\r\nX-Request-Id: abcdefgh\n${marker}: 1\r\nConnection: close\r\n\r\n`,
          ),
        );
        let received = '';
        socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
        socket.on('end', () => resolve(received.split('\r\n')[0]!));
        socket.on('error', reject);
      });
      expect(statusLine).toMatch(/^HTTP\/1\.1 400/);
      expect(t.rawLogs()).not.toContain(marker);
    } finally {
      await close();
    }
  });
});

describe('log redaction', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  test('when requests carry passwords, cookies and an Authorization header, then none of them reach the log', async () => {
    const loginPassword = secret('login-password');
    const wrongPassword = secret('wrong-password');
    const newPassword = secret('new-password');
    const registerPassword = secret('register-password');
    const bearer = secret('bearer-token');
    const { email } = await createUser(t, { password: loginPassword });

    const failed = await request(t.app)
      .post('/api/auth/login')
      .set('Authorization', `Bearer ${bearer}`)
      .send({ email, password: wrongPassword });
    const loggedIn = await request(t.app)
      .post('/api/auth/login')
      .set('Authorization', `Bearer ${bearer}`)
      .send({ email, password: loginPassword });
    const cookie = sessionCookie(loggedIn)!;
    const me = await request(t.app)
      .get('/api/auth/me')
      .set('Cookie', cookie)
      .set('Authorization', `Bearer ${bearer}`);
    const changed = await request(t.app)
      .put('/api/auth/password')
      .set('Cookie', cookie)
      .send({ currentPassword: loginPassword, newPassword });
    const rotatedCookie = sessionCookie(changed)!;
    const registered = await request(t.app)
      .post('/api/auth/register')
      .send({ email: uniqueEmail('redact'), password: registerPassword, name: 'Redact' });
    const registeredCookie = sessionCookie(registered)!;
    const loggedOut = await request(t.app).post('/api/auth/logout').set('Cookie', rotatedCookie);
    expect([
      failed.status,
      loggedIn.status,
      me.status,
      changed.status,
      registered.status,
      loggedOut.status,
    ]).toEqual([401, 200, 200, 204, 201, 204]);

    const raw = t.rawLogs();
    const cookieValues = [cookie, rotatedCookie, registeredCookie].flatMap((c) => {
      const value = c.slice(c.indexOf('=') + 1);
      return [value, decodeURIComponent(value), sidOf(c)];
    });
    for (const leaked of [
      loginPassword,
      wrongPassword,
      newPassword,
      registerPassword,
      bearer,
      ...cookieValues,
    ]) {
      expect(raw).not.toContain(leaked);
    }

    const meLine = accessLineOf(t, me) as { req: { headers: Record<string, unknown> } } & LogLine;
    expect(meLine.req.headers.cookie).toBe('[redacted]');
    expect(meLine.req.headers.authorization).toBe('[redacted]');
    for (const res of [loggedIn, changed, registered]) {
      const line = accessLineOf(t, res) as { res: { headers: Record<string, unknown> } } & LogLine;
      expect(line.res.headers['set-cookie']).toBe('[redacted]');
    }
  });
});
