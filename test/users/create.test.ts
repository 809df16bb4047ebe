import { expectError } from '../support/assertions';
import { BOUNDARY_PASSWORDS, createUser, login, signedIn, uniqueEmail } from '../support/factories';
import { countUsersWithEmail, userRow, USER_JSON_KEYS } from '../support/users';
import { useTestApp } from '../support/use-test-app';

const PASSWORD = 'a long enough passphrase';

describe('POST /api/users', () => {
  const t = useTestApp();

  // ASVS 5.0 11.4.2: argon2id.
  test('when an admin creates a user, then 201 with the public user, a Location, and an argon2id hash stored', async () => {
    const admin = await signedIn(t, 'admin');
    const email = uniqueEmail('created');

    const res = await t
      .api()
      .post('/api/users')
      .set('Cookie', admin.cookie)
      .send({ email, password: PASSWORD, name: 'Created User', role: 'user' });

    expect(res.status).toBe(201);
    expect(Object.keys(res.body).sort()).toEqual(USER_JSON_KEYS);
    expect(res.body).toMatchObject({ email, name: 'Created User', role: 'user' });
    expect(res.headers.location).toBe(`/api/users/${res.body.id}`);
    const row = await userRow(t, res.body.id);
    expect(row).toMatchObject({ id: res.body.id, email, name: 'Created User', role: 'user' });
    expect(row!.password_hash).toMatch(/^\$argon2id\$/);
    expect(row!.password_hash).not.toContain(PASSWORD);
    await expect(login(t, { email, password: PASSWORD })).resolves.toMatch(/^sid=/);
  });

  test('when an admin creates an admin, then the role is stored', async () => {
    const admin = await signedIn(t, 'admin');
    const res = await t
      .api()
      .post('/api/users')
      .set('Cookie', admin.cookie)
      .send({ email: uniqueEmail('new-admin'), password: PASSWORD, name: 'Second Admin', role: 'admin' });
    expect(res.status).toBe(201);
    expect(res.body.role).toBe('admin');
    expect((await userRow(t, res.body.id))!.role).toBe('admin');
  });

  test('when the role is left out, then the user is created as a plain user', async () => {
    const admin = await signedIn(t, 'admin');
    const res = await t
      .api()
      .post('/api/users')
      .set('Cookie', admin.cookie)
      .send({ email: uniqueEmail('no-role'), password: PASSWORD, name: 'No Role' });
    expect(res.status).toBe(201);
    expect((await userRow(t, res.body.id))!.role).toBe('user');
  });

  test('when the email has capitals and surrounding spaces, then it is stored trimmed and lowercased', async () => {
    const admin = await signedIn(t, 'admin');
    const email = uniqueEmail('mixed');
    const res = await t
      .api()
      .post('/api/users')
      .set('Cookie', admin.cookie)
      .send({ email: `  ${email.toUpperCase()}  `, password: PASSWORD, name: 'Mixed Case' });
    expect(res.status).toBe(201);
    expect(res.body.email).toBe(email);
    expect((await userRow(t, res.body.id))!.email).toBe(email);
  });

  test.each([
    ['the same letters', (e: string) => e],
    ['upper case', (e: string) => e.toUpperCase()],
    ['surrounding spaces and mixed case', (e: string) => `  ${e[0]!.toUpperCase()}${e.slice(1)}\t`],
  ])(
    'when the email exists written in %s, then 409 email_taken and still one account',
    async (_label, spell) => {
      const admin = await signedIn(t, 'admin');
      const existing = await createUser(t);

      const res = await t
        .api()
        .post('/api/users')
        .set('Cookie', admin.cookie)
        .send({ email: spell(existing.email), password: PASSWORD, name: 'Duplicate' });

      expectError(res, 409, 'email_taken');
      expect(await countUsersWithEmail(t, existing.email)).toBe(1);
      expect((await userRow(t, existing.user.id))!.name).toBe('Test User');
    },
  );

  test.each([
    ['shorter than 12 characters', 'x'.repeat(11), /at least 12/],
    ['longer than 128 characters', 'x'.repeat(129), /at most 128/],
    ['empty', '', /at least 12/],
    ['11 astral characters (22 UTF-16 units)', '😀'.repeat(11), /at least 12/],
  ])(
    'when the password is %s, then 400 password_rejected naming the rule, and no account',
    async (_l, pw, rule) => {
      const admin = await signedIn(t, 'admin');
      const email = uniqueEmail('weak');
      const res = await t
        .api()
        .post('/api/users')
        .set('Cookie', admin.cookie)
        .send({ email, password: pw, name: 'Weak' });
      expectError(res, 400, 'password_rejected');
      expect(res.body.error.message).toMatch(rule);
      expect(await countUsersWithEmail(t, email)).toBe(0);
    },
  );

  test.each([
    ['exactly 12 characters', BOUNDARY_PASSWORDS.min12],
    ['exactly 128 characters', BOUNDARY_PASSWORDS.max128],
    ['12 code points of astral characters', BOUNDARY_PASSWORDS.astral12],
  ])('when the password is %s, then it is accepted', async (_label, pw) => {
    const admin = await signedIn(t, 'admin');
    const email = uniqueEmail('edge');
    const res = await t
      .api()
      .post('/api/users')
      .set('Cookie', admin.cookie)
      .send({ email, password: pw, name: 'Edge' });
    expect(res.status).toBe(201);
    await expect(login(t, { email, password: pw })).resolves.toMatch(/^sid=/);
  });

  type Body = Record<string, unknown>;
  const without =
    (key: string) =>
    (b: Body): Body =>
      Object.fromEntries(Object.entries(b).filter(([k]) => k !== key));
  const valid = () => ({ email: uniqueEmail('invalid'), password: PASSWORD, name: 'Invalid' });
  test.each([
    ['an unknown field', (b: Body) => ({ ...b, isAdmin: true }), 'body'],
    ['a role that does not exist', (b: Body) => ({ ...b, role: 'superadmin' }), 'body.role'],
    ['a role in the wrong case', (b: Body) => ({ ...b, role: 'Admin' }), 'body.role'],
    ['a number for the email', (b: Body) => ({ ...b, email: 42 }), 'body.email'],
    ['an array for the name', (b: Body) => ({ ...b, name: ['x'] }), 'body.name'],
    ['a number for the password', (b: Body) => ({ ...b, password: 123456789012345 }), 'body.password'],
    ['a boolean for the role', (b: Body) => ({ ...b, role: true }), 'body.role'],
    ['null for the name', (b: Body) => ({ ...b, name: null }), 'body.name'],
    ['no email', without('email'), 'body.email'],
    ['no password', without('password'), 'body.password'],
    ['an email that is not one', (b: Body) => ({ ...b, email: 'not-an-email' }), 'body.email'],
    ['a blank name', (b: Body) => ({ ...b, name: '   ' }), 'body.name'],
    ['a name over 100 characters', (b: Body) => ({ ...b, name: 'n'.repeat(101) }), 'body.name'],
    ['a name with a control character', (b: Body) => ({ ...b, name: 'evil\u0000name' }), 'body.name'],
  ])(
    'when the body has %s, then 400 validation_failed and no account',
    async (_label, mutate: (b: Body) => Body, path) => {
      const admin = await signedIn(t, 'admin');
      const body = valid();
      const res = await t.api().post('/api/users').set('Cookie', admin.cookie).send(mutate(body));
      expectError(res, 400, 'validation_failed');
      expect(res.body.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path })]));
      expect(await countUsersWithEmail(t, body.email)).toBe(0);
    },
  );

  test.each([
    ['__proto__', '{"role":"admin"}'],
    ['constructor', '{"prototype":{"role":"admin"}}'],
  ])(
    'when the raw JSON body carries a %s key, then 400 validation_failed and no account',
    async (key, value) => {
      const admin = await signedIn(t, 'admin');
      const email = uniqueEmail('proto');
      const raw = `{"email":"${email}","password":"${PASSWORD}","name":"Proto","${key}":${value}}`;
      const res = await t
        .api()
        .post('/api/users')
        .set('Cookie', admin.cookie)
        .set('Content-Type', 'application/json')
        .send(raw);
      expectError(res, 400, 'validation_failed');
      expect(JSON.stringify(res.body.error.details)).toContain(key);
      expect(await countUsersWithEmail(t, email)).toBe(0);
      expect(({} as Record<string, unknown>).role).toBeUndefined(); // nothing was polluted in this process
    },
  );

  // ASVS 5.0 8.2.1: creating users is an admin's function.
  test('when a non-admin creates a user, then 403 forbidden and no account', async () => {
    const user = await signedIn(t, 'user');
    const email = uniqueEmail('by-user');
    const res = await t
      .api()
      .post('/api/users')
      .set('Cookie', user.cookie)
      .send({ email, password: PASSWORD, name: 'Sneaky', role: 'admin' });
    expectError(res, 403, 'forbidden');
    expect(await countUsersWithEmail(t, email)).toBe(0);
  });

  test('when nobody is signed in, then 401 unauthenticated and no account', async () => {
    const email = uniqueEmail('anonymous');
    const res = await t.api().post('/api/users').send({ email, password: PASSWORD, name: 'Anonymous' });
    expectError(res, 401, 'unauthenticated');
    expect(await countUsersWithEmail(t, email)).toBe(0);
  });
});
