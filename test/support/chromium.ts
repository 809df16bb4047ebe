import { randomBytes } from 'node:crypto';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { listen, type Listening } from './listen';
import { createTestApp, type TestApp } from './test-app';
import { startTlsProxy, type TlsProxy } from './tls-proxy';
import { toolPath } from './tools';

/** Headless flags for a closed network (no background services, no QUIC); launch() adds a fresh temp profile. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Debian's chromium under playwright-core; the caller closes it. */
export const launchChromium = (): Promise<Browser> =>
  chromium.launch({ executablePath: toolPath('chromium'), args: CHROMIUM_ARGS, timeout: 15_000 });

// The project's TypeScript has no DOM library (server code must not see browser globals), so what runs
// in the page is written as source text.
/** Runs before any page script: keeps every CSP violation the page reports, per document. */
export const RECORD_CSP_VIOLATIONS = `
  window.__cspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__cspViolations.push(e.violatedDirective + ' blocked ' + e.blockedURI + ' ' + e.sample);
  });
`;
export const CSP_VIOLATIONS = 'window.__cspViolations';

/** The app in production mode behind the TLS proxy, and a chromium to drive it. */
export interface BrowserStack {
  proxy: TlsProxy;
  t: TestApp;
  server: Listening;
  browser: Browser;
  /** Closes all of it, newest first, each part whatever happened to the others. */
  close(): Promise<void>;
}

/**
 * Starts the TLS-terminating proxy (the stand-in for nginx), the app in production mode behind it with
 * `env` added, and chromium. The proxy listens first: its origin is the app's PUBLIC_URL, which the
 * cross-origin guard compares the browser's Origin with. A part that fails to start closes the others.
 */
export async function startBrowserStack(env: Record<string, string> = {}): Promise<BrowserStack> {
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const closeOne of closers.reverse()) await closeOne().catch(() => {});
  };
  try {
    const proxy = await startTlsProxy();
    closers.push(() => proxy.close());
    const t = await createTestApp({
      ...env,
      NODE_ENV: 'production',
      PUBLIC_URL: proxy.url,
      TRUST_PROXY: '1',
      SESSION_SECRET: randomBytes(36).toString('base64url'),
    });
    closers.push(() => t.close());
    const server = await listen(t.app, '127.0.0.1');
    closers.push(() => server.close());
    proxy.forwardTo({ host: '127.0.0.1', port: server.port });
    const browser = await launchChromium();
    closers.push(() => browser.close());
    return { proxy, t, server, browser, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * What a mailed-link page's script left in the address bar and in the form's hidden token field, read
 * in the page: `page.evaluate(LINK_PAGE_STATE)`.
 */
export const LINK_PAGE_STATE = `({ href: location.href, token: document.querySelector('input[name="token"]').value })`;

/**
 * A fresh browser profile (its own cookies, as another device has) that records CSP violations in every
 * page, fails a step that waits more than 5 s (pages answer in milliseconds here: such a step is stuck,
 * and a file must end by itself whatever breaks), and, given `sent`, pushes there every URL and Referer
 * it sends.
 */
export async function newTestContext(browser: Browser, sent?: string[]): Promise<BrowserContext> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  await context.addInitScript({ content: RECORD_CSP_VIOLATIONS });
  context.setDefaultTimeout(5_000);
  if (sent) {
    context.on('request', (request) => {
      sent.push(request.url(), request.headers()['referer'] ?? '');
    });
  }
  return context;
}
