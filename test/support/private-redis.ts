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
}

/** A server certificate and key: the server then speaks TLS only, and asks clients for no certificate. */
export interface RedisTlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
}

export async function createPrivateRedis({ tls }: { tls?: RedisTlsFiles } = {}): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const listen =
    tls === undefined
      ? ['--port', String(port)]
      : [
          ...['--port', '0', '--tls-port', String(port), '--tls-auth-clients', 'no'],
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
    const proc = spawn(
      'redis-server',
      [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    proc.once('exit', () => {
      if (child === proc) child = undefined;
    });
    await new Promise<void>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(
        () => fail(new Error(`redis-server did not start within 5 s:\n${output}`)),
        5000,
      );
      const fail = (error: Error) => {
        clearTimeout(timer);
        proc.kill('SIGKILL');
        reject(error);
      };
      const onOutput = (chunk: Buffer) => {
        output += chunk.toString();
        if (!output.includes('Ready to accept connections')) return;
        clearTimeout(timer);
        proc.stdout!.off('data', onOutput);
        resolve();
      };
      proc.stdout!.on('data', onOutput);
      proc.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      proc.once('error', fail);
      proc.once('exit', (code) =>
        fail(new Error(`redis-server exited (${code}) while starting:\n${output}`)),
      );
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
  };
}
