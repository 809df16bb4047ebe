import request, { type Response } from 'supertest';
import { expectError } from '../support/assertions';
import { createBrowser, csrfTokenIn, expectNoInlineCode } from '../support/browser';
import { setCookies } from '../support/sessions';
import type { TestApp } from '../support/test-app';
import { useTestApp, useUnmigratedApps } from '../support/use-test-app';

/** An error page of our own: HTML, the request id, and nothing of Express or the server internals. */
function expectOwnErrorPage(res: Response, status: number, title: string): void {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^text\/html; charset=utf-8/);
  expect(res.text).toMatch(/^<!doctype html>/);
  expect(res.text).toContain(`<h1>${title}</h1>`);
  expect(res.text).toContain(res.headers['x-request-id']);
  expect(res.text).not.toMatch(/Cannot (GET|POST)|Express|node_modules|\.ts:\d|stack/i);
  expectNoInlineCode(res.text);
}

describe('error pages of the browser routes', () => {
  const t = useTestApp();

  test('when a browser route does not exist, then our HTML 404 page', async () => {
    expectOwnErrorPage(await request(t.app).get('/no/such/page'), 404, 'Page not found');
  });

  test('when a method is not served on a page, then our HTML 404 page too', async () => {
    expectOwnErrorPage(await request(t.app).put('/login'), 404, 'Page not found');
  });

  test('when the body parser refuses a form (an unsupported charset), then our HTML 415 page', async () => {
    const res = await request(t.app)
      .post('/login')
      .set('Content-Type', 'application/x-www-form-urlencoded; charset=koi8-r')
      .send('email=a');

    expectOwnErrorPage(res, 415, 'Unsupported form');
  });

  test.each(['/api/no-such-thing', '/API/no-such-thing', '/api'])(
    'when %s does not exist, then the JSON envelope as before',
    async (path) => {
      const res = await request(t.app).get(path);

      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toEqual({
        error: { code: 'not_found', message: expect.any(String), requestId: res.headers['x-request-id'] },
      });
    },
  );

  test('when the API refuses a request, then it still answers JSON', async () => {
    const res = await request(t.app).get('/api/auth/me');
    expectError(res, 401, 'unauthenticated');
  });
});

describe('/static', () => {
  const t = useTestApp();

  test('when the stylesheet is requested, then CSS with an hour of caching, no cookie and no session', async () => {
    const res = await request(t.app).get('/static/app.css');

    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/css/);
    expect(res.headers['cache-control']).toBe('public, max-age=3600');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.text).toContain('.card');
    expect(setCookies(res)).toEqual([]);
  });

  test.each([
    '/static/',
    '/static',
    '/static/missing.css',
    '/static/../app.ts',
    '/static/%2e%2e/web.routes.ts',
    // ASVS 5.0 13.4.3: no directory listings.
  ])('when %s is requested, then our 404 page: no listing, nothing outside the folder', async (path) => {
    expectOwnErrorPage(await request(t.app).get(path), 404, 'Page not found');
  });
});

// A real fault, as in test/http/internal-error.test.ts: the database was never migrated, so the login
// query fails inside Postgres.
describe('500 on a browser route', () => {
  const { production, development } = useUnmigratedApps('web_nomigrations');

  async function postLoginForm(t: TestApp): Promise<Response> {
    const browser = createBrowser(t.app);
    const page = await browser.get('/login');
    return browser.postForm('/login', {
      _csrf: csrfTokenIn(page.text),
      next: '/',
      email: 'someone@example.test',
      password: 'whatever it is',
    });
  }

  test('when a query fails in production, then our HTML 500 page with no stack, SQL or driver text', async () => {
    const res = await postLoginForm(production);

    expectOwnErrorPage(res, 500, 'Something went wrong');
    expect(res.text).not.toMatch(/relation|SELECT|users/i);
    const line = production.logs.find(
      (l) => l.msg === 'unhandled error' && l.requestId === res.headers['x-request-id'],
    );
    expect(JSON.stringify(line)).toMatch(/relation \\"users\\" does not exist/);
  });

  test('when a query fails in development, then the page shows the developer the stack, escaped', async () => {
    const res = await postLoginForm(development);

    expect(res.status).toBe(500);
    expect(res.text).toContain('relation &quot;users&quot; does not exist');
  });
});
