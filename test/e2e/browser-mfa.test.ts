import type { Page } from 'playwright-core';
import { CSP_VIOLATIONS, newTestContext, startBrowserStack, type BrowserStack } from '../support/chromium';
import { createUser } from '../support/factories';
import { awayFromStepEdge, codeAt, MFA_ENV } from '../support/mfa';
import { describeWithTool } from '../support/tools';

/**
 * Enrolling an authenticator and signing in with it in Debian's chromium, against the app in production
 * mode behind a TLS-terminating proxy (ASVS 5.0 6.3.3): the QR code renders under the strict CSP (inline
 * SVG, no image request), the codes typed are computed from the secret the page shows, by the library.
 */
describeWithTool(
  'chromium',
  'apt-get install chromium',
  'a second factor in a real browser, over HTTPS',
  () => {
    let stack: BrowserStack | undefined;

    beforeAll(async () => {
      stack = await startBrowserStack({ ...MFA_ENV });
    }, 30_000);

    afterAll(() => stack?.close());

    const signIn = async (page: Page, origin: string, email: string, password: string) => {
      await page.goto(`${origin}/login`);
      await page.getByLabel('Email').fill(email);
      await page.getByLabel('Password').fill(password);
      await page.getByRole('button', { name: 'Sign in' }).click();
    };

    test('when a user enrols through the pages and signs in again, then the code page takes a code computed from the shown secret', async () => {
      await awayFromStepEdge();
      const { t, proxy, browser } = stack!;
      const origin = proxy.url;
      const { email, password } = await createUser(t);
      const page = await (await newTestContext(browser)).newPage();

      await signIn(page, origin, email, password);
      await page.waitForURL(`${origin}/`);
      await page.goto(`${origin}/mfa`);
      await page.getByLabel('Your current password').fill(password);
      await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
      await page.getByText('Scan this code').waitFor();
      // The QR code is drawn (inline SVG has a size), and the CSP let everything on the page load.
      const qr = await page.locator('svg').boundingBox();
      expect(qr?.width).toBeGreaterThan(100);
      const secret = (await page.locator('#totp-secret').textContent())!.trim();
      expect(secret).toMatch(/^[A-Z2-7]{32}$/);
      await page.getByLabel('Code from the app').fill(await codeAt(secret));
      await page.getByRole('button', { name: 'Turn on' }).click();
      await page.getByText('Your recovery codes').waitFor();
      expect(await page.locator('#recovery-codes li').count()).toBe(10);
      expect(await page.evaluate<string[]>(CSP_VIOLATIONS)).toEqual([]);

      const again = await (await newTestContext(browser)).newPage();
      await signIn(again, origin, email, password);
      await again.waitForURL(`${origin}/login/mfa?next=%2F`);
      await again
        .getByLabel('The 6-digit code from your authenticator app, or a recovery code')
        .fill(await codeAt(secret, 1));
      await again.getByRole('button', { name: 'Continue' }).click();
      await again.waitForURL(`${origin}/`);
      await again.getByText('Signed in as').waitFor();
      expect(await again.evaluate<string[]>(CSP_VIOLATIONS)).toEqual([]);
    });
  },
);
