import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { describeResult, runCommand } from '../support/commands';
import { createIsolatedDatabase } from '../support/databases';
import { IGNORE_DOTENV, ROOT } from '../support/run-script';
import { killServers, serverEnv, startServer, type ListeningServer } from '../support/server-process';

/**
 * The README's "First steps" must work when pasted: the seed command and the curl walk-through run
 * here exactly as written (only the address changes, to the port this test's server got), against a
 * real server, Postgres and Redis. An example that drifts from the API (a renamed field, a new
 * required header, a placeholder like `<id>`) fails this test instead of a new user's first hour.
 * The two tests run in order, as a reader would: the seed makes the admin the walk-through signs in as.
 */

const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The shell blocks of the README, in order. */
const shellBlocks = [...readme.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);

function blockContaining(marker: string): string {
  const block = shellBlocks.find((b) => b.includes(marker));
  if (!block) throw new Error(`no sh block of the README contains ${marker}`);
  return block;
}

describe('the README examples', () => {
  let server: ListeningServer | undefined;
  let databaseUrl: string;
  let workDir: string;

  beforeAll(async () => {
    databaseUrl = await createIsolatedDatabase('readme');
    workDir = mkdtempSync(path.join(tmpdir(), 'readme-'));
  });
  afterAll(async () => {
    await killServers();
    rmSync(workDir, { recursive: true, force: true });
  });

  const bash = (script: string) =>
    runCommand('bash', ['-e', '-o', 'pipefail', '-c', script], {
      cwd: ROOT,
      env: { ...IGNORE_DOTENV, DATABASE_URL: databaseUrl },
      timeoutMs: 60_000,
    });

  test('when the First steps seed command is pasted, then it creates the admin the curl example signs in as', async () => {
    const seedLine = blockContaining('npm run seed')
      .split('\n')
      .find((line) => line.includes('npm run seed'))!;

    const result = await bash(seedLine);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain('seed: created admin you@example.com');
  });

  test('when the curl walk-through is pasted, then every step succeeds and its effects are in the database', async () => {
    server = await startServer(serverEnv({ DATABASE_URL: databaseUrl }));
    const walkThrough = blockContaining('curl -c jar').replaceAll(
      'http://localhost:3000',
      `http://127.0.0.1:${server.port}`,
    );
    expect(walkThrough).not.toMatch(/<[a-z-]+>/); // no placeholders left for the reader to fill in

    const result = await runCommand('bash', ['-e', '-o', 'pipefail', '-c', walkThrough], {
      cwd: workDir, // the cookie jar lands here
      env: {},
      timeoutMs: 60_000,
    });

    expect({ code: result.code, output: describeResult(result) }).toMatchObject({ code: 0 });
    // The login, the list and the role change each answered with the user JSON, not an error envelope.
    expect(result.stdout).not.toContain('"error"');
    expect(result.stdout).toContain('"email":"you@example.com"');
    expect(result.stdout).toContain('"email":"ada@example.com"');
    const db = new Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      const { rows } = await db.query<{ role: string }>('SELECT role FROM users WHERE email = $1', [
        'ada@example.com',
      ]);
      expect(rows).toEqual([{ role: 'admin' }]);
    } finally {
      await db.end();
    }
    // The last step logged out: the session in the jar no longer opens anything.
    const after = await runCommand(
      'curl',
      [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-b',
        'jar',
        `http://127.0.0.1:${server.port}/api/auth/me`,
      ],
      { cwd: workDir },
    );
    expect(after.stdout).toBe('401');
  });
});
