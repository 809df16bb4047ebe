import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream';
import { promisify } from 'node:util';

/**
 * A TLS-terminating reverse proxy on 127.0.0.1, the test's stand-in for the nginx edge: the browser
 * talks HTTPS to it, it talks plain HTTP to the app, and the app learns the original scheme and client
 * from X-Forwarded-Proto and X-Forwarded-For (believed because TRUST_PROXY=1).
 */
export interface TlsProxy {
  port: number;
  /** `https://localhost:<port>`: the name the certificate is for, and the app's PUBLIC_URL. */
  url: string;
  /** The self-signed certificate (PEM), for clients that should verify it (`https.request({ ca })`). */
  certificate: string;
  /** Where requests go from now on; until called, every request gets a 502. */
  forwardTo(target: { host: string; port: number }): void;
  close(): Promise<void>;
}

/**
 * Hop-by-hop headers (RFC 9110 7.6.1) describe one connection and are not forwarded; Node frames each
 * side's body itself (Content-Length or chunked). The forwarding headers are set by the proxy below.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** A key and a self-signed certificate for localhost and 127.0.0.1, valid one day, made right now. */
export async function createLocalhostCertificate(): Promise<{ key: string; cert: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tls-proxy-'));
  try {
    const keyFile = path.join(dir, 'key.pem');
    const certFile = path.join(dir, 'cert.pem');
    await promisify(execFile)(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
        ...['-days', '1', '-subj', '/CN=localhost'],
        ...['-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
        ...['-keyout', keyFile, '-out', certFile],
      ],
      { timeout: 10_000 },
    );
    return { key: await readFile(keyFile, 'utf8'), cert: await readFile(certFile, 'utf8') };
  } finally {
    // The key lives on in memory only.
    await rm(dir, { recursive: true, force: true });
  }
}

/** Starts the proxy on a free port; point it at the app with `forwardTo` once the app listens. */
export async function startTlsProxy(): Promise<TlsProxy> {
  const { key, cert } = await createLocalhostCertificate();
  const agent = new http.Agent({ keepAlive: true });
  let target: { host: string; port: number } | undefined;

  const server = https.createServer({ key, cert }, (req, res) => {
    if (!target) {
      res.writeHead(502).end('no upstream yet');
      return;
    }
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(name)) headers[name] = value;
    }
    // Set, not appended, as our nginx does: whatever a client claims in X-Forwarded-* is replaced by
    // what the proxy saw itself. Host is passed on untouched.
    headers['x-forwarded-proto'] = 'https';
    headers['x-forwarded-for'] = req.socket.remoteAddress ?? '';

    const upstream = http.request(
      { agent, host: target.host, port: target.port, method: req.method, path: req.url, headers },
      (answer) => {
        // rawHeaders keeps every Set-Cookie line, in order, exactly as the app sent it.
        const raw: string[] = [];
        for (let i = 0; i < answer.rawHeaders.length; i += 2) {
          if (!HOP_BY_HOP.has(answer.rawHeaders[i]!.toLowerCase())) {
            raw.push(answer.rawHeaders[i]!, answer.rawHeaders[i + 1]!);
          }
        }
        res.writeHead(answer.statusCode!, answer.statusMessage, raw);
        pipeline(answer, res, () => {});
      },
    );
    // A failed upstream becomes a 502 if nothing was sent yet; otherwise the client's connection is cut.
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end('bad gateway');
      else res.destroy();
    });
    // A client that goes away mid-exchange takes the upstream request with it.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    // pipe, not pipeline: an upstream failure must not destroy the client's socket before the 502.
    req.pipe(upstream);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    port,
    url: `https://localhost:${port}`,
    certificate: cert,
    forwardTo(next) {
      target = next;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        agent.destroy();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

export interface HttpsAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * A request through the proxy from outside the browser (to replay a cookie), verifying the proxy's
 * certificate for `localhost`. It connects to 127.0.0.1, where the proxy listens, whatever `localhost`
 * resolves to first.
 */
export function httpsRequest(
  proxy: TlsProxy,
  pathAndQuery: string,
  {
    method = 'GET',
    headers = {},
    body,
  }: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string | Buffer } = {},
): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: proxy.port,
        servername: 'localhost',
        ca: proxy.certificate,
        method,
        path: pathAndQuery,
        headers: { host: `localhost:${proxy.port}`, ...headers },
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${pathAndQuery} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}
