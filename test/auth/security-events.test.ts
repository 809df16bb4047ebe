import request from 'supertest';
import { createUser, signedIn, uniqueEmail } from '../support/factories';
import { eventOf, linesOf } from '../support/log-lines';
import { useTestApp } from '../support/use-test-app';

// ASVS 5.0 16.2.1, 16.3.1: authentication events with user, client IP and request id.
describe('security events', () => {
  const t = useTestApp();

  test('when a login succeeds, then auth.login_succeeded is logged with the user, client IP and request id', async () => {
    const { user, email, password } = await createUser(t);

    const res = await request(t.app).post('/api/auth/login').send({ email, password });

    expect(res.status).toBe(200);
    expect(eventOf(t, res, 'auth.login_succeeded')).toMatchObject({
      level: 'info',
      event: 'auth.login_succeeded',
      userId: user.id,
      clientIp: '127.0.0.1',
      requestId: res.headers['x-request-id'],
    });
  });

  test('when a login fails because the password is wrong, then auth.login_failed is logged at warn with the account it tried, not the email', async () => {
    const { user, email } = await createUser(t);

    const res = await request(t.app).post('/api/auth/login').send({ email, password: 'wrong password 1' });

    expect(res.status).toBe(401);
    const line = eventOf(t, res, 'auth.login_failed');
    expect(line).toMatchObject({
      level: 'warn',
      event: 'auth.login_failed',
      userId: null,
      clientIp: '127.0.0.1',
      requestId: res.headers['x-request-id'],
      targetUserId: user.id,
      emailTag: expect.stringMatching(/^[\w-]{22}$/),
      notAnEmail: false,
    });
    expect(JSON.stringify(linesOf(t, res))).not.toContain(email);
  });

  // ASVS 5.0 16.2.5, 14.2.4: a failed login keeps nothing of what was typed (ADR 0039).
  describe('what a failed login keeps of the email field', () => {
    test('when a password is typed into the email field, then no log line holds it, and the event says it was no address', async () => {
      const typed = `Tr0ub4dor&3-${Date.now()}`;

      const res = await request(t.app)
        .post('/api/auth/login')
        .send({ email: typed, password: 'wrong password 1' });

      expect(res.status).toBe(401);
      expect(eventOf(t, res, 'auth.login_failed')).toMatchObject({ notAnEmail: true });
      expect(eventOf(t, res, 'auth.login_failed')).not.toHaveProperty('targetUserId');
      expect(t.rawLogs()).not.toContain(typed);
      expect(t.rawLogs().toLowerCase()).not.toContain(typed.toLowerCase());
    });

    test('when one unknown email fails twice, then both events carry the same tag, and another email a different one', async () => {
      const unknown = uniqueEmail('unknown');
      const fail = (email: string) =>
        request(t.app).post('/api/auth/login').send({ email, password: 'wrong password 1' });

      const first = await fail(unknown);
      const again = await fail(`  ${unknown.toUpperCase()} `);
      const other = await fail(uniqueEmail('other'));

      const tagOf = (res: Awaited<ReturnType<typeof fail>>) => eventOf(t, res, 'auth.login_failed')?.emailTag;
      expect(tagOf(first)).toEqual(expect.any(String));
      expect(tagOf(again)).toBe(tagOf(first));
      expect(tagOf(other)).not.toBe(tagOf(first));
      expect(eventOf(t, first, 'auth.login_failed')).toMatchObject({ notAnEmail: false });
      expect(t.rawLogs()).not.toContain(unknown);
    });
  });

  test('when a user logs out, then auth.logout is logged with the user, client IP and request id', async () => {
    const { user, cookie } = await signedIn(t);

    const res = await request(t.app).post('/api/auth/logout').set('Cookie', cookie);

    expect(res.status).toBe(204);
    expect(eventOf(t, res, 'auth.logout')).toMatchObject({
      level: 'info',
      userId: user.id,
      clientIp: '127.0.0.1',
      requestId: res.headers['x-request-id'],
    });
  });

  test('when a password is changed, then auth.password_changed is logged with the user, client IP and request id', async () => {
    const { user, password, cookie } = await signedIn(t);

    const res = await request(t.app)
      .put('/api/auth/password')
      .set('Cookie', cookie)
      .send({ currentPassword: password, newPassword: 'the next passphrase 9' });

    expect(res.status).toBe(204);
    expect(eventOf(t, res, 'auth.password_changed')).toMatchObject({
      level: 'info',
      userId: user.id,
      clientIp: '127.0.0.1',
      requestId: res.headers['x-request-id'],
      otherSessionsEnded: 0,
    });
  });
});
