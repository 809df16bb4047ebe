import { spawnSync } from 'node:child_process';

/** Where `command` is on PATH, or undefined when it is not there. */
export function toolPath(command: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v "$1"`, 'sh', command], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

/** True when `command` is on PATH. */
export function hasTool(command: string): boolean {
  return toolPath(command) !== undefined;
}

/**
 * `describe`, for suites that need an outside program (redis-server, later nginx or chromium).
 * Without it the suite is skipped with a message saying how to install it, except under CI=true,
 * where a missing tool fails the run: CI installs every tool, so a missing one is a broken CI.
 */
export function describeWithTool(tool: string, install: string, name: string, suite: () => void): void {
  if (hasTool(tool)) return describe(name, suite);
  const message = `${tool} is not installed (${install})`;
  if (process.env.CI === 'true') {
    return describe(name, () => {
      test(`needs ${tool}`, () => {
        throw new Error(`${message}: CI must provide it`);
      });
    });
  }
  process.stderr.write(`Skipping "${name}": ${message}\n`);
  describe.skip(name, suite);
}
