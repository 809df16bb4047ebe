import type { SessionData } from 'express-session';
import request from 'supertest';
import { createSessionStore } from '../../src/auth/sessions';
import { expectError } from '../support/assertions';
import { login, me, signedIn, sleep } from '../support/factories';
import { sessionKey, sidOf, userSessionsKey } from '../support/sessions';
import { useTestApp, withTestApp } from '../support/use-test-app';

describe('the per-user session index', () => {
  const t = useTestApp();

  test('when a user logs in, then the index holds the session scored by its absolute deadline and expires with it', async () => {
    const { user, cookie } = await signedIn(t);
    const sid = sidOf(cookie);
    const key = userSessionsKey(t, user.id);
    const stored = JSON.parse((await t.redis.get(sessionKey(t, sid)))!) as { authenticatedAt: number };
    const deadline = stored.authenticatedAt + t.config.session.absoluteTimeoutS * 1000;

    expect(await t.redis.zScore(key, sid)).toBe(deadline);
    expect(await t.redis.pExpireTime(key)).toBe(deadline);
  });

  test('when a new login writes the index, then members whose deadline has passed are trimmed', async () => {
    const creds = await signedIn(t);
    const key = userSessionsKey(t, creds.user.id);
    await t.redis.zAdd(key, [
      { score: Date.now() - 60_000, value: 'stale-session-1' },
      { score: Date.now() - 1, value: 'stale-session-2' },
    ]);
    expect(await t.redis.zCard(key)).toBe(3);

    const second = await login(t, creds);

    expect((await t.redis.zRange(key, 0, -1)).sort()).toEqual([sidOf(creds.cookie), sidOf(second)].sort());
    const pttl = await t.redis.pTTL(key);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(t.config.session.absoluteTimeoutS * 1000);
  });

  test('when later logins happen, then the index key expiry moves to the latest deadline, never earlier', async () => {
    const creds = await signedIn(t);
    const key = userSessionsKey(t, creds.user.id);
    const first = await t.redis.pExpireTime(key);
    await sleep(5);

    await login(t, creds);

    expect(await t.redis.pExpireTime(key)).toBeGreaterThan(first);
  });

  test.concurrent('when sessions really expire, then the next login drops them from the index', () =>
    withTestApp({ SESSION_IDLE_TIMEOUT_S: '1', SESSION_ABSOLUTE_TIMEOUT_S: '1' }, async (short) => {
      const creds = await signedIn(short);
      const key = userSessionsKey(short, creds.user.id);
      await sleep(1100);

      const second = await login(short, creds);

      expect(await short.redis.zRange(key, 0, -1)).toEqual([sidOf(second)]);
      expect(await short.redis.pTTL(key)).toBeLessThanOrEqual(1000);
    }),
  );
});

// ASVS 5.0 7.4.1: an ended session stays ended.
describe('a revoked session saved by a request still in flight', () => {
  const t = useTestApp();
  // What express-session does at the end of a request that changed its session (a renewal), through the
  // app's own store: a request that began before the revocation saves after it.
  const lateSave = (sid: string, saved: string) =>
    new Promise<void>((resolve, reject) =>
      createSessionStore(t.config, t.redis).set(sid, JSON.parse(saved) as SessionData, (err) =>
        err ? reject(err as Error) : resolve(),
      ),
    );

  test('when a live session is saved, then the store writes it (the control for the refusals below)', async () => {
    const { cookie } = await signedIn(t);
    const key = sessionKey(t, sidOf(cookie));
    const saved = JSON.parse((await t.redis.get(key))!) as SessionData;
    await t.redis.del(key);

    await lateSave(sidOf(cookie), JSON.stringify({ ...saved, renewedAt: Date.now() }));

    expect(await t.redis.exists(key)).toBe(1);
    expect((await me(t, cookie)).status).toBe(200);
  });

  test('when a session revoked by a password change elsewhere is saved late, then it stays deleted and its cookie 401', async () => {
    const owner = await signedIn(t);
    const victimCookie = await login(t, owner);
    const victimKey = sessionKey(t, sidOf(victimCookie));
    const savedCopy = (await t.redis.get(victimKey))!;

    await request(t.app)
      .put('/api/auth/password')
      .set('Cookie', owner.cookie)
      .send({ currentPassword: owner.password, newPassword: 'another fine passphrase' })
      .expect(204);
    expect(await t.redis.exists(victimKey)).toBe(0);
    await lateSave(sidOf(victimCookie), savedCopy);

    expect(await t.redis.exists(victimKey)).toBe(0);
    expectError(await me(t, victimCookie), 401, 'unauthenticated');
  });

  test('when a signed-in browser signs in again, then its previous session is unlisted and a late save of it writes nothing', async () => {
    const first = await signedIn(t);
    const key = sessionKey(t, sidOf(first.cookie));
    const savedCopy = (await t.redis.get(key))!;
    const second = await signedIn(t);

    const res = await request(t.app)
      .post('/api/auth/login')
      .set('Cookie', first.cookie)
      .send({ email: second.email, password: second.password });
    expect(res.status).toBe(200);
    expect(await t.redis.zScore(userSessionsKey(t, first.user.id), sidOf(first.cookie))).toBeNull();
    await lateSave(sidOf(first.cookie), savedCopy);

    expect(await t.redis.exists(key)).toBe(0);
    expectError(await me(t, first.cookie), 401, 'unauthenticated');
  });

  test('when a logged-out session is saved late, then it stays deleted and its cookie 401', async () => {
    const { cookie } = await signedIn(t);
    const key = sessionKey(t, sidOf(cookie));
    const savedCopy = (await t.redis.get(key))!;
    await request(t.app).post('/api/auth/logout').set('Cookie', cookie).expect(204);

    await lateSave(sidOf(cookie), savedCopy);

    expect(await t.redis.exists(key)).toBe(0);
    expectError(await me(t, cookie), 401, 'unauthenticated');
  });
});
