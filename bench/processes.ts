import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..');

/** The unit of the CPU times in /proc/PID/stat (`getconf CLK_TCK`: 100 on Linux). */
export const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/**
 * On two or more CPUs the servers run on CPU 1 and the load generator on CPU 0, so neither steals the
 * other's cycles: a load generator sharing the server's CPU measures itself as much as the server.
 */
/**
 * The CPUs this run may use, read when the bench starts, before it pins itself to the load CPU
 * (availableParallelism() follows the process's affinity and a container's cpuset).
 */
export const AVAILABLE_CPUS = availableParallelism();
export const PINNED = AVAILABLE_CPUS >= 2 && spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
export const SERVER_CPU = '1';
export const LOAD_CPU = '0';

/** `command` pinned to `cpu` when pinning is possible, as is otherwise. */
export const onCpu = (cpu: string, command: string[]): string[] =>
  PINNED ? ['taskset', '-c', cpu, ...command] : command;

// One way to find a free port, shared with the tests.
export { freePort } from '../test/support/ports';

export interface Server {
  name: string;
  url: string;
  child: ChildProcess;
}

const running = new Set<ChildProcess>();

/**
 * Starts a server on the server CPU with exactly `env` (plus PATH and HOME; never the developer's .env),
 * its stdout appended to `logFile` (a server that logs writes to a file, as in production), and
 * resolves once `readyPath` answers anything but a 5xx (the app's /readyz: Postgres and Redis answer).
 */
export async function startServer(options: {
  name: string;
  args: string[];
  env: Record<string, string>;
  port: number;
  logFile: string;
  readyPath?: string;
  cwd?: string;
  /** A cgroup the server joins before node starts, so V8 sizes its heap from the cgroup's limit. */
  cgroupDir?: string;
}): Promise<Server> {
  const url = `http://127.0.0.1:${options.port}`;
  const log = openSync(options.logFile, 'a');
  const pinned = onCpu(SERVER_CPU, [process.execPath, ...options.args]);
  const command = options.cgroupDir
    ? ['sh', '-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', options.cgroupDir, ...pinned]
    : pinned;
  const child = spawn(command[0]!, command.slice(1), {
    cwd: options.cwd ?? ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      DOTENV_PATH: '/dev/null', // never a developer's .env
      HOST: '127.0.0.1',
      PORT: String(options.port),
      ...options.env,
    },
    stdio: ['ignore', log, 'pipe'],
  });
  closeSync(log);
  running.add(child);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.once('exit', () => running.delete(child));
  for (let waited = 0; waited < 30_000; waited += 100) {
    if (child.exitCode !== null) throw new Error(`${options.name} exited with ${child.exitCode}:\n${stderr}`);
    const ok = await fetch(url + (options.readyPath ?? '/')).then(
      (r) => r.status < 500,
      () => false,
    );
    if (ok) return { name: options.name, url, child };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await stopProcess(child);
  throw new Error(`${options.name} did not answer within 30 s:\n${stderr}`);
}

/** SIGTERM, then SIGKILL if it is still there after 5 s; resolves once it has exited. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Every process this run started and that still runs (used on the way out, also after a failure). */
export const stopAll = () => Promise.all([...running].map(stopProcess));

/** Runs a command to completion; throws with its output when it fails. */
export function run(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): string {
  const env = options.env
    ? { PATH: process.env.PATH ?? '', DOTENV_PATH: '/dev/null', ...options.env }
    : process.env;
  const result = spawnSync(command, args, { cwd: options.cwd ?? ROOT, env, encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} failed (${result.status}):\n${result.stderr}${result.stdout}`,
    );
  }
  return result.stdout;
}

/** CPU seconds (user + system, all threads) a process has used so far, from /proc (Linux). */
export function cpuSeconds(child: ChildProcess): number | undefined {
  try {
    // The fields after the command name, which is in parentheses and may itself contain spaces.
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}
