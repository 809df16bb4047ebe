import { spawn } from 'node:child_process';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

export interface ScriptResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Entry points load `.env` from the project root (dotenv); pointing dotenv at an empty file keeps a
 * developer's local `.env` out of processes that must see exactly the environment a test gives.
 */
export const IGNORE_DOTENV = { DOTENV_PATH: '/dev/null' } as const;

/**
 * Runs a command with exactly the given environment (plus PATH and HOME, and no `.env`), and resolves
 * with its output when it exits; a command that outlives `timeoutMs` is killed and rejected.
 */
export function runCommand(
  args: readonly string[],
  { cwd = ROOT, env, timeoutMs = 20_000 }: { cwd?: string; env: Record<string, string>; timeoutMs?: number },
): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(args[0]!, args.slice(1), {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...IGNORE_DOTENV, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not exit within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs one of the project's TypeScript entry points (scripts/*.ts, src/main.ts) through tsx. */
export function runScript(
  script: string,
  env: Record<string, string>,
  { timeoutMs = 20_000 }: { timeoutMs?: number } = {},
): Promise<ScriptResult> {
  return runCommand([TSX, script], { env, timeoutMs });
}
