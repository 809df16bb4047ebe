import { randomUUID } from 'node:crypto';
import { describeAppBehindEdge, edgeHttp2Session, rawExchange } from '../support/nginx-edge';
import { AMBIGUOUS_REQUESTS, statusesIn, wellFramedPair } from '../support/smuggling';

/**
 * ASVS 4.2.1 at the edge: nginx refuses every request whose end it cannot determine as RFC 9112 does,
 * before it reaches the app, and closes the connection, so the bytes after it are never read as a
 * request. What it passes on is rebuilt, never forwarded as received: the app only ever gets requests
 * nginx has framed itself. Over HTTP/2, a Content-Length that disagrees with the DATA frames is refused.
 * The app's own parser, for when it is reached directly: test/http/request-smuggling.test.ts.
 */

describeAppBehindEdge('request smuggling at the edge (ASVS 4.2.1)', (stack) => {
  /** Raw bytes to the https server, as a client that shook hands for our name. */
  const overTls = (payload: string) =>
    rawExchange(stack().edge.ports.https, payload, { servername: 'localhost', ca: stack().edge.certificate });
  /** A path that appears in the app's log only if the smuggled request reached it. */
  const smuggledPath = () => `/api/smuggled-${randomUUID()}`;
  /** How many requests the app has answered so far (its access lines). */
  const appRequests = () =>
    stack().t.logs.filter((line) => /^request (completed|errored|aborted)$/.test(line.msg ?? '')).length;

  test('when two well-framed requests share a connection, then the app answers both: the baseline for the refusals below', async () => {
    const path = smuggledPath();

    const received = await overTls(wellFramedPair('localhost', path));

    expect(statusesIn(received)).toEqual([400, 404]);
  });

  test.each(AMBIGUOUS_REQUESTS)(
    'when a request has $name, then nginx answers 400 bad_request, closes the connection, and neither request reaches the app',
    async ({ payload }) => {
      const path = smuggledPath();
      const before = appRequests();

      const received = await overTls(payload('localhost', path));

      expect(statusesIn(received)).toEqual([400]);
      expect(received).toMatch(/^Connection: close\r$/m);
      expect(received).toContain('"code":"bad_request"');
      expect(stack().t.rawLogs()).not.toContain(path);
      expect(appRequests()).toBe(before);
    },
  );

  test('when an HTTP/1.0 request carries Transfer-Encoding, then 400 (RFC 9112 6.1: its framing is faulty)', async () => {
    const path = smuggledPath();

    const received = await overTls(
      'POST /api/auth/login HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n' +
        'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n' +
        `GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`,
    );

    expect(statusesIn(received)).toEqual([400]);
    expect(stack().t.rawLogs()).not.toContain(path);
  });

  test('when a request ends its lines with a bare LF, then nginx accepts it and passes it on rebuilt with CRLF, so the app never parses a bare LF', async () => {
    // nginx is lenient here where the app is strict; it cannot make them disagree, since nginx writes
    // the request the app reads.
    const received = await overTls('GET /healthz HTTP/1.1\nHost: localhost\nConnection: close\n\n');

    expect(statusesIn(received)).toEqual([200]);
  });

  test('when an HTTP/2 request declares a Content-Length that its DATA frames exceed or fall short of, then nginx refuses it with 400', async () => {
    const session = edgeHttp2Session(stack().edge);
    session.on('error', () => {}); // nginx may end the session after a protocol error
    const send = (declared: number, body: string) =>
      new Promise<number>((resolve, reject) => {
        const stream = session.request({
          ':method': 'POST',
          ':path': '/api/auth/login',
          'content-type': 'application/json',
          'content-length': String(declared),
        });
        stream.on('response', (headers) => resolve(Number(headers[':status'])));
        stream.on('error', reject);
        stream.end(body);
      });
    try {
      const body = JSON.stringify({ email: 'someone@example.test', password: 'not the password 42' });
      expect(await send(body.length - 10, body)).toBe(400);
      expect(await send(body.length + 10, body)).toBe(400);
      // The same body with its true length reaches the app (a failed login, 401).
      expect(await send(body.length, body)).toBe(401);
    } finally {
      session.close();
    }
  });
});
