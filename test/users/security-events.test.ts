import { expectError } from '../support/assertions';
import { createUser, signedIn, uniqueEmail } from '../support/factories';
import { eventsOf } from '../support/log-lines';
import { useTestApp } from '../support/use-test-app';

// ASVS 5.0 16.2.1: each event says who, what, from where and which request.
describe('security events of the users API', () => {
  const t = useTestApp();

  test('when an admin creates a user, then user.created is logged with the actor, target, IP and request id', async () => {
    const admin = await signedIn(t, 'admin');
    const password = 'a secret that must stay out of logs';
    const res = await t
      .api()
      .post('/api/users')
      .set('Cookie', admin.cookie)
      .send({ email: uniqueEmail('logged'), password, name: 'Logged', role: 'user' });
    expect(res.status).toBe(201);

    expect(eventsOf(t, res, 'user.created')).toEqual([
      expect.objectContaining({
        level: 'info',
        userId: admin.user.id,
        targetUserId: res.body.id,
        role: 'user',
        clientIp: '127.0.0.1',
        requestId: res.headers['x-request-id'],
      }),
    ]);
    expect(t.rawLogs()).not.toContain(password);
    expect(t.rawLogs()).not.toMatch(/\$argon2/);
  });

  test('when a user is updated, then user.updated is logged with the actor, target, changed fields, IP and request id', async () => {
    const admin = await signedIn(t, 'admin');
    const other = await createUser(t);
    const res = await t
      .api()
      .patch(`/api/users/${other.user.id}`)
      .set('Cookie', admin.cookie)
      .send({ name: 'Logged Rename', role: 'admin' });
    expect(res.status).toBe(200);

    expect(eventsOf(t, res, 'user.updated')).toEqual([
      expect.objectContaining({
        level: 'info',
        userId: admin.user.id,
        targetUserId: other.user.id,
        fields: ['name', 'role'],
        role: 'admin',
        clientIp: '127.0.0.1',
        requestId: res.headers['x-request-id'],
      }),
    ]);
  });

  test('when users change their own email, then the log names the field but holds neither password', async () => {
    const me = await signedIn(t, 'user');
    const res = await t
      .api()
      .patch(`/api/users/${me.user.id}`)
      .set('Cookie', me.cookie)
      .send({ email: uniqueEmail('relogged'), currentPassword: me.password });
    expect(res.status).toBe(200);
    expect(eventsOf(t, res, 'user.updated')).toEqual([
      expect.objectContaining({ userId: me.user.id, targetUserId: me.user.id, fields: ['email'] }),
    ]);
    expect(t.rawLogs()).not.toContain(me.password);
  });

  test('when a user is deleted, then user.deleted is logged with the actor, target, IP and request id', async () => {
    const admin = await signedIn(t, 'admin');
    const other = await createUser(t);
    const res = await t.api().delete(`/api/users/${other.user.id}`).set('Cookie', admin.cookie);
    expect(res.status).toBe(204);

    expect(eventsOf(t, res, 'user.deleted')).toEqual([
      expect.objectContaining({
        level: 'info',
        userId: admin.user.id,
        targetUserId: other.user.id,
        clientIp: '127.0.0.1',
        requestId: res.headers['x-request-id'],
      }),
    ]);
  });

  test('when a change is refused, then no user.* event claims it happened', async () => {
    const me = await signedIn(t, 'user');
    const res = await t
      .api()
      .patch(`/api/users/${me.user.id}`)
      .set('Cookie', me.cookie)
      .send({ role: 'admin' });
    expect(res.status).toBe(403);
    expect(eventsOf(t, res, 'user.updated')).toEqual([]);
  });

  test.each([
    ['GET', '/api/users'],
    ['POST', '/api/users'],
  ])('when a non-admin calls %s %s, then authz.denied is logged as a warning', async (method, path) => {
    const me = await signedIn(t, 'user');
    const call = method === 'GET' ? t.api().get(path) : t.api().post(path).send({});
    const res = await call.set('Cookie', me.cookie);
    expectError(res, 403, 'forbidden');

    expect(eventsOf(t, res, 'authz.denied')).toEqual([
      expect.objectContaining({
        level: 'warn',
        userId: me.user.id,
        clientIp: '127.0.0.1',
        requestId: res.headers['x-request-id'],
        method,
        path,
      }),
    ]);
  });

  // ASVS 5.0 8.2.3, 16.3.2: roles are written by admins only; the refusal is logged.
  test('when a non-admin sends role for themselves, then authz.denied is logged with the 403', async () => {
    const me = await signedIn(t, 'user');
    const path = `/api/users/${me.user.id}`;
    const res = await t.api().patch(path).set('Cookie', me.cookie).send({ role: 'admin' });
    expect(res.status).toBe(403);
    expect(eventsOf(t, res, 'authz.denied')).toEqual([
      expect.objectContaining({ level: 'warn', userId: me.user.id, method: 'PATCH', path }),
    ]);
  });

  test.each(['GET', 'PATCH', 'DELETE'])(
    "when a non-admin %ss another user's id, then the 404 is logged as authz.denied",
    async (method) => {
      const me = await signedIn(t, 'user');
      const other = await createUser(t);
      const path = `/api/users/${other.user.id}`;
      const base = t.api();
      const call =
        method === 'GET'
          ? base.get(path)
          : method === 'PATCH'
            ? base.patch(path).send({ name: 'x' })
            : base.delete(path);
      const res = await call.set('Cookie', me.cookie);
      expect(res.status).toBe(404);
      expect(eventsOf(t, res, 'authz.denied')).toEqual([
        expect.objectContaining({ userId: me.user.id, method, path }),
      ]);
    },
  );

  test('when an id simply does not exist for an admin, then no authz.denied is logged', async () => {
    const admin = await signedIn(t, 'admin');
    const res = await t
      .api()
      .get('/api/users/00000000-0000-4000-8000-000000000000')
      .set('Cookie', admin.cookie);
    expect(res.status).toBe(404);
    expect(eventsOf(t, res, 'authz.denied')).toEqual([]);
  });
});
