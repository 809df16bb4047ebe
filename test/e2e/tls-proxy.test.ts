import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeWithTool } from '../support/tools';
import { httpsRequest, startTlsProxy, type TlsProxy } from '../support/tls-proxy';

/**
 * The TLS proxy stands in for nginx in the browser test, so it must behave as our nginx will: these
 * checks keep a green browser test from resting on a proxy that quietly does something else.
 */

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bodyLength: number;
}

describeWithTool('openssl', 'apt-get install openssl', 'the TLS proxy of the browser test', () => {
  let proxy: TlsProxy;
  let upstream: http.Server;
  let seen: Seen[] = [];

  beforeAll(async () => {
    // Echoes what reached it, and answers with two cookies, as a login does.
    upstream = http.createServer((req, res) => {
      let bodyLength = 0;
      req.on('data', (chunk: Buffer) => (bodyLength += chunk.length));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, bodyLength });
        res.setHeader('Set-Cookie', ['a=1; Path=/; Secure', 'b=2; Path=/; HttpOnly']);
        res.end(`got ${bodyLength}`);
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    proxy = await startTlsProxy();
    proxy.forwardTo({ host: '127.0.0.1', port: (upstream.address() as AddressInfo).port });
  }, 20_000);

  afterAll(async () => {
    await proxy?.close();
    upstream?.closeAllConnections();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  beforeEach(() => {
    seen = [];
  });

  test('when made, then the certificate names localhost and 127.0.0.1 and a verifying client accepts it', async () => {
    const cert = new X509Certificate(proxy.certificate);
    expect(cert.subjectAltName).toContain('DNS:localhost');
    expect(cert.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(proxy.url).toBe(`https://localhost:${proxy.port}`);

    const res = await httpsRequest(proxy, '/');
    expect(res.status).toBe(200);
  });

  test('when a client sends forged X-Forwarded-*, then the app sees the proxy’s own values and the Host', async () => {
    await httpsRequest(proxy, '/path?q=1', {
      headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'http' },
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ method: 'GET', url: '/path?q=1' });
    expect(seen[0]!.headers).toMatchObject({
      'x-forwarded-proto': 'https',
      // Set, not appended: the client's claim is gone.
      'x-forwarded-for': '127.0.0.1',
      host: `localhost:${proxy.port}`,
    });
  });

  test('when a body is posted, then it reaches the app whole and every Set-Cookie comes back', async () => {
    const body = Buffer.alloc(1024 * 1024, 'x');
    const res = await httpsRequest(proxy, '/upload', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'content-length': body.length },
      body,
    });
    expect(res.body).toBe(`got ${body.length}`);
    expect(seen[0]).toMatchObject({ method: 'POST', bodyLength: body.length });
    expect(res.headers['set-cookie']).toEqual(['a=1; Path=/; Secure', 'b=2; Path=/; HttpOnly']);
  });

  test('when the app is down, then the client gets a 502', async () => {
    const down = await startTlsProxy();
    try {
      const free = http.createServer();
      await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
      const port = (free.address() as AddressInfo).port;
      await new Promise((resolve) => free.close(resolve));
      down.forwardTo({ host: '127.0.0.1', port });
      expect((await httpsRequest(down, '/')).status).toBe(502);
    } finally {
      await down.close();
    }
  });
});
