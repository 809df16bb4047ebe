import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SESSION_SECRET_PLACEHOLDER } from '../../config/config';
import { runEnv } from '../support/env';
import { runScript } from '../support/run-script';
import { killServers, startServer } from '../support/server-process';

/** The real entry point refusing to start: what an operator sees when production is misconfigured. */

const GOOD_SECRET = 'a-production-grade-secret-0123456789-abcdefghij';

/** A production environment that is complete and valid except for what a test overrides. */
function productionEnv(overrides: Record<string, string | undefined> = {}): Record<string, string> {
  const run = runEnv();
  const env: Record<string, string | undefined> = {
    NODE_ENV: 'production',
    PORT: '0',
    HOST: '127.0.0.1',
    PUBLIC_URL: 'https://app.example.test',
    DATABASE_URL: run.databaseUrl,
    REDIS_URL: run.redisUrl,
    REDIS_KEY_PREFIX: `${run.keyPrefix}proc:`,
    SESSION_SECRET: GOOD_SECRET,
    TRUST_PROXY: '1',
    LOG_LEVEL: 'info',
    ...overrides,
  };
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

/** No stack frames and no source positions: a configuration mistake is not a crash. */
function expectNoStackTrace(output: string): void {
  expect(output).not.toMatch(/^\s{4}at /m);
  expect(output).not.toMatch(/\.ts:\d+/);
}

describe('starting the process with a bad configuration', () => {
  let secretsDir: string;
  beforeAll(() => {
    secretsDir = mkdtempSync(path.join(tmpdir(), 'startup-config-'));
  });
  afterEach(() => killServers());
  afterAll(() => rmSync(secretsDir, { recursive: true, force: true }));

  test('when production lacks its secrets and URLs and sets bad values, then it exits non-zero listing every problem at once without a stack trace', async () => {
    const result = await runScript(
      'src/main.ts',
      productionEnv({
        SESSION_SECRET: undefined,
        DATABASE_URL: undefined,
        REDIS_URL: undefined,
        PUBLIC_URL: 'http://x',
        TRUST_PROXY: 'true',
      }),
    );

    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    const lines = result.stderr.split('\n');
    const lineAbout = (pattern: RegExp) => lines.filter((line) => pattern.test(line));
    expect(lineAbout(/SESSION_SECRET/)).toHaveLength(1);
    expect(lineAbout(/DATABASE_URL/)).toHaveLength(1);
    expect(lineAbout(/REDIS_URL/)).toHaveLength(1);
    expect(lineAbout(/PUBLIC_URL.*https/)).toHaveLength(1);
    expect(lineAbout(/TRUST_PROXY/)).toHaveLength(1);
    expectNoStackTrace(result.stderr);
    // It never got as far as listening.
    expect(result.stdout).not.toContain('listening');
  });

  test('when the production SESSION_SECRET is shorter than 32 characters, then it refuses to start and says why', async () => {
    const result = await runScript('src/main.ts', productionEnv({ SESSION_SECRET: 'x'.repeat(31) }));

    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    expect(result.stderr).toMatch(/SESSION_SECRET.*shorter than 32 characters/);
    expectNoStackTrace(result.stderr);
  });

  test('when the production SESSION_SECRET is the .env.example placeholder, then it refuses to start and says why', async () => {
    const result = await runScript(
      'src/main.ts',
      productionEnv({ SESSION_SECRET: SESSION_SECRET_PLACEHOLDER }),
    );

    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    expect(result.stderr).toMatch(/SESSION_SECRET.*placeholder/);
    expectNoStackTrace(result.stderr);
  });

  test('when one of several rotated secrets is weak, then it refuses to start naming that entry', async () => {
    const result = await runScript('src/main.ts', productionEnv({ SESSION_SECRET: `${GOOD_SECRET},short` }));

    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    expect(result.stderr).toMatch(/SESSION_SECRET entry 2 .*shorter than 32/);
    expect(result.stderr).not.toMatch(/entry 1/);
  });

  test('when SESSION_SECRET_FILE names a file holding a good secret, then production starts and listens', async () => {
    const secretFile = path.join(secretsDir, 'session_secret');
    // Secret files usually end with a newline; it is not part of the secret.
    writeFileSync(secretFile, `${GOOD_SECRET}\n`, { mode: 0o600 });

    const server = await startServer(
      productionEnv({ SESSION_SECRET: undefined, SESSION_SECRET_FILE: secretFile }),
    );

    expect(server.port).toBeGreaterThan(0);
    expect(server.stderr()).toBe('');
    // The secret itself is never logged.
    expect(server.stdout()).not.toContain(GOOD_SECRET);
    server.child.kill('SIGTERM');
    expect(await server.waitForExit(5000)).toEqual({ code: 0, signal: null });
  });

  test('when production asks for TLS that does not verify the server, then it refuses to start naming each store', async () => {
    const result = await runScript(
      'src/main.ts',
      productionEnv({
        DATABASE_URL: `${runEnv().databaseUrl}?sslmode=require`,
        REDIS_URL: 'rediss://cache.example.test:6380?rejectUnauthorized=false',
      }),
    );

    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    expect(result.stderr).toMatch(/DATABASE_URL: sslmode=require does not verify the server's certificate/);
    expect(result.stderr).toMatch(/REDIS_URL: parameter rejectUnauthorized is not supported/);
    expectNoStackTrace(result.stderr);
  });

  test('when SESSION_SECRET_FILE names a file that does not exist, then it refuses to start naming the variable', async () => {
    const missing = path.join(secretsDir, 'no-such-secret');

    const result = await runScript(
      'src/main.ts',
      productionEnv({ SESSION_SECRET: undefined, SESSION_SECRET_FILE: missing }),
    );

    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    expect(result.stderr).toMatch(/SESSION_SECRET_FILE: cannot read .*ENOENT/);
    expectNoStackTrace(result.stderr);
  });
});
