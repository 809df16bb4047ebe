import request from 'supertest';
import { createUser, login, signedIn } from '../support/factories';
import { sidOf, userSessionsKey } from '../support/sessions';
import { useTestApp } from '../support/use-test-app';
import { USER_JSON_KEYS } from '../support/users';

/**
 * The Redis index deletes a user's sessions when their password or role changes, but a login that
 * raced the change (it read the old password hash, then registered its session after the revocation)
 * or a revocation lost to a Redis outage would leave one alive. The session epoch in Postgres closes
 * both: these tests put such a session back in the index by hand and show it is still refused.
 */
describe('the session epoch', () => {
  const t = useTestApp();

  /** Re-lists a revoked session in the user's index, as a login that lost the race would have. */
  async function relist(userId: string, cookie: string): Promise<void> {
    await t.redis.zAdd(userSessionsKey(t, userId), { score: Date.now() + 3_600_000, value: sidOf(cookie) });
  }

  test('when a session from before a password change is still listed, then it is refused', async () => {
    const alice = await createUser(t);
    const old = await login(t, alice);
    const current = await login(t, alice);
    const changed = await request(t.app)
      .put('/api/auth/password')
      .set('Cookie', current)
      .send({ currentPassword: alice.password, newPassword: 'fresh basil 4417 teapot' });
    expect(changed.status).toBe(204);
    // Resurrect the old session fully: its Redis key is gone, so copy the new session's data back
    // under the old id with the OLD epoch it had (what an in-flight save would write).
    await t.redis.set(
      `${t.config.redisKeyPrefix}sess:${sidOf(old)}`,
      JSON.stringify({ cookie: { path: '/' }, userId: alice.user.id, authenticatedAt: Date.now(), epoch: 0 }),
      { expiration: { type: 'EX', value: 60 } },
    );
    await relist(alice.user.id, old);

    expect((await request(t.app).get('/api/auth/me').set('Cookie', old)).status).toBe(401);
  });

  test('when the password changes, then the rotated session keeps working in the new epoch', async () => {
    const bob = await createUser(t);
    const cookie = await login(t, bob);
    const changed = await request(t.app)
      .put('/api/auth/password')
      .set('Cookie', cookie)
      .send({ currentPassword: bob.password, newPassword: 'copper mosaic 8812 violin' });
    const rotated = changed.headers['set-cookie']?.[0]?.split(';')[0];
    expect(rotated).toBeDefined();
    expect((await request(t.app).get('/api/auth/me').set('Cookie', rotated!)).status).toBe(200);
  });

  test('when a role changes, then a session of the old role that is still listed is refused', async () => {
    const admin = await signedIn(t, 'admin');
    const carol = await createUser(t);
    const cookie = await login(t, carol);
    // Keep a copy of the session as Redis held it before the revocation deletes it.
    const key = `${t.config.redisKeyPrefix}sess:${sidOf(cookie)}`;
    const stored = await t.redis.get(key);

    const promoted = await request(t.app)
      .patch(`/api/users/${carol.user.id}`)
      .set('Cookie', admin.cookie)
      .send({ role: 'admin' });
    expect(promoted.status).toBe(200);
    await t.redis.set(key, stored!, { expiration: { type: 'EX', value: 60 } });
    await relist(carol.user.id, cookie);

    expect((await request(t.app).get('/api/auth/me').set('Cookie', cookie)).status).toBe(401);
  });

  test('when only the name changes, then sessions keep their epoch and stay valid', async () => {
    const dave = await signedIn(t);
    const renamed = await request(t.app)
      .patch(`/api/users/${dave.user.id}`)
      .set('Cookie', dave.cookie)
      .send({ name: 'Dave Again' });
    expect(renamed.status).toBe(200);
    expect((await request(t.app).get('/api/auth/me').set('Cookie', dave.cookie)).status).toBe(200);
  });

  test('when the epoch is in a response, then never: it is internal', async () => {
    const erin = await signedIn(t);
    const res = await request(t.app).get('/api/auth/me').set('Cookie', erin.cookie);
    expect(Object.keys(res.body).sort()).toEqual(USER_JSON_KEYS);
  });
});
