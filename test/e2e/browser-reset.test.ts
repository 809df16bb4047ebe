import type { IncomingMessage } from 'node:http';
import type { Page } from 'playwright-core';
import {
  CSP_VIOLATIONS,
  LINK_PAGE_STATE,
  newTestContext,
  startBrowserStack,
  type BrowserStack,
} from '../support/chromium';
import { createUser, type TestUser } from '../support/factories';
import {
  linkIn,
  mailingThrough,
  nthMailTo,
  RESET_SUBJECT,
  tokenOf,
  useSmtpServer,
} from '../support/password-reset';
import { strongPassword } from '../support/rate-limit';
import { describeWithTool } from '../support/tools';

/**
 * Password reset in Debian's chromium, from the login page's link to signing in with the new password,
 * against the app in production mode behind a TLS-terminating proxy, with the mail read from a real
 * SMTP server. What only a browser shows: the page's script takes the token out of the fragment and
 * the address bar, and the token never travels in a URL, the part of a request that logs record.
 */

describeWithTool(
  'chromium',
  'apt-get install chromium',
  'password reset in a real browser, over HTTPS',
  () => {
    const smtp = useSmtpServer();
    let stack: BrowserStack | undefined;
    let page: Page;
    let user: TestUser;
    /** Every request target the app received (what an access log's `$request` shows), in order. */
    const requestTargets: string[] = [];
    /** Every URL and Referer the browser sent. */
    const browserSent: string[] = [];

    beforeAll(async () => {
      stack = await startBrowserStack(mailingThrough(smtp)());
      const { t, server, browser } = stack;
      server.server.on('request', (req: IncomingMessage) => requestTargets.push(req.url ?? ''));
      user = await createUser(t);

      const context = await newTestContext(browser, browserSent);
      page = await context.newPage();
    }, 30_000);

    afterAll(() => stack?.close());

    // ASVS 5.0 14.2.1: no token in any URL the app receives.
    test('when the user asks for a link, follows it and sets a new password, then the token never travels in a URL and the new password signs in', async () => {
      const origin = stack!.proxy.url;
      await page.goto(`${origin}/login`);
      await Promise.all([
        page.waitForURL(`${origin}/forgot-password`),
        page.getByText('Forgot your password?').click(),
      ]);
      await page.locator('input[name="email"]').fill(user.email);
      await page.locator('form button[type="submit"]').click();
      await page.getByText('a link to reset its password is on its way').waitFor();

      const link = linkIn(await nthMailTo(smtp.server, user.email, RESET_SUBJECT));
      const token = tokenOf(link);
      expect(link.href).toBe(`${origin}/reset-password#token=${token}`);

      await page.goto(link.href);
      // The script ran on load: the fragment is gone from the address bar, the token is in the form.
      expect(await page.evaluate<{ href: string; token: string }>(LINK_PAGE_STATE)).toEqual({
        href: `${origin}/reset-password`,
        token,
      });
      expect(await page.evaluate<string[]>(CSP_VIOLATIONS)).toEqual([]);

      const newPassword = strongPassword();
      await page.locator('input[name="newPassword"]').fill(newPassword);
      await page.locator('input[name="confirmPassword"]').fill(newPassword);
      const posted = page.waitForRequest(
        (r) => r.method() === 'POST' && r.url() === `${origin}/reset-password`,
      );
      await page.locator('form button[type="submit"]').click();
      await page.getByText('every session of your account has ended').waitFor();
      // It travelled once, in the form's body: the check below looks for something that was sent.
      expect(new URLSearchParams((await posted).postData() ?? '').get('token')).toBe(token);
      expect(requestTargets).toContain('/reset-password');
      expect(requestTargets.filter((target) => target.includes(token))).toEqual([]);
      expect(browserSent.filter((sent) => new URL(sent || origin).search.includes(token))).toEqual([]);

      await Promise.all([
        page.waitForURL(`${origin}/login`),
        page.getByText('Sign in with the new password').click(),
      ]);
      await page.locator('input[name="email"]').fill(user.email);
      await page.locator('input[name="password"]').fill(newPassword);
      await Promise.all([page.waitForURL(`${origin}/`), page.locator('form button[type="submit"]').click()]);
      expect(await page.textContent('body')).toContain(`Signed in as ${user.user.name}`);
    });
  },
);
