import request from 'supertest';
import {
  createBrowser,
  csrfTokenIn,
  expectNoInlineCode,
  hiddenField,
  signInThroughForm,
} from '../support/browser';
import { createUser, uniqueEmail } from '../support/factories';
import { createHeldHasher, until } from '../support/held-hasher';
import { eventsOf } from '../support/log-lines';
import { useTestApp } from '../support/use-test-app';

describe('POST /login (the HTML form)', () => {
  const t = useTestApp();

  test('when the token and credentials are right, then 303 to next with a session the API accepts', async () => {
    const { user, email, password } = await createUser(t);
    const browser = createBrowser(t.app);

    const res = await signInThroughForm(browser, { email, password }, '/users?x=1');

    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/users?x=1');
    const me = await request(t.app)
      .get('/api/auth/me')
      .set('Cookie', `sid=${browser.cookie('sid')}`);
    expect(me.status).toBe(200);
    expect(me.body.id).toBe(user.id);
    expect(t.logs.some((l) => l.event === 'auth.login_succeeded' && l.userId === user.id)).toBe(true);
  });

  test.each([
    '//evil.test',
    '/\\evil.test',
    'https://evil.test',
    'javascript:alert(1)',
    '/%2F/evil.test',
    '/%09/evil.test',
    '／／evil.test',
  ])('when the posted next is hostile (%p), then 303 to / instead', async (next) => {
    const { email, password } = await createUser(t);
    const browser = createBrowser(t.app);
    const page = await browser.get('/login');

    // Posted directly: the hidden field is as much in the attacker's hands as the query string.
    const res = await browser.postForm('/login', { _csrf: csrfTokenIn(page.text), next, email, password });

    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/');
  });

  test('when next is posted twice (an array), then 303 to /', async () => {
    const { email, password } = await createUser(t);
    const browser = createBrowser(t.app);
    const page = await browser.get('/login');

    const res = await browser.postForm('/login', {
      _csrf: csrfTokenIn(page.text),
      next: ['/users', '//evil.test'],
      email,
      password,
    });

    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/');
  });

  test('when the password is wrong, then 401 with the form again: generic message, email kept, password never echoed', async () => {
    const { user, email } = await createUser(t);
    const browser = createBrowser(t.app);
    const wrongPassword = 'not-the-password <b>zq81</b>';

    const res = await signInThroughForm(browser, { email, password: wrongPassword }, '/users');

    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('The email or password is incorrect.');
    expect(res.text).toContain(`value="${email}"`);
    expect(res.text).not.toContain('zq81');
    expect(hiddenField(res.text, 'next')).toBe('/users');
    expect(browser.cookie('sid')).toBeUndefined();
    expectNoInlineCode(res.text);
    expect(t.logs.some((l) => l.event === 'auth.login_failed' && l.targetUserId === user.id)).toBe(true);
  });

  test('when the email is unknown, then exactly the same 401 page as for a wrong password', async () => {
    const { email } = await createUser(t);
    const unknown = uniqueEmail('nobody');
    const wrong = await signInThroughForm(createBrowser(t.app), { email, password: 'wrong password 1' });
    const missing = await signInThroughForm(createBrowser(t.app), {
      email: unknown,
      password: 'wrong password 1',
    });

    const page = (html: string, address: string) =>
      html.replace(address, 'EMAIL').replace(/name="_csrf" value="[^"]*"/, '');
    expect(missing.status).toBe(401);
    expect(page(missing.text, unknown)).toBe(page(wrong.text, email));
  });

  test('when the form can be retried after a failure, then its re-rendered token works', async () => {
    const { email, password } = await createUser(t);
    const browser = createBrowser(t.app);
    const failed = await signInThroughForm(browser, { email, password: 'wrong password 2' });

    const res = await browser.postForm('/login', {
      _csrf: csrfTokenIn(failed.text),
      next: '/',
      email,
      password,
    });

    expect(res.status).toBe(303);
  });

  test('when a field is missing, then 400 with the form again and no login attempt', async () => {
    const browser = createBrowser(t.app);
    const page = await browser.get('/login');

    const res = await browser.postForm('/login', { _csrf: csrfTokenIn(page.text), next: '/', email: '' });

    expect(res.status).toBe(400);
    expect(res.text).toContain('Enter your email address and password.');
    expect(csrfTokenIn(res.text)).toBeTruthy();
  });

  test('when the body is JSON, then 415 as an HTML page', async () => {
    const browser = createBrowser(t.app);
    await browser.get('/login');

    const res = await request(t.app)
      .post('/login')
      .set('Cookie', browser.cookieHeader())
      .send({ email: 'a@example.test', password: 'whatever it is' });

    expect(res.status).toBe(415);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('Unsupported form');
    expect(res.text).toContain(res.headers['x-request-id']);
  });

  test('when the form is larger than a login form can be, then it is refused before any work', async () => {
    const browser = createBrowser(t.app);
    const page = await browser.get('/login');

    const res = await browser.postForm('/login', {
      _csrf: csrfTokenIn(page.text),
      email: 'a@example.test',
      password: 'x'.repeat(10_000),
    });

    expect(res.status).toBe(413);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
  });
});

