import request from 'supertest';
import { createClient } from 'redis';
import { createUser, login, sleep, type TestUser } from '../support/factories';
import { startPrivateSentinel, type PrivateSentinel } from '../support/private-sentinel';
import { useTestApp } from '../support/use-test-app';
import { describeWithTool } from '../support/tools';
import { expectServiceUnavailable } from '../support/assertions';
import { createCapturedLogger } from '../support/captured-logger';
import { createRedisClient } from '../../src/lib/redis';

/**
 * A real Sentinel failover (ADR 0023): the app finds its Redis through three sentinels of this file's
 * own, which watch a master and one replica on loopback. The master is killed with SIGKILL; while the
 * sentinels elect and promote the replica, every signed-in read must answer 200 or 503 (never 500,
 * never hang); afterwards the same cookie reads again, on the promoted replica, without restarting
 * the app. The shared Redis is never touched.
 */

/** A hang is a failure: every request here must be answered within this deadline. */
const ANSWER_WITHIN_MS = 5000;
/** down-after 1 s, election and promotion: a few seconds here; the bound leaves room for a busy machine. */
const FAILOVER_WITHIN_MS = 30_000;

describeWithTool(
  'redis-sentinel',
  'apt-get install redis-sentinel',
  'when the app reaches Redis through Sentinel and the master fails',
  () => {
    let sentinel: PrivateSentinel;
    let user: TestUser;

    beforeAll(async () => {
      sentinel = await startPrivateSentinel();
    }, 20_000);
    // REDIS_URL: '' unsets the test default: the sentinels name the master.
    const t = useTestApp(() => ({
      REDIS_URL: '',
      REDIS_SENTINELS: sentinel.sentinelsEnv,
      REDIS_MASTER_NAME: sentinel.masterName,
    }));
    beforeAll(async () => {
      await waitFor(async () => (await api().get('/readyz').timeout(ANSWER_WITHIN_MS)).status === 200);
      user = await createUser(t);
    }, 20_000);
    afterAll(() => sentinel?.stop());

    const api = () => request(t.app);
    const readMe = (cookie: string) =>
      api().get('/api/auth/me').set('Cookie', cookie).timeout(ANSWER_WITHIN_MS);

    async function waitFor(check: () => Promise<boolean>, withinMs = 10_000): Promise<void> {
      const until = Date.now() + withinMs;
      while (!(await check())) {
        if (Date.now() > until) throw new Error(`not reached within ${withinMs} ms`);
        await sleep(100);
      }
    }

    test('when the master is killed, then reads answer 200 or 503 during the failover and 200 again with the same cookie once the replica is promoted, without a restart', async () => {
      const cookie = await login(t, user);
      // A second session, ended through the MULTI of the revocation index: the pieces of the app that
      // use scripts and transactions work through the Sentinel client too.
      const other = await login(t, user);
      expect((await api().post('/api/auth/logout').set('Cookie', other)).status).toBe(204);
      expect((await readMe(other)).status).toBe(401);
      expect((await readMe(cookie)).status).toBe(200);
      // The guarantee is for writes that reached the replica: make sure this session's did.
      await waitForReplicaOf(sentinel);

      await sentinel.master.kill();

      const seen: number[] = [];
      const started = Date.now();
      let promoted = false;
      while (Date.now() - started < FAILOVER_WITHIN_MS) {
        const res = await readMe(cookie);
        seen.push(res.status);
        if (res.status === 503) expectServiceUnavailable(res);
        else expect(res.status).toBe(200);
        // Readiness says the same: Redis is away (503) or back (200), never an error of its own.
        expect([200, 503]).toContain((await api().get('/readyz').timeout(ANSWER_WITHIN_MS)).status);
        promoted = (await sentinel.currentMasterPort()) === sentinel.replica.port;
        if (promoted && res.status === 200) break;
        await sleep(200);
      }

      expect(promoted).toBe(true);
      // The outage was seen (the app did not read a stale copy somewhere) and ended.
      expect(seen).toContain(503);
      expect(seen.at(-1)).toBe(200);
      const me = await readMe(cookie);
      expect(me.status).toBe(200);
      expect(me.body.id).toBe(user.user.id);
      // Writes go to the new master: a new sign-in works, and /readyz is 200 again.
      await login(t, user);
      expect((await api().get('/readyz').timeout(ANSWER_WITHIN_MS)).status).toBe(200);
      expect(t.logs.filter((line) => line.msg === 'unhandled error')).toEqual([]);
    }, 60_000);

    test('when the old master comes back, then the sentinels make it a replica of the new one and the app keeps serving', async () => {
      const cookie = await login(t, user);

      await sentinel.master.start();

      const oldMaster = createClient({ url: sentinel.master.url });
      oldMaster.on('error', () => {});
      await oldMaster.connect();
      try {
        // A sentinel converts a returning master only after it has reported its role for a while
        // (sentinel.c waits four publish periods, 8 s) and on its next INFO of it (every 10 s). When it
        // does, it also disconnects the instance's clients (CLIENT KILL TYPE normal), so a poll in
        // flight then fails with "Socket closed unexpectedly": that is "not yet", and the client
        // reconnects for the next one.
        await waitFor(
          async () => (await oldMaster.info('replication').catch(() => '')).includes('role:slave'),
          // ~20 s on a quiet machine; a deadline that catches a hang, with room for a loaded CI machine.
          90_000,
        ).catch(async (error: Error) => {
          // Redis's own role switch did not happen: say what the sentinels saw, to tell why.
          const oldMasterLog = sentinel.master.recentOutput().split('\n').slice(-30).join('\n');
          throw new Error(
            `${error.message}; the sentinels:\n${await sentinel.describe()}\n\nthe old master:\n${oldMasterLog}`,
          );
        });
      } finally {
        await oldMaster.close();
      }
      expect((await readMe(cookie)).status).toBe(200);
    }, 120_000);

    // node-redis's Sentinel client gives up connecting after about 16 s without a sentinel, and
    // tears itself down: the app's client must keep trying, as the single-node client does.
    test('when no sentinel answers at start, then the client keeps trying and connects once they are back', async () => {
      await Promise.all(sentinel.sentinels.map((s) => s.kill()));
      const { logger, logs } = createCapturedLogger();
      const client = createRedisClient({
        url: 'redis://unused',
        tls: undefined,
        sentinel: {
          masterName: sentinel.masterName,
          nodes: sentinel.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
        },
        logger,
      });
      try {
        const connected = client.connect();

        await waitFor(
          async () => logs.some((line) => line.msg === 'redis sentinel: no master found, trying again'),
          30_000,
        );
        for (const s of sentinel.sentinels) await s.start();
        await connected;

        expect(await client.ping()).toBe('PONG');
      } finally {
        await client.close();
      }
    }, 60_000);
  },
);

