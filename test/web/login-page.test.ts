import {
  createBrowser,
  csrfTokenIn,
  expectNoInlineCode,
  hiddenField,
  signInThroughForm,
} from '../support/browser';
import { createUser } from '../support/factories';
import { parseSetCookie, setCookies } from '../support/sessions';
import { useTestApp } from '../support/use-test-app';

describe('GET /login', () => {
  const t = useTestApp();

  // ASVS 5.0 6.2.6: the password field is type=password.
  test('when an anonymous visitor opens it, then an HTML form with a CSRF token and hidden next, never cached', async () => {
    const browser = createBrowser(t.app);

    const res = await browser.get('/login?next=%2Fusers%3Fx%3D1');

    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html; charset=utf-8/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.text).toContain('<form method="post" action="/login"');
    expect(csrfTokenIn(res.text)).toMatch(/^[0-9a-f]{64}\.[0-9a-f]{64}$/);
    expect(hiddenField(res.text, 'next')).toBe('/users?x=1');
    expect(res.text).toMatch(/<input id="password" name="password" type="password"/);
  });

  // ASVS 5.0 6.2.6, 6.2.7: a masked field that password managers fill and nothing stops a paste into.
  test('when the form is rendered, then password managers can fill it and nothing blocks pasting', async () => {
    const res = await createBrowser(t.app).get('/login');

    expect(res.text).toMatch(/<input id="email" [^>]*autocomplete="username"/);
    expect(res.text).toMatch(
      /<input id="password" [^>]*type="password" [^>]*autocomplete="current-password"/,
    );
    expect(res.text).not.toMatch(/onpaste|oncopy|autocomplete="off"/i);
  });

  test('when no next is given, then the hidden next is /', async () => {
    const res = await createBrowser(t.app).get('/login');
    expect(hiddenField(res.text, 'next')).toBe('/');
  });

  test.each([
    ['//evil.test', '%2F%2Fevil.test'],
    ['https://evil.test', 'https%3A%2F%2Fevil.test'],
    ['"><script>alert(1)</script>', '%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E'],
    ['a repeated next', '%2Fok&next=%2F%2Fevil.test'],
  ])(
    'when next is hostile (%s), then the form carries / instead and nothing of it is echoed',
    async (_label, query) => {
      const res = await createBrowser(t.app).get(`/login?next=${query}`);

      expect(res.status).toBe(200);
      expect(hiddenField(res.text, 'next')).toBe('/');
      expect(res.text).not.toMatch(/evil\.test|<script/);
    },
  );

  test('when an anonymous visitor has no identity yet, then one is set: random, HttpOnly, SameSite=Lax, Path=/', async () => {
    const res = await createBrowser(t.app).get('/login');

    const cookies = setCookies(res).map(parseSetCookie);
    const identity = cookies.find((c) => c.name === 'pre');
    expect(identity?.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(identity?.attributes.has('httponly')).toBe(true);
    expect(identity?.attributes.get('samesite')).toBe('Lax');
    expect(identity?.attributes.get('path')).toBe('/');
    // The token's cookie half, as HttpOnly: the form, not script, carries the token to the server.
    const token = cookies.find((c) => c.name === 'csrf');
    expect(token?.attributes.has('httponly')).toBe(true);
    // No session is created for an anonymous page view: Redis holds nothing for it.
    expect(cookies.find((c) => c.name === 'sid')).toBeUndefined();
  });

  test('when the visitor already has an identity, then it is kept and the same token is reused', async () => {
    const browser = createBrowser(t.app);
    const first = await browser.get('/login');
    const identity = browser.cookie('pre');

    const second = await browser.get('/login');

    expect(browser.cookie('pre')).toBe(identity);
    expect(setCookies(second).some((line) => line.startsWith('pre='))).toBe(false);
    expect(csrfTokenIn(second.text)).toBe(csrfTokenIn(first.text));
  });

  test('when two visitors open it, then each gets a different identity and token', async () => {
    const a = await createBrowser(t.app).get('/login');
    const b = await createBrowser(t.app).get('/login');
    expect(csrfTokenIn(a.text)).not.toBe(csrfTokenIn(b.text));
  });

  // ASVS 5.0 3.4.3, 3.7.1, 14.2.3: our own script and stylesheet only: no plugin, no third party.
  test('when the page is rendered, then it needs nothing beyond the strict CSP: no inline code, our stylesheet', async () => {
    const res = await createBrowser(t.app).get('/login');

    expectNoInlineCode(res.text);
    expect(res.text).toContain('<link rel="stylesheet" href="/static/app.css">');
    const csp = res.headers['content-security-policy'];
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
  });

  test('when the visitor is already signed in, then 303 to the (safe) next page', async () => {
    const { email, password } = await createUser(t);
    const browser = createBrowser(t.app);
    await signInThroughForm(browser, { email, password });

    expect((await browser.get('/login?next=%2Fusers')).headers.location).toBe('/users');
    const hostile = await browser.get('/login?next=%2F%2Fevil.test');
    expect(hostile.status).toBe(303);
    expect(hostile.headers.location).toBe('/');
  });
});

// ASVS 5.0 3.3.1, 3.3.2, 3.3.3, 3.3.4, 14.3.3: the form's cookies: __Host-, Secure, HttpOnly, SameSite; nothing but cookies in the browser.
describe('GET /login in production', () => {
  const t = useTestApp({
    NODE_ENV: 'production',
    TRUST_PROXY: '1',
    PUBLIC_URL: 'https://app.example.test',
    SESSION_SECRET: 'production-secret-0123456789-abcdefghijklmnop',
  });

  test('when the page is served, then the identity and token cookies are __Host- prefixed and Secure', async () => {
    const res = await createBrowser(t.app).get('/login');

    const cookies = setCookies(res).map(parseSetCookie);
    expect(cookies.map((c) => c.name).sort()).toEqual(['__Host-csrf', '__Host-pre']);
    for (const cookie of cookies) {
      // What the __Host- prefix demands, or the browser drops the cookie: Secure, Path=/, no Domain.
      expect(cookie.attributes.has('secure')).toBe(true);
      expect(cookie.attributes.get('path')).toBe('/');
      expect(cookie.attributes.has('domain')).toBe(false);
      expect(cookie.attributes.has('httponly')).toBe(true);
    }
  });
});
