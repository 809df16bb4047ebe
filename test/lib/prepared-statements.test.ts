import { randomBytes } from 'node:crypto';
import { createDb, type Db } from '../../src/lib/db';
import { createUsersRepository } from '../../src/users/users.repository';
import { createCapturedLogger } from '../support/captured-logger';
import { runEnv } from '../support/env';

/**
 * The per-request user lookup runs as a named statement, parsed and planned once per connection
 * (src/lib/db.ts, ADR 0043), and a named statement survives a migration that changes the type of a
 * column it returns. A pool of one connection, so every query below runs on the same connection and
 * pg_prepared_statements (which lists only the asking connection's statements) sees them.
 */
describe('prepared statements (ADR 0043)', () => {
  const captured = createCapturedLogger('info');
  let db: Db;

  beforeEach(() => {
    db = createDb({ url: runEnv().databaseUrl, tls: undefined, logger: captured.logger, max: 1 });
  });
  afterEach(() => db.close());

  const preparedNames = async () =>
    (await db.query<{ name: string }>('SELECT name FROM pg_prepared_statements ORDER BY name')).map(
      (r) => r.name,
    );

  test('when a user is looked up by id, then the connection holds the lookup as a prepared statement, and an ordinary query leaves none', async () => {
    await db.query('SELECT id FROM users WHERE id = $1', ['00000000-0000-4000-8000-000000000000']);
    expect(await preparedNames()).toEqual([]);

    const users = createUsersRepository(db);
    expect(await users.findById('00000000-0000-4000-8000-000000000000')).toBeNull();
    expect(await users.findById('00000000-0000-4000-8000-000000000001')).toBeNull();

    expect(await preparedNames()).toEqual(['users_find_by_id']);
  });

  test('when a migration changes the type of a column a prepared statement returns, then the next call still answers, run unnamed on a new connection, and says so in the log', async () => {
    // A table of this test's own: other files share the run's database.
    const table = `prepared_probe_${randomBytes(4).toString('hex')}`;
    await db.query(`CREATE TABLE ${table} (value integer)`);
    try {
      await db.query(`INSERT INTO ${table} VALUES (7)`);
      const read = () => db.query<{ value: unknown }>(`SELECT value FROM ${table}`, [], { prepare: 'probe' });
      const pid = () => db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      expect(await read()).toEqual([{ value: 7 }]);
      const [before] = await pid();

      await db.query(`ALTER TABLE ${table} ALTER COLUMN value TYPE text`);

      expect(await read()).toEqual([{ value: '7' }]);
      // The connection whose plan was refused is gone; the new one prepares the statement again.
      expect(await pid()).not.toEqual([before]);
      expect(await read()).toEqual([{ value: '7' }]);
      expect(await preparedNames()).toEqual(['probe']);
      expect(captured.logs.filter((l) => l.statement === 'probe')).toEqual([
        expect.objectContaining({ level: 'warn', msg: expect.stringMatching(/outdated/) }),
      ]);
    } finally {
      await db.query(`DROP TABLE ${table}`);
    }
  });

  test('when a prepared statement fails for another reason, then the error is the caller`s, not retried', async () => {
    await expect(db.query('SELECT 1 / $1::int AS q', [0], { prepare: 'divide' })).rejects.toMatchObject({
      code: '22012',
    });
    // A retry would have said so (and failed the same way).
    expect(captured.logs.filter((l) => l.statement === 'divide')).toEqual([]);
  });

  test('when Postgres refuses a prepared statement as unsupported for another reason than an outdated plan, then it is not retried', async () => {
    // Also SQLSTATE 0A000 (feature_not_supported), raised while parsing, not by the plan cache.
    await expect(
      db.query('SELECT count(*) AS n FROM users FOR UPDATE', [], { prepare: 'locked_count' }),
    ).rejects.toMatchObject({ code: '0A000' });
    expect(captured.logs.filter((l) => l.statement === 'locked_count')).toEqual([]);
  });

  test('when a statement other than a SELECT, or a name already given to another text, is to be prepared, then it is refused before it reaches Postgres', async () => {
    await expect(db.query('DELETE FROM users WHERE id = $1', ['x'], { prepare: 'wipe' })).rejects.toThrow(
      /only a SELECT/,
    );
    await db.query('SELECT 1 AS one', [], { prepare: 'one' });
    await expect(db.query('SELECT 2 AS two', [], { prepare: 'one' })).rejects.toThrow(/another text/);
    expect(await preparedNames()).toEqual(['one']);
  });
});
