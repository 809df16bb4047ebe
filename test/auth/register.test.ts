import request from 'supertest';
import { expectError } from '../support/assertions';
import { BOUNDARY_PASSWORDS, createUser, sessionCookie, uniqueEmail } from '../support/factories';
import { setCookies } from '../support/sessions';
import { useTestApp } from '../support/use-test-app';
import { countUsersWithEmail } from '../support/users';

const PASSWORD = 'correct horse battery staple';

describe('POST /api/auth/register', () => {
  const t = useTestApp();

  test('when the details are valid, then 201 with the user, role user, and a session that works', async () => {
    const email = uniqueEmail('register');

    const res = await request(t.app)
      .post('/api/auth/register')
      .send({ email: `  ${email.toUpperCase()}`, password: PASSWORD, name: '  Grace  ' });

    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      id: expect.any(String),
      email,
      name: 'Grace',
      role: 'user',
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      emailVerifiedAt: null,
    });
    expect(res.headers.location).toBe(`/api/users/${res.body.id}`);
    expect(res.text).not.toMatch(/argon2|password/i);
    const cookie = sessionCookie(res);
    expect(cookie).toBeDefined();
    const me = await request(t.app).get('/api/auth/me').set('Cookie', cookie!);
    expect(me.status).toBe(200);
    expect(me.body.id).toBe(res.body.id);
    // The stored password is an argon2id hash, never the password itself.
    const [row] = await t.db.query<{ password_hash: string }>(
      'SELECT password_hash FROM users WHERE id = $1',
      [res.body.id],
    );
    expect(row!.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    const relogin = await request(t.app).post('/api/auth/login').send({ email, password: PASSWORD });
    expect(relogin.status).toBe(200);
  });

  test('when the email exists in another letter case, then 409 email_taken, no session and no second user', async () => {
    const { email } = await createUser(t);

    const res = await request(t.app)
      .post('/api/auth/register')
      .send({ email: email.toUpperCase(), password: PASSWORD, name: 'Copycat' });

    expectError(res, 409, 'email_taken');
    expect(setCookies(res)).toEqual([]);
    expect(await countUsersWithEmail(t, email)).toBe(1);
  });

  test.each([
    ['too short', 'x'.repeat(11), /at least 12 characters/],
    ['too long', 'x'.repeat(129), /at most 128 characters/],
  ])('when the password is %s, then 400 password_rejected naming the rule', async (_case, password, rule) => {
    const email = uniqueEmail('weak');

    const res = await request(t.app).post('/api/auth/register').send({ email, password, name: 'Weak' });

    expectError(res, 400, 'password_rejected');
    expect(res.body.error.message).toMatch(rule);
    expect(setCookies(res)).toEqual([]);
    expect(await countUsersWithEmail(t, email)).toBe(0);
  });

  // ASVS 5.0 6.2.1, 6.2.5, 6.2.9: 12 to 128 code points, of any composition.
  test('when the password is exactly 12 or exactly 128 characters (code points), then it is accepted', async () => {
    for (const password of [BOUNDARY_PASSWORDS.min12, BOUNDARY_PASSWORDS.astral128]) {
      const res = await request(t.app)
        .post('/api/auth/register')
        .send({ email: uniqueEmail('edge'), password, name: 'Edge' });
      expect(res.status).toBe(201);
    }
  });

  // ASVS 5.0 8.2.3: the role field is not writable by a registrant.
  test('when the body asks for role admin, then 400 validation_failed and no user is created', async () => {
    const email = uniqueEmail('sneaky');

    const res = await request(t.app)
      .post('/api/auth/register')
      .send({ email, password: PASSWORD, name: 'Sneaky', role: 'admin' });

    expectError(res, 400, 'validation_failed');
    expect(JSON.stringify(res.body.error.details)).toMatch(/role/);
    expect(setCookies(res)).toEqual([]);
    expect(await countUsersWithEmail(t, email)).toBe(0);
  });

  test.each([
    ['no name', { email: 'n@example.test', password: PASSWORD }, 'body.name'],
    ['an invalid email', { email: 'not-an-email', password: PASSWORD, name: 'N' }, 'body.email'],
    [
      'a numeric password',
      { email: 'n@example.test', password: 123456789012345, name: 'N' },
      'body.password',
    ],
    ['a blank name', { email: 'n@example.test', password: PASSWORD, name: '   ' }, 'body.name'],
  ])('when the body has %s, then 400 validation_failed naming the field', async (_case, body, path) => {
    const res = await request(t.app).post('/api/auth/register').send(body);
    expectError(res, 400, 'validation_failed');
    expect(res.body.error.details).toEqual(expect.arrayContaining([{ path, message: expect.any(String) }]));
  });
});

describe('POST /api/auth/register with PASSWORD_MIN_LENGTH=16', () => {
  const t = useTestApp({ PASSWORD_MIN_LENGTH: '16' });

  test('when the password has 15 characters, then 400 password_rejected naming 16', async () => {
    const email = uniqueEmail('min16');
    const res = await request(t.app)
      .post('/api/auth/register')
      .send({ email, password: 'x'.repeat(15), name: 'Fifteen' });
    expectError(res, 400, 'password_rejected');
    expect(res.body.error.message).toMatch(/at least 16 characters/);
    expect(await countUsersWithEmail(t, email)).toBe(0);
  });

  test('when the password has 16 characters, then 201', async () => {
    const res = await request(t.app)
      .post('/api/auth/register')
      .send({ email: uniqueEmail('min16'), password: 'kettle-zebra-71x', name: 'Sixteen' });
    expect(res.status).toBe(201);
  });
});

describe('POST /api/auth/register with REGISTRATION_ENABLED=false', () => {
  const t = useTestApp({ REGISTRATION_ENABLED: 'false' });

  test('when someone registers, then 404 not_found like any missing route and no user is created', async () => {
    const email = uniqueEmail('closed');

    const res = await request(t.app)
      .post('/api/auth/register')
      .send({ email, password: PASSWORD, name: 'Closed' });

    expectError(res, 404, 'not_found');
    const missing = await request(t.app).post('/api/auth/no-such-route').send({});
    expect(res.body.error.message).toBe(missing.body.error.message);
    expect(setCookies(res)).toEqual([]);
    expect(await countUsersWithEmail(t, email)).toBe(0);
  });
});
