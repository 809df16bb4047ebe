import { Client, escapeIdentifier } from 'pg';
import { databaseUrlFor, TEST_DATABASE_URL } from './env';
import { runScript } from './run-script';

/**
 * A migrated database of its own for tests that need to control global state (how many admins
 * exist, a missing schema). Named `<run database>_<suffix>`, so global-teardown drops it.
 */
export async function createIsolatedDatabase(suffix: string, { migrate = true } = {}): Promise<string> {
  const runDatabase = process.env.TEST_RUN_DATABASE_NAME;
  if (!runDatabase) throw new Error('run the tests through jest');
  const name = `${runDatabase}_${suffix}`;
  const admin = new Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(name)} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  const url = databaseUrlFor(name);
  if (migrate) {
    const result = await runScript('scripts/migrate.ts', { NODE_ENV: 'test', DATABASE_URL: url });
    if (result.code !== 0) throw new Error(`migrations failed: ${result.stderr}`);
  }
  return url;
}
