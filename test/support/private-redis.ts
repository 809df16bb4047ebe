import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './ports';

/**
 * A Redis server of the test's own, on a free port, that the test may kill and restart: the shared
 * Redis is never touched. It keeps nothing on disk, so a restart comes back empty, like a Redis that
 * lost its memory.
 */
export interface PrivateRedis {
  port: number;
  /** redis://127.0.0.1:port, or rediss://localhost:port (the certificate's name) with TLS. */
  url: string;
  /** Starts redis-server on `port` and resolves once it accepts connections. */
  start(): Promise<void>;
  /** SIGKILLs the server (an abrupt outage, not a clean shutdown) and resolves once it is gone. */
  kill(): Promise<void>;
  /** SIGSTOP: connections stay open but nothing is answered, like a Redis stuck or a network black hole. */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  /** The last lines the server wrote (stdout and stderr, across restarts): for a failing test's message. */
  recentOutput(): string;
}

/** How many lines of a server's output recentOutput() keeps. */
const KEPT_LINES = 200;

/**
 * A server certificate and key: the server then speaks TLS only, and asks clients for no certificate
 * unless `authClients` (then one that `caFile` signed is required, as in the compose stack).
 */
export interface RedisTlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
  authClients?: boolean;
}

/**
 * `args`: more redis-server arguments, e.g. `['--replicaof', '127.0.0.1', '6390']` for a replica.
 * `command`: 'redis-sentinel' runs a sentinel instead, from the config file in `args` (it must be
 * writable: a sentinel rewrites it as it learns the topology).
 */
export async function createPrivateRedis({
  tls,
  args = [],
  command = 'redis-server',
}: {
  tls?: RedisTlsFiles;
  args?: readonly string[];
  command?: 'redis-server' | 'redis-sentinel';
} = {}): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const kept: string[] = [];
  const keep = (chunk: Buffer) => {
    kept.push(
      ...chunk
        .toString()
        .split('\n')
        .filter((line) => line !== ''),
    );
    if (kept.length > KEPT_LINES) kept.splice(0, kept.length - KEPT_LINES);
  };
  const listen =
    tls === undefined
      ? ['--port', String(port)]
      : [
          ...['--port', '0', '--tls-port', String(port)],
          ...['--tls-auth-clients', tls.authClients === true ? 'yes' : 'no'],
          ...[
            '--tls-cert-file',
            tls.certFile,
            '--tls-key-file',
            tls.keyFile,
            '--tls-ca-cert-file',
            tls.caFile,
          ],
        ];

  async function start(): Promise<void> {
    if (child) throw new Error('private redis is already running');
    const serverArgs = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    // A sentinel's config file comes first; it keeps no data, so only port and bind apply.
    const argv =
      command === 'redis-sentinel'
        ? [...args, '--port', String(port), '--bind', '127.0.0.1']
        : [...listen, ...serverArgs, ...args];
    const proc = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    proc.once('exit', () => {
      if (child === proc) child = undefined;
    });
    await new Promise<void>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(
        () => fail(new Error(`${command} did not start within 5 s:\n${output}`)),
        5000,
      );
      const fail = (error: Error) => {
        clearTimeout(timer);
        proc.kill('SIGKILL');
        reject(error);
      };
      const onOutput = (chunk: Buffer) => {
        output += chunk.toString();
        // A sentinel says so once it watches its master (+monitor), not "Ready to accept connections".
        if (!/Ready to accept connections|\+monitor master/.test(output)) return;
        clearTimeout(timer);
        proc.stdout!.off('data', onOutput);
        resolve();
      };
      proc.stdout!.on('data', onOutput);
      proc.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      proc.once('error', fail);
      proc.once('exit', (code) => fail(new Error(`${command} exited (${code}) while starting:\n${output}`)));
    });
  }

  async function kill(): Promise<void> {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await gone;
  }

  function signal(name: NodeJS.Signals): void {
    if (!child) throw new Error('private redis is not running');
    child.kill(name);
  }

  return {
    port,
    url: tls === undefined ? `redis://127.0.0.1:${port}` : `rediss://localhost:${port}`,
    start,
    kill,
    freeze: () => signal('SIGSTOP'),
    thaw: () => signal('SIGCONT'),
    recentOutput: () => kept.join('\n'),
  };
}