describeWithTool(
  'redis-sentinel',
  'apt-get install redis-sentinel',
  'when a failover loses the writes that had not reached the replica (ADR 0023)',
  () => {
    let sentinel: PrivateSentinel;

    beforeAll(async () => {
      sentinel = await startPrivateSentinel({ replicationProxy: true });
    }, 20_000);
    const t = useTestApp(() => ({
      REDIS_URL: '',
      REDIS_SENTINELS: sentinel.sentinelsEnv,
      REDIS_MASTER_NAME: sentinel.masterName,
    }));
    afterAll(() => sentinel?.stop());

    const readMe = (cookie: string) =>
      request(t.app).get('/api/auth/me').set('Cookie', cookie).timeout(ANSWER_WITHIN_MS);

    test('when a sign-out and a password change were not replicated, then the sign-out is undone but the password change still ends the old session', async () => {
      const signsOut = await createUser(t);
      const changes = await createUser(t);
      const signedOutCookie = await login(t, signsOut);
      const oldCookie = await login(t, changes);
      const changingCookie = await login(t, changes);
      expect((await readMe(signedOutCookie)).status).toBe(200);
      expect((await readMe(oldCookie)).status).toBe(200);
      // Everything so far is on the replica; nothing from here on will be.
      await waitForReplicaOf(sentinel);
      sentinel.replicationLink!.stall();

      expect((await request(t.app).post('/api/auth/logout').set('Cookie', signedOutCookie)).status).toBe(204);
      const changed = await request(t.app)
        .put('/api/auth/password')
        .set('Cookie', changingCookie)
        .send({ currentPassword: changes.password, newPassword: 'a brand new passphrase 77' });
      expect(changed.status).toBe(204);
      expect((await readMe(signedOutCookie)).status).toBe(401);
      expect((await readMe(oldCookie)).status).toBe(401);

      await sentinel.master.kill();
      const until = Date.now() + FAILOVER_WITHIN_MS;
      while ((await sentinel.currentMasterPort()) !== sentinel.replica.port) {
        if (Date.now() > until) throw new Error('the replica was not promoted');
        await sleep(200);
      }
      let after = await readMe(oldCookie);
      while (after.status === 503 && Date.now() < until) {
        await sleep(200);
        after = await readMe(oldCookie);
      }

      // The password change moved the session epoch in Postgres: the session Redis forgot to delete
      // is refused anyway (and deleted now).
      expect(after.status).toBe(401);
      // The sign-out lived in Redis only: a copy of its cookie works again. This is the loss ADR 0023
      // documents, and why min-replicas-to-write exists.
      expect((await readMe(signedOutCookie)).status).toBe(200);
    }, 60_000);
  },
);

/** Waits until the replica has every write the master acknowledged so far (WAIT numreplicas timeout). */
async function waitForReplicaOf(sentinel: PrivateSentinel): Promise<void> {
  const master = createClient({ url: sentinel.master.url });
  master.on('error', () => {});
  await master.connect();
  try {
    expect(await master.sendCommand(['WAIT', '1', '2000'])).toBe(1);
  } finally {
    await master.close();
  }
}
