import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { expectError } from '../support/assertions';
import { login, me, signedIn } from '../support/factories';
import { eventOf } from '../support/log-lines';
import { sidOf } from '../support/sessions';
import { useTestApp } from '../support/use-test-app';

interface SessionJson {
  id: string;
  current: boolean;
}

// ASVS 5.0 7.5.2 (an administrator terminates a user's sessions) and 7.4.5 (ending every active session
// at once, for everyone, after a compromise).
describe("an admin lists and ends a user's sessions (ASVS 7.5.2)", () => {
  const t = useTestApp();

  test("when an admin lists a user's sessions, then every live one is there, none flagged current, no session id shown", async () => {
    const admin = await signedIn(t, 'admin');
    const target = await signedIn(t);
    const second = await login(t, target);

    const res = await request(t.app).get(`/api/users/${target.user.id}/sessions`).set('Cookie', admin.cookie);

    expect(res.status).toBe(200);
    expect(res.body.data).toHaveLength(2);
    expect((res.body.data as SessionJson[]).some((s) => s.current)).toBe(false);
    for (const sid of [target.cookie, second].map(sidOf)) expect(res.text).not.toContain(sid);
  });

  test("when a non-admin asks for another user's sessions, or their own through the admin path, then 403 and the refusal is logged", async () => {
    const user = await signedIn(t);
    const other = await signedIn(t);

    for (const id of [other.user.id, user.user.id]) {
      const res = await request(t.app).get(`/api/users/${id}/sessions`).set('Cookie', user.cookie);
      expectError(res, 403, 'forbidden');
      expect(eventOf(t, res, 'authz.denied')).toBeDefined();
    }
    const ending = await request(t.app)
      .delete(`/api/users/${other.user.id}/sessions`)
      .set('Cookie', user.cookie);
    expectError(ending, 403, 'forbidden');
    expect((await me(t, other.cookie)).status).toBe(200);
  });

  test('when an admin names a user that does not exist, then 404', async () => {
    const admin = await signedIn(t, 'admin');

    const res = await request(t.app).get(`/api/users/${randomUUID()}/sessions`).set('Cookie', admin.cookie);

    expectError(res, 404, 'not_found');
  });

  test("when an admin ends every session of a user, then each is over and the admin's own continues", async () => {
    const admin = await signedIn(t, 'admin');
    const target = await signedIn(t);
    const second = await login(t, target);

    const res = await request(t.app)
      .delete(`/api/users/${target.user.id}/sessions`)
      .set('Cookie', admin.cookie);

    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ended: 2 });
    expectError(await me(t, target.cookie), 401, 'unauthenticated');
    expectError(await me(t, second), 401, 'unauthenticated');
    expect((await me(t, admin.cookie)).status).toBe(200);
    expect(eventOf(t, res, 'session.ended')).toMatchObject({
      userId: admin.user.id,
      targetUserId: target.user.id,
      ended: 2,
    });
  });

  test("when an admin ends one session of a user by its handle, then that one is over and the user's other continues", async () => {
    const admin = await signedIn(t, 'admin');
    const target = await signedIn(t);
    const second = await login(t, target);
    const listed = await request(t.app)
      .get(`/api/users/${target.user.id}/sessions`)
      .set('Cookie', admin.cookie);
    // Newest first: the second login.
    const handle = (listed.body.data as SessionJson[])[0]!.id;

    const res = await request(t.app)
      .delete(`/api/users/${target.user.id}/sessions/${handle}`)
      .set('Cookie', admin.cookie);

    expect(res.status).toBe(204);
    expectError(await me(t, second), 401, 'unauthenticated');
    expect((await me(t, target.cookie)).status).toBe(200);
  });

  test("when an admin names one user's session under another user's path, then 404 and it lives on", async () => {
    const admin = await signedIn(t, 'admin');
    const owner = await signedIn(t);
    const bystander = await signedIn(t);
    const listed = await request(t.app)
      .get(`/api/users/${owner.user.id}/sessions`)
      .set('Cookie', admin.cookie);
    const handle = (listed.body.data as SessionJson[])[0]!.id;

    const res = await request(t.app)
      .delete(`/api/users/${bystander.user.id}/sessions/${handle}`)
      .set('Cookie', admin.cookie);

    expectError(res, 404, 'not_found');
    expect((await me(t, owner.cookie)).status).toBe(200);
  });
});

describe('an admin ends every session of every user (ASVS 7.4.5)', () => {
  // A database of its own: moving every user's epoch in the shared one would sign out other files' users.
  const t = useTestApp({}, { isolatedDatabase: 'sessions_end_every', freshPerTest: true });

  test("when an admin ends every session, then every user's sessions are over, the admin's included, and a warning names it", async () => {
    const admin = await signedIn(t, 'admin');
    const a = await signedIn(t);
    const b = await signedIn(t);
    const b2 = await login(t, b);

    const res = await request(t.app).delete('/api/sessions').set('Cookie', admin.cookie);

    expect(res.status).toBe(204);
    expect(res.headers['clear-site-data']).toBe('"cache", "storage"');
    for (const cookie of [a.cookie, b.cookie, b2, admin.cookie]) {
      expectError(await me(t, cookie), 401, 'unauthenticated');
    }
    expect(eventOf(t, res, 'session.every_user_ended')).toMatchObject({
      level: 'warn',
      userId: admin.user.id,
      users: 3,
    });
    // Signing in again works: the new session is in the new epoch.
    expect((await me(t, await login(t, a))).status).toBe(200);
  });

  test('when a non-admin asks to end every session, then 403 and every session continues', async () => {
    const user = await signedIn(t);
    const other = await signedIn(t);

    const res = await request(t.app).delete('/api/sessions').set('Cookie', user.cookie);

    expectError(res, 403, 'forbidden');
    expect(eventOf(t, res, 'authz.denied')).toBeDefined();
    expect((await me(t, user.cookie)).status).toBe(200);
    expect((await me(t, other.cookie)).status).toBe(200);
  });
});
