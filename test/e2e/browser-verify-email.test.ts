import type { IncomingMessage } from 'node:http';
import type { Page } from 'playwright-core';
import {
  CSP_VIOLATIONS,
  LINK_PAGE_STATE,
  newTestContext,
  startBrowserStack,
  type BrowserStack,
} from '../support/chromium';
import { VERIFY_SUBJECT, verifyLinkIn } from '../support/email-verification';
import { uniqueEmail } from '../support/factories';
import { mailingThrough, nthMailTo, useSmtpServer } from '../support/password-reset';
import { strongPassword } from '../support/rate-limit';
import { describeWithTool } from '../support/tools';

/**
 * Email verification in Debian's chromium, from registering to the confirmed address, against the app
 * in production mode (so REQUIRE_VERIFIED_EMAIL is on by default) behind a TLS-terminating proxy, with
 * the mail read from a real SMTP server. What only a browser shows: opening the link verifies nothing
 * until the button is pressed, the page's script takes the token out of the fragment and the address
 * bar, and the token never travels in a URL.
 */

describeWithTool(
  'chromium',
  'apt-get install chromium',
  'email verification in a real browser, over HTTPS',
  () => {
    const smtp = useSmtpServer();
    let stack: BrowserStack | undefined;
    let page: Page;
    /** Every request target the app received (what an access log's `$request` shows), in order. */
    const requestTargets: string[] = [];
    /** Every URL and Referer the browser sent. */
    const browserSent: string[] = [];

    beforeAll(async () => {
      stack = await startBrowserStack(mailingThrough(smtp)());
      const { server, browser } = stack;
      server.server.on('request', (req: IncomingMessage) => requestTargets.push(req.url ?? ''));

      const context = await newTestContext(browser, browserSent);
      page = await context.newPage();
    }, 30_000);

    afterAll(() => stack?.close());

    test('when a new user follows the mailed link and presses the button, then the address is verified and the token never travels in a URL', async () => {
      const { t, proxy } = stack!;
      const origin = proxy.url;
      const email = uniqueEmail('browser');
      expect(t.config.requireVerifiedEmail).toBe(true);

      // Registering is an API call (the app has no sign-up page); the session cookie lands in the browser.
      const registered = await page.request.post(`${origin}/api/auth/register`, {
        data: { email, name: 'Browser User', password: strongPassword() },
        headers: { Origin: origin },
      });
      expect(registered.status()).toBe(201);
      await page.goto(`${origin}/`);
      await page.getByText('Confirm your email address').waitFor();
      // Unverified, with the setting on: another page is the 403 page.
      const refused = await page.goto(`${origin}/forgot-password`);
      expect(refused?.status()).toBe(403);

      const link = verifyLinkIn(await nthMailTo(smtp.server, email, VERIFY_SUBJECT));
      const token = new URLSearchParams(link.hash.slice(1)).get('token')!;
      expect(link.href).toBe(`${origin}/verify-email#token=${token}`);

      await page.goto(link.href);
      // The script ran on load: the fragment is gone from the address bar, the token is in the form.
      expect(await page.evaluate<{ href: string; token: string }>(LINK_PAGE_STATE)).toEqual({
        href: `${origin}/verify-email`,
        token,
      });
      expect(await page.evaluate<string[]>(CSP_VIOLATIONS)).toEqual([]);
      // Opening the link verified nothing: only the button does.
      const me = async () => (await page.request.get(`${origin}/api/auth/me`)).json();
      expect((await me()).emailVerifiedAt).toBeNull();

      const posted = page.waitForRequest(
        (r) => r.method() === 'POST' && r.url() === `${origin}/verify-email`,
      );
      await page.getByRole('button', { name: 'Confirm my address' }).click();
      await page.getByText('Your email address is verified').waitFor();
      // It travelled once, in the form's body: the check below looks for something that was sent.
      expect(new URLSearchParams((await posted).postData() ?? '').get('token')).toBe(token);
      expect(requestTargets).toContain('/verify-email');
      expect(requestTargets.filter((target) => target.includes(token))).toEqual([]);
      expect(browserSent.filter((sent) => new URL(sent || origin).search.includes(token))).toEqual([]);

      expect((await me()).emailVerifiedAt).toEqual(expect.any(String));
      await Promise.all([page.waitForURL(`${origin}/`), page.getByText('Continue').click()]);
      expect(await page.textContent('body')).not.toContain('Send a new link');
      expect((await page.goto(`${origin}/forgot-password`))?.status()).toBe(200);
    });
  },
);
