import request from 'supertest';
import {
  createBrowser,
  csrfTokenIn,
  expectNoInlineCode,
  hiddenField,
  signInThroughForm,
  type Browser,
} from '../support/browser';
import { liveTokenPurposes } from '../support/email-change';
import { resendVerification, VERIFY_SUBJECT, verifyTokenMailedTo } from '../support/email-verification';
import { createUser, login, me, signedIn, type TestUser } from '../support/factories';
import { eventOf } from '../support/log-lines';
import { mailingThrough, mailsTo, useSmtpServer } from '../support/password-reset';
import type { TestApp } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';

/**
 * The HTML side of email verification: the page a mailed link leads to and the home page's resend
 * button, driven through HTTP with a cookie jar, against real Postgres, Redis and an SMTP server on
 * loopback. What only a browser shows is in test/e2e/browser-verify-email.test.ts.
 */

/** Opens /verify-email and posts its form, as the page's script would fill it with `token`. */
async function verifyThroughForm(browser: Browser, token: string) {
  const page = await browser.get('/verify-email');
  return browser.postForm('/verify-email', { _csrf: csrfTokenIn(page.text), token });
}

const verifiedAt = async (t: TestApp, user: TestUser) =>
  (await me(t, await login(t, user))).body.emailVerifiedAt as string | null;

