import { randomUUID } from 'node:crypto';
import { expectError } from '../support/assertions';
import { createUser, signedIn } from '../support/factories';
import { parseSetCookie, setCookies } from '../support/sessions';
import { userRow } from '../support/users';
import { useTestApp } from '../support/use-test-app';

describe('DELETE /api/users/:id', () => {
  const t = useTestApp();

  test("when an admin deletes a user, then 204, the row is gone and the user's session gets 401", async () => {
    const admin = await signedIn(t, 'admin');
    const victim = await signedIn(t, 'user');

    const res = await t.api().delete(`/api/users/${victim.user.id}`).set('Cookie', admin.cookie);

    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect(await userRow(t, victim.user.id)).toBeNull();
    const me = await t.api().get('/api/auth/me').set('Cookie', victim.cookie);
    expectError(me, 401, 'unauthenticated');
    const again = await t.api().get(`/api/users/${victim.user.id}`).set('Cookie', admin.cookie);
    expect(again.status).toBe(404);
    // The admin's own session is untouched.
    expect((await t.api().get('/api/auth/me').set('Cookie', admin.cookie)).status).toBe(200);
  });

  test('when users delete themselves, then 204, the row is gone, the cookie is cleared and the session is dead', async () => {
    const me = await signedIn(t, 'user');

    const res = await t.api().delete(`/api/users/${me.user.id}`).set('Cookie', me.cookie);

    expect(res.status).toBe(204);
    expect(await userRow(t, me.user.id)).toBeNull();
    const cleared = setCookies(res)
      .map(parseSetCookie)
      .find((c) => c.name === t.config.session.cookieName);
    expect(cleared?.value).toBe('');
    expect(new Date(cleared!.attributes.get('expires')!).getTime()).toBeLessThan(Date.now());
    expect((await t.api().get('/api/auth/me').set('Cookie', me.cookie)).status).toBe(401);
  });

  test('when an admin deletes themselves while another admin exists, then 204 and the row is gone', async () => {
    await createUser(t, { role: 'admin' }); // so this admin is never the last one, whatever runs alongside
    const admin = await signedIn(t, 'admin');
    const res = await t.api().delete(`/api/users/${admin.user.id}`).set('Cookie', admin.cookie);
    expect(res.status).toBe(204);
    expect(await userRow(t, admin.user.id)).toBeNull();
  });

  // ASVS 5.0 8.2.2: object-level authorization.
  test('when a non-admin deletes someone else, then 404 not_found and the row stays', async () => {
    const me = await signedIn(t, 'user');
    const other = await signedIn(t, 'user');

    const res = await t.api().delete(`/api/users/${other.user.id}`).set('Cookie', me.cookie);

    expectError(res, 404, 'not_found');
    expect(await userRow(t, other.user.id)).not.toBeNull();
    expect((await t.api().get('/api/auth/me').set('Cookie', other.cookie)).status).toBe(200);
  });

  test('when a non-admin deletes an admin, then 404 not_found and the admin stays', async () => {
    const me = await signedIn(t, 'user');
    const admin = await createUser(t, { role: 'admin' });
    const res = await t.api().delete(`/api/users/${admin.user.id}`).set('Cookie', me.cookie);
    expectError(res, 404, 'not_found');
    expect((await userRow(t, admin.user.id))!.role).toBe('admin');
  });

  test('when an admin deletes an id that does not exist, then 404 not_found', async () => {
    const admin = await signedIn(t, 'admin');
    const res = await t.api().delete(`/api/users/${randomUUID()}`).set('Cookie', admin.cookie);
    expectError(res, 404, 'not_found');
  });

  test('when a user is deleted twice, then the second answer is 404 not_found', async () => {
    const admin = await signedIn(t, 'admin');
    const other = await createUser(t);
    expect((await t.api().delete(`/api/users/${other.user.id}`).set('Cookie', admin.cookie)).status).toBe(
      204,
    );
    const second = await t.api().delete(`/api/users/${other.user.id}`).set('Cookie', admin.cookie);
    expectError(second, 404, 'not_found');
  });

  test('when the id is malformed, then 400 validation_failed on params.id', async () => {
    const admin = await signedIn(t, 'admin');
    const res = await t.api().delete('/api/users/123').set('Cookie', admin.cookie);
    expectError(res, 400, 'validation_failed');
    expect(res.body.error.details).toEqual([expect.objectContaining({ path: 'params.id' })]);
  });

  test('when nobody is signed in, then 401 unauthenticated and the row stays', async () => {
    const other = await createUser(t);
    const res = await t.api().delete(`/api/users/${other.user.id}`);
    expectError(res, 401, 'unauthenticated');
    expect(await userRow(t, other.user.id)).not.toBeNull();
  });
});
