import request, { type Response } from 'supertest';
import { createBrowser, csrfTokenIn, signInThroughForm, type Browser } from '../support/browser';
import { createUser } from '../support/factories';
import { TEST_SESSION_SECRET, type TestApp } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';

/** The refusal every forged or stale form post gets: our 403 page, code csrf_invalid, no session. */
function expectCsrfRefused(res: Response, browser?: Browser): void {
  expect(res.status).toBe(403);
  expect(res.headers['content-type']).toMatch(/^text\/html/);
  expect(res.text).toContain('This form has expired');
  expect(res.text).toContain(res.headers['x-request-id']);
  if (browser) expect(browser.cookie('sid')).toBeUndefined();
}

// ASVS 5.0 3.5.1: anti-forgery tokens on every form.
describe('CSRF protection of the HTML forms', () => {
  const t = useTestApp();
  let creds: { email: string; password: string };
  beforeAll(async () => {
    const { email, password } = await createUser(t);
    creds = { email, password };
  });

  test('when POST /login has no token, then 403 csrf_invalid as an HTML page, logged', async () => {
    const browser = createBrowser(t.app);
    await browser.get('/login');

    const res = await browser.postForm('/login', { next: '/', ...creds });

    expectCsrfRefused(res, browser);
    expect(
      t.logs.some((l) => l.event === 'csrf.rejected' && l.requestId === res.headers['x-request-id']),
    ).toBe(true);
  });

  test('when the token is wrong, then 403', async () => {
    const browser = createBrowser(t.app);
    const page = await browser.get('/login');
    const token = csrfTokenIn(page.text);
    const tampered = `${token.slice(0, -1)}${token.endsWith('0') ? '1' : '0'}`;

    expectCsrfRefused(await browser.postForm('/login', { _csrf: tampered, ...creds }), browser);
  });

  test('when the token was issued to another visitor, then 403 even with that visitor’s token cookie', async () => {
    const attacker = createBrowser(t.app);
    const attackerPage = await attacker.get('/login');
    const victim = createBrowser(t.app);
    await victim.get('/login');

    // The attacker's token alone, then the attacker's whole token pair planted next to the victim's
    // identity: the HMAC ties the token to the identity, so neither passes.
    const tokenOnly = await victim.postForm('/login', { _csrf: csrfTokenIn(attackerPage.text), ...creds });
    victim.setCookie('csrf', attacker.cookie('csrf'));
    const pair = await victim.postForm('/login', { _csrf: csrfTokenIn(attackerPage.text), ...creds });

    expectCsrfRefused(tokenOnly, victim);
    expectCsrfRefused(pair, victim);
  });

  test('when the token cookie is missing, then 403', async () => {
    const browser = createBrowser(t.app);
    const page = await browser.get('/login');
    browser.setCookie('csrf', undefined);

    expectCsrfRefused(await browser.postForm('/login', { _csrf: csrfTokenIn(page.text), ...creds }), browser);
  });

  test('when the identity cookie is missing, then 403', async () => {
    const browser = createBrowser(t.app);
    const page = await browser.get('/login');
    browser.setCookie('pre', undefined);

    expectCsrfRefused(await browser.postForm('/login', { _csrf: csrfTokenIn(page.text), ...creds }), browser);
  });

  test('when a cross-site page posts without cookies at all, then 403', async () => {
    const page = await createBrowser(t.app).get('/login');

    const res = await request(t.app)
      .post('/login')
      .type('form')
      .send({ _csrf: csrfTokenIn(page.text), ...creds });

    expectCsrfRefused(res);
  });

  test('when a user signs in, then the home page renders a fresh token and the pre-login one is dead', async () => {
    const browser = createBrowser(t.app);
    const loginPage = await browser.get('/login');
    const preLoginToken = csrfTokenIn(loginPage.text);
    await browser.postForm('/login', { _csrf: preLoginToken, next: '/', ...creds });

    const home = await browser.get('/');
    const token = csrfTokenIn(home.text);
    const withOldToken = await browser.postForm('/logout', { _csrf: preLoginToken });

    expect(token).not.toBe(preLoginToken);
    expect(withOldToken.status).toBe(403);
    expect((await browser.get('/')).status).toBe(200); // still signed in
  });

  test('when a signed-in user posts /logout without a token, then 403 and the session lives on', async () => {
    const browser = createBrowser(t.app);
    await signInThroughForm(browser, creds);

    const res = await browser.postForm('/logout', {});

    expect(res.status).toBe(403);
    const me = await request(t.app)
      .get('/api/auth/me')
      .set('Cookie', `sid=${browser.cookie('sid')}`);
    expect(me.status).toBe(200);
  });

  // ASVS 5.0 3.5.3: no GET changes state.
  test('when a GET carries form fields, then nothing changes: no login, no session', async () => {
    const browser = createBrowser(t.app);
    const page = await browser.get('/login');

    const res = await browser.get(
      `/login?_csrf=${csrfTokenIn(page.text)}&email=${encodeURIComponent(creds.email)}&password=${encodeURIComponent(creds.password)}`,
    );

    expect(res.status).toBe(200);
    expect(browser.cookie('sid')).toBeUndefined();
  });
});

describe('CSRF secrets follow SESSION_SECRET', () => {
  const OLD = TEST_SESSION_SECRET;
  const NEW = 'rotated-session-secret-0123456789abcdefghijkl';
  const before = useTestApp({ SESSION_SECRET: OLD });
  const rotated = useTestApp({ SESSION_SECRET: `${NEW},${OLD}` });
  const replaced = useTestApp({ SESSION_SECRET: NEW });

  /** A login form opened on `issuer` and posted to `receiver` (another instance, after a deploy). */
  async function postAcross(issuer: TestApp, receiver: TestApp): Promise<Response> {
    const { email, password } = await createUser(receiver);
    const page = await createBrowser(issuer.app).get('/login');
    const cookies = page.headers['set-cookie'] as unknown as string[];
    return request(receiver.app)
      .post('/login')
      .set('Cookie', cookies.map((c) => c.split(';')[0]).join('; '))
      .type('form')
      .send({ _csrf: csrfTokenIn(page.text), next: '/', email, password });
  }

  test('when SESSION_SECRET is rotated (new first, old kept), then forms issued before still post', async () => {
    expect((await postAcross(before, rotated)).status).toBe(303);
  });

  test('when the old secret is dropped, then its forms are refused', async () => {
    expect((await postAcross(before, replaced)).status).toBe(403);
  });
});
