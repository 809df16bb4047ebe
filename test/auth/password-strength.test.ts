import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { expectError } from '../support/assertions';
import { createUser, login, signedIn, uniqueEmail } from '../support/factories';
import { countUsersWithEmail } from '../support/users';
import { useTestApp } from '../support/use-test-app';

/**
 * The strength rules (common passwords, words from the account, reuse of the current password) on every
 * HTTP path that sets a password: registration, admin create, and change. The rule-by-rule detail is in
 * password-policy.test.ts; here each path shows it applies the policy with the right account context.
 */

const STRONG = 'otters juggle brass lanterns';
const COMMON = ['password1234', 'qwertyuiop123', 'iloveyou2024!'];
const TOO_COMMON = /^The password is too common or easy to guess\./;

/** A fixed local part on a unique domain: the test needs "alice.wonder" and its own account. */
const aliceEmail = () => `alice.wonder@${randomBytes(6).toString('hex')}.example.test`;

function expectRejected(res: request.Response, message: RegExp | string): void {
  expectError(res, 400, 'password_rejected');
  if (typeof message === 'string') expect(res.body.error.message).toBe(message);
  else expect(res.body.error.message).toMatch(message);
}

describe('password strength', () => {
  const t = useTestApp();

  const register = (body: { email: string; password: string; name: string }) =>
    request(t.app).post('/api/auth/register').send(body);
  const changePassword = (cookie: string, currentPassword: string, newPassword: string) =>
    request(t.app).put('/api/auth/password').set('Cookie', cookie).send({ currentPassword, newPassword });

  describe('POST /api/auth/register', () => {
    test.each(COMMON)(
      'when the password is the common %j, then 400 password_rejected as too common and no account',
      async (password) => {
        const email = uniqueEmail('common');

        const res = await register({ email, password, name: 'Common' });

        expectRejected(res, TOO_COMMON);
        expect(res.body.error.message).toMatch(/commonly used password/);
        expect(await countUsersWithEmail(t, email)).toBe(0);
      },
    );

    test('when the password is a keyboard walk, then 400 password_rejected as easy to guess', async () => {
      const email = uniqueEmail('walk');

      const res = await register({ email, password: '1qaz2wsx3edc4rfv', name: 'Walker' });

      expectRejected(res, TOO_COMMON);
      expect(await countUsersWithEmail(t, email)).toBe(0);
    });

    test("when the password holds the email's local part, then 400 password_rejected naming the email", async () => {
      const email = aliceEmail();

      const res = await register({ email, password: 'alice.wonder-2024!x', name: 'Someone Else' });

      expectRejected(res, 'The password must not contain your email address (the part before the @).');
      expect(await countUsersWithEmail(t, email)).toBe(0);
    });

    test('when the password holds a word of the name, then 400 password_rejected naming the name', async () => {
      const email = uniqueEmail('named');

      const res = await register({ email, password: 'Hopper kettle 1906', name: 'Grace Hopper' });

      expectRejected(res, 'The password must not contain your name.');
      expect(await countUsersWithEmail(t, email)).toBe(0);
    });

    test('when the password is a strong passphrase, then 201 and it signs in', async () => {
      const email = uniqueEmail('strong');

      const res = await register({ email, password: STRONG, name: 'Grace Hopper' });

      expect(res.status).toBe(201);
      await expect(login(t, { email, password: STRONG })).resolves.toMatch(/^sid=/);
    });
  });

  describe('POST /api/users (admin create)', () => {
    const create = (cookie: string, body: { email: string; password: string; name: string }) =>
      request(t.app).post('/api/users').set('Cookie', cookie).send(body);

    test.each(COMMON)(
      'when the password is the common %j, then 400 password_rejected as too common and no account',
      async (password) => {
        const admin = await signedIn(t, 'admin');
        const email = uniqueEmail('common');

        const res = await create(admin.cookie, { email, password, name: 'Common' });

        expectRejected(res, TOO_COMMON);
        expect(await countUsersWithEmail(t, email)).toBe(0);
      },
    );

    test("when the password holds the new user's email local part or name, then 400 password_rejected naming which", async () => {
      const admin = await signedIn(t, 'admin');
      const email = aliceEmail();

      const byEmail = await create(admin.cookie, { email, password: 'alice.wonder-2024!x', name: 'A. W.' });
      const byName = await create(admin.cookie, {
        email,
        password: 'x-WONDER-kettle-9',
        name: 'Alice Wonder',
      });

      expectRejected(byEmail, /your email address/);
      expectRejected(byName, /your name/);
      expect(await countUsersWithEmail(t, email)).toBe(0);
    });

    test('when the password is a strong passphrase, then 201', async () => {
      const admin = await signedIn(t, 'admin');

      const res = await create(admin.cookie, { email: uniqueEmail('strong'), password: STRONG, name: 'Ada' });

      expect(res.status).toBe(201);
    });
  });

  describe('PUT /api/auth/password', () => {
    test('when the new password is the current one, then 400 password_rejected and the password still works', async () => {
      const { email, password, cookie } = await signedIn(t);

      const res = await changePassword(cookie, password, password);

      expectRejected(res, 'The new password must be different from the current one.');
      await expect(login(t, { email, password })).resolves.toMatch(/^sid=/);
    });

    // ASVS 5.0 6.2.4: common passwords are refused.
    test('when the new password is common, then 400 password_rejected as too common', async () => {
      const { cookie, password } = await signedIn(t);

      const res = await changePassword(cookie, password, 'iloveyou2024!');

      expectRejected(res, TOO_COMMON);
    });

    test("when the new password holds the user's own email local part, then 400 password_rejected naming the email", async () => {
      const user = await createUser(t, { email: aliceEmail() });
      const cookie = await login(t, user);

      const res = await changePassword(cookie, user.password, 'alice.wonder-2024!x');

      expectRejected(res, /your email address/);
      await expect(login(t, user)).resolves.toMatch(/^sid=/);
    });

    test("when the new password holds the user's own name, then 400 password_rejected naming the name", async () => {
      const user = await createUser(t, { name: 'Grace Hopper' });
      const cookie = await login(t, user);

      const res = await changePassword(cookie, user.password, 'grace-kettle-1906');

      expectRejected(res, 'The password must not contain your name.');
    });

    test('when the new password is a strong passphrase, then 204 and it signs in', async () => {
      const { email, password, cookie } = await signedIn(t);

      const res = await changePassword(cookie, password, STRONG);

      expect(res.status).toBe(204);
      await expect(login(t, { email, password: STRONG })).resolves.toMatch(/^sid=/);
    });
  });
});

