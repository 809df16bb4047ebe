import request from 'supertest';
import { expectError } from '../support/assertions';
import { listen, type Listening } from '../support/listen';
import { rawExchange } from '../support/nginx-edge';
import { useTestApp } from '../support/use-test-app';

/**
 * ASVS 13.4.4: TRACE is not supported. The app refuses it itself (src/http/methods.ts), so an app
 * reached without the edge (a misrouted port, a test deployment) never echoes a request either; the
 * edge's own refusal is in test/edge/request-smuggling.test.ts.
 */

const ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

describe('the TRACE method (ASVS 13.4.4)', () => {
  const t = useTestApp();

  test('when TRACE is sent to an API path with a cookie, then 405 method_not_allowed with Allow, and nothing of the request is echoed', async () => {
    const res = await request(t.app).trace('/api/auth/me').set('Cookie', 'sid=secret-cookie-value');

    expectError(res, 405, 'method_not_allowed');
    expect(res.headers.allow).toBe(ALLOW);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.text).not.toContain('secret-cookie-value');
  });

  test('when TRACE is sent to a page or a probe, then 405 too: the HTML error page for the page, JSON for the probe', async () => {
    const page = await request(t.app).trace('/login');
    const probe = await request(t.app).trace('/healthz');

    expect(page.status).toBe(405);
    expect(page.headers.allow).toBe(ALLOW);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.text).toMatch(/^<!doctype html>/);
    expectError(probe, 405, 'method_not_allowed');
  });

  describe('methods Node refuses before the app', () => {
    let server: Listening;

    beforeAll(async () => {
      server = await listen(t.app);
    });
    afterAll(() => server?.close());

    test('when TRACK (IIS`s TRACE) is sent, then Node`s parser answers 400 and the app never sees it', async () => {
      const received = await rawExchange(
        server.port,
        'TRACK /api/auth/me HTTP/1.1\r\nHost: localhost\r\n\r\n',
      );

      expect(received).toBe('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    });

    test('when CONNECT is sent, then Node closes the connection without an answer: the app is no tunnel', async () => {
      const received = await rawExchange(
        server.port,
        'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
      );

      expect(received).toBe('');
    });
  });
});
