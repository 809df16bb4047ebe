import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rawExchange } from '../support/nginx-edge';
import { killServers, serverEnv, startServer } from '../support/server-process';
import { AMBIGUOUS_REQUESTS } from '../support/smuggling';

/**
 * ASVS 4.2.1 in the real process (src/main.ts): its server keeps Node's strict HTTP/1 parser even when
 * the environment asks every server for the lenient one (NODE_OPTIONS=--insecure-http-parser, a flag an
 * operator may add to get a misbehaving client through). test/http/request-smuggling.test.ts covers each
 * ambiguous request; this file proves that main.ts does not give that strictness up.
 */

describe('the strict HTTP parser of the process (ASVS 4.2.1)', () => {
  afterEach(() => killServers());

  test('when NODE_OPTIONS asks for --insecure-http-parser, then Transfer-Encoding with Content-Length is still 400 and the request after it is never served', async () => {
    const server = await startServer(serverEnv({ NODE_OPTIONS: '--insecure-http-parser' }));
    const smuggledPath = `/api/smuggled-${randomUUID()}`;
    const [chunkedWithLength] = AMBIGUOUS_REQUESTS;

    const received = await rawExchange(server.port, chunkedWithLength!.payload('localhost', smuggledPath));

    expect(received).toBe('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    expect(server.stdout()).not.toContain(smuggledPath);
    // The flag did reach the process (Node reads NODE_OPTIONS from its own environment).
    const environ = readFileSync(`/proc/${server.child.pid}/environ`, 'utf8').split('\0');
    expect(environ).toContain('NODE_OPTIONS=--insecure-http-parser');
  });
});
