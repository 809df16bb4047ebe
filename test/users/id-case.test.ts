import request from 'supertest';
import { expectError } from '../support/assertions';
import { createUser, login, uniqueEmail } from '../support/factories';
import { useTestApp } from '../support/use-test-app';

/**
 * Postgres matches uuids in any letter case; JavaScript compares strings exactly. An upper-cased id
 * in the URL must not slip past the checks that compare it with the actor's own id.
 */
describe('user ids in another letter case', () => {
  const t = useTestApp({}, { isolatedDatabase: 'idcase' });

  test('when the only admin demotes themselves with an upper-cased id, then 409 last_admin still holds', async () => {
    const admin = await createUser(t, { role: 'admin' });
    const cookie = await login(t, admin);
    const res = await request(t.app)
      .patch(`/api/users/${admin.user.id.toUpperCase()}`)
      .set('Cookie', cookie)
      .send({ role: 'user' });
    expectError(res, 409, 'last_admin');
  });

  test('when admins change their own email with an upper-cased id, then the current password is still required', async () => {
    const admin = await createUser(t, { role: 'admin' });
    const cookie = await login(t, admin);
    const res = await request(t.app)
      .patch(`/api/users/${admin.user.id.toUpperCase()}`)
      .set('Cookie', cookie)
      .send({ email: uniqueEmail('moved') });
    expect(res.status).toBe(400);
    expect(res.body.error.details).toEqual([expect.objectContaining({ path: 'body.currentPassword' })]);
  });

  test('when a user reads their own upper-cased id, then the answer carries the canonical id', async () => {
    const user = await createUser(t);
    const cookie = await login(t, user);
    const res = await request(t.app).get(`/api/users/${user.user.id.toUpperCase()}`).set('Cookie', cookie);
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(user.user.id);
  });
});