describe('email verification pages, mail on', () => {
  const smtp = useSmtpServer();
  const t = useTestApp(mailingThrough(smtp));

  /** A user with a live token, read from the mail a resend sent them. */
  async function mailedToken(): Promise<TestUser & { token: string }> {
    const user = await signedIn(t);
    expect((await resendVerification(t, user.cookie)).status).toBe(202);
    return { ...user, token: await verifyTokenMailedTo(smtp.server, user.email) };
  }

  // ASVS 5.0 3.5.3: opening a link changes nothing.
  test('when the link is opened, then the page shows a button and an empty token field, verifies nothing, and runs only its own script', async () => {
    const user = await mailedToken();

    // Whatever a scanner sends along, a GET changes nothing: not even a token in the query.
    const page = await createBrowser(t.app).get(`/verify-email?token=${user.token}`);

    expect(page.status).toBe(200);
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.text).toContain('Confirm my address');
    expect(hiddenField(page.text, 'token')).toBe('');
    expect(page.text).toContain('<script src="/static/link-token.js" defer></script>');
    expectNoInlineCode(page.text);
    expect(await verifiedAt(t, user)).toBeNull();
  });

  test('when the form is posted with the token, then the address is verified and the page says so', async () => {
    const user = await mailedToken();

    const done = await verifyThroughForm(createBrowser(t.app), user.token);

    expect(done.status).toBe(200);
    expect(done.text).toContain('Address confirmed');
    expect(done.text).toContain('href="/login"');
    expect(eventOf(t, done, 'email_verification.completed')).toMatchObject({ targetUserId: user.user.id });
    expect(await verifiedAt(t, user)).toEqual(expect.any(String));
  });

  test('when the form is posted without a valid CSRF token, then 403 csrf_invalid and nothing is verified', async () => {
    const user = await mailedToken();
    const browser = createBrowser(t.app);
    await browser.get('/verify-email');

    const missing = await browser.postForm('/verify-email', { token: user.token });
    const forged = await browser.postForm('/verify-email', { _csrf: 'forged', token: user.token });
    const noCookies = await request(t.app).post('/verify-email').type('form').send({ token: user.token });

    for (const res of [missing, forged, noCookies]) {
      expect(res.status).toBe(403);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
    }
    expect(eventOf(t, missing, 'csrf.rejected')).toBeDefined();
    expect(await verifiedAt(t, user)).toBeNull();
  });

  test('when a used or forged token is posted, then 400 with the form again, the message, and no token kept', async () => {
    const user = await mailedToken();
    const browser = createBrowser(t.app);
    expect((await verifyThroughForm(browser, user.token)).status).toBe(200);

    const again = await verifyThroughForm(browser, user.token);
    const forged = await verifyThroughForm(browser, 'A'.repeat(43));
    const missing = await browser.postForm('/verify-email', {
      _csrf: csrfTokenIn((await browser.get('/verify-email')).text),
    });

    // Without JavaScript the script never fills the field: the form posts it empty.
    const empty = await verifyThroughForm(browser, '');

    for (const res of [again, forged, missing, empty]) {
      expect(res.status).toBe(400);
      expect(res.text).toContain('Confirm my address');
      expect(hiddenField(res.text, 'token')).toBe('');
    }
    expect(empty.text).toContain('Open the link from your mail again.');
    expect(again.text).toContain('The link is invalid, expired or already used');
    expect(eventOf(t, again, 'account_token.refused')).toMatchObject({ reason: 'used' });
    expect(again.text).not.toContain(user.token);
  });

  test('when an unverified user presses the home page button, then a new link is mailed and the page says so', async () => {
    const { email, password } = await createUser(t);
    const browser = createBrowser(t.app);
    await signInThroughForm(browser, { email, password });
    const home = await browser.get('/');

    const sent = await browser.postForm('/verify-email/resend', { _csrf: csrfTokenIn(home.text) });

    expect(home.text).toContain('Confirm your email address');
    expect(sent.status).toBe(200);
    expect(sent.text).toContain('Check your mail');
    expect(eventOf(t, sent, 'email_verification.requested')).toMatchObject({ via: 'resend' });
    await verifyTokenMailedTo(smtp.server, email);
  });

  test('when the resend button is posted without CSRF or without a session, then no mail is sent', async () => {
    const { email, password, user } = await createUser(t);
    const browser = createBrowser(t.app);
    await signInThroughForm(browser, { email, password });

    const forged = await browser.postForm('/verify-email/resend', { _csrf: 'forged' });
    const anonymous = await request(t.app).post('/verify-email/resend').type('form').send({});

    expect(forged.status).toBe(403);
    expect(anonymous.status).toBe(303);
    expect(anonymous.headers.location).toBe('/login');
    // A resend issues its link before it answers: no link issued means no mail will follow either.
    expect(await liveTokenPurposes(t, user.id)).toEqual([]);
    expect(mailsTo(smtp.server, email, VERIFY_SUBJECT)).toEqual([]);
  });

  test('when a verified user opens home or presses a stale resend button, then there is no notice and no mail', async () => {
    const { email, password, user } = await createUser(t, { verified: true });
    const browser = createBrowser(t.app);
    await signInThroughForm(browser, { email, password });
    const home = await browser.get('/');

    const stale = await browser.postForm('/verify-email/resend', { _csrf: csrfTokenIn(home.text) });

    expect(home.text).not.toContain('/verify-email/resend');
    expect(stale.status).toBe(303);
    expect(stale.headers.location).toBe('/');
    expect(await liveTokenPurposes(t, user.id)).toEqual([]);
    expect(mailsTo(smtp.server, email, VERIFY_SUBJECT)).toEqual([]);
  });
});

describe('email verification pages, per-client budget', () => {
  const smtp = useSmtpServer();
  const t = useTestApp(mailingThrough(smtp, { PASSWORD_RESET_MAX_PER_IP_PER_HOUR: '2' }));

  test('when a client posts more than the mailed-link budget, then 429 as a page, and forged posts spend none of it', async () => {
    const browser = createBrowser(t.app);
    await browser.get('/verify-email');
    for (let i = 0; i < 3; i++) await browser.postForm('/verify-email', { _csrf: 'forged', token: 'x' });

    const answers = [];
    for (let i = 0; i < 3; i++) answers.push((await verifyThroughForm(browser, 'A'.repeat(43))).status);

    expect(answers).toEqual([400, 400, 429]);
  });
});

describe('email verification pages, mail off', () => {
  const t = useTestApp();

  test('when mail is off, then the pages do not exist', async () => {
    const { email, password } = await createUser(t);
    const browser = createBrowser(t.app);
    await signInThroughForm(browser, { email, password });

    expect((await browser.get('/verify-email')).status).toBe(404);
    const home = await browser.get('/');
    expect((await browser.postForm('/verify-email/resend', { _csrf: csrfTokenIn(home.text) })).status).toBe(
      404,
    );
  });
});
