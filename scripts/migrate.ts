import { existsSync } from 'node:fs';
import path from 'node:path';
import dotenv from 'dotenv';
import { Client, escapeIdentifier } from 'pg';
import { ConfigError, loadConfig, type AppConfig } from '../config/config';
import { postgresConnection } from '../src/lib/db';

/** The folder holding package.json, whether this runs from scripts/ (tsx) or dist/scripts/ (built). */
function projectRoot(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('cannot find the project root');
    dir = parent;
  }
  return dir;
}

/**
 * Development convenience: a fresh clone can run `npm run migrate` against a new local Postgres.
 * Production never does this: there the database and its (non-superuser) owner are provisioned.
 */
async function createDatabaseIfMissing(config: AppConfig): Promise<void> {
  const target = new URL(config.databaseUrl);
  const name = decodeURIComponent(target.pathname.slice(1));
  const maintenance = new URL(config.databaseUrl);
  maintenance.pathname = '/postgres';
  const client = new Client(postgresConnection(maintenance.toString(), config.databaseTls));
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount === 0) {
      try {
        await client.query(`CREATE DATABASE ${escapeIdentifier(name)}`);
        process.stdout.write(`migrations: created database ${name}\n`);
      } catch (error) {
        // A run started at the same moment created it between the check and here: it exists, go on.
        // (Postgres says 42P04 duplicate_database, or 23505 when both inserts into pg_database race.)
        const code = (error as { code?: unknown }).code;
        if (code !== '42P04' && code !== '23505') throw error;
      }
    }
  } finally {
    await client.end();
  }
}

/**
 * Applies pending SQL migrations from migrations/ with node-pg-migrate: each migration in its own
 * transaction and recorded in `pgmigrations`, so re-running is a no-op. An advisory lock makes a
 * second concurrent run wait and then find nothing to do, instead of applying twice.
 */
async function main(): Promise<void> {
  dotenv.config({ quiet: true });
  const config = loadConfig(process.env);
  if (!config.isProduction) await createDatabaseIfMissing(config);
  // node-pg-migrate 9 is ESM-only; a dynamic import loads it from this CommonJS script.
  const { runner } = await import('node-pg-migrate');
  const applied = await runner({
    // The same connection, TLS included, as the app's own (src/lib/db.ts).
    databaseUrl: postgresConnection(config.databaseUrl, config.databaseTls),
    dir: path.join(projectRoot(), 'migrations'),
    migrationsTable: 'pgmigrations',
    direction: 'up',
    count: Infinity,
    singleTransaction: false,
    advisoryLockMode: 'wait',
    checkOrder: true,
    log: () => {},
  });
  process.stdout.write(
    applied.length === 0
      ? 'migrations: database is up to date\n'
      : `migrations: applied ${applied.map((m) => m.name).join(', ')}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(
    error instanceof ConfigError ? `${error.message}\n` : `migrations failed: ${(error as Error).message}\n`,
  );
  process.exit(1);
});
