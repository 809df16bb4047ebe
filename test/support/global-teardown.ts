import { Client, escapeIdentifier } from 'pg';
import { createClient } from 'redis';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from './env';

/** Removes what global-setup and the tests created: the run's database and its Redis keys. */
export default async function globalTeardown(): Promise<void> {
  const database = process.env.TEST_RUN_DATABASE_NAME;
  const prefix = process.env.TEST_RUN_KEY_PREFIX;
  if (database) {
    const admin = new Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    try {
      // Includes the extra databases some tests create for themselves (app_test_<run>_*).
      const { rows } = await admin.query<{ datname: string }>(
        'SELECT datname FROM pg_database WHERE datname = $1 OR starts_with(datname, $2)',
        [database, `${database}_`],
      );
      for (const { datname } of rows) {
        await admin.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(datname)} WITH (FORCE)`);
      }
    } finally {
      await admin.end();
    }
  }
  if (prefix) {
    const redis = createClient({ url: TEST_REDIS_URL });
    await redis.connect();
    try {
      for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
        if (keys.length > 0) await redis.del(keys);
      }
    } finally {
      await redis.close();
    }
  }
}
