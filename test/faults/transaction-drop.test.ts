import { Client } from 'pg';
import { useTestApp } from '../support/use-test-app';

/**
 * A connection that dies while a transaction holds it (failover, network reset, the server's
 * idle-in-transaction timeout). pg-pool does not listen for errors on a checked-out client, so without
 * our listener the 'error' event is an uncaught exception: under jest this test's worker would crash.
 */
// ASVS 5.0 16.5.3: a lost transaction fails the call.
describe('a connection lost inside a transaction', () => {
  const t = useTestApp();

  test('when the server terminates the connection mid-transaction, then the call fails and the process lives on', async () => {
    const admin = new Client({ connectionString: t.config.databaseUrl });
    await admin.connect();
    try {
      const work = t.db.withTransaction(async (tx) => {
        const [row] = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        await admin.query('SELECT pg_terminate_backend($1)', [row!.pid]);
        await tx.query('SELECT 1');
      });
      await expect(work).rejects.toThrow();
      // The pool replaced the dead client: the next transaction works.
      await expect(t.db.withTransaction((tx) => tx.query('SELECT 1 AS ok'))).resolves.toEqual([{ ok: 1 }]);
    } finally {
      await admin.end();
    }
  });
});
