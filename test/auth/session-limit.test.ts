import request from 'supertest';
import { expectError } from '../support/assertions';
import { createUser, login, me, sessionCookie } from '../support/factories';
import { eventOf } from '../support/log-lines';
import { sessionKey, sidOf, userSessionsKey } from '../support/sessions';
import { useTestApp } from '../support/use-test-app';

// ASVS 5.0 7.1.2: the documented number of concurrent sessions per account (SESSION_MAX_PER_USER, in
// the README and SECURITY.md), and what happens at the limit: the oldest session ends.
describe('the concurrent-session limit (ASVS 7.1.2)', () => {
  const t = useTestApp({ SESSION_MAX_PER_USER: '2' });

  test('when a user signs in once more than the limit allows, then the oldest session ends, the others continue, and the log says so', async () => {
    const creds = await createUser(t);
    const first = await login(t, creds);
    const second = await login(t, creds);

    const third = await request(t.app)
      .post('/api/auth/login')
      .send({ email: creds.email, password: creds.password });

    expect(third.status).toBe(200);
    expectError(await me(t, first), 401, 'unauthenticated');
    expect((await me(t, second)).status).toBe(200);
    expect((await me(t, sessionCookie(third)!)).status).toBe(200);
    expect(await t.redis.exists(sessionKey(t, sidOf(first)))).toBe(0);
    expect(await t.redis.zCard(userSessionsKey(t, creds.user.id))).toBe(2);
    const event = eventOf(t, third, 'session.limit_ended_oldest');
    expect(event).toMatchObject({ targetUserId: creds.user.id, limit: 2 });
    expect(event!.endedSessions).toEqual([expect.stringMatching(/^[A-Za-z0-9_-]{22}$/)]);
    expect(JSON.stringify(event)).not.toContain(sidOf(first));
  });

  test('when many logins of one user arrive at once, then no more than the limit survive', async () => {
    const creds = await createUser(t);

    const cookies = await Promise.all(Array.from({ length: 8 }, () => login(t, creds)));

    const alive = [];
    for (const cookie of cookies) if ((await me(t, cookie)).status === 200) alive.push(cookie);
    expect(alive).toHaveLength(2);
    expect(await t.redis.zCard(userSessionsKey(t, creds.user.id))).toBe(2);
  });

  test("when another user signs in, then it ends none of the first user's sessions", async () => {
    const a = await createUser(t);
    const b = await createUser(t);
    const a1 = await login(t, a);
    const a2 = await login(t, a);

    await login(t, b);
    await login(t, b);
    await login(t, b);

    expect((await me(t, a1)).status).toBe(200);
    expect((await me(t, a2)).status).toBe(200);
  });
});
