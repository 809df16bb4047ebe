import { randomBytes } from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { CSP_VIOLATIONS, newTestContext, startBrowserStack, type BrowserStack } from '../support/chromium';
import { createUser, type TestUser } from '../support/factories';
import { httpsRequest, type TlsProxy } from '../support/tls-proxy';
import { describeWithTool } from '../support/tools';

/**
 * The sessions page and sign-out in Debian's chromium, in production mode over HTTPS (behind the TLS
 * proxy): what only a real browser shows. The page works without script under the CSP (ASVS 5.0
 * 7.5.2), and the browser really drops the site's storage when told to by Clear-Site-Data at sign-out
 * (ASVS 5.0 14.3.1), which it honours from a secure origin only.
 */
describeWithTool(
  'chromium',
  'apt-get install chromium',
  'sessions in a real browser (ASVS 7.5.2, 14.3.1)',
  () => {
    let stack: BrowserStack | undefined;
    let proxy: TlsProxy;
    let browser: Browser;
    let user: TestUser;

    beforeAll(async () => {
      stack = await startBrowserStack();
      ({ proxy, browser } = stack);
      user = await createUser(stack.t, { password: randomBytes(18).toString('base64url') });
    }, 30_000);

    afterAll(() => stack?.close());

    /** A fresh profile signed in through the form, on the home page. */
    async function signedInDevice(): Promise<{ context: BrowserContext; page: Page }> {
      const context = await newTestContext(browser);
      const page = await context.newPage();
      await page.goto(`${proxy.url}/login?next=/`);
      await page.locator('input[name="email"]').fill(user.email);
      await page.locator('input[name="password"]').fill(user.password);
      await Promise.all([
        page.waitForURL(`${proxy.url}/`),
        page.locator('form button[type="submit"]').click(),
      ]);
      return { context, page };
    }

    const sessionCookieOf = async (context: BrowserContext) => {
      const cookie = (await context.cookies()).find((c) => c.name === '__Host-sid');
      return `${cookie!.name}=${cookie!.value}`;
    };

    test('when a user signs out of another device from the sessions page, then that device is signed out and the page needed no script', async () => {
      const laptop = await signedInDevice();
      const phone = await signedInDevice();
      const phoneCookie = await sessionCookieOf(phone.context);
      try {
        await Promise.all([
          laptop.page.waitForURL(`${proxy.url}/sessions`),
          laptop.page.locator('a[href="/sessions"]').click(),
        ]);
        expect(await laptop.page.locator('input[type="radio"][name="end"]').count()).toBe(2);
        expect(await laptop.page.textContent('body')).toContain('(this browser');

        // The radio buttons: the other session first, then "every session but this one".
        await laptop.page.locator('input[type="radio"][name="end"]').first().check();
        await laptop.page.locator('input[name="currentPassword"]').fill(user.password);
        const posted = laptop.page.waitForResponse((r) => r.url().endsWith('/sessions/end'));
        await laptop.page.locator('form[action="/sessions/end"] button[type="submit"]').click();

        expect((await posted).status()).toBe(303);
        await laptop.page.waitForURL(`${proxy.url}/sessions`);
        expect(await laptop.page.locator('input[type="radio"][name="end"]').count()).toBe(1);
        expect(await laptop.page.evaluate<string[]>(CSP_VIOLATIONS)).toEqual([]);
        const me = await httpsRequest(proxy, '/api/auth/me', { headers: { cookie: phoneCookie } });
        expect(me.status).toBe(401);
      } finally {
        await laptop.context.close();
        await phone.context.close();
      }
    });

    test('when the user signs out, then the browser has dropped what the site stored (Clear-Site-Data)', async () => {
      const { context, page } = await signedInDevice();
      try {
        await page.evaluate(`localStorage.setItem('draft', 'something private')`);
        expect(await page.evaluate<string | null>(`localStorage.getItem('draft')`)).toBe('something private');

        await Promise.all([
          page.waitForURL(`${proxy.url}/login`),
          page.locator('form[action="/logout"] button[type="submit"]').click(),
        ]);

        expect(await page.evaluate<string | null>(`localStorage.getItem('draft')`)).toBeNull();
      } finally {
        await context.close();
      }
    });
  },
);