// ASVS 5.0 6.2.5: no composition rules: a long password of any kind passes.
describe('password strength with PASSWORD_MIN_SCORE=0', () => {
  const t = useTestApp({ PASSWORD_MIN_SCORE: '0' });

  test('when the password is weak but long enough, then 201', async () => {
    const res = await request(t.app)
      .post('/api/auth/register')
      .send({ email: uniqueEmail('lenient'), password: 'password1234', name: 'Lenient' });

    expect(res.status).toBe(201);
  });

  test("when the password holds the email's local part, then it is still refused: the score is not the only rule", async () => {
    const res = await request(t.app)
      .post('/api/auth/register')
      .send({ email: aliceEmail(), password: 'alice.wonder-2024!x', name: 'Lenient' });

    expectRejected(res, /your email address/);
  });
});

describe('password strength with PASSWORD_CONTEXT_WORDS (ASVS 6.1.2, 6.2.11)', () => {
  const t = useTestApp({ PASSWORD_CONTEXT_WORDS: 'Quantiva,Acme Corp' });
  const CONTEXT_WORD =
    'The password must not contain "quantiva": names tied to this service are guessed first.';

  test('when a registration password holds a listed word, then 400 password_rejected naming it and no account', async () => {
    const email = uniqueEmail('context');

    const res = await request(t.app)
      .post('/api/auth/register')
      .send({ email, password: 'QUANTIVA otters juggle brass', name: 'Context' });

    expectRejected(res, CONTEXT_WORD);
    expect(await countUsersWithEmail(t, email)).toBe(0);
  });

  test('when a new password holds a listed word, then 400 password_rejected and the old one still works', async () => {
    const { email, password, cookie } = await signedIn(t);

    const res = await request(t.app)
      .put('/api/auth/password')
      .set('Cookie', cookie)
      .send({ currentPassword: password, newPassword: 'lanterns of acme corp at dawn' });

    expectRejected(res, /must not contain "acme corp"/);
    await expect(login(t, { email, password })).resolves.toMatch(/^sid=/);
  });
});
