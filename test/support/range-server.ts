import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * How the server answers the next lookups. `breached` answers the documented format, `lowercase` the
 * same with lowercase suffixes; the others are the failures a client must survive: an error status,
 * no status line before the client's deadline, a body that stalls halfway, lines that are not
 * SUFFIX:COUNT, and a body far larger than any range.
 */
export type RangeMode =
  'breached' | 'lowercase' | 'status500' | 'slowHeaders' | 'slowBody' | 'malformed' | 'oversized';

export interface RangeRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface RangeServer {
  /** The base URL to configure: PASSWORD_BREACH_API_URL. */
  readonly url: string;
  /** Every request the server received, oldest first. */
  readonly requests: RangeRequest[];
  mode: RangeMode;
  /** Adds a password to the breach corpus the server knows (seen `count` times; 0 is a padding line). */
  addBreached(password: string, count?: number): void;
  close(): Promise<void>;
}

export const sha1Hex = (password: string) =>
  createHash('sha1').update(password, 'utf8').digest('hex').toUpperCase();

/** Long enough that any client deadline in the tests runs out first. */
const STALL_MS = 10_000;

/**
 * A local server speaking the Have I Been Pwned range API as documented: `GET /range/<5 hex>` answers
 * `SUFFIX:COUNT` lines (35 uppercase hex characters, a colon, a count) separated by CRLF; with the
 * `Add-Padding: true` request header it adds made-up suffixes with a count of 0. Every answer holds
 * the suffixes the test added for that prefix among random others, as the real API's do.
 */
export async function startRangeServer(): Promise<RangeServer> {
  const corpus = new Map<string, number>();
  const requests: RangeRequest[] = [];
  const state = { mode: 'breached' as RangeMode };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      const prefix = /^\/range\/([0-9A-F]{5})$/.exec(req.url ?? '')?.[1];
      if (req.method !== 'GET' || !prefix) {
        res.writeHead(404).end();
        return;
      }
      answer(prefix, req.headers['add-padding'] === 'true', res);
    });
  });

  function rangeLines(prefix: string, padded: boolean): string[] {
    const lines = [...corpus]
      .filter(([hash]) => hash.startsWith(prefix))
      .map(([hash, n]) => `${hash.slice(5)}:${n}`);
    const randomSuffix = () => randomBytes(18).toString('hex').slice(0, 35).toUpperCase();
    for (let i = 0; i < 20; i++) lines.push(`${randomSuffix()}:${1 + i}`);
    if (padded) for (let i = 0; i < 20; i++) lines.push(`${randomSuffix()}:0`);
    return lines.sort();
  }

  function answer(prefix: string, padded: boolean, res: ServerResponse): void {
    const lines = rangeLines(prefix, padded);
    const text = { 'Content-Type': 'text/plain' };
    switch (state.mode) {
      case 'breached':
        res.writeHead(200, text).end(lines.join('\r\n'));
        return;
      case 'lowercase':
        res.writeHead(200, text).end(lines.map((line) => line.toLowerCase()).join('\r\n'));
        return;
      case 'status500':
        res.writeHead(500, text).end('internal error');
        return;
      case 'slowHeaders':
        setTimeout(() => res.writeHead(200, text).end(lines.join('\r\n')), STALL_MS).unref();
        return;
      case 'slowBody':
        res.writeHead(200, text);
        res.write(lines.slice(0, 5).join('\r\n'));
        setTimeout(() => res.end(), STALL_MS).unref();
        return;
      case 'malformed':
        res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html><body>Service moved</body></html>');
        return;
      case 'oversized':
        // 1 MiB of well-formed lines: only the size gives it away.
        res.writeHead(200, text).end(Array(28_000).fill(lines[0]).join('\r\n'));
        return;
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get mode() {
      return state.mode;
    },
    set mode(mode) {
      state.mode = mode;
    },
    addBreached(password, count = 3861493) {
      corpus.set(sha1Hex(password), count);
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        // Stalled answers still hold their connections: end them, or close() waits for them.
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/**
 * A range server for the describe block, knowing `breached` from the start. Call it before useTestApp:
 * its hook must start the server before the app's hook reads the server's URL.
 */
export function useRangeServer(breached: readonly string[] = []): { readonly server: RangeServer } {
  let server: RangeServer | undefined;
  beforeAll(async () => {
    server = await startRangeServer();
    for (const password of breached) server.addBreached(password);
  });
  afterAll(() => server?.close());
  return {
    get server() {
      if (!server) throw new Error('the range server exists inside tests only');
      return server;
    },
  };
}
