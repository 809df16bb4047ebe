import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, isListening } from './ports';

/**
 * A real syslog server for the log-shipping tests: Debian's rsyslogd (packages rsyslog and
 * rsyslog-gnutls) with one TLS listener on 127.0.0.1 (imtcp over the gtls stream driver, TLS only:
 * StreamDriver.Mode 1), writing every message it receives to a file of its own. Nothing of the
 * machine's syslog is used or touched: its own configuration, pid file and work directory under `dir`.
 */
export interface SyslogReceiver {
  port: number;
  /** One line per received message: `APP-NAME MSG` (APP-NAME is the sender's tag). */
  receivedFile: string;
  start(): Promise<void>;
  /** SIGTERM, and resolves once rsyslogd has exited (and its port is closed). */
  stop(): Promise<void>;
  /** The messages received so far, by tag. */
  received(): { tag: string; message: string }[];
}

export interface ReceiverTls {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export async function createSyslogReceiver(dir: string, tls: ReceiverTls): Promise<SyslogReceiver> {
  const port = await freePort();
  const work = path.join(dir, 'rsyslog-work');
  mkdirSync(work, { recursive: true });
  const receivedFile = path.join(dir, 'received.log');
  const config = path.join(dir, 'rsyslog.conf');
  const pidFile = path.join(dir, 'rsyslogd.pid');
  writeFileSync(
    config,
    [
      `global(workDirectory="${work}"`,
      '       defaultNetstreamDriver="gtls"',
      `       defaultNetstreamDriverCAFile="${tls.caFile}"`,
      `       defaultNetstreamDriverCertFile="${tls.certFile}"`,
      `       defaultNetstreamDriverKeyFile="${tls.keyFile}")`,
      // TLS only, and no client certificate asked for (anon): the sender verifies the server.
      'module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")',
      `input(type="imtcp" address="127.0.0.1" port="${port}")`,
      'template(name="received" type="string" string="%app-name% %msg%\\n")',
      `action(type="omfile" file="${receivedFile}" template="received" flushOnTXEnd="on")`,
      '',
    ].join('\n'),
  );
  writeFileSync(receivedFile, '');

  let child: ChildProcess | undefined;
  let output = '';

  async function start(): Promise<void> {
    if (child) throw new Error('the syslog receiver is already running');
    const proc = spawn('rsyslogd', ['-n', '-f', config, '-i', pidFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    proc.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    proc.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    proc.once('exit', () => {
      if (child === proc) child = undefined;
    });
    const deadline = Date.now() + 10_000;
    while (!(await isListening(port))) {
      if (!child || Date.now() > deadline) {
        await stop();
        throw new Error(`rsyslogd did not listen on 127.0.0.1:${port} within 10 s:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async function stop(): Promise<void> {
    const proc = child;
    if (!proc) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGTERM');
    });
  }

  function received(): { tag: string; message: string }[] {
    return readFileSync(receivedFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const space = line.indexOf(' ');
        return { tag: line.slice(0, space), message: line.slice(space + 1) };
      });
  }

  return {
    port,
    receivedFile,
    start,
    stop,
    received,
  };
}
