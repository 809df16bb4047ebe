import { randomUUID } from 'node:crypto';
import { listen, type Listening } from '../support/listen';
import { rawExchange } from '../support/nginx-edge';
import { AMBIGUOUS_REQUESTS, statusesIn, wellFramedPair } from '../support/smuggling';
import { useTestApp } from '../support/use-test-app';

/**
 * ASVS 4.2.1: the app's own HTTP/1.1 parser (Node's llhttp, strict) decides where each request ends
 * exactly as RFC 9112 does, and refuses what it cannot decide, whether the nginx edge is in front
 * (test/edge/request-smuggling.test.ts) or not. Raw bytes on a real socket: no client library would
 * send these requests.
 */

describe('request smuggling at the app (ASVS 4.2.1)', () => {
  const t = useTestApp();
  let server: Listening;

  beforeAll(async () => {
    server = await listen(t.app);
  });
  afterAll(() => server?.close());

  /** A path that appears in the app's log only if the smuggled request reached it. */
  const smuggledPath = () => `/api/smuggled-${randomUUID()}`;

  test('when two well-framed requests share a connection, then both are answered: the baseline for the refusals below', async () => {
    const path = smuggledPath();

    const received = await rawExchange(server.port, wellFramedPair('localhost', path));

    expect(statusesIn(received)).toEqual([400, 404]);
  });

  test.each(AMBIGUOUS_REQUESTS)(
    'when a request has $name, then 400, the connection closes and the request after it is never answered',
    async ({ payload }) => {
      const path = smuggledPath();

      const received = await rawExchange(server.port, payload('localhost', path));

      // Node's own answer, written by the parser before Express ever sees a request.
      expect(received).toBe('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      expect(t.rawLogs()).not.toContain(path);
    },
  );

  test('when a request ends its lines with a bare LF, then 400 (a lenient parser would split lines differently)', async () => {
    const received = await rawExchange(server.port, 'GET /healthz HTTP/1.1\nHost: localhost\n\n');

    expect(statusesIn(received)).toEqual([400]);
  });

  test('when Transfer-Encoding names a coding before chunked ("identity, chunked"), then the body is framed as chunked, the one framing RFC 9112 6.3 allows', async () => {
    // chunked is the final coding, so the length is not ambiguous: Node reads the chunks and the app gets
    // `{}` (a validation error for the missing fields). The edge refuses any coding but plain chunked
    // (501), so this only reaches an app without it.
    const received = await rawExchange(
      server.port,
      'POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n' +
        'Transfer-Encoding: identity, chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
    );

    expect(statusesIn(received)).toEqual([400]);
    expect(received).toContain('"code":"validation_failed"');
  });

  test('when an HTTP/1.0 request carries Transfer-Encoding, then Node frames its body as chunked and keeps the connection if asked, where RFC 9112 6.1 says close: safe only behind the edge, which refuses it', async () => {
    // Pinned so that a change in Node shows here. Without the edge the connection is one client's own, so
    // there is no second parser to disagree with; behind it nginx answers 400 and the app never sees one.
    const path = smuggledPath();

    const received = await rawExchange(
      server.port,
      'POST /api/auth/login HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n' +
        'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n' +
        `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`,
    );

    expect(statusesIn(received)).toEqual([400, 404]);
    expect(received).toContain('"code":"validation_failed"');
  });
});
