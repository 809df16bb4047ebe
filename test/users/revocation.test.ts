import type { Role } from '../../src/users/user';
import { createUser, login, type TestUser } from '../support/factories';
import { sessionKey, sidOf, userSessionsKey } from '../support/sessions';
import type { TestApp } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';

/** A user logged in twice, as from two browsers: two cookies, two session ids. */
async function twoSessions(t: TestApp, role: Role = 'user'): Promise<TestUser & { cookies: string[] }> {
  const created = await createUser(t, { role });
  const cookies = [await login(t, created), await login(t, created)];
  return { ...created, cookies };
}

const indexedSids = (t: TestApp, userId: string) => t.redis.zRange(userSessionsKey(t, userId), 0, -1);
const storedCount = (t: TestApp, sids: string[]) => t.redis.exists(sids.map((sid) => sessionKey(t, sid)));

describe('session revocation on user changes', () => {
  const t = useTestApp();

  async function expectLive(cookie: string, status: number): Promise<void> {
    const res = await t.api().get('/api/auth/me').set('Cookie', cookie);
    expect(res.status).toBe(status);
    if (status === 401) expect(res.body.error.code).toBe('unauthenticated');
  }

  test.each([
    ['promotes a user to admin', 'user', 'admin'],
    ['demotes an admin to user', 'admin', 'user'],
  ] as const)(
    "when an admin %s, then every session of that user is dead and gone from the user's index",
    async (_label, from, to) => {
      const admin = await createUser(t, { role: 'admin' });
      const adminCookie = await login(t, admin);
      const target = await twoSessions(t, from);
      const sids = target.cookies.map(sidOf);
      expect((await indexedSids(t, target.user.id)).sort()).toEqual([...sids].sort());
      for (const cookie of target.cookies) await expectLive(cookie, 200);

      const res = await t
        .api()
        .patch(`/api/users/${target.user.id}`)
        .set('Cookie', adminCookie)
        .send({ role: to });

      expect(res.status).toBe(200);
      expect(res.body.role).toBe(to);
      for (const cookie of target.cookies) await expectLive(cookie, 401);
      const left = await indexedSids(t, target.user.id);
      for (const sid of sids) expect(left).not.toContain(sid);
      expect(await storedCount(t, sids)).toBe(0);
      await expectLive(adminCookie, 200);
      // Signing in again works and yields the new role.
      const fresh = await login(t, target);
      const me = await t.api().get('/api/auth/me').set('Cookie', fresh);
      expect(me.body.role).toBe(to);
    },
  );

  // ASVS 5.0 7.4.2: deleting an account ends its sessions.
  test('when an admin deletes a user, then every session of that user is dead and the index lists none', async () => {
    const admin = await createUser(t, { role: 'admin' });
    const adminCookie = await login(t, admin);
    const target = await twoSessions(t);
    const sids = target.cookies.map(sidOf);
    expect(await indexedSids(t, target.user.id)).toHaveLength(2);

    const res = await t.api().delete(`/api/users/${target.user.id}`).set('Cookie', adminCookie);

    expect(res.status).toBe(204);
    for (const cookie of target.cookies) await expectLive(cookie, 401);
    expect(await indexedSids(t, target.user.id)).toEqual([]);
    expect(await storedCount(t, sids)).toBe(0);
  });

  test('when users delete themselves, then their other session dies too', async () => {
    const target = await twoSessions(t);
    const [first, second] = target.cookies as [string, string];

    const res = await t.api().delete(`/api/users/${target.user.id}`).set('Cookie', first);

    expect(res.status).toBe(204);
    await expectLive(first, 401);
    await expectLive(second, 401);
    expect(await indexedSids(t, target.user.id)).toEqual([]);
  });

  test('when only the name changes, then the sessions live on', async () => {
    const admin = await createUser(t, { role: 'admin' });
    const adminCookie = await login(t, admin);
    const target = await twoSessions(t);

    const res = await t
      .api()
      .patch(`/api/users/${target.user.id}`)
      .set('Cookie', adminCookie)
      .send({ name: 'Renamed By Admin' });

    expect(res.status).toBe(200);
    for (const cookie of target.cookies) await expectLive(cookie, 200);
    expect((await indexedSids(t, target.user.id)).sort()).toEqual(target.cookies.map(sidOf).sort());
  });

  test('when a role change is refused, then the sessions live on', async () => {
    const target = await twoSessions(t);
    const [first] = target.cookies as [string, string];

    const res = await t
      .api()
      .patch(`/api/users/${target.user.id}`)
      .set('Cookie', first)
      .send({ role: 'admin' });

    expect(res.status).toBe(403);
    for (const cookie of target.cookies) await expectLive(cookie, 200);
    expect(await indexedSids(t, target.user.id)).toHaveLength(2);
  });
});
