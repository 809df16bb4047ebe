import request from 'supertest';
import { createUser, uniqueEmail } from '../support/factories';
import {
  accessLogLines,
  headerCount,
  isRunning,
  pgrep,
  rawExchange,
  startAppBehindEdge,
  type AppBehindEdge,
  type EdgeAnswer,
} from '../support/nginx-edge';
import { accessLineOf as accessLineOfApp } from '../support/log-lines';
import { scanKeys } from '../support/rate-limit';
import { parseSetCookie } from '../support/sessions';
import { describeWithTool } from '../support/tools';

/**
 * The app in production mode behind the real nginx edge: what the edge adds (HSTS, redirects, limits,
 * its own error answers), what it must not let a client decide (the client address, the Host), and that
 * the app's own behaviour (cookies, headers, errors) comes through intact.
 */

const HSTS = 'max-age=63072000; includeSubDomains';
/** The app's API Content-Security-Policy (src/http/security-headers.ts). */
const API_CSP = "default-src 'none';frame-ancestors 'none';base-uri 'none';form-action 'none'";
const NGINX_REQUEST_ID = /^[0-9a-f]{32}$/;

/** Headers that describe one response rather than the security policy. */
const PER_RESPONSE = new Set([
  'connection',
  'content-length',
  'content-type',
  'date',
  'etag',
  'keep-alive',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit-reset',
  'retry-after',
  'server',
  'set-cookie',
  'transfer-encoding',
  'vary',
  'x-request-id',
]);

const securityHeadersOf = (answer: EdgeAnswer) =>
  Object.fromEntries(Object.entries(answer.headers).filter(([name]) => !PER_RESPONSE.has(name)));

/** nginx's own error answer: the app's envelope, its request id in the header too, HSTS once. */
function expectEdgeEnvelope(answer: EdgeAnswer, status: number, code: string): void {
  expect(answer.status).toBe(status);
  expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
  const requestId = answer.headers['x-request-id'];
  expect(requestId).toMatch(NGINX_REQUEST_ID);
  expect(JSON.parse(answer.body)).toEqual({ error: { code, message: expect.any(String), requestId } });
  expect(headerCount(answer, 'strict-transport-security')).toBe(1);
  expect(answer.headers['strict-transport-security']).toBe(HSTS);
  expect(answer.headers).toMatchObject({
    'content-security-policy': API_CSP,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'cache-control': 'no-store',
    server: 'nginx',
  });
}

