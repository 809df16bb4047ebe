import { randomUUID } from 'node:crypto';
import { expectError } from '../support/assertions';
import { createUser, signedIn } from '../support/factories';
import { errorWithoutRequestId, USER_JSON_KEYS } from '../support/users';
import { useTestApp } from '../support/use-test-app';

describe('GET /api/users/:id', () => {
  const t = useTestApp();

  test('when users fetch themselves, then 200 with their own public user', async () => {
    const me = await signedIn(t, 'user');
    const res = await t.api().get(`/api/users/${me.user.id}`).set('Cookie', me.cookie);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(USER_JSON_KEYS);
    expect(res.body).toEqual({
      id: me.user.id,
      email: me.email,
      name: 'Test User',
      role: 'user',
      createdAt: me.user.createdAt.toISOString(),
      updatedAt: me.user.updatedAt.toISOString(),
      emailVerifiedAt: null,
    });
  });

  test('when an admin fetches another user, then 200 with that user', async () => {
    const admin = await signedIn(t, 'admin');
    const other = await createUser(t, { name: 'Other Person' });
    const res = await t.api().get(`/api/users/${other.user.id}`).set('Cookie', admin.cookie);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: other.user.id, email: other.email, name: 'Other Person' });
  });

  test("when a non-admin fetches another user's id, then 404 not_found exactly like an unknown id", async () => {
    const me = await signedIn(t, 'user');
    const other = await createUser(t);

    const existing = await t.api().get(`/api/users/${other.user.id}`).set('Cookie', me.cookie);
    const unknown = await t.api().get(`/api/users/${randomUUID()}`).set('Cookie', me.cookie);

    expectError(existing, 404, 'not_found');
    expect(unknown.status).toBe(404);
    // Same status, code, message and keys: the answer does not reveal that the account exists.
    expect(errorWithoutRequestId(existing.body)).toEqual(errorWithoutRequestId(unknown.body));
    expect(Object.keys(existing.body.error).sort()).toEqual(Object.keys(unknown.body.error).sort());
    expect(existing.text).not.toContain(other.email);
  });

  // ASVS 5.0 8.2.2, 8.3.1: object-level authorization on the server.
  test('when a non-admin fetches an admin, then 404 not_found', async () => {
    const me = await signedIn(t, 'user');
    const admin = await createUser(t, { role: 'admin' });
    const res = await t.api().get(`/api/users/${admin.user.id}`).set('Cookie', me.cookie);
    expectError(res, 404, 'not_found');
  });

  test('when an admin fetches an id that does not exist, then 404 not_found', async () => {
    const admin = await signedIn(t, 'admin');
    const res = await t.api().get(`/api/users/${randomUUID()}`).set('Cookie', admin.cookie);
    expectError(res, 404, 'not_found');
  });

  test.each([
    ['not a uuid', 'not-a-uuid'],
    ['a number', '42'],
    ['a uuid with a trailing character', `${randomUUID()}x`],
    ['SQL', encodeURIComponent("1' OR '1'='1")],
  ])('when the id is %s, then 400 validation_failed on params.id', async (_label, id) => {
    const admin = await signedIn(t, 'admin');
    const res = await t.api().get(`/api/users/${id}`).set('Cookie', admin.cookie);
    expectError(res, 400, 'validation_failed');
    expect(res.body.error.details).toEqual([expect.objectContaining({ path: 'params.id' })]);
  });

  test('when nobody is signed in, then 401 unauthenticated', async () => {
    const other = await createUser(t);
    const res = await t.api().get(`/api/users/${other.user.id}`);
    expectError(res, 401, 'unauthenticated');
  });
});
