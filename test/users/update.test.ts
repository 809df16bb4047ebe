import { randomUUID } from 'node:crypto';
import { expectError } from '../support/assertions';
import { createUser, login, signedIn, uniqueEmail } from '../support/factories';
import { userRow } from '../support/users';
import { useTestApp } from '../support/use-test-app';

// Mail is off in this file: a change of one's own email switches at once, as it did before mail
// existed. With mail on it waits for a mailed link: test/users/email-change.test.ts.
describe('PATCH /api/users/:id', () => {
  const t = useTestApp();

  test('when users change their own name, then 200 and the row holds the new name', async () => {
    const me = await signedIn(t, 'user');
    const res = await t
      .api()
      .patch(`/api/users/${me.user.id}`)
      .set('Cookie', me.cookie)
      .send({ name: '  Renamed Me  ' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: me.user.id, name: 'Renamed Me', email: me.email, role: 'user' });
    expect(await userRow(t, me.user.id)).toMatchObject({
      name: 'Renamed Me',
      email: me.email,
      role: 'user',
    });
  });

  test('when users change their own email with the right current password, then 200, the new one is unverified and they sign in with it', async () => {
    const me = await signedIn(t, 'user');
    await t.db.query('UPDATE users SET email_verified_at = now() WHERE id = $1', [me.user.id]);
    const newEmail = uniqueEmail('moved');

    const res = await t
      .api()
      .patch(`/api/users/${me.user.id}`)
      .set('Cookie', me.cookie)
      .send({ email: ` ${newEmail.toUpperCase()} `, currentPassword: me.password });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ email: newEmail, emailVerifiedAt: null });
    expect((await userRow(t, me.user.id))!.email).toBe(newEmail);
    await expect(login(t, { email: newEmail, password: me.password })).resolves.toMatch(/^sid=/);
    const old = await t.api().post('/api/auth/login').send({ email: me.email, password: me.password });
    expect(old.status).toBe(401);
  });

  // ASVS 5.0 7.5.1: re-authentication before changing the sign-in address.
  test('when users change their own email with a wrong current password, then 403 invalid_current_password and nothing changes', async () => {
    const me = await signedIn(t, 'user');
    const res = await t
      .api()
      .patch(`/api/users/${me.user.id}`)
      .set('Cookie', me.cookie)
      .send({ email: uniqueEmail('moved'), currentPassword: 'not my password at all' });
    expectError(res, 403, 'invalid_current_password');
    expect((await userRow(t, me.user.id))!.email).toBe(me.email);
  });

  // ASVS 5.0 2.2.2, 2.2.3, 7.5.1: the server requires the current password with one's own email change.
  test('when users change their own email without the current password, then 400 validation_failed and nothing changes', async () => {
    const me = await signedIn(t, 'user');
    const res = await t
      .api()
      .patch(`/api/users/${me.user.id}`)
      .set('Cookie', me.cookie)
      .send({ email: uniqueEmail('moved'), name: 'Also Renamed' });
    expectError(res, 400, 'validation_failed');
    expect(res.body.error.details).toEqual([expect.objectContaining({ path: 'body.currentPassword' })]);
    expect(await userRow(t, me.user.id)).toMatchObject({ email: me.email, name: 'Test User' });
  });

  test('when admins change their own email, then they too must give the current password', async () => {
    const admin = await signedIn(t, 'admin');
    const res = await t
      .api()
      .patch(`/api/users/${admin.user.id}`)
      .set('Cookie', admin.cookie)
      .send({ email: uniqueEmail('admin-moved') });
    expectError(res, 400, 'validation_failed');
    expect((await userRow(t, admin.user.id))!.email).toBe(admin.email);
  });

  test("when an admin changes another user's name and email, then 200 without a current password", async () => {
    const admin = await signedIn(t, 'admin');
    const other = await createUser(t);
    const newEmail = uniqueEmail('admin-set');
    const res = await t
      .api()
      .patch(`/api/users/${other.user.id}`)
      .set('Cookie', admin.cookie)
      .send({ name: 'Set By Admin', email: newEmail });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: other.user.id,
      name: 'Set By Admin',
      email: newEmail,
      role: 'user',
    });
    expect(await userRow(t, other.user.id)).toMatchObject({ name: 'Set By Admin', email: newEmail });
  });

  test("when an admin changes a user's role, then 200 and the row holds the new role", async () => {
    const admin = await signedIn(t, 'admin');
    const other = await createUser(t);
    const res = await t
      .api()
      .patch(`/api/users/${other.user.id}`)
      .set('Cookie', admin.cookie)
      .send({ role: 'admin' });
    expect(res.status).toBe(200);
    expect(res.body.role).toBe('admin');
    expect((await userRow(t, other.user.id))!.role).toBe('admin');
  });

  test.each([
    ['admin', { role: 'admin' }],
    ['admin along with a new name', { role: 'admin', name: 'Promoted Myself' }],
    ['user (their current role)', { role: 'user' }],
  ])(
    'when a non-admin sends role=%s for themselves, then 403 forbidden and nothing changes',
    async (_l, body) => {
      const me = await signedIn(t, 'user');
      const before = await userRow(t, me.user.id);

      const res = await t.api().patch(`/api/users/${me.user.id}`).set('Cookie', me.cookie).send(body);

      expectError(res, 403, 'forbidden');
      expect(await userRow(t, me.user.id)).toEqual(before);
      const still = await t.api().get('/api/auth/me').set('Cookie', me.cookie);
      expect(still.body.role).toBe('user');
    },
  );

  test.each([
    ['a name', { name: 'Hijacked' }],
    ['an email', { email: uniqueEmail('hijack') }],
    ['a role', { role: 'admin' }],
  ])(
    'when a non-admin patches %s of another user, then 404 not_found and nothing changes',
    async (_l, body) => {
      const me = await signedIn(t, 'user');
      const other = await createUser(t);
      const before = await userRow(t, other.user.id);

      const res = await t.api().patch(`/api/users/${other.user.id}`).set('Cookie', me.cookie).send(body);

      expectError(res, 404, 'not_found');
      expect(await userRow(t, other.user.id)).toEqual(before);
    },
  );

  test('when the new email belongs to another account in another case, then 409 email_taken and nothing changes', async () => {
    const admin = await signedIn(t, 'admin');
    const taken = await createUser(t);
    const other = await createUser(t);
    const res = await t
      .api()
      .patch(`/api/users/${other.user.id}`)
      .set('Cookie', admin.cookie)
      .send({ email: taken.email.toUpperCase() });
    expectError(res, 409, 'email_taken');
    expect((await userRow(t, other.user.id))!.email).toBe(other.email);
  });

  test.each([
    ['an empty object', {}],
    ['only the current password', { currentPassword: 'plain old passphrase 42' }],
    ['an unknown field', { name: 'Fine', isAdmin: true }],
    ['a role that does not exist', { role: 'root' }],
    ['a number for the name', { name: 7 }],
    ['an invalid email', { email: 'nope' }],
    ['a blank name', { name: ' ' }],
  ])('when the body is %s, then 400 validation_failed and nothing changes', async (_label, body) => {
    const admin = await signedIn(t, 'admin');
    const other = await createUser(t);
    const before = await userRow(t, other.user.id);
    const res = await t.api().patch(`/api/users/${other.user.id}`).set('Cookie', admin.cookie).send(body);
    expectError(res, 400, 'validation_failed');
    expect(await userRow(t, other.user.id)).toEqual(before);
  });

  test('when there is no body at all, then 400 validation_failed', async () => {
    const me = await signedIn(t, 'user');
    const res = await t.api().patch(`/api/users/${me.user.id}`).set('Cookie', me.cookie);
    expectError(res, 400, 'validation_failed');
  });

  // ASVS 5.0 1.5.2, 2.2.1: strict schemas refuse unexpected keys.
  test('when the raw JSON body carries a __proto__ key, then 400 validation_failed and nothing changes', async () => {
    const me = await signedIn(t, 'user');
    const before = await userRow(t, me.user.id);
    const res = await t
      .api()
      .patch(`/api/users/${me.user.id}`)
      .set('Cookie', me.cookie)
      .set('Content-Type', 'application/json')
      .send('{"name":"Proto","__proto__":{"role":"admin"}}');
    expectError(res, 400, 'validation_failed');
    expect(await userRow(t, me.user.id)).toEqual(before);
  });

  test('when an admin patches an id that does not exist, then 404 not_found', async () => {
    const admin = await signedIn(t, 'admin');
    const res = await t
      .api()
      .patch(`/api/users/${randomUUID()}`)
      .set('Cookie', admin.cookie)
      .send({ name: 'Ghost' });
    expectError(res, 404, 'not_found');
  });

  test('when the id is malformed, then 400 validation_failed on params.id', async () => {
    const admin = await signedIn(t, 'admin');
    const res = await t.api().patch('/api/users/not-a-uuid').set('Cookie', admin.cookie).send({ name: 'X' });
    expectError(res, 400, 'validation_failed');
    expect(res.body.error.details).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: 'params.id' })]),
    );
  });

  test('when nobody is signed in, then 401 unauthenticated and nothing changes', async () => {
    const other = await createUser(t);
    const res = await t.api().patch(`/api/users/${other.user.id}`).send({ name: 'Anonymous Edit' });
    expectError(res, 401, 'unauthenticated');
    expect((await userRow(t, other.user.id))!.name).toBe('Test User');
  });
});
