import { spawn, type ChildProcess } from 'node:child_process';
import { runEnv } from './env';
import { IGNORE_DOTENV, ROOT } from './run-script';
import { TEST_SESSION_SECRET, type LogLine } from './test-app';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerProcess {
  child: ChildProcess;
  /** Every JSON line the process wrote to stdout, parsed, in order. */
  logs: LogLine[];
  stdout(): string;
  stderr(): string;
  /** Resolves with the first log line (past or future) whose `msg` matches; rejects after the deadline. */
  waitForLog(msg: string | RegExp, timeoutMs?: number): Promise<LogLine>;
  /** Resolves when the process exits; rejects (and SIGKILLs it) after the deadline. */
  waitForExit(timeoutMs?: number): Promise<Exit>;
  /** The exit, once known. */
  exit: Exit | undefined;
}

export interface ListeningServer extends ServerProcess {
  port: number;
}

const running = new Set<ChildProcess>();

/** The environment of a real server process in the test run: its own Redis prefix, the run's database. */
export function serverEnv(overrides: Record<string, string> = {}): Record<string, string> {
  const run = runEnv();
  return {
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: run.databaseUrl,
    REDIS_URL: run.redisUrl,
    REDIS_KEY_PREFIX: `${run.keyPrefix}proc:`,
    SESSION_SECRET: TEST_SESSION_SECRET,
    LOG_LEVEL: 'info',
    ...overrides,
  };
}

/** What to run instead of src/main.ts through tsx: node's arguments, and the directory to run them in. */
export interface ServerCommand {
  args?: string[];
  cwd?: string;
}

/**
 * Starts src/main.ts as its own process with exactly `env` (plus PATH and HOME, and no `.env`). It runs as
 * `node --import tsx` rather than through the `tsx` CLI: the CLI is a parent process that relays signals
 * to a child, so the signals under test would not reach the server itself, and killing the CLI could
 * leave the server orphaned. One process, one pid.
 */
export function spawnServer(env: Record<string, string>, command: ServerCommand = {}): ServerProcess {
  const child = spawn(process.execPath, command.args ?? ['--import', 'tsx', 'src/main.ts'], {
    cwd: command.cwd ?? ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...IGNORE_DOTENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);

  let stdout = '';
  let stderr = '';
  let pending = '';
  const logs: LogLine[] = [];
  const logWaiters = new Set<() => void>();
  child.stdout!.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    stdout += text;
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        // Not a log line; it stays in stdout() for assertions.
      }
    }
    for (const wake of logWaiters) wake();
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));

  const handle: ServerProcess = {
    child,
    logs,
    stdout: () => stdout,
    stderr: () => stderr,
    exit: undefined,
    waitForLog,
    waitForExit,
  };
  const exited = new Promise<Exit>((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      handle.exit = { code, signal };
      resolve(handle.exit);
      for (const wake of logWaiters) wake();
    });
  });

  function output(): string {
    return `\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;
  }

  function waitForLog(msg: string | RegExp, timeoutMs = 10_000): Promise<LogLine> {
    const matches = (line: LogLine) =>
      typeof line.msg === 'string' && (typeof msg === 'string' ? line.msg === msg : msg.test(line.msg));
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = logs.find(matches);
        if (found) finish(() => resolve(found));
        else if (handle.exit)
          finish(() => reject(new Error(`process exited (${handle.exit!.code}) before "${msg}"${output()}`)));
      };
      const timer = setTimeout(
        () => finish(() => reject(new Error(`no "${msg}" log within ${timeoutMs} ms${output()}`))),
        timeoutMs,
      );
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        logWaiters.delete(check);
        settle();
      };
      logWaiters.add(check);
      check();
    });
  }

  function waitForExit(timeoutMs = 10_000): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`process did not exit within ${timeoutMs} ms${output()}`));
      }, timeoutMs);
    });
    return Promise.race([exited, deadline]).finally(() => clearTimeout(timer));
  }

  return handle;
}

/**
 * Spawns the server and resolves once it logged `listening`, with the port it got. The deadline only
 * catches a server that never starts: tsx compiling the sources on a loaded CI machine has taken over
 * 15 s, so it is generous (and still inside the 30 s jest gives a test).
 */
export async function startServer(
  env: Record<string, string>,
  timeoutMs = 25_000,
  command: ServerCommand = {},
): Promise<ListeningServer> {
  const server = spawnServer(env, command);
  const listening = await server.waitForLog('listening', timeoutMs);
  return Object.assign(server, { port: listening.port as number });
}

/** For afterEach/afterAll: SIGKILLs every server process still running, whatever the test did. */
export async function killServers(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}
