import path from 'node:path';
import { runCommand, type CommandResult } from './commands';

export const ROOT = path.resolve(__dirname, '..', '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

export type ScriptResult = CommandResult;

/**
 * Entry points load `.env` from the project root (dotenv); pointing dotenv at an empty file keeps a
 * developer's local `.env` out of processes that must see exactly the environment a test gives.
 */
export const IGNORE_DOTENV = { DOTENV_PATH: '/dev/null' } as const;

/** Runs one of the project's TypeScript entry points (scripts/*.ts, src/main.ts) through tsx. */
export function runScript(
  script: string,
  env: Record<string, string>,
  { timeoutMs = 20_000 }: { timeoutMs?: number } = {},
): Promise<ScriptResult> {
  return runCommand(TSX, [script], { cwd: ROOT, env: { ...IGNORE_DOTENV, ...env }, timeoutMs });
}
