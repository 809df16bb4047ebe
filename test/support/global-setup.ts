import { randomBytes } from 'node:crypto';
import { Client, escapeIdentifier } from 'pg';
import { databaseUrlFor, TEST_DATABASE_URL } from './env';
import { runScript } from './run-script';

/** One database and one Redis key prefix per run, so runs never see each other's data. */
export default async function globalSetup(): Promise<void> {
  const runId = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const database = `app_test_${runId}`;
  const admin = new Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${escapeIdentifier(database)}`);
  } finally {
    await admin.end();
  }
  const databaseUrl = databaseUrlFor(database);
  // The real migration entry point, as `npm run migrate` runs it.
  const result = await runScript('scripts/migrate.ts', { NODE_ENV: 'test', DATABASE_URL: databaseUrl });
  if (result.code !== 0) throw new Error(`migrations failed: ${result.stderr}`);

  process.env.TEST_RUN_DATABASE_NAME = database;
  process.env.TEST_RUN_DATABASE_URL = databaseUrl;
  process.env.TEST_RUN_KEY_PREFIX = `test:${runId}:`;
}
