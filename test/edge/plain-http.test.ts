import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { accessLineOf } from '../support/log-lines';
import { describeAppBehindEdge, headerCount, rawExchange, type EdgeAnswer } from '../support/nginx-edge';

/**
 * What the edge's plain-HTTP server answers (nginx/templates/default.conf.template): the API refused,
 * never redirected (ASVS 4.1.2); pages redirected; ACME files served; and every one of those answers with
 * nosniff (ASVS 3.4.4), a CSP that forbids framing (ASVS 3.4.6) and a charset on its text (ASVS 4.1.1),
 * but never HSTS, which only means something over https.
 */

const NGINX_REQUEST_ID = /^[0-9a-f]{32}$/;

/** The headers every answer of the plain-HTTP server carries. */
function expectPlainHttpHeaders(answer: EdgeAnswer): void {
  expect(answer.headers['x-content-type-options']).toBe('nosniff');
  expect(answer.headers['content-security-policy']).toContain("frame-ancestors 'none'");
  expect(answer.headers['x-frame-options']).toBe('DENY');
  expect(answer.headers['cache-control']).toBe('no-store');
  expect(headerCount(answer, 'strict-transport-security')).toBe(0);
  expect(answer.headers.server).toBe('nginx');
}

describeAppBehindEdge('the plain-HTTP server of the edge', (stack) => {
  test.each([
    ['GET', '/api/auth/me', undefined],
    ['POST', '/api/auth/login', JSON.stringify({ email: 'someone@example.test', password: 'sent in clear' })],
    ['GET', '/API/Users', undefined],
    ['GET', '/api', undefined],
  ])(
    'when %s %s is sent over http, then 403 https_required in the JSON envelope, no redirect, and the app never sees it (ASVS 4.1.2)',
    async (method, pathAndQuery, body) => {
      const answer = await stack().edge.http(pathAndQuery, {
        method,
        // What a mistaken http:// client leaks: its session cookie, and for a login the password.
        headers: {
          cookie: '__Host-sid=sent-in-clear',
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body,
      });

      expect(answer.status).toBe(403);
      expect(answer.headers.location).toBeUndefined();
      expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
      const requestId = answer.headers['x-request-id'];
      expect(requestId).toMatch(NGINX_REQUEST_ID);
      expect(JSON.parse(answer.body)).toEqual({
        error: { code: 'https_required', message: expect.any(String), requestId },
      });
      expectPlainHttpHeaders(answer);
      expect(accessLineOf(stack().t, answer)).toBeUndefined();
    },
  );

  test('when a page (or a path that only starts like the API) is asked over http, then 301 to https with nosniff and frame-ancestors, and no charset, which nginx never adds to a redirect (ASVS 3.4.4, 3.4.6)', async () => {
    for (const pathAndQuery of ['/login?next=%2F', '/apiary']) {
      const answer = await stack().edge.http(pathAndQuery);

      expect(answer.status).toBe(301);
      expect(answer.headers.location).toBe(`https://localhost:${stack().edge.ports.https}${pathAndQuery}`);
      // nginx's fixed page, ASCII only and reflecting nothing (not even the URL): see error-responses.conf.
      expect(answer.headers['content-type']).toBe('text/html');
      expectPlainHttpHeaders(answer);
    }
  });

  test('when an ACME challenge file is asked over http, then it is served as text/plain with a charset and the same headers; a missing one is a 404 page with a charset (ASVS 4.1.1)', async () => {
    const token = `token-${Date.now()}`;
    const file = path.join(stack().edge.acmeWebroot, '.well-known', 'acme-challenge', token);
    await writeFile(file, `${token}.thumbprint`);
    await chmod(file, 0o644); // read by nginx's workers (nobody)

    const served = await stack().edge.http(`/.well-known/acme-challenge/${token}`);
    const missing = await stack().edge.http('/.well-known/acme-challenge/no-such-token');

    expect(served.status).toBe(200);
    expect(served.body).toBe(`${token}.thumbprint`);
    expect(served.headers['content-type']).toBe('text/plain; charset=utf-8');
    expectPlainHttpHeaders(served);
    expect(missing.status).toBe(404);
    expect(missing.headers['content-type']).toBe('text/html; charset=utf-8');
    expectPlainHttpHeaders(missing);
  });

  test('when a malformed request reaches the plain-HTTP server, then 400 bad_request in the envelope with a charset and the same headers', async () => {
    const answer = await rawExchange(
      stack().edge.ports.http,
      'GET / HTTP/1.1\r\nHost: localhost\r\nno colon here\r\n\r\n',
    );

    const [head = '', body = ''] = answer.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 400 /);
    expect(head).toMatch(/^Content-Type: application\/json; charset=utf-8\r?$/m);
    expect(head).toMatch(/^X-Content-Type-Options: nosniff\r?$/m);
    expect(head).toMatch(/^Content-Security-Policy: .*frame-ancestors 'none'/m);
    expect(head).not.toMatch(/^Strict-Transport-Security:/im);
    expect(JSON.parse(body)).toMatchObject({ error: { code: 'bad_request' } });
  });
});
