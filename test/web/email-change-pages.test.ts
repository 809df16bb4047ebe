import {
  createBrowser,
  csrfTokenIn,
  expectNoInlineCode,
  hiddenField,
  type Browser,
} from '../support/browser';
import {
  askForEmailChange,
  CONFIRM_PAGE,
  CONFIRM_SUBJECT,
  confirmEmailChange,
  confirmTokenIn,
  liveTokenPurposes,
} from '../support/email-change';
import { createUser, signedIn, uniqueEmail } from '../support/factories';
import { eventOf, eventsOf } from '../support/log-lines';
import { mailingThrough, nthMailTo, useSmtpServer } from '../support/password-reset';
import { userRow } from '../support/users';
import { useTestApp } from '../support/use-test-app';

/**
 * The page a mailed email change link opens, driven through HTTP with a cookie jar, against real
 * Postgres, Redis and an SMTP server on loopback. The API's behaviour is in
 * test/users/email-change.test.ts; what only a browser shows is in test/e2e/browser-email-change.test.ts.
 */

const INVALID = 'The link is invalid, expired or already used. Ask for a new one.';

/** Opens /confirm-email and posts its form, as the page's script would fill it with `token`. */
async function confirmThroughForm(browser: Browser, token: string) {
  const page = await browser.get(CONFIRM_PAGE);
  return browser.postForm(CONFIRM_PAGE, { _csrf: csrfTokenIn(page.text), token });
}

