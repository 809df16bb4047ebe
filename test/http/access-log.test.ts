import { randomBytes } from 'node:crypto';
import { stripVTControlCharacters } from 'node:util';
import request from 'supertest';
import { startBackground, type BackgroundProcess } from '../support/commands';
import { createUser, sessionCookie } from '../support/factories';
import { createHeldHasher, until } from '../support/held-hasher';
import { listen } from '../support/listen';
import { accessLineOf } from '../support/log-lines';
import { freePort } from '../support/ports';
import { IGNORE_DOTENV } from '../support/run-script';
import { serverEnv } from '../support/server-process';
import type { LogLine } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';

/**
 * The access log: one line per request. Operators get the full structured line; a developer running
 * `npm run dev` gets one short line. Neither ever holds a response header: they are the same security
 * headers on every response, and Set-Cookie is a session credential.
 */

type AccessLine = LogLine & {
  requestId: string;
  clientIp: string;
  responseTime: number;
  req: { method: string; url: string; headers: Record<string, unknown> };
  res: Record<string, unknown>;
};

// ASVS 5.0 16.2.4, 16.2.5: JSON lines; credentials redacted.
describe('the structured access line', () => {
  const t = useTestApp();

  test('when a login succeeds, then its line has method, url, status, time and request id, and no response header', async () => {
    const { email, password } = await createUser(t);
    const apiKey = `key-${randomBytes(8).toString('hex')}`;

    const res = await request(t.app)
      .post('/api/auth/login')
      .set('User-Agent', 'access-log-test/1.0')
      .set('X-Api-Key', apiKey)
      .send({ email, password });

    expect(res.status).toBe(200);
    // The response does carry what must stay out of the log.
    expect(sessionCookie(res, t.config.session.cookieName)).toBeDefined();
    expect(res.headers['content-security-policy']).toBeDefined();
    const line = accessLineOf(t, res) as AccessLine;
    expect(line).toMatchObject({
      msg: 'request completed',
      requestId: res.headers['x-request-id'],
      clientIp: '127.0.0.1',
      req: { method: 'POST', url: '/api/auth/login' },
    });
    expect(typeof line.responseTime).toBe('number');
    expect(line.res).toEqual({ statusCode: 200 });
    const raw = JSON.stringify(line);
    for (const header of ['set-cookie', 'content-security-policy', 'x-request-id', 'x-frame-options', 'etag'])
      expect(raw.toLowerCase()).not.toContain(`"${header}"`);
    expect(raw).not.toContain(sessionCookie(res, t.config.session.cookieName)!.split('=')[1]);
    // Request headers come from an allowlist: a header nobody chose to log is not logged.
    expect(line.req.headers['user-agent']).toBe('access-log-test/1.0');
    expect(line.req.headers['x-api-key']).toBeUndefined();
    expect(raw).not.toContain(apiKey);
  });

  test('when a signed-in request is logged, then the cookie shows as sent but its value is redacted', async () => {
    const { email, password } = await createUser(t);
    const loggedIn = await request(t.app).post('/api/auth/login').send({ email, password });
    const cookie = sessionCookie(loggedIn, t.config.session.cookieName)!;

    const res = await request(t.app).get('/api/auth/me?fields=all').set('Cookie', cookie);

    expect(res.status).toBe(200);
    const line = accessLineOf(t, res) as AccessLine;
    expect(line.req).toMatchObject({ method: 'GET', url: '/api/auth/me?fields=[redacted]' });
    expect(line.req.headers.cookie).toBe('[redacted]');
    expect(line.res).toEqual({ statusCode: 200 });
    expect(t.rawLogs()).not.toContain(cookie.split('=')[1]);
  });
});

