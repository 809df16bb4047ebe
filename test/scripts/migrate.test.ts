import { readdirSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { createIsolatedDatabase } from '../support/databases';
import { databaseUrlFor } from '../support/env';
import { ROOT, runScript, type ScriptResult } from '../support/run-script';

/** Every migration in migrations/, in the order they apply: each run must record exactly these. */
const ALL_MIGRATIONS = readdirSync(path.join(ROOT, 'migrations'))
  .filter((file) => file.endsWith('.sql'))
  .map((file) => file.replace(/\.sql$/, ''))
  .sort();

/** `npm run migrate` (scripts/migrate.ts) as its own process, against databases of its own. */

const migrate = (databaseUrl: string): Promise<ScriptResult> =>
  runScript('scripts/migrate.ts', { NODE_ENV: 'test', DATABASE_URL: databaseUrl });

async function withClient<T>(databaseUrl: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

interface MigrationRow {
  id: number;
  name: string;
  run_on: Date;
}
const recordedMigrations = (databaseUrl: string) =>
  withClient(databaseUrl, async (client) => {
    const { rows } = await client.query<MigrationRow>(
      'SELECT id, name, run_on FROM pgmigrations ORDER BY id',
    );
    return rows;
  });
const tableExists = (databaseUrl: string, table: string) =>
  withClient(databaseUrl, async (client) => {
    const { rows } = await client.query<{ found: string | null }>('SELECT to_regclass($1) AS found', [table]);
    return rows[0]?.found !== null;
  });

describe('migrate', () => {
  describe('on a fresh database', () => {
    let databaseUrl: string;
    let firstRun: ScriptResult;
    beforeAll(async () => {
      databaseUrl = await createIsolatedDatabase('migrate_fresh', { migrate: false });
      firstRun = await migrate(databaseUrl);
    });

    test('when it runs the first time, then it applies 0001, creates the users table and records the migration', async () => {
      expect(firstRun.stderr).toBe('');
      expect(firstRun.code).toBe(0);
      expect(firstRun.stdout).toContain('migrations: applied 0001_create-users');
      expect(await tableExists(databaseUrl, 'users')).toBe(true);
      expect((await recordedMigrations(databaseUrl)).map((row) => row.name)).toEqual(ALL_MIGRATIONS);
    });

    test('when it runs again, then it is a no-op that says the database is up to date', async () => {
      const before = await recordedMigrations(databaseUrl);

      const again = await migrate(databaseUrl);

      expect(again.code).toBe(0);
      expect(again.stdout).toContain('migrations: database is up to date');
      expect(again.stdout).not.toContain('applied');
      expect(await recordedMigrations(databaseUrl)).toEqual(before);
    });

    test.each([
      ['uppercase letters', 'Alice@Example.test'],
      ['surrounding spaces', ' alice@example.test '],
    ])(
      'when an email with %s is inserted with plain SQL, then the users_email_normalized constraint refuses it',
      async (_label, email) => {
        const insert = withClient(databaseUrl, (client) =>
          client.query(`INSERT INTO users (email, name, password_hash) VALUES ($1, 'Alice', 'x')`, [email]),
        );

        await expect(insert).rejects.toMatchObject({ code: '23514', constraint: 'users_email_normalized' });
      },
    );
  });

  test('when two runs start at the same time on a fresh database, then both exit 0 and the migration is applied once', async () => {
    const databaseUrl = await createIsolatedDatabase('migrate_race', { migrate: false });

    const runs = await Promise.all([migrate(databaseUrl), migrate(databaseUrl)]);

    expect(runs.map((run) => [run.code, run.stderr])).toEqual([
      [0, ''],
      [0, ''],
    ]);
    const output = runs.map((run) => run.stdout).join('');
    expect(output.match(/applied 0001_create-users/g)).toHaveLength(1);
    expect((await recordedMigrations(databaseUrl)).map((row) => row.name)).toEqual(ALL_MIGRATIONS);
  });

  test('when two development runs start at the same time and the database does not exist yet, then it is created once and both exit 0', async () => {
    const runDatabase = process.env.TEST_RUN_DATABASE_NAME!;
    // Named after the run's database, so global-teardown drops it.
    const databaseUrl = databaseUrlFor(`${runDatabase}_migrate_missing`);

    const runs = await Promise.all([migrate(databaseUrl), migrate(databaseUrl)]);

    expect(runs.map((run) => [run.code, run.stderr])).toEqual([
      [0, ''],
      [0, ''],
    ]);
    const output = runs.map((run) => run.stdout).join('');
    expect(output).toContain(`created database ${runDatabase}_migrate_missing`);
    expect((await recordedMigrations(databaseUrl)).map((row) => row.name)).toEqual(ALL_MIGRATIONS);
  });
});
