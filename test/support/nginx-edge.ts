import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { runCommand, type CommandResult } from './commands';
import { listen, type Listening } from './listen';
import { freePort } from './ports';
import { ROOT } from './run-script';
import { createTestApp, type TestApp } from './test-app';
import { createLocalhostCertificate } from './tls-proxy';
import { describeWithTool } from './tools';

/**
 * The real nginx edge (nginx/templates, nginx/snippets) run by scripts/nginx-local.sh on 127.0.0.1,
 * with a self-signed certificate for `localhost` made by openssl at test time.
 */

export const NGINX_LOCAL = path.join(ROOT, 'scripts', 'nginx-local.sh');

export interface EdgePorts {
  http: number;
  https: number;
}

/** Ports for the edge, chosen before the app is built (its PUBLIC_URL names the https one). */
export async function edgePorts(): Promise<EdgePorts> {
  const httpPort = await freePort();
  let httpsPort = await freePort();
  while (httpsPort === httpPort) httpsPort = await freePort();
  return { http: httpPort, https: httpsPort };
}

export type ProcessResult = CommandResult;

const run = (file: string, args: string[], env: Record<string, string> = {}) =>
  runCommand(file, args, { env, timeoutMs: 20_000 });

export interface EdgeAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Header name/value pairs exactly as received, to count repeated headers. */
  rawHeaders: string[];
  body: string;
}

export interface EdgeRequest {
  method?: string;
  headers?: http.OutgoingHttpHeaders;
  body?: string | Buffer;
  /** The client address nginx sees: any 127.x.y.z works on Linux's loopback. */
  localAddress?: string;
}

export interface Edge {
  ports: EdgePorts;
  /** `https://localhost:<https port>`, the app's PUBLIC_URL. */
  origin: string;
  /** The rendered configuration directory (nginx's prefix). */
  dir: string;
  /** The environment the templates were rendered with. */
  env: Record<string, string>;
  /** The certificate nginx serves (PEM): the CA for a verifying client. */
  certificate: string;
  certDir: string;
  acmeWebroot: string;
  /** An HTTPS request to 127.0.0.1, SNI and Host `localhost`, verifying the certificate. */
  https(pathAndQuery: string, options?: EdgeRequest): Promise<EdgeAnswer>;
  /** A plain HTTP request to 127.0.0.1 (Host `localhost` unless given). */
  http(pathAndQuery: string, options?: EdgeRequest): Promise<EdgeAnswer>;
  /** Runs nginx on the rendered configuration with extra arguments (`-t`, `-T`). */
  nginx(args: string[]): Promise<ProcessResult>;
  /** Runs scripts/nginx-local.sh `command` on the directory, with the edge's environment. */
  script(command: string, env?: Record<string, string>): Promise<ProcessResult>;
  /** The master's pid while nginx runs. */
  masterPid(): Promise<number | undefined>;
  /** Stops nginx (idempotent), then removes every file; resolves once the master has exited. */
  stop(): Promise<void>;
}

/** Where a request to an nginx edge goes: always 127.0.0.1, with `host` as Host (and SNI over TLS). */
export interface EdgeTarget {
  port: number;
  secure: boolean;
  /** Default: localhost. */
  host?: string;
  /** The CA a TLS client trusts (the served certificate, for a self-signed one). */
  ca?: string;
  /** A deadline that catches a hung answer (default 10 s). */
  timeoutMs?: number;
}