describe('email change page, mail on', () => {
  const smtp = useSmtpServer();
  const t = useTestApp(mailingThrough(smtp));

  /** A signed-in user who asked to move to a new address, with the token mailed there. */
  async function pendingChange() {
    const user = await signedIn(t);
    const newEmail = uniqueEmail('moved');
    expect((await askForEmailChange(t, user, newEmail)).status).toBe(202);
    const token = confirmTokenIn(await nthMailTo(smtp.server, newEmail, CONFIRM_SUBJECT));
    return { user, newEmail, token };
  }

  test('when /confirm-email is opened, then a form with a CSRF token, an empty hidden token, a button and only our own script, never cached', async () => {
    const res = await createBrowser(t.app).get(CONFIRM_PAGE);

    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.text).toContain(`<form method="post" action="${CONFIRM_PAGE}"`);
    expect(csrfTokenIn(res.text)).toMatch(/^[0-9a-f]{64}\.[0-9a-f]{64}$/);
    expect(hiddenField(res.text, 'token')).toBe('');
    expect(res.text).toContain('<button type="submit">Confirm the new address</button>');
    expect(res.text).toContain('<script src="/static/link-token.js" defer></script>');
    expectNoInlineCode(res.text);
  });

  test('when the link is opened (as a mail scanner would, token and all), then nothing changes until the form is posted', async () => {
    const { user, token } = await pendingChange();
    const browser = createBrowser(t.app);

    expect((await browser.get(CONFIRM_PAGE)).status).toBe(200);
    expect((await browser.get(`${CONFIRM_PAGE}?token=${token}`)).status).toBe(200);

    expect((await userRow(t, user.user.id))!.email).toBe(user.email);
    expect(await liveTokenPurposes(t, user.user.id)).toEqual(['change_email']);
  });

  test('when the mailed token is posted, then a page names the new address, and the account has moved', async () => {
    const { user, newEmail, token } = await pendingChange();

    const res = await confirmThroughForm(createBrowser(t.app), token);

    expect(res.status).toBe(200);
    expect(res.text).toContain(`Your address is now <strong>${newEmail}</strong>`);
    expect((await userRow(t, user.user.id))!.email).toBe(newEmail);
    expect(eventOf(t, res, 'email_change.completed')).toMatchObject({ targetUserId: user.user.id });
  });

  test('when the form is posted without a CSRF token, then 403 and the address is unchanged', async () => {
    const { user, token } = await pendingChange();
    const browser = createBrowser(t.app);
    await browser.get(CONFIRM_PAGE);

    const res = await browser.postForm(CONFIRM_PAGE, { token });

    expect(res.status).toBe(403);
    expect(res.text).toContain('This form has expired');
    expect((await userRow(t, user.user.id))!.email).toBe(user.email);
  });

  test.each([
    ['a token that was never issued', 'x'.repeat(43)],
    ['a token of another shape', 'not-a-token'],
  ])(
    'when %s is posted, then 400 with the form again and a clear message, never a 500',
    async (_l, token) => {
      const res = await confirmThroughForm(createBrowser(t.app), token);

      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.text).toContain(INVALID);
      expect(res.text).toContain('<button type="submit">Confirm the new address</button>');
      expect(hiddenField(res.text, 'token')).toBe('');
      expect(eventOf(t, res, 'account_token.refused')).toMatchObject({ purpose: 'change_email' });
    },
  );

  test.each([
    ['without a token field', {}],
    ['with an empty token, as without JavaScript', { token: '' }],
  ])(
    'when the form comes %s, then 400 with the form again saying the link did not arrive',
    async (_l, fields) => {
      const browser = createBrowser(t.app);
      const page = await browser.get(CONFIRM_PAGE);

      const res = await browser.postForm(CONFIRM_PAGE, { _csrf: csrfTokenIn(page.text), ...fields });

      expect(res.status).toBe(400);
      expect(res.text).toContain('The link from your mail did not reach this page.');
      expect(res.text).toContain('<button type="submit">Confirm the new address</button>');
    },
  );

  test('when the token was already used, then 400 with the message and the address stays the first one', async () => {
    const { user, newEmail, token } = await pendingChange();
    expect((await confirmThroughForm(createBrowser(t.app), token)).status).toBe(200);

    const res = await confirmThroughForm(createBrowser(t.app), token);

    expect(res.status).toBe(400);
    expect(res.text).toContain('already used');
    expect((await userRow(t, user.user.id))!.email).toBe(newEmail);
  });

  test('when another account took the address meanwhile, then 400 with a message that says so, and nothing changes', async () => {
    const { user, newEmail, token } = await pendingChange();
    await createUser(t, { email: newEmail });

    const res = await confirmThroughForm(createBrowser(t.app), token);

    expect(res.status).toBe(400);
    expect(res.text).toContain('Another account uses this address now');
    expect((await userRow(t, user.user.id))!.email).toBe(user.email);
    expect(eventsOf(t, res, 'email_change.completed')).toEqual([]);
  });
});

describe('email change page, one budget per client with the API', () => {
  const smtp = useSmtpServer();
  const t = useTestApp(mailingThrough(smtp, { PASSWORD_RESET_MAX_PER_IP_PER_HOUR: '1' }));

  test("when the API has spent this client's budget, then the form answers with the 429 page and nothing changes; a post without its CSRF token spent none of it", async () => {
    const browser = createBrowser(t.app);
    await browser.get(CONFIRM_PAGE);
    expect((await browser.postForm(CONFIRM_PAGE, { token: 'x'.repeat(43) })).status).toBe(403);
    expect((await confirmEmailChange(t, 'x'.repeat(43))).status).toBe(400);

    const res = await confirmThroughForm(createBrowser(t.app), 'x'.repeat(43));

    expect(res.status).toBe(429);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toContain('Too many attempts');
    expect(eventsOf(t, res, 'account_token.refused')).toEqual([]);
  });
});

describe('email change page, mail off', () => {
  const t = useTestApp();

  test.each(['GET', 'POST'])('when %s /confirm-email is requested, then the 404 page', async (method) => {
    const browser = createBrowser(t.app);

    const res =
      method === 'GET'
        ? await browser.get(CONFIRM_PAGE)
        : await browser.postForm(CONFIRM_PAGE, { token: 'x' });

    expect(res.status).toBe(404);
    expect(res.text).toContain('Page not found');
  });
});
