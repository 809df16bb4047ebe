import request from 'supertest';
import { signedIn, uniqueEmail } from '../support/factories';
import { useTestApp } from '../support/use-test-app';

/**
 * Someone holding a stolen session but not the password could use every "confirm your current
 * password" check as an oracle. All of them share the per-user budget of the password change.
 */
// ASVS 5.0 6.3.1: current-password checks spend a per-user budget.
describe('re-authentication checks', () => {
  const t = useTestApp({ PASSWORD_CHANGE_MAX_PER_USER_PER_HOUR: '3' });

  const changeEmail = (cookie: string, id: string, currentPassword: string) =>
    request(t.app)
      .patch(`/api/users/${id}`)
      .set('Cookie', cookie)
      .send({ email: uniqueEmail('new'), currentPassword });

  test('when wrong current passwords are tried on the email change, then 403 until the budget is spent, then 429', async () => {
    const me = await signedIn(t);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++)
      statuses.push((await changeEmail(me.cookie, me.user.id, `guess number ${i}`)).status);
    expect(statuses).toEqual([403, 403, 403, 429, 429]);
    // Even the right password waits now: the budget, not the guess, decides.
    expect((await changeEmail(me.cookie, me.user.id, me.password)).status).toBe(429);
  });

  test('when the email change and the password change are mixed, then they spend one budget', async () => {
    const me = await signedIn(t);
    await changeEmail(me.cookie, me.user.id, 'wrong one');
    await changeEmail(me.cookie, me.user.id, 'wrong two');
    const res = await request(t.app)
      .put('/api/auth/password')
      .set('Cookie', me.cookie)
      .send({ currentPassword: 'wrong three', newPassword: 'amber falcon 5521 quiet' });
    expect(res.status).toBe(403);
    const fourth = await request(t.app)
      .put('/api/auth/password')
      .set('Cookie', me.cookie)
      .send({ currentPassword: me.password, newPassword: 'amber falcon 5521 quiet' });
    expect(fourth.status).toBe(429);
  });

  test('when a name-only change is made, then it spends nothing from the budget', async () => {
    const me = await signedIn(t);
    for (let i = 0; i < 5; i++) {
      const res = await request(t.app)
        .patch(`/api/users/${me.user.id}`)
        .set('Cookie', me.cookie)
        .send({ name: `N ${i}` });
      expect(res.status).toBe(200);
    }
  });

  test('when a current password is wrong, then auth.reauth_failed is logged with the user and request', async () => {
    const me = await signedIn(t);
    const res = await changeEmail(me.cookie, me.user.id, 'not it at all');
    expect(res.status).toBe(403);
    expect(t.logs).toContainEqual(
      expect.objectContaining({
        event: 'auth.reauth_failed',
        level: 'warn',
        userId: me.user.id,
        requestId: res.headers['x-request-id'],
      }),
    );
  });
});
