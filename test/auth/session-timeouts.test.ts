import { expectError } from '../support/assertions';
import { me, signedIn, sleep } from '../support/factories';
import { readStoredSession, sessionKey, sidOf } from '../support/sessions';
import type { TestApp } from '../support/test-app';
import { withTestApp } from '../support/use-test-app';

// These tests wait out real (short) timeouts, so they run concurrently, each with its own app.
// Each creates its app inside the test: jest does not order beforeAll before concurrent tests reliably.

const sleepUntil = (epochMs: number) => sleep(Math.max(0, epochMs - Date.now()));

/** The Redis TTL never outlives the idle timeout nor (to Redis's whole-second EX granularity) the absolute deadline. */
async function expectTtlWithinLimits(t: TestApp, sid: string, authenticatedAt: number): Promise<void> {
  const pttl = await t.redis.pTTL(sessionKey(t, sid));
  const leftMs = authenticatedAt + t.config.session.absoluteTimeoutS * 1000 - Date.now();
  expect(pttl).toBeGreaterThan(0);
  expect(pttl).toBeLessThanOrEqual(t.config.session.idleTimeoutS * 1000);
  expect(pttl).toBeLessThanOrEqual(leftMs + 1000);
}

// ASVS 5.0 7.1.1, 7.3.1, 7.3.2: the documented idle and absolute timeouts.
describe('session timeouts', () => {
  test.concurrent(
    'when requests keep coming within the idle window, then the session outlives the idle timeout; when they stop, then it ends',
    () =>
      withTestApp({ SESSION_IDLE_TIMEOUT_S: '2', SESSION_ABSOLUTE_TIMEOUT_S: '60' }, async (t) => {
        const { cookie } = await signedIn(t);
        const sid = sidOf(cookie);
        const { authenticatedAt } = (await readStoredSession(t, sid))!;
        await expectTtlWithinLimits(t, sid, authenticatedAt!);

        // 4 requests 1 s apart: 4 s in total, twice the idle timeout, never 2 s without activity.
        for (let i = 1; i <= 4; i++) {
          await sleepUntil(authenticatedAt! + i * 1000);
          const res = await me(t, cookie);
          expect(res.status).toBe(200);
          await expectTtlWithinLimits(t, sid, authenticatedAt!);
        }

        await sleep(2500);
        const res = await me(t, cookie);
        expectError(res, 401, 'unauthenticated');
        expect(await t.redis.exists(sessionKey(t, sid))).toBe(0);
      }),
  );

  test.concurrent('when a session stays active past the absolute timeout, then it ends anyway', () =>
    withTestApp({ SESSION_IDLE_TIMEOUT_S: '3', SESSION_ABSOLUTE_TIMEOUT_S: '4' }, async (t) => {
      const { cookie } = await signedIn(t);
      const sid = sidOf(cookie);
      const { authenticatedAt } = (await readStoredSession(t, sid))!;
      await expectTtlWithinLimits(t, sid, authenticatedAt!);

      for (let i = 1; i <= 3; i++) {
        await sleepUntil(authenticatedAt! + i * 1000);
        expect((await me(t, cookie)).status).toBe(200);
        // At 3 s only 1 s is left: the TTL must shrink to it rather than grant the full idle 3 s.
        await expectTtlWithinLimits(t, sid, authenticatedAt!);
      }

      // 1.5 s after the last request: well inside the 3 s idle window, but past the 4 s deadline.
      await sleepUntil(authenticatedAt! + 4500);
      const res = await me(t, cookie);
      expectError(res, 401, 'unauthenticated');
    }),
  );

  test.concurrent(
    'when Redis still holds a session past its absolute deadline, then the server refuses it and deletes it',
    () =>
      withTestApp({ SESSION_IDLE_TIMEOUT_S: '600', SESSION_ABSOLUTE_TIMEOUT_S: '900' }, async (t) => {
        const { cookie } = await signedIn(t);
        const sid = sidOf(cookie);
        const key = sessionKey(t, sid);
        const stored = (await readStoredSession(t, sid))!;
        // Logged in 901 s ago, as far as the session says; the key keeps its TTL, so Redis keeps it.
        await t.redis.set(key, JSON.stringify({ ...stored, authenticatedAt: Date.now() - 901_000 }), {
          KEEPTTL: true,
        });
        expect(await t.redis.ttl(key)).toBeGreaterThan(500);

        const res = await me(t, cookie);

        expectError(res, 401, 'unauthenticated');
        expect(await t.redis.exists(key)).toBe(0);
      }),
  );

  test.concurrent('when a stored session has no login time, then it is refused', () =>
    withTestApp({}, async (t) => {
      const { cookie } = await signedIn(t);
      const sid = sidOf(cookie);
      const stored = (await readStoredSession(t, sid))!;
      delete stored.authenticatedAt;
      await t.redis.set(sessionKey(t, sid), JSON.stringify(stored), { KEEPTTL: true });

      const res = await me(t, cookie);

      expectError(res, 401, 'unauthenticated');
    }),
  );
});
