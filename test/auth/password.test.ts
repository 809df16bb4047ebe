import request from 'supertest';
import { expectError } from '../support/assertions';
import { login, me, sessionCookie, signedIn } from '../support/factories';
import { sessionKey, setCookies, sidOf, userSessionsKey } from '../support/sessions';
import type { TestApp } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';

const NEW_PASSWORD = 'a brand new passphrase 77';

const loginStatus = async (t: TestApp, email: string, password: string) =>
  (await request(t.app).post('/api/auth/login').send({ email, password })).status;

describe('PUT /api/auth/password', () => {
  const t = useTestApp();

  // ASVS 5.0 6.2.2, 7.2.4: users change their password, and the session continues under a new id.
  test('when the current password is right, then 204 and this session continues under a new id', async () => {
    const { user, password, cookie } = await signedIn(t);
    const oldSid = sidOf(cookie);

    const res = await request(t.app)
      .put('/api/auth/password')
      .set('Cookie', cookie)
      .send({ currentPassword: password, newPassword: NEW_PASSWORD });

    expect(res.status).toBe(204);
    const rotated = sessionCookie(res);
    expect(rotated).toBeDefined();
    const newSid = sidOf(rotated!);
    expect(newSid).not.toBe(oldSid);
    expect((await me(t, cookie)).status).toBe(401);
    const current = await me(t, rotated!);
    expect(current.status).toBe(200);
    expect(current.body.id).toBe(user.id);
    expect(await t.redis.exists(sessionKey(t, oldSid))).toBe(0);
    expect(await t.redis.zScore(userSessionsKey(t, user.id), oldSid)).toBeNull();
    expect(await t.redis.zScore(userSessionsKey(t, user.id), newSid)).not.toBeNull();
  });

  test('when the password changes, then the new one logs in and the old one does not', async () => {
    const { email, password, cookie } = await signedIn(t);

    await request(t.app)
      .put('/api/auth/password')
      .set('Cookie', cookie)
      .send({ currentPassword: password, newPassword: NEW_PASSWORD })
      .expect(204);

    expect(await loginStatus(t, email, NEW_PASSWORD)).toBe(200);
    expect(await loginStatus(t, email, password)).toBe(401);
  });

  // ASVS 5.0 7.4.3: a new password ends the user's other sessions.
  test("when the password changes, then the user's other sessions end and other users' sessions do not", async () => {
    const owner = await signedIn(t);
    const ownerElsewhere = await login(t, owner);
    const ownerThird = await login(t, owner);
    const bystander = await signedIn(t);

    const res = await request(t.app)
      .put('/api/auth/password')
      .set('Cookie', owner.cookie)
      .send({ currentPassword: owner.password, newPassword: NEW_PASSWORD });

    expect(res.status).toBe(204);
    for (const other of [ownerElsewhere, ownerThird]) {
      const ended = await me(t, other);
      expectError(ended, 401, 'unauthenticated');
      expect(await t.redis.exists(sessionKey(t, sidOf(other)))).toBe(0);
    }
    expect((await me(t, sessionCookie(res)!)).status).toBe(200);
    expect((await me(t, bystander.cookie)).status).toBe(200);
    expect(await t.redis.zRange(userSessionsKey(t, owner.user.id), 0, -1)).toEqual([
      sidOf(sessionCookie(res)!),
    ]);
    const event = t.logs.find((l) => l.event === 'auth.password_changed' && l.userId === owner.user.id);
    expect(event).toMatchObject({ otherSessionsEnded: 2 });
  });

  // ASVS 5.0 6.2.3, 7.5.1: a change needs the current password.
  test('when the current password is wrong, then 403 invalid_current_password and nothing changes', async () => {
    const { user, email, password, cookie } = await signedIn(t);
    const other = await login(t, { email, password });

    const res = await request(t.app)
      .put('/api/auth/password')
      .set('Cookie', cookie)
      .send({ currentPassword: 'not my password at all', newPassword: NEW_PASSWORD });

    expectError(res, 403, 'invalid_current_password');
    // Rolling sessions re-send the cookie on every response, but under the same id.
    for (const line of setCookies(res)) expect(sidOf(line.split(';')[0]!)).toBe(sidOf(cookie));
    expect((await me(t, cookie)).status).toBe(200);
    expect((await me(t, other)).status).toBe(200);
    expect(await loginStatus(t, email, password)).toBe(200);
    expect(await loginStatus(t, email, NEW_PASSWORD)).toBe(401);
    expect(t.logs.some((l) => l.event === 'auth.password_changed' && l.userId === user.id)).toBe(false);
  });

  test('when the new password is too short, then 400 password_rejected and nothing changes', async () => {
    const { email, password, cookie } = await signedIn(t);
    const other = await login(t, { email, password });

    const res = await request(t.app)
      .put('/api/auth/password')
      .set('Cookie', cookie)
      .send({ currentPassword: password, newPassword: 'short' });

    expectError(res, 400, 'password_rejected');
    expect(res.body.error.message).toMatch(/at least 12 characters/);
    expect((await me(t, cookie)).status).toBe(200);
    expect((await me(t, other)).status).toBe(200);
    expect(await loginStatus(t, email, password)).toBe(200);
  });

  // ASVS 5.0 2.2.1: strict schema on the body.
  test('when the body has an unknown field, then 400 validation_failed', async () => {
    const { password, cookie } = await signedIn(t);
    const res = await request(t.app)
      .put('/api/auth/password')
      .set('Cookie', cookie)
      .send({ currentPassword: password, newPassword: NEW_PASSWORD, confirm: NEW_PASSWORD });
    expectError(res, 400, 'validation_failed');
  });

  test('when there is no session, then 401 unauthenticated', async () => {
    const res = await request(t.app)
      .put('/api/auth/password')
      .send({ currentPassword: 'whatever it was', newPassword: NEW_PASSWORD });
    expectError(res, 401, 'unauthenticated');
  });
});
