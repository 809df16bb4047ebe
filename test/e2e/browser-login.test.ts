import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { CSP_VIOLATIONS, newTestContext, startBrowserStack, type BrowserStack } from '../support/chromium';
import { createUser, type TestUser } from '../support/factories';
import type { TestApp } from '../support/test-app';
import { httpsRequest, type TlsProxy } from '../support/tls-proxy';
import { describeWithTool } from '../support/tools';

/**
 * The login flow in Debian's chromium, driven by playwright-core, against the app in production mode
 * behind a TLS-terminating proxy (the stand-in for nginx): what only a real browser can show. The
 * __Host- cookie prefix, Secure and HttpOnly are enforced by the browser, the CSP is applied by it,
 * and an escaping mistake would run script in it.
 */

/** Would open a dialog if the page ever rendered it as markup (and the CSP let the handler run). */
const HOSTILE_NAME = '<img src=x onerror=alert(1)>';

/** Screenshots for a human to look at; overwritten by each run, never committed. */
const SCREENSHOTS = path.join(os.tmpdir(), 'e2e-browser-login');

/** The rules of /static/app.css as the page sees them: zero unless the stylesheet loaded and applied. */
const APP_CSS_RULES = `
  [...document.styleSheets]
    .filter((sheet) => new URL(sheet.href ?? '', location.href).pathname === '/static/app.css')
    .reduce((count, sheet) => count + sheet.cssRules.length, 0)
`;

interface BrowserProblems {
  dialogs: string[];
  /** Console lines mentioning the CSP, across every page of the context. */
  cspConsole: string[];
}