describe('POST /login (the HTML form) under the login limiter', () => {
  const t = useTestApp({ LOGIN_MAX_CONSECUTIVE_FAILS: '2' });

  test('when the account is locked after failures, then a 429 HTML page says to try later, with Retry-After', async () => {
    const { email, password } = await createUser(t);
    const browser = createBrowser(t.app);
    for (let i = 0; i < 2; i++) {
      expect((await signInThroughForm(browser, { email, password: `wrong password ${i}` })).status).toBe(401);
    }

    const res = await signInThroughForm(browser, { email, password });

    expect(res.status).toBe(429);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(res.text).toContain('Try again later.');
    expect(browser.cookie('sid')).toBeUndefined();
  });
  test('when a form failure engages the lock, then the form logs auth.login_failed and auth.locked once each, as the API does', async () => {
    const { user, email } = await createUser(t);
    const browser = createBrowser(t.app);
    await signInThroughForm(browser, { email, password: 'wrong password a' });

    const engaging = await signInThroughForm(browser, { email, password: 'wrong password b' });

    expect(engaging.status).toBe(401);
    expect(eventsOf(t, engaging, 'auth.login_failed')).toEqual([
      expect.objectContaining({ level: 'warn', targetUserId: user.id, method: 'POST', path: '/login' }),
    ]);
    expect(eventsOf(t, engaging, 'auth.locked')).toEqual([
      expect.objectContaining({ level: 'warn', targetUserId: user.id, reason: 'consecutive_failures' }),
    ]);
  });
});

describe('POST /login (the HTML form) while password hashing is at capacity', () => {
  // One hashing slot and no line: a login held at the gate (test/support/held-hasher.ts) fills it.
  const held = createHeldHasher();
  const t = useTestApp(
    { HASH_CONCURRENCY: '1', HASH_QUEUE_MAX: '0', HASH_QUEUE_WAIT_MS: '60000' },
    { passwords: held.hasher },
  );
  afterEach(() => held.release());

  test('when every hashing place is taken, then the form answers a 503 HTML page with Retry-After, signs nobody in and records no failure', async () => {
    const { email, password } = await createUser(t);
    const browser = createBrowser(t.app);
    held.hold();
    const occupying = request(t.app)
      .post('/api/auth/login')
      .send({ email, password: 'wrong password z' })
      .then((res) => res);
    await until(() => held.calls.length === 1, 'the only hashing slot is taken');

    const res = await signInThroughForm(browser, { email, password });
    held.release();

    expect(res.status).toBe(503);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.text).toContain('Too busy right now');
    expect(browser.cookie('sid')).toBeUndefined();
    expect(eventsOf(t, res, 'auth.login_failed')).toEqual([]);
    expect(eventsOf(t, res, 'hash.busy')).toEqual([
      expect.objectContaining({ level: 'warn', reason: 'queue_full', method: 'POST', path: '/login' }),
    ]);
    expect((await occupying).status).toBe(401);
    expect(held.calls).toEqual(['verify']);
  });
});
