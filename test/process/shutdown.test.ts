import net from 'node:net';
import { sleep } from '../support/factories';
import { killServers, serverEnv, startServer } from '../support/server-process';

/**
 * The real process (src/main.ts) under signals, spoken to over raw TCP so the test controls exactly
 * when each byte of a request arrives.
 */

const LOGIN_BODY = JSON.stringify({ email: 'nobody-shutdown@example.test', password: 'not the password 42' });

/** Everything a socket receives until it closes; rejects if it is still open after the deadline. */
function collectUntilClosed(socket: net.Socket, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`socket still open after ${timeoutMs} ms; received so far:\n${received}`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    socket.on('error', () => {}); // a reset after the response is still "closed" for these tests
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
  });
}

/** Resolves once `text` has arrived on the socket. */
function waitForText(socket: net.Socket, text: string, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    let received = '';
    const timer = setTimeout(() => reject(new Error(`no "${text}" within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      received += chunk.toString();
      if (!received.includes(text)) return;
      clearTimeout(timer);
      socket.off('data', onData);
      resolve();
    };
    socket.on('data', onData);
  });
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** The error code of a fresh connection attempt ('connected' if the server still accepts). */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/**
 * Sends the headers of a login request and the first bytes of its body, and resolves once the server
 * answered `100 Continue`: proof that it parsed the headers and the request is in flight.
 */
async function startLoginRequest(port: number): Promise<{ socket: net.Socket; rest: string }> {
  const socket = await connect(port);
  const continued = waitForText(socket, '100 Continue');
  const split = 10;
  socket.write(
    'POST /api/auth/login HTTP/1.1\r\n' +
      'Host: 127.0.0.1\r\n' +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(LOGIN_BODY)}\r\n` +
      'Expect: 100-continue\r\n' +
      '\r\n' +
      LOGIN_BODY.slice(0, split),
  );
  await continued;
  return { socket, rest: LOGIN_BODY.slice(split) };
}

/** The final response in what a socket received (after any interim 100 Continue). */
function parseResponse(raw: string): { status: number; headers: Record<string, string>; body: string } {
  const final = raw.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
  const end = final.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`no complete response head in:\n${raw}`);
  const [statusLine, ...headerLines] = final.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, body: final.slice(end + 4) };
}

