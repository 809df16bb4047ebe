import request from 'supertest';
import { createUser, signedIn, uniqueEmail } from '../support/factories';
import { eventOf } from '../support/log-lines';
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

  test.each([
    ['the password is wrong', true],
    ['the email is unknown', false],
  ])(
    'when a login fails because %s, then auth.login_failed is logged at warn with the attempted email',
    async (_case, exists) => {
      const email = exists ? (await createUser(t)).email : uniqueEmail('unknown');

      const res = await request(t.app).post('/api/auth/login').send({ email, password: 'wrong password 1' });

      expect(res.status).toBe(401);
      const line = eventOf(t, res, 'auth.login_failed');
      expect(line).toMatchObject({
        level: 'warn',
        event: 'auth.login_failed',
        userId: null,
        clientIp: '127.0.0.1',
        requestId: res.headers['x-request-id'],
        email,
      });
    },
  );

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
