import {
  createBrowser,
  csrfTokenIn,
  expectNoInlineCode,
  hiddenField,
  type Browser,
} from '../support/browser';
import { createUser, uniqueEmail } from '../support/factories';
import { eventOf, eventsOf, waitForEventOf } from '../support/log-lines';
import {
  askForReset,
  expectAccepted,
  linkIn,
  loginStatus,
  mailingThrough,
  mailsTo,
  nthMailTo,
  RESET_SUBJECT,
  tokenIn,
  tokenOf,
  useSmtpServer,
} from '../support/password-reset';
import { strongPassword } from '../support/rate-limit';
import { useTestApp } from '../support/use-test-app';

/**
 * The HTML side of password reset: the pages a mailed link leads to, driven through HTTP with a
 * cookie jar, against real Postgres, Redis and an SMTP server on loopback. The API's own behaviour is
 * in test/auth/password-reset*.test.ts; what only a browser shows is in test/e2e/browser-reset.test.ts.
 */

const SENT = 'If an account uses this address, a link to reset its password is on its way.';

/** Opens /forgot-password and posts `email` through its form. */
async function askThroughForm(browser: Browser, email: string) {
  const page = await browser.get('/forgot-password');
  return browser.postForm('/forgot-password', { _csrf: csrfTokenIn(page.text), email });
}

/** Opens /reset-password and posts the form, as the page's script would fill it with `token`. */
async function resetThroughForm(
  browser: Browser,
  fields: { token: string; newPassword: string; confirmPassword?: string },
) {
  const page = await browser.get('/reset-password');
  return browser.postForm('/reset-password', {
    _csrf: csrfTokenIn(page.text),
    token: fields.token,
    newPassword: fields.newPassword,
    confirmPassword: fields.confirmPassword ?? fields.newPassword,
  });
}

