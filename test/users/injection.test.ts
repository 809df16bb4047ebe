import { expectError } from '../support/assertions';
import { signedIn, uniqueEmail } from '../support/factories';
import type { TestApp } from '../support/test-app';
import { userRow } from '../support/users';
import { useTestApp } from '../support/use-test-app';

const PASSWORD = 'a long enough passphrase';

const countUsers = async (t: TestApp) =>
  (await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM users'))[0]!.n;
const usersTableExists = async (t: TestApp) =>
  (await t.db.query<{ ok: boolean }>("SELECT to_regclass('public.users') IS NOT NULL AS ok"))[0]!.ok;

/**
 * SQL metacharacters in every input are data, never code. The app here has a database of its own, so
 * the row count before and after is exact: nothing appears or disappears besides what the test inserts.
 */
// ASVS 5.0 1.2.3, 1.2.4: metacharacters stay data in SQL and round-trip unchanged through JSON.
describe('SQL injection attempts', () => {
  const t = useTestApp({}, { isolatedDatabase: 'users_injection' });

  test.each([
    "x'); DROP TABLE users;--",
    "' OR '1'='1",
    "Robert'); DELETE FROM users WHERE ('1'='1",
    '1; UPDATE users SET role = $$admin$$ --',
    "\\'; SELECT pg_sleep(0) --",
  ])('when a name is %j, then it is stored and returned verbatim and the table is intact', async (name) => {
    const admin = await signedIn(t, 'admin');
    const before = await countUsers(t);

    const created = await t
      .api()
      .post('/api/users')
      .set('Cookie', admin.cookie)
      .send({ email: uniqueEmail('inject'), password: PASSWORD, name });
    const fetched = await t.api().get(`/api/users/${created.body.id}`).set('Cookie', admin.cookie);
    const renamed = await t
      .api()
      .patch(`/api/users/${admin.user.id}`)
      .set('Cookie', admin.cookie)
      .send({ name: `${name} (again)` });

    expect(created.status).toBe(201);
    expect(created.body.name).toBe(name);
    expect(created.body.role).toBe('user');
    expect(fetched.body.name).toBe(name);
    expect((await userRow(t, created.body.id))!.name).toBe(name);
    expect(renamed.status).toBe(200);
    expect((await userRow(t, admin.user.id))!.name).toBe(`${name} (again)`);
    expect(await usersTableExists(t)).toBe(true);
    expect(await countUsers(t)).toBe(before + 1);
  });

  test.each([
    "' OR '1'='1",
    "x'); DROP TABLE users;--",
    "admin@example.test' --",
    "a@b.c'; DROP TABLE users;--",
  ])('when an email is %j, then 400 validation_failed and nothing is inserted', async (email) => {
    const admin = await signedIn(t, 'admin');
    const before = await countUsers(t);
    const res = await t
      .api()
      .post('/api/users')
      .set('Cookie', admin.cookie)
      .send({ email, password: PASSWORD, name: 'Injected' });
    expectError(res, 400, 'validation_failed');
    expect(await usersTableExists(t)).toBe(true);
    expect(await countUsers(t)).toBe(before);
  });

  test('when a valid email holds quotes and dashes, then it is stored verbatim as data', async () => {
    const admin = await signedIn(t, 'admin');
    const email = `o'reilly--${uniqueEmail('quote')}`;
    const res = await t
      .api()
      .post('/api/users')
      .set('Cookie', admin.cookie)
      .send({ email, password: PASSWORD, name: 'Quoted' });
    expect(res.status).toBe(201);
    expect(res.body.email).toBe(email);
    expect((await userRow(t, res.body.id))!.email).toBe(email);
  });

  test.each([
    ["' OR 1=1--", "' OR 1=1--"],
    ["' OR 1=1--", PASSWORD],
    ["admin' --", "' OR '1'='1"],
    ['" OR ""="', '" OR ""="'],
  ])(
    'when someone logs in with email %j and password %j, then 401 invalid_credentials',
    async (email, password) => {
      await signedIn(t, 'admin'); // there is an account the injection could hope to match
      const before = await countUsers(t);
      const res = await t.api().post('/api/auth/login').send({ email, password });
      expectError(res, 401, 'invalid_credentials');
      expect(res.headers['set-cookie']).toBeUndefined();
      expect(await usersTableExists(t)).toBe(true);
      expect(await countUsers(t)).toBe(before);
    },
  );

  test.each([
    ['a user id', (id: string) => `/api/users/${encodeURIComponent(`${id}' OR '1'='1`)}`],
    ['a limit', () => `/api/users?limit=${encodeURIComponent('1; DROP TABLE users')}`],
    ['a cursor', () => `/api/users?cursor=${encodeURIComponent("'); DROP TABLE users;--")}`],
  ])('when %s carries SQL, then 400 validation_failed and the table is intact', async (_label, url) => {
    const admin = await signedIn(t, 'admin');
    const before = await countUsers(t);
    const res = await t.api().get(url(admin.user.id)).set('Cookie', admin.cookie);
    expectError(res, 400, 'validation_failed');
    expect(await usersTableExists(t)).toBe(true);
    expect(await countUsers(t)).toBe(before);
  });
});