/** One request to an nginx edge, on a fresh connection; resolves with the whole answer. */
export function requestEdge(
  { port, secure, host = 'localhost', ca, timeoutMs = 10_000 }: EdgeTarget,
  pathAndQuery: string,
  { method = 'GET', headers = {}, body, localAddress }: EdgeRequest = {},
): Promise<EdgeAnswer> {
  return new Promise((resolve, reject) => {
    const common = {
      host: '127.0.0.1',
      port,
      method,
      path: pathAndQuery,
      headers: { host, ...headers },
      agent: false as const,
      timeout: timeoutMs,
      ...(localAddress ? { localAddress } : {}),
    };
    const req = secure
      ? https.request({ ...common, servername: host, ca }, (res) => collect(res, resolve, reject))
      : http.request(common, (res) => collect(res, resolve, reject));
    req.on('timeout', () => req.destroy(new Error(`${method} ${pathAndQuery} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Reads a whole response into an EdgeAnswer. */
function collect(
  res: http.IncomingMessage,
  resolve: (answer: EdgeAnswer) => void,
  reject: (e: Error) => void,
) {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => (body += chunk));
  res.on('end', () =>
    resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, body }),
  );
  res.on('error', reject);
}

/**
 * Starts nginx for SERVER_NAME=localhost in front of `upstream` (host:port, or a list of app instances)
 * on the given ports.
 */
export async function startEdge({
  ports,
  upstream,
}: {
  ports: EdgePorts;
  upstream: string | string[];
}): Promise<Edge> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'nginx-edge-'));
  // nginx's workers run as nobody when the tests run as root: they must reach the webroot (and the
  // temporary directories inside the prefix) through this otherwise private directory.
  await chmod(root, 0o755);
  const dir = path.join(root, 'nginx');
  const certDir = path.join(root, 'certs');
  const acmeWebroot = path.join(root, 'acme');
  await mkdir(certDir, { mode: 0o700 });
  await mkdir(path.join(acmeWebroot, '.well-known', 'acme-challenge'), { recursive: true, mode: 0o755 });

  const { key, cert } = await createLocalhostCertificate();
  // Read by nginx's master (root) only; the key stays private.
  await writeFile(path.join(certDir, 'privkey.pem'), key, { mode: 0o600 });
  await writeFile(path.join(certDir, 'fullchain.pem'), cert, { mode: 0o644 });

  const env = {
    SERVER_NAME: 'localhost',
    APP_UPSTREAM: typeof upstream === 'string' ? upstream : upstream.join(' '),
    HTTP_PORT: String(ports.http),
    HTTPS_PORT: String(ports.https),
    CERT_DIR: certDir,
    ACME_WEBROOT: acmeWebroot,
  };
  const script = (command: string, extra: Record<string, string> = {}) =>
    run('bash', [NGINX_LOCAL, command, dir], { ...env, ...extra });

  const started = await script('start');
  if (started.code !== 0) {
    await rm(root, { recursive: true, force: true });
    throw new Error(`nginx-local.sh start failed (${started.code}):\n${started.stdout}\n${started.stderr}`);
  }

  const request = (secure: boolean, pathAndQuery: string, options?: EdgeRequest) =>
    requestEdge(
      secure ? { port: ports.https, secure, ca: cert } : { port: ports.http, secure },
      pathAndQuery,
      options,
    );

  const masterPid = async () => {
    const pid = Number(await readFile(path.join(dir, 'nginx.pid'), 'utf8').catch(() => ''));
    if (!pid) return undefined;
    try {
      process.kill(pid, 0);
      return pid;
    } catch {
      return undefined;
    }
  };

  let stopped = false;
  return {
    ports,
    origin: `https://localhost:${ports.https}`,
    dir,
    env,
    certificate: cert,
    certDir,
    acmeWebroot,
    https: (p, options) => request(true, p, options),
    http: (p, options) => request(false, p, options),
    nginx: (args) =>
      run('nginx', [
        '-p',
        `${dir}/`,
        '-c',
        path.join(dir, 'nginx.conf'),
        '-e',
        path.join(dir, 'error.log'),
        ...args,
      ]),
    script,
    masterPid,
    async stop() {
      if (stopped) return;
      const result = await script('stop');
      if (result.code !== 0) throw new Error(`nginx-local.sh stop failed:\n${result.stderr}`);
      stopped = true;
      await rm(root, { recursive: true, force: true });
    },
  };
}

/**
 * nginx's access-log lines of each request id. nginx writes a line once its response is sent, so the
 * last ones may lag behind the answers: the log is read again until every id has a line, or 5 s pass.
 */
export async function accessLogLines(
  edge: Pick<Edge, 'dir'>,
  requestIds: readonly string[],
): Promise<Map<string, string[]>> {
  let log: string[] = [];
  const linesOf = (id: string) => log.filter((line) => line.includes(`request_id=${id}`));
  for (let i = 0; i < 50; i++) {
    log = (await readFile(path.join(edge.dir, 'access.log'), 'utf8').catch(() => '')).split('\n');
    if (requestIds.every((id) => linesOf(id).length > 0)) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return new Map(requestIds.map((id) => [id, linesOf(id)]));
}

/** How many times a header appears in a response (case-insensitive), repeated lines counted apart. */
export function headerCount(answer: EdgeAnswer, name: string): number {
  let count = 0;
  for (let i = 0; i < answer.rawHeaders.length; i += 2) {
    if (answer.rawHeaders[i]!.toLowerCase() === name.toLowerCase()) count++;
  }
  return count;
}

/**
 * Sends raw bytes on a fresh connection (TLS with `servername` when given) and resolves with what came
 * back before the server closed it: an empty string when nginx answers 444.
 */
export function rawExchange(
  port: number,
  payload: string,
  { servername, ca }: { servername?: string; ca?: string } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: net.Socket = servername
      ? tls.connect({ host: '127.0.0.1', port, servername, ca }, () => socket.write(payload))
      : net.connect({ host: '127.0.0.1', port }, () => socket.write(payload));
    let received = '';
    socket.setEncoding('utf8');
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer and no close within 10 s')));
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('end', () => socket.end());
    socket.on('close', () => resolve(received));
    // A reset after the request is a close too (nothing was answered).
    socket.on('error', (error: NodeJS.ErrnoException) =>
      error.code === 'ECONNRESET' ? resolve(received) : reject(error),
    );
  });
}

/** An HTTP/2 session with the edge's https server: 127.0.0.1, SNI and `:authority` localhost, h2 by ALPN. */
export function edgeHttp2Session(edge: Edge): http2.ClientHttp2Session {
  return http2.connect(edge.origin, {
    createConnection: () =>
      tls.connect({
        host: '127.0.0.1',
        port: edge.ports.https,
        servername: 'localhost',
        ca: edge.certificate,
        ALPNProtocols: ['h2'],
      }),
  });
}

export interface AppBehindEdge {
  t: TestApp;
  server: Listening;
  edge: Edge;
  /** Stops nginx, the app's server and its connections; safe to call twice. */
  close(): Promise<void>;
}

/**
 * The app in production mode (Secure `__Host-` cookie, TRUST_PROXY=1, its PUBLIC_URL the edge's origin)
 * on a real port, with the edge in front of it. `env` adds to the app's environment.
 */
export async function startAppBehindEdge(env: Record<string, string> = {}): Promise<AppBehindEdge> {
  const ports = await edgePorts();
  const t = await createTestApp({
    NODE_ENV: 'production',
    PUBLIC_URL: `https://localhost:${ports.https}`,
    TRUST_PROXY: '1',
    SESSION_SECRET: randomBytes(36).toString('base64url'), // 48 characters
    ...env,
  });
  let server: Listening | undefined;
  let edge: Edge | undefined;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await edge?.stop();
    if (server?.server.listening) await server.close();
    await t.close();
  };
  try {
    server = await listen(t.app);
    edge = await startEdge({ ports, upstream: `127.0.0.1:${server.port}` });
  } catch (error) {
    await close();
    throw error;
  }
  return { t, server, edge, close };
}

/**
 * A suite against one app behind the edge (startAppBehindEdge with `env`), started before its first test
 * and closed after its last; `suite` reads it through the getter it is given. Skipped where nginx or
 * openssl is missing (failed under CI=true: describeWithTool).
 */
export function describeAppBehindEdge(
  name: string,
  suite: (stack: () => AppBehindEdge) => void,
  env: Record<string, string> = {},
): void {
  describeWithTool('nginx', 'run these suites with npm run test:edge', name, () => {
    describeWithTool('openssl', 'apt-get install openssl', 'in production mode', () => {
      let stack: AppBehindEdge | undefined;

      beforeAll(async () => {
        stack = await startAppBehindEdge(env);
      }, 30_000);
      afterAll(() => stack?.close());

      suite(() => {
        if (!stack) throw new Error('the edge exists inside tests only');
        return stack;
      });
    });
  });
}

/**
 * Whether a process still runs. A zombie (exited, not yet reaped: the daemonized master's parent is
 * init, which some containers never let reap) counts as gone.
 */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** pids that `pgrep` with these arguments lists. */
export const pgrep = (...args: string[]) =>
  spawnSync('pgrep', args, { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