describeWithTool(
  'nginx',
  'run these suites with npm run test:edge',
  'the nginx edge in front of the app',
  () => {
    describeWithTool('openssl', 'apt-get install openssl', 'in production mode', () => {
      let stack: AppBehindEdge;
      /** The app's own API 404 through the edge: the headers nginx's answers must match. */
      let appNotFound: EdgeAnswer;

      /** The app's access-log line for a response (by the request id it echoed), if it saw the request. */
      const accessLineOf = (answer: EdgeAnswer) => accessLineOfApp(stack.t, answer);

      beforeAll(async () => {
        // The app sends HSTS itself too, so "exactly once" also proves the edge hides the app's copy.
        stack = await startAppBehindEdge({ HSTS_ENABLED: 'true' });
        appNotFound = await stack.edge.https('/api/no-such-thing');
      }, 30_000);

      afterAll(() => stack?.close());

      describe('plain HTTP', () => {
        // ASVS 5.0 12.2.1: plain HTTP only redirects.
        test('when a page is asked over http, then it is a 301 to the same URL over https, port kept, without HSTS (more in plain-http.test.ts)', async () => {
          const res = await stack.edge.http('/some/page?x=1&y=2');

          expect(res.status).toBe(301);
          expect(res.headers.location).toBe(`https://localhost:${stack.edge.ports.https}/some/page?x=1&y=2`);
          expect(res.headers['strict-transport-security']).toBeUndefined();
          expect(res.headers.server).toBe('nginx');
        });

        // ASVS 5.0 3.5.4: the edge serves one application's host name.
        test('when a request names another host or none, then the connection closes without an answer (444)', async () => {
          const { http, https } = stack.edge.ports;
          expect(await rawExchange(http, 'GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n')).toBe('');
          expect(await rawExchange(http, 'GET / HTTP/1.0\r\n\r\n')).toBe('');
          // Over https too: a handshake for our name does not let a request for another Host through.
          const overTls = { servername: 'localhost', ca: stack.edge.certificate };
          expect(await rawExchange(https, 'GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n', overTls)).toBe('');
          // The same exchange with our Host is answered, so the empty answers above are the refusal.
          expect(
            await rawExchange(
              https,
              'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
              overTls,
            ),
          ).toMatch(/^HTTP\/1\.1 200 /);
        });
      });

      describe('HTTPS through to the app', () => {
        // ASVS 5.0 16.2.5: the query's values stay out of both lines (ADR 0040).
        test('when a request passes, then nginx`s access log and the app`s log carry the same request id, and neither the query`s values', async () => {
          const answer = await stack.edge.https('/api/no-such-thing?token=edge-s3cr3t');
          const id = answer.headers['x-request-id'] as string;
          expect(id).toMatch(/^[0-9a-f]{32}$/);
          expect(accessLineOf(answer)).toBeDefined();
          const line = (await accessLogLines(stack.edge, [id])).get(id)?.[0];
          expect(line).toMatch(/"GET \/api\/no-such-thing\?\[redacted\] HTTP\/1\.1" 404 /);
          expect(line).toMatch(/ upstream_time=\d+\.\d{3}$/);
          expect(accessLineOf(answer)?.req).toMatchObject({ url: '/api/no-such-thing?token=[redacted]' });
          expect(stack.t.rawLogs()).not.toContain('edge-s3cr3t');
        });

        // ASVS 5.0 3.4.1: HSTS of two years with subdomains.
        test('when the app answers 200 or 404, then HSTS appears exactly once, the app’s own copy hidden, and Server has no version', async () => {
          // The app really sends one (HSTS_ENABLED): the edge must drop it and add its own.
          const direct = await request(stack.server.url).get('/healthz');
          expect(direct.headers['strict-transport-security']).toBe(HSTS);

          const ok = await stack.edge.https('/healthz');
          expect(ok.status).toBe(200);
          expect(headerCount(ok, 'strict-transport-security')).toBe(1);
          expect(ok.headers['strict-transport-security']).toBe(HSTS);
          expect(ok.headers.server).toBe('nginx');

          expect(appNotFound.status).toBe(404);
          expect(JSON.parse(appNotFound.body)).toMatchObject({ error: { code: 'not_found' } });
          expect(headerCount(appNotFound, 'strict-transport-security')).toBe(1);
          expect(appNotFound.headers['content-security-policy']).toBe(API_CSP);
        });

        test('when a user logs in through the edge, then the session cookie is __Host-sid, Secure and HttpOnly, and works', async () => {
          const { email, password } = await createUser(stack.t);

          const res = await stack.edge.https('/api/auth/login', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ email, password }),
          });

          expect(res.status).toBe(200);
          const cookies = (res.headers['set-cookie'] ?? []).map(parseSetCookie);
          const sid = cookies.find((c) => c.name === '__Host-sid');
          expect(sid).toBeDefined();
          expect(sid!.attributes.has('secure')).toBe(true);
          expect(sid!.attributes.has('httponly')).toBe(true);
          expect(sid!.attributes.get('path')).toBe('/');
          expect(sid!.attributes.has('domain')).toBe(false);

          const me = await stack.edge.https('/api/auth/me', {
            headers: { cookie: `__Host-sid=${sid!.value}` },
          });
          expect(me.status).toBe(200);
          expect(JSON.parse(me.body)).toMatchObject({ email });
        });

        // ASVS 5.0 4.1.3: the edge's headers cannot be set by the client.
        test('when a client forges X-Forwarded-For, X-Forwarded-Host and X-Request-Id, then the app logs and limits its real address under nginx’s request id', async () => {
          // A client address of its own (any 127.x works on loopback): the app can only learn it from nginx.
          const res = await stack.edge.https('/api/auth/me', {
            localAddress: '127.0.0.3',
            headers: {
              'x-forwarded-for': '203.0.113.66',
              'x-forwarded-host': 'evil.example',
              'x-request-id': 'client-chosen-id-123',
            },
          });

          expect(res.status).toBe(401);
          expect(res.headers['x-request-id']).toMatch(NGINX_REQUEST_ID);
          const line = accessLineOf(res) as { clientIp?: string; req?: { headers?: Record<string, string> } };
          expect(line?.clientIp).toBe('127.0.0.3');
          // Set, not appended: the client's value never reaches the app.
          expect(line?.req?.headers).toMatchObject({
            'x-forwarded-for': '127.0.0.3',
            'x-forwarded-proto': 'https',
            'x-forwarded-host': 'localhost',
            host: 'localhost',
          });
          expect(stack.t.rawLogs()).not.toContain('203.0.113.66');
          expect(stack.t.rawLogs()).not.toContain('evil.example');
          const keys = await scanKeys(stack.t, `${stack.t.config.redisKeyPrefix}rl:*`);
          expect(keys.some((k) => k.endsWith(':127.0.0.3'))).toBe(true);
          expect(keys.filter((k) => k.includes('203.0.113.66'))).toEqual([]);
        });
      });

      describe('the answers nginx writes itself', () => {
        test('when a body is larger than 100 kB, then nginx answers 413 in the app’s envelope with the app’s security headers, and the app never sees it', async () => {
          const body = JSON.stringify({ padding: 'x'.repeat(150 * 1024) });

          // An .html path too: the answer stays JSON whatever the URI's extension says.
          for (const target of ['/api/users', '/api/page.html']) {
            const res = await stack.edge.https(target, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body,
            });
            expectEdgeEnvelope(res, 413, 'payload_too_large');
            expect(securityHeadersOf(res)).toEqual(securityHeadersOf(appNotFound));
            expect(accessLineOf(res)).toBeUndefined();
          }
        });

        test('when one client bursts logins, then the excess gets nginx’s 429 envelope with Retry-After, before reaching the app', async () => {
          const attempt = () =>
            stack.edge.https('/api/auth/login', {
              method: 'POST',
              localAddress: '127.0.0.2',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ email: uniqueEmail('burst'), password: 'wrong password' }),
            });

          const started = Date.now();
          const answers = await Promise.all(Array.from({ length: 20 }, attempt));
          const elapsedS = (Date.now() - started) / 1000;

          const refused = answers.filter((a) => a.status === 429);
          const passed = answers.filter((a) => a.status !== 429);
          // 5 a second with a burst of 10: 11 pass at once, one more per 200 ms the burst lasted.
          expect(refused.length).toBeGreaterThan(0);
          expect(passed.length).toBeLessThanOrEqual(11 + Math.ceil(elapsedS * 5));
          expect(passed.map((a) => a.status)).toEqual(passed.map(() => 401));
          for (const res of refused) {
            expectEdgeEnvelope(res, 429, 'rate_limited');
            expect(res.headers['retry-after']).toBe('1');
            expect(securityHeadersOf(res)).toEqual(securityHeadersOf(appNotFound));
            expect(accessLineOf(res)).toBeUndefined();
          }

          // Reading the login page is not limited, even for this client and more than the burst.
          const pages = await Promise.all(
            Array.from({ length: 12 }, () => stack.edge.https('/login', { localAddress: '127.0.0.2' })),
          );
          expect(pages.map((p) => p.status)).toEqual(pages.map(() => 200));
        });

        test('when logins and their code steps are posted under spellings Express also routes (case, trailing slash), then they are limited too', async () => {
          // The code steps (/login/mfa) are where a second factor is guessed: limited as the password is.
          const spellings = [
            '/API/Auth/Login',
            '/api/auth/login/',
            '/LOGIN',
            '/api/auth/login/mfa',
            '/Login/MFA/',
          ];
          for (const [i, spelling] of spellings.entries()) {
            const answers = await Promise.all(
              Array.from({ length: 25 }, () =>
                stack.edge.https(spelling, {
                  method: 'POST',
                  localAddress: `127.0.0.${10 + i}`,
                  headers: { 'content-type': 'application/json' },
                  body: '{}',
                }),
              ),
            );
            expect({ spelling, refused: answers.some((a) => a.status === 429) }).toEqual({
              spelling,
              refused: true,
            });
          }
        });

        test('when a request is malformed, its request line unparsable, or its headers or URI too long, then nginx answers 400 (414) in the bad_request envelope, never 500 or a version', async () => {
          const raw = (payload: string) =>
            rawExchange(stack.edge.ports.https, payload, {
              servername: 'localhost',
              ca: stack.edge.certificate,
            });
          const cases = {
            // A POST: its access-log line must keep the method (see below).
            'a malformed header line': [
              'POST /healthz HTTP/1.1\r\nHost: localhost\r\nno colon here\r\n\r\n',
              400,
            ],
            'a header over the header buffers': [
              `GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'b'.repeat(10_000)}\r\n\r\n`,
              400,
            ],
            // These three have no URI when nginx refuses them, which a named location cannot take.
            'a space in the URI': ['GET /a b HTTP/1.1\r\nHost: localhost\r\n\r\n', 400],
            "CONNECT's host:port": ['CONNECT localhost:443 HTTP/1.1\r\nHost: localhost\r\n\r\n', 400],
            'a line that is not HTTP': ['NOT HTTP AT ALL\r\n\r\n', 400],
            'a URI over the buffers': [`GET /${'a'.repeat(10_000)} HTTP/1.1\r\nHost: localhost\r\n\r\n`, 414],
          } as const;
          const requestIds = new Map<string, string>();
          for (const [name, [payload, status]] of Object.entries(cases)) {
            const answer = await raw(payload);
            const [head = '', body = ''] = answer.split('\r\n\r\n');
            requestIds.set(name, (JSON.parse(body) as { error: { requestId: string } }).error.requestId);
            const statusLine = head.split('\r\n')[0];
            expect({ name, statusLine }).toEqual({
              name,
              statusLine: expect.stringMatching(new RegExp(`^HTTP/1\\.1 ${status} `)) as string,
            });
            expect({ name, body: JSON.parse(body) as unknown }).toEqual({
              name,
              body: {
                error: {
                  code: 'bad_request',
                  message: expect.any(String),
                  requestId: expect.stringMatching(NGINX_REQUEST_ID),
                },
              },
            });
            expect(head).toMatch(/^Server: nginx\r?$/m);
            expect(head).toMatch(/^X-Content-Type-Options: nosniff\r?$/im);
            expect(answer).not.toMatch(/nginx\/\d/);
          }

          // The error page's URI is for nginx's redirects only.
          const direct = await stack.edge.https('/.edge-error/bad-request');
          expect(direct.status).toBe(404);

          // nginx redirects to the error page as GET, and $request_method with it: the access log
          // reads the method from the request line instead, so a refused POST is logged as one.
          const postId = requestIds.get('a malformed header line')!;
          const line = (await accessLogLines(stack.edge, [postId])).get(postId)?.[0];
          expect(line).toMatch(/"POST \/healthz HTTP\/1\.1" 400 /);
        });

        test('when the app is down, then nginx answers 502 in the service_unavailable envelope with Retry-After', async () => {
          await stack.server.close();

          const res = await stack.edge.https('/api/auth/me');

          expectEdgeEnvelope(res, 502, 'service_unavailable');
          expect(res.headers['retry-after']).toBe('5');
          expect(securityHeadersOf(res)).toEqual(securityHeadersOf(appNotFound));
        });
      });

      describe('at the end', () => {
        test('when the edge is stopped, then no nginx process of it is left', async () => {
          const master = await stack.edge.masterPid();
          expect(master).toBeDefined();
          const workers = pgrep('-P', String(master));
          expect(workers.length).toBeGreaterThan(0);

          await stack.edge.stop();

          expect(pgrep('-f', stack.edge.dir)).toEqual([]);
          expect([master!, ...workers].filter(isRunning)).toEqual([]);
        });
      });
    });
  },
);
