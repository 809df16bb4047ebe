import type { Express } from 'express';
import request, { type Response, type Test } from 'supertest';
import { parseSetCookie, setCookies } from './sessions';

/**
 * A minimal browser for the server-rendered pages: a cookie jar that stores what responses set (and
 * forgets what they clear) and sends it back explicitly, so Secure cookies work in production mode
 * over plain HTTP too. Form posts are urlencoded, as a real form's.
 */
export interface Browser {
  get(path: string): Promise<Response>;
  postForm(path: string, fields: Record<string, string | string[]>): Promise<Response>;
  /** The value of a cookie in the jar. */
  cookie(name: string): string | undefined;
  /** Puts a cookie in the jar (or removes it with `undefined`), as an attacker might. */
  setCookie(name: string, value: string | undefined): void;
  /** The `Cookie` header the next request will send. */
  cookieHeader(): string;
}

export function createBrowser(app: Express): Browser {
  const jar = new Map<string, string>();

  const cookieHeader = () => [...jar].map(([name, value]) => `${name}=${value}`).join('; ');

  const absorb = (res: Response): Response => {
    for (const line of setCookies(res)) {
      const { name, value, attributes } = parseSetCookie(line);
      const expires = attributes.get('expires');
      const cleared = value === '' || (expires !== undefined && new Date(expires).getTime() < Date.now());
      if (cleared) jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  };

  const send = async (test: Test): Promise<Response> => {
    const header = cookieHeader();
    return absorb(await (header ? test.set('Cookie', header) : test));
  };

  return {
    get: (path) => send(request(app).get(path)),
    postForm: (path, fields) => send(request(app).post(path).type('form').send(fields)),
    cookie: (name) => jar.get(name),
    setCookie(name, value) {
      if (value === undefined) jar.delete(name);
      else jar.set(name, value);
    },
    cookieHeader,
  };
}

const ENTITIES: Record<string, string> = {
  '&amp;': '&',
  '&lt;': '<',
  '&gt;': '>',
  '&quot;': '"',
  '&#39;': "'",
};

/** The value of a hidden `<input>` in a page, unescaped as the browser would submit it. */
export function hiddenField(html: string, name: string): string | undefined {
  const match = new RegExp(`<input type="hidden" name="${name}" value="([^"]*)">`).exec(html);
  return match?.[1]?.replace(/&(amp|lt|gt|quot|#39);/g, (entity) => ENTITIES[entity]!);
}

/** The CSRF token of the first form in the page; fails the test when there is none. */
export function csrfTokenIn(html: string): string {
  const token = hiddenField(html, '_csrf');
  if (!token) throw new Error(`no CSRF token in the page:\n${html}`);
  return token;
}

/**
 * The page needs nothing the strict CSP forbids: no inline script or style element, no style
 * attribute, no event-handler attribute, no javascript: URL. A script element may only load one of
 * our own files from /static, with nothing between its tags.
 */
export function expectNoInlineCode(html: string): void {
  expect(html).not.toMatch(/<style/i);
  const scripts = html.match(/<script[^>]*>[\s\S]*?<\/script>/gi) ?? [];
  for (const script of scripts)
    expect(script).toMatch(/^<script src="\/static\/[a-z-]+\.js" defer><\/script>$/);
  expect(html.match(/<script/gi) ?? []).toHaveLength(scripts.length);
  // Inside tags only: escaped user text (`&lt;img onerror=…`) is text, not an attribute.
  expect(html).not.toMatch(/<[^>]*\sstyle\s*=/i);
  expect(html).not.toMatch(/<[^>]*\son[a-z]+\s*=/i);
  expect(html).not.toMatch(/<[^>]*javascript:/i);
}

/** Opens the login page (`next` as given) and signs in through the form; returns the POST's response. */
export async function signInThroughForm(
  browser: Browser,
  creds: { email: string; password: string },
  next?: string,
): Promise<Response> {
  const page = await browser.get(next === undefined ? '/login' : `/login?next=${encodeURIComponent(next)}`);
  if (page.status !== 200) throw new Error(`login page: ${page.status}`);
  return browser.postForm('/login', {
    _csrf: csrfTokenIn(page.text),
    next: hiddenField(page.text, 'next') ?? '/',
    email: creds.email,
    password: creds.password,
  });
}