describeWithTool(
  'chromium',
  'apt-get install chromium',
  'sign-in in a real browser, in production over HTTPS',
  () => {
    let stack: BrowserStack | undefined;
    let proxy: TlsProxy | undefined;
    let t: TestApp | undefined;
    let browser: Browser | undefined;
    let context: BrowserContext;
    let page: Page;
    let user: TestUser;
    const problems: BrowserProblems = { dialogs: [], cspConsole: [] };
    /** The session cookie the browser held while signed in, for replay after logout. */
    let oldSessionCookie: string | undefined;

    async function newWatchedContext(): Promise<BrowserContext> {
      const next = await newTestContext(browser!);
      next.on('page', watch);
      return next;
    }

    function watch(watched: Page): void {
      watched.on('dialog', (dialog) => {
        problems.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
        void dialog.dismiss();
      });
      watched.on('console', (message) => {
        if (message.text().includes('Content Security Policy')) problems.cspConsole.push(message.text());
      });
    }

    /** After each page: nothing the CSP refused, in the page's own record or on the console. */
    async function expectNoCspViolations(on: Page): Promise<void> {
      expect(await on.evaluate<string[]>(CSP_VIOLATIONS)).toEqual([]);
      expect(problems.cspConsole).toEqual([]);
    }

    beforeAll(async () => {
      stack = await startBrowserStack();
      ({ proxy, t, browser } = stack);
      user = await createUser(t, { name: HOSTILE_NAME, password: randomBytes(18).toString('base64url') });

      await mkdir(SCREENSHOTS, { recursive: true });
      context = await newWatchedContext();
      page = await context.newPage();
    }, 30_000);

    afterAll(() => stack?.close());

    test('when the user signs in through the form, then the home page shows their name as text', async () => {
      const loginPage = await page.goto(`${proxy!.url}/login?next=/`);
      expect(loginPage!.status()).toBe(200);
      expect(loginPage!.headers()['content-security-policy']).toContain("script-src 'self'");
      await expectNoCspViolations(page);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'login.png'), fullPage: true });

      await page.locator('input[name="email"]').fill(user.email);
      await page.locator('input[name="password"]').fill(user.password);
      const loginPost = page.waitForResponse(
        (r) => r.request().method() === 'POST' && r.url().endsWith('/login'),
      );
      await Promise.all([
        page.waitForURL(`${proxy!.url}/`),
        page.locator('form button[type="submit"]').click(),
      ]);
      expect((await loginPost).status()).toBe(303);

      // Rendered as text: the literal characters are on the page and no element came out of them.
      expect(await page.textContent('body')).toContain(HOSTILE_NAME);
      expect(await page.locator('img').count()).toBe(0);
      await expectNoCspViolations(page);
      expect(problems.dialogs).toEqual([]);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'home.png'), fullPage: true });

      // As the app sent it: __Host- demands Secure, Path=/ and no Domain, and the browser enforces that.
      const setCookies = await (await loginPost).headerValues('set-cookie');
      const sessionLine = setCookies.find((line) => line.startsWith('__Host-sid='));
      expect(sessionLine).toBeDefined();
      expect(sessionLine).not.toMatch(/;\s*domain=/i);
    });

    test('then the session cookie is __Host-sid, HttpOnly, Secure, SameSite=Lax and hidden from scripts', async () => {
      const cookies = await context.cookies();
      const session = cookies.find((c) => c.name === '__Host-sid');
      expect(session).toMatchObject({
        httpOnly: true,
        secure: true,
        sameSite: 'Lax',
        path: '/',
        // Host-only: a Domain attribute would show as '.localhost'.
        domain: 'localhost',
      });
      expect(cookies.filter((c) => c.name.endsWith('sid'))).toHaveLength(1);
      expect(await page.evaluate<string>('document.cookie')).not.toContain('__Host-sid');
      oldSessionCookie = `${session!.name}=${session!.value}`;

      // The cookie works outside the browser too while the session lives: the "dead" check below means something.
      const me = await httpsRequest(proxy!, '/api/auth/me', { headers: { cookie: oldSessionCookie } });
      expect(me.status).toBe(200);
      expect(JSON.parse(me.body)).toMatchObject({ email: user.email, name: HOSTILE_NAME });
    });

    test('then our own stylesheet loads and applies under the CSP', async () => {
      expect(await page.evaluate<number>(APP_CSS_RULES)).toBeGreaterThan(0);
      // The user agent's default body margin is 8px; app.css sets 0.
      expect(await page.evaluate<string>('getComputedStyle(document.body).marginTop')).toBe('0px');
      await expectNoCspViolations(page);
    });

    test('when the user signs out, then they land on the login page and the old cookie is dead', async () => {
      expect(oldSessionCookie).toBeDefined();
      await Promise.all([
        page.waitForURL(`${proxy!.url}/login`),
        page.locator('form[action="/logout"] button[type="submit"]').click(),
      ]);
      expect(await page.locator('form[action="/login"]').count()).toBe(1);
      await expectNoCspViolations(page);
      expect((await context.cookies()).map((c) => c.name)).not.toContain('__Host-sid');

      // Replayed from outside the browser: the API refuses it.
      const me = await httpsRequest(proxy!, '/api/auth/me', { headers: { cookie: oldSessionCookie! } });
      expect(me.status).toBe(401);

      // Replayed in another browser: the home page sends it to sign in.
      const [name, value] = [
        oldSessionCookie!.split('=')[0]!,
        oldSessionCookie!.slice(oldSessionCookie!.indexOf('=') + 1),
      ];
      const replay = await newWatchedContext();
      try {
        await replay.addCookies([
          { name, value, url: proxy!.url, secure: true, httpOnly: true, sameSite: 'Lax' },
        ]);
        const other = await replay.newPage();
        const landed = await other.goto(`${proxy!.url}/`);
        // The old cookie was sent, and refused: the home page redirected to sign in.
        const home = landed!.request().redirectedFrom();
        expect(home?.url()).toBe(`${proxy!.url}/`);
        expect((await home!.allHeaders()).cookie).toContain(oldSessionCookie);
        expect(new URL(other.url()).pathname).toBe('/login');
        await expectNoCspViolations(other);
      } finally {
        await replay.close();
      }
      expect(problems.dialogs).toEqual([]);
    });

    test('when a page breaks the CSP, then the recorder reports it (the checks above can fail)', async () => {
      const probe = await context.newPage();
      try {
        await probe.goto(`${proxy!.url}/login`);
        // An inline style attribute, as injected markup would carry: style-src 'self' refuses it.
        await probe.evaluate(`document.body.setAttribute('style', 'background: red')`);
        // The event is dispatched asynchronously: wait for it rather than read once.
        const reported = await probe.waitForFunction(`${CSP_VIOLATIONS}.length > 0 && ${CSP_VIOLATIONS}`);
        expect(await reported.jsonValue()).toEqual([expect.stringContaining('style-src')]);
      } finally {
        await probe.close();
        problems.cspConsole.length = 0;
      }
    });
  },
);
