import { spawn, type ChildProcess } from 'node:child_process';

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment outside programs get: PATH and HOME from the test process, then exactly `env`. A
 * developer's own SERVER_NAME, CERT_DIR or REQUESTS_CA_BUNDLE never leaks into what a test runs.
 */
export function toolEnv(env: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LANG: 'C.UTF-8', ...env };
}

/** Runs a program to completion; the result keeps all of its output, for assertions and failure messages. */
export function runCommand(
  file: string,
  args: string[],
  {
    env = {},
    cwd,
    timeoutMs = 30_000,
  }: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    // Its own process group, so a deadline takes down whatever it started too.
    const child = spawn(file, args, {
      cwd,
      env: toolEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      killGroup(child, 'SIGKILL');
      reject(
        new Error(`${file} ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stdout}\n${stderr}`),
      );
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** What a failed command said, for `expect(...)` messages that explain themselves. */
export function describeResult(result: CommandResult): string {
  return `exit ${result.code}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
}

export interface BackgroundProcess {
  child: ChildProcess;
  /** stdout and stderr so far, interleaved. */
  output(): string;
  /** Resolves once the output matches; rejects when the process exits first or after the deadline. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Resolves with how it exited, or with undefined if it still runs after `timeoutMs`. */
  waitForExit(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined>;
  /** SIGTERM to its process group, SIGKILL if it is still there after `graceMs`; resolves once it exited. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts a long-running program (a server, a watcher) in its own process group. */
export function startBackground(
  file: string,
  args: string[],
  { env = {}, cwd }: { env?: Record<string, string>; cwd?: string } = {},
): BackgroundProcess {
  const child = spawn(file, args, {
    cwd,
    env: toolEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const listeners = new Set<() => void>();
  const notify = () => listeners.forEach((listener) => listener());
  child.stdout!.on('data', (d: Buffer) => ((output += d.toString()), notify()));
  child.stderr!.on('data', (d: Buffer) => ((output += d.toString()), notify()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
      notify();
    });
  });
  // A program that is not installed: reported by waitForOutput as an exit.
  child.on('error', (error) => {
    output += `\n${error.message}`;
    exit ??= { code: null, signal: null };
    notify();
  });

  return {
    child,
    output: () => output,
    waitForOutput(pattern, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(output)) done(resolve);
          else if (exit)
            done(() => reject(new Error(`${file} exited before printing ${pattern}:\n${output}`)));
        };
        const timer = setTimeout(
          () =>
            done(() =>
              reject(new Error(`${file} did not print ${pattern} within ${timeoutMs} ms:\n${output}`)),
            ),
          timeoutMs,
        );
        const done = (settle: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          settle();
        };
        listeners.add(check);
        check();
      });
    },
    async waitForExit(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<undefined>(
        (resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)),
      );
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    async stop(graceMs = 5_000) {
      if (exit) return exit;
      killGroup(child, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}