describe('password reset pages, mail on', () => {
  const smtp = useSmtpServer();
  const t = useTestApp(mailingThrough(smtp));

  /** Asks through the form for `email` and returns the token of the mail it received. */
  async function mailedToken(email: string): Promise<string> {
    expect((await askThroughForm(createBrowser(t.app), email)).status).toBe(200);
    return tokenIn(await nthMailTo(smtp.server, email, RESET_SUBJECT));
  }

  test('when the login page is opened, then it links to /forgot-password', async () => {
    const res = await createBrowser(t.app).get('/login');

    expect(res.text).toContain('<a href="/forgot-password">Forgot your password?</a>');
  });

  test('when /forgot-password is opened, then a form with a CSRF token and no inline code, never cached', async () => {
    const res = await createBrowser(t.app).get('/forgot-password');

    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.text).toContain('<form method="post" action="/forgot-password"');
    expect(csrfTokenIn(res.text)).toMatch(/^[0-9a-f]{64}\.[0-9a-f]{64}$/);
    expectNoInlineCode(res.text);
  });

  test('when a known and an unknown address are posted, then both get the same page, and only the known one a mail whose link carries the token in the fragment of PUBLIC_URL', async () => {
    const { email } = await createUser(t);
    const unknown = uniqueEmail('nobody');

    const known = await askThroughForm(createBrowser(t.app), email);
    const other = await askThroughForm(createBrowser(t.app), unknown);

    expect({ status: other.status, text: other.text }).toEqual({ status: known.status, text: known.text });
    expect(known.status).toBe(200);
    expect(known.text).toContain(SENT);
    const link = linkIn(await nthMailTo(smtp.server, email, RESET_SUBJECT));
    expect(`${link.origin}${link.pathname}${link.search}`).toBe(`${t.config.publicOrigin}/reset-password`);
    expect(tokenOf(link)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await waitForEventOf(t, other, 'password_reset.requested');
    expect(mailsTo(smtp.server, unknown, RESET_SUBJECT)).toEqual([]);
  });

  test('when /forgot-password is posted without a CSRF token, then 403 and no reset is asked for', async () => {
    const { email } = await createUser(t);
    const browser = createBrowser(t.app);
    await browser.get('/forgot-password');

    const res = await browser.postForm('/forgot-password', { email });

    expect(res.status).toBe(403);
    expect(res.text).toContain('This form has expired');
    expect(eventsOf(t, res, 'password_reset.requested')).toEqual([]);
    expect(mailsTo(smtp.server, email, RESET_SUBJECT)).toEqual([]);
  });

  // ASVS 5.0 1.2.1: the value is escaped in its attribute.
  test('when the address is not one, then 400 with the form again and the value escaped', async () => {
    const res = await askThroughForm(createBrowser(t.app), '<b>not an address');

    expect(res.status).toBe(400);
    expect(res.text).toContain('Enter a valid email address.');
    expect(res.text).toContain('value="&lt;b&gt;not an address"');
  });

  test('when /reset-password is opened, then a form with an empty hidden token and only our own script', async () => {
    const res = await createBrowser(t.app).get('/reset-password');

    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(hiddenField(res.text, 'token')).toBe('');
    expect(res.text).toContain('<script src="/static/link-token.js" defer></script>');
    expectNoInlineCode(res.text);
    const script = await createBrowser(t.app).get('/static/link-token.js');
    expect(script.status).toBe(200);
    expect(script.headers['content-type']).toMatch(/^(text|application)\/javascript/);
    expect(script.text).toContain('history.replaceState');
  });

  test('when the mailed token and a new password are posted, then the password changed page, and only the new password signs in', async () => {
    const user = await createUser(t);
    const token = await mailedToken(user.email);
    const newPassword = strongPassword();

    const res = await resetThroughForm(createBrowser(t.app), { token, newPassword });

    expect(res.status).toBe(200);
    expect(res.text).toContain('every session of your account has ended');
    expect(res.text).toContain('<a href="/login">');
    expect(eventOf(t, res, 'password_reset.completed')).toMatchObject({ targetUserId: user.user.id });
    expect(await loginStatus(t, user.email, newPassword)).toBe(200);
    expect(await loginStatus(t, user.email, user.password)).toBe(401);
  });

  test('when /reset-password is posted without a CSRF token, then 403 and the password is unchanged', async () => {
    const user = await createUser(t);
    const token = await mailedToken(user.email);
    const browser = createBrowser(t.app);
    await browser.get('/reset-password');
    const newPassword = strongPassword();

    const res = await browser.postForm('/reset-password', {
      token,
      newPassword,
      confirmPassword: newPassword,
    });

    expect(res.status).toBe(403);
    expect(await loginStatus(t, user.email, user.password)).toBe(200);
  });

  test('when the token is invalid, then 400 with the form again and a clear message, never a 500', async () => {
    const res = await resetThroughForm(createBrowser(t.app), {
      token: 'x'.repeat(43),
      newPassword: strongPassword(),
    });

    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('The link is invalid, expired or already used. Ask for a new one.');
    expect(res.text).toContain('<a href="/forgot-password">');
    expect(hiddenField(res.text, 'token')).toBe('');
    expect(eventOf(t, res, 'account_token.refused')).toMatchObject({ reason: expect.any(String) });
  });

  test('when the token was already used, then 400 and the first password stays', async () => {
    const user = await createUser(t);
    const token = await mailedToken(user.email);
    const first = strongPassword();
    expect((await resetThroughForm(createBrowser(t.app), { token, newPassword: first })).status).toBe(200);

    const res = await resetThroughForm(createBrowser(t.app), { token, newPassword: strongPassword() });

    expect(res.status).toBe(400);
    expect(res.text).toContain('already used');
    expect(await loginStatus(t, user.email, first)).toBe(200);
  });

  test.each([
    [
      'the two passwords differ',
      (p: string) => ({ newPassword: p, confirmPassword: `${p}!` }),
      'The two passwords differ.',
    ],
    ['the password is too short', () => ({ newPassword: 'short' }), 'The password must be at least'],
  ])(
    'when %s, then 400 with the message, the token kept in the form, and the link still works',
    async (_case, fields, message) => {
      const user = await createUser(t);
      const token = await mailedToken(user.email);
      const newPassword = strongPassword();

      const res = await resetThroughForm(createBrowser(t.app), { token, ...fields(newPassword) });

      expect(res.status).toBe(400);
      expect(res.text).toContain(message);
      expect(hiddenField(res.text, 'token')).toBe(token);
      expect(res.text).not.toContain(newPassword);
      const retried = await resetThroughForm(createBrowser(t.app), { token, newPassword });
      expect(retried.status).toBe(200);
    },
  );
});

describe('password reset pages, one budget per client with the API', () => {
  const smtp = useSmtpServer();
  const t = useTestApp(mailingThrough(smtp, { PASSWORD_RESET_MAX_PER_IP_PER_HOUR: '1' }));

  test("when the API has spent this client's reset budget, then the form answers with the 429 page and no mail is asked for", async () => {
    expectAccepted(await askForReset(t, uniqueEmail('api')));
    const { email } = await createUser(t);

    const res = await askThroughForm(createBrowser(t.app), email);

    expect(res.status).toBe(429);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('Too many attempts');
    expect(eventsOf(t, res, 'password_reset.requested')).toEqual([]);
  });
});

describe('password reset pages, mail off', () => {
  const t = useTestApp();

  test.each([
    ['GET', '/forgot-password'],
    ['GET', '/reset-password'],
    ['POST', '/forgot-password'],
    ['POST', '/reset-password'],
  ])(
    'when %s %s is requested, then the 404 page, as for a page that does not exist',
    async (method, path) => {
      const browser = createBrowser(t.app);

      const res =
        method === 'GET' ? await browser.get(path) : await browser.postForm(path, { email: uniqueEmail() });

      expect(res.status).toBe(404);
      expect(res.text).toContain('Page not found');
    },
  );

  test('when the login page is opened, then it does not offer a reset', async () => {
    const res = await createBrowser(t.app).get('/login');

    expect(res.status).toBe(200);
    expect(res.text).not.toContain('/forgot-password');
  });
});