// ASVS 5.0 14.2.1, 16.2.5: a query's values stay out of the access line (ADR 0040).
describe('the query of a logged request', () => {
  const t = useTestApp();

  test('when a link with a token in its query is opened, then the line keeps the path and the parameter names, and no log line holds the token', async () => {
    const token = randomBytes(32).toString('base64url');
    const address = `someone-${randomBytes(4).toString('hex')}@example.test`;

    const res = await request(t.app)
      .get(`/login?token=${token}&email=${encodeURIComponent(address)}&${token.slice(0, 20)}`)
      .set('Referer', `https://mail.example.test/read?message=${token}`);

    expect(res.status).toBe(200);
    const line = accessLineOf(t, res) as AccessLine;
    expect(line.req.url).toBe('/login?token=[redacted]&email=[redacted]&[redacted]');
    expect(line.req.headers.referer).toBe('https://mail.example.test/read?message=[redacted]');
    expect(t.rawLogs()).not.toContain(token.slice(0, 20));
    expect(t.rawLogs()).not.toContain(address.split('@')[0]);
  });

  test('when a request has no query, then its url is the path as sent', async () => {
    const res = await request(t.app).get('/login').set('Referer', 'https://app.example.test/users');

    const line = accessLineOf(t, res) as AccessLine;
    expect(line.req.url).toBe('/login');
    expect(line.req.headers.referer).toBe('https://app.example.test/users');
  });
});

describe('a request whose client goes away', () => {
  const held = createHeldHasher();
  const t = useTestApp({}, { passwords: held.hasher });
  afterEach(() => held.release());

  test('when the client disconnects before the answer, then the line says aborted, once', async () => {
    const server = await listen(t.app);
    const requestId = `aborted-${randomBytes(8).toString('hex')}`;
    held.hold();
    const hashesBefore = held.calls.length;
    const client = new AbortController();
    const login = fetch(`${server.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Request-Id': requestId },
      body: JSON.stringify({ email: 'nobody@example.test', password: 'a passphrase of some length' }),
      signal: client.signal,
    }).catch((error: unknown) => error);
    try {
      // The login waits at the hash: the client leaves while the server still works on it.
      await until(() => held.calls.length > hashesBefore, 'the login to reach the hasher');
      client.abort();
      await login;
      await until(
        () => t.logs.some((l) => l.requestId === requestId && String(l.msg).startsWith('request ')),
        'the access line',
      );
    } finally {
      held.release();
      await server.close();
    }

    const lines = t.logs.filter((l) => l.requestId === requestId && String(l.msg).startsWith('request '));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: 'request aborted', level: 'info', req: { method: 'POST' } });
  });
});

describe('npm run dev', () => {
  let dev: BackgroundProcess | undefined;
  afterEach(async () => {
    const pgid = dev?.child.pid;
    await dev?.stop(2_000);
    // npm's group can outlive npm (tsx's watcher, the server): nothing of it may hold the port.
    if (pgid !== undefined) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // The whole group is gone already.
      }
    }
    dev = undefined;
  });

  test('when one request is served, then the terminal shows one short line with method, path, status, time and request id', async () => {
    const port = await freePort();
    dev = startBackground('npm', ['run', '--silent', 'dev'], {
      env: { ...serverEnv({ NODE_ENV: 'development', PORT: String(port) }), ...IGNORE_DOTENV },
    });
    await dev.waitForOutput(/listening/, 30_000);
    const marker = `marker-${randomBytes(8).toString('hex')}`;

    const res = await fetch(`http://127.0.0.1:${port}/api/auth/me`, {
      headers: { 'User-Agent': marker, Cookie: `other=${marker}` },
    });

    expect(res.status).toBe(401);
    const requestId = res.headers.get('x-request-id')!;
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    await dev.waitForOutput(new RegExp(`GET /api/auth/me.*${requestId}`), 10_000);
    // Lines the request may still produce after its access line have time to arrive.
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Colour codes, should pino-pretty ever detect a terminal, are not part of the format.
    const lines = stripVTControlCharacters(dev.output()).split('\n');
    const accessLines = lines.filter((l) => l.includes('/api/auth/me'));
    expect(accessLines).toHaveLength(1);
    expect(accessLines[0]).toMatch(
      new RegExp(
        `^\\[\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z\\] INFO: GET /api/auth/me 401 \\d+ms ${requestId}$`,
      ),
    );
    // Neither the request's headers nor the response's reach the terminal, on this line or any other.
    const output = dev.output();
    for (const absent of [
      marker,
      'content-security-policy',
      'x-request-id',
      '"headers"',
      'request completed',
    ])
      expect(output).not.toContain(absent);
  });
});