describe('graceful shutdown of the server process', () => {
  const sockets: net.Socket[] = [];
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await killServers();
  });

  /** A keep-alive connection idle after one request, as a proxy keeps its connections between requests. */
  async function keptConnection(port: number): Promise<net.Socket> {
    const socket = await connect(port);
    sockets.push(socket);
    const answered = waitForText(socket, '"status":"ok"');
    socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await answered;
    return socket;
  }

  test('when SIGTERM arrives during a request, then that request and any that arrive meanwhile get their full responses, and the process exits 0', async () => {
    const server = await startServer(serverEnv({ SHUTDOWN_TIMEOUT_MS: '10000' }));
    const { socket, rest } = await startLoginRequest(server.port);
    sockets.push(socket);
    const received = collectUntilClosed(socket, 5000);

    server.child.kill('SIGTERM');
    await server.waitForLog(/^shutting down/, 5000);
    await sleep(300);
    // Still listening while a request is open: a request already on its way (in a proxy, in the
    // kernel's accept queue) is served rather than reset, and told not to reuse its connection.
    const late = await connect(server.port);
    sockets.push(late);
    const lateAnswer = collectUntilClosed(late, 5000);
    late.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const lateResponse = parseResponse(await lateAnswer);
    expect({ status: lateResponse.status, connection: lateResponse.headers.connection }).toEqual({
      status: 200,
      connection: 'close',
    });
    socket.write(rest);

    const response = parseResponse(await received);
    expect(response.status).toBe(401);
    expect(Buffer.byteLength(response.body)).toBe(Number(response.headers['content-length']));
    expect(JSON.parse(response.body)).toEqual({
      error: {
        code: 'invalid_credentials',
        message: expect.any(String),
        requestId: response.headers['x-request-id'],
      },
    });
    // The client learns not to reuse the connection, and the server does not wait for it to idle out.
    expect(response.headers.connection).toBe('close');
    // A deadline far below SHUTDOWN_TIMEOUT_MS: the exit follows the last response, not the timeout.
    expect(await server.waitForExit(5000)).toEqual({ code: 0, signal: null });
    expect(await tryConnect(server.port)).toBe('ECONNREFUSED');
    expect(server.logs.map((line) => line.msg)).toContain('shutdown complete');
    expect(server.logs.map((line) => line.msg)).not.toContain(
      'shutdown timeout: closing remaining connections',
    );
  });

  test('when requests keep coming after SIGTERM, then the drain still ends, well before SHUTDOWN_TIMEOUT_MS, and the process exits 0', async () => {
    const server = await startServer(serverEnv({ SHUTDOWN_TIMEOUT_MS: '10000' }));
    let sending = true;
    // A request every 50 ms: never the quiet moment that ends the drain on its own.
    const traffic = (async () => {
      while (sending) {
        await fetch(`http://127.0.0.1:${server.port}/healthz`).catch(() => undefined);
        await sleep(50);
      }
    })();
    await sleep(200);

    server.child.kill('SIGTERM');
    const exit = await server.waitForExit(8000);
    sending = false;
    await traffic;

    expect(exit).toEqual({ code: 0, signal: null });
    expect(server.logs.map((line) => line.msg)).not.toContain(
      'shutdown timeout: closing remaining connections',
    );
  });

  test('when SIGINT arrives, then the process shuts down the same way and exits 0', async () => {
    const server = await startServer(serverEnv());

    server.child.kill('SIGINT');

    expect(await server.waitForExit(5000)).toEqual({ code: 0, signal: null });
    const complete = server.logs.find((line) => line.msg === 'shutdown complete');
    expect(complete).toBeDefined();
    expect(server.logs.find((line) => /^shutting down/.test(line.msg ?? ''))).toMatchObject({
      signal: 'SIGINT',
    });
  });

  test('when an idle keep-alive connection is open, then SIGTERM closes it and the exit does not wait for the timeout', async () => {
    const server = await startServer(serverEnv({ SHUTDOWN_TIMEOUT_MS: '10000' }));
    const socket = await keptConnection(server.port);
    const closed = collectUntilClosed(socket, 5000);

    server.child.kill('SIGTERM');

    await expect(closed).resolves.toBe('');
    expect(await server.waitForExit(5000)).toEqual({ code: 0, signal: null });
  });

  test('when a request is written to an idle connection just as the server stops listening, then it is served, not cut', async () => {
    const server = await startServer(serverEnv({ SHUTDOWN_TIMEOUT_MS: '10000' }));
    const socket = await keptConnection(server.port);
    const received = collectUntilClosed(socket, 5000);

    server.child.kill('SIGTERM');
    // The drain ends on a quiet moment (nothing asked), and the server stops listening.
    const until = Date.now() + 5000;
    while ((await tryConnect(server.port)) === 'connected') {
      if (Date.now() > until) throw new Error('the server still listens 5 s after SIGTERM');
      await sleep(5);
    }
    // The proxy, not yet told, sends a request on the connection it kept: it was sent, so it must
    // not be cut (a proxy answers a cut POST with 502 rather than send it twice).
    socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');

    const response = parseResponse(await received);
    expect(response.status).toBe(200);
    expect(response.headers.connection).toBe('close');
    expect(await server.waitForExit(5000)).toEqual({ code: 0, signal: null });
  });

  test('when a request body never completes, then SHUTDOWN_TIMEOUT_MS bounds the wait: the connection is closed and the process exits 0', async () => {
    const server = await startServer(serverEnv({ SHUTDOWN_TIMEOUT_MS: '500' }));
    const { socket } = await startLoginRequest(server.port);
    sockets.push(socket);
    const received = collectUntilClosed(socket, 5000);

    server.child.kill('SIGTERM');

    expect(await server.waitForExit(5000)).toEqual({ code: 0, signal: null });
    // The stalled request got no response: its socket was simply closed.
    expect(await received).toBe('');
    const messages = server.logs.map((line) => line.msg);
    expect(messages).toContain('shutdown timeout: closing remaining connections');
    expect(messages).toContain('shutdown complete');
  });

  test('when a second signal arrives during shutdown, then the process exits at once with code 1', async () => {
    const server = await startServer(serverEnv({ SHUTDOWN_TIMEOUT_MS: '60000' }));
    const { socket } = await startLoginRequest(server.port);
    sockets.push(socket);

    server.child.kill('SIGTERM');
    await server.waitForLog(/^shutting down/, 5000);
    server.child.kill('SIGTERM');

    expect(await server.waitForExit(5000)).toEqual({ code: 1, signal: null });
    expect(server.logs.map((line) => line.msg)).toContain('second signal during shutdown: exiting now');
  });
});
