import request from 'supertest';
import { createUser, login, sessionCookie } from '../support/factories';
import { useTestApp } from '../support/use-test-app';

describe('a request that carries a dead session', () => {
  const t = useTestApp();

  test('when a revoked cookie is sent with a login, then the login succeeds under a new session', async () => {
    const alice = await createUser(t);
    const revoked = await login(t, alice);
    await request(t.app).post('/api/auth/logout').set('Cookie', revoked).expect(204);
    // Leave a session key the app must refuse: it has no epoch, like a session from before a password
    // change that Redis still holds.
    const sid = decodeURIComponent(revoked.split('=')[1]!).slice(2).split('.')[0]!;
    await t.redis.set(
      `${t.config.redisKeyPrefix}sess:${sid}`,
      JSON.stringify({ cookie: { path: '/' }, userId: alice.user.id, authenticatedAt: Date.now() }),
      { expiration: { type: 'EX', value: 60 } },
    );

    const res = await request(t.app)
      .post('/api/auth/login')
      .set('Cookie', revoked)
      .send({ email: alice.email, password: alice.password });

    expect(res.status).toBe(200);
    const fresh = sessionCookie(res);
    expect(fresh).toBeDefined();
    expect(fresh).not.toBe(revoked);
    expect((await request(t.app).get('/api/auth/me').set('Cookie', fresh!)).status).toBe(200);
    expect((await request(t.app).get('/api/auth/me').set('Cookie', revoked)).status).toBe(401);
    expect(await t.redis.exists(`${t.config.redisKeyPrefix}sess:${sid}`)).toBe(0);
  });
});
