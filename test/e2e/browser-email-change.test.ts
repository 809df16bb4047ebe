import type { IncomingMessage } from 'node:http';
import type { BrowserContext } from 'playwright-core';
import {
  CSP_VIOLATIONS,
  LINK_PAGE_STATE,
  newTestContext,
  startBrowserStack,
  type BrowserStack,
} from '../support/chromium';
import { CONFIRM_SUBJECT, confirmLinkIn } from '../support/email-change';
import { createUser, uniqueEmail, type TestUser } from '../support/factories';
import { mailingThrough, nthMailTo, tokenOf, useSmtpServer } from '../support/password-reset';
import { describeWithTool } from '../support/tools';

/**
 * An email change in Debian's chromium: asked for by a signed-in user through the API, confirmed
 * from the mailed link in another browser (another device, no session), then used to sign in;
 * against the app in production mode behind a TLS-terminating proxy, with the mail read from a real
 * SMTP server. What only a browser shows: the page's script takes the token out of the fragment and
 * the address bar, and the token travels only in the form's body.
 */

describeWithTool('chromium', 'apt-get install chromium', 'email change in a real browser, over HTTPS', () => {
  const smtp = useSmtpServer();
  let stack: BrowserStack | undefined;
  let user: TestUser;
  /** Every request target the app received (what an access log's `$request` shows), in order. */
  const requestTargets: string[] = [];
  /** Every URL and Referer the browsers sent. */
  const browserSent: string[] = [];

  /** A fresh browser profile: its own cookies, as another device has. */
  const newDevice = (): Promise<BrowserContext> => newTestContext(stack!.browser, browserSent);

  beforeAll(async () => {
    stack = await startBrowserStack(mailingThrough(smtp)());
    stack.server.server.on('request', (req: IncomingMessage) => requestTargets.push(req.url ?? ''));
    // Production with mail requires a verified address (REQUIRE_VERIFIED_EMAIL): this user has one.
    user = await createUser(stack.t, { verified: true });
  }, 30_000);

  afterAll(() => stack?.close());

  test('when a signed-in user asks for a new address and confirms it from the mailed link on another device, then the token never travels in a URL and the new address signs in', async () => {
    const origin = stack!.proxy.url;
    const newEmail = uniqueEmail('moved');

    // The first device signs in through the form and asks for the change through the API.
    const first = await newDevice();
    const page = await first.newPage();
    await page.goto(`${origin}/login`);
    await page.locator('input[name="email"]').fill(user.email);
    await page.locator('input[name="password"]').fill(user.password);
    await Promise.all([page.waitForURL(`${origin}/`), page.locator('form button[type="submit"]').click()]);
    const asked = await first.request.patch(`${origin}/api/users/${user.user.id}`, {
      data: { email: newEmail, currentPassword: user.password },
    });
    expect(asked.status()).toBe(202);
    expect(await asked.json()).toMatchObject({ email: user.email, pendingEmail: newEmail });

    const link = confirmLinkIn(await nthMailTo(smtp.server, newEmail, CONFIRM_SUBJECT));
    const token = tokenOf(link);
    expect(link.href).toBe(`${origin}/confirm-email#token=${token}`);

    // The second device opens the link: the script ran on load, the fragment is gone from the
    // address bar and the token is in the form; nothing has changed yet.
    const other = await (await newDevice()).newPage();
    await other.goto(link.href);
    expect(await other.evaluate<{ href: string; token: string }>(LINK_PAGE_STATE)).toEqual({
      href: `${origin}/confirm-email`,
      token,
    });
    expect(await other.evaluate<string[]>(CSP_VIOLATIONS)).toEqual([]);
    const meBefore = await first.request.get(`${origin}/api/auth/me`);
    expect(await meBefore.json()).toMatchObject({ email: user.email });

    const posted = other.waitForRequest(
      (r) => r.method() === 'POST' && r.url() === `${origin}/confirm-email`,
    );
    await other.getByRole('button', { name: 'Confirm the new address' }).click();
    await other.getByText(`Your address is now ${newEmail}`).waitFor();
    // It travelled once, in the form's body: the checks below look for something that was sent.
    expect(new URLSearchParams((await posted).postData() ?? '').get('token')).toBe(token);
    expect(requestTargets).toContain('/confirm-email');
    expect(requestTargets.filter((target) => target.includes(token))).toEqual([]);
    expect(browserSent.filter((sent) => new URL(sent || origin).search.includes(token))).toEqual([]);

    // The first device's session goes on, under the new address.
    const meAfter = await first.request.get(`${origin}/api/auth/me`);
    expect(await meAfter.json()).toMatchObject({ email: newEmail, emailVerifiedAt: expect.any(String) });

    // The second device signs in with the new address.
    await other.goto(`${origin}/login`);
    await other.locator('input[name="email"]').fill(newEmail);
    await other.locator('input[name="password"]').fill(user.password);
    await Promise.all([other.waitForURL(`${origin}/`), other.locator('form button[type="submit"]').click()]);
    expect(await other.textContent('body')).toContain(`Signed in as ${user.user.name}`);
  });
});
