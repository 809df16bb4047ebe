import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import request from 'supertest';
import { expectError } from '../support/assertions';
import { createIsolatedDatabase } from '../support/databases';
import { startRangeServer } from '../support/range-server';
import { runScript, type ScriptResult } from '../support/run-script';
import { useTestApp } from '../support/use-test-app';

/** `npm run seed` (scripts/seed.ts) as its own process, against a migrated database of its own. */

interface UserRow {
  id: string;
  email: string;
  role: string;
  password_hash: string;
}

// ASVS 5.0 6.3.2: no default account: the first admin only from the operator's variables.
describe('seed', () => {
  let databaseUrl: string;
  let db: Client;
  beforeAll(async () => {
    databaseUrl = await createIsolatedDatabase('seed');
    db = new Client({ connectionString: databaseUrl });
    await db.connect();
  });
  afterAll(() => db?.end());

  const seed = (env: Record<string, string> = {}): Promise<ScriptResult> =>
    runScript('scripts/seed.ts', { NODE_ENV: 'test', DATABASE_URL: databaseUrl, ...env });
  const allUsers = async () =>
    (await db.query<UserRow>('SELECT id, email, role, password_hash FROM users ORDER BY created_at, id'))
      .rows;
  const usersWithEmail = async (email: string) =>
    (await db.query<UserRow>('SELECT id, email, role, password_hash FROM users WHERE email = $1', [email]))
      .rows;
  /** Mixed case on purpose: the account must be stored lowercased. */
  const adminEmail = () => `Admin-${randomBytes(4).toString('hex')}@Example.TEST`;
  const goodPassword = () => `seed passphrase ${randomBytes(8).toString('hex')}`;
  const output = (result: ScriptResult) => result.stdout + result.stderr;

  test.each([
    ['neither ADMIN_EMAIL nor ADMIN_PASSWORD is set', {}],
    ['only ADMIN_EMAIL is set', { ADMIN_EMAIL: 'lonely-admin@example.test' }],
    ['only ADMIN_PASSWORD is set', { ADMIN_PASSWORD: 'a password without an email' }],
  ])('when %s, then it exits 0, says no admin was created, and creates nobody', async (_label, env) => {
    const before = await allUsers();

    const result = await seed(env);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain('no admin created');
    expect(await allUsers()).toEqual(before);
  });

  test('when ADMIN_EMAIL and ADMIN_PASSWORD are set, then exactly one admin is created, with the email lowercased', async () => {
    const email = adminEmail();
    const password = goodPassword();

    const result = await seed({ ADMIN_EMAIL: email, ADMIN_PASSWORD: password });

    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`created admin ${email.toLowerCase()}`);
    expect(await usersWithEmail(email)).toEqual([]);
    const created = await usersWithEmail(email.toLowerCase());
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({ role: 'admin' });
    expect(created[0]!.password_hash).toMatch(/^\$argon2id\$/);
    expect(output(result)).not.toContain(password);
  });

  test('when the first admin is created, then their address starts verified: the operator vouches for it', async () => {
    const email = adminEmail().toLowerCase();

    const result = await seed({ ADMIN_EMAIL: email, ADMIN_PASSWORD: goodPassword() });

    expect(result.code).toBe(0);
    const [row] = (
      await db.query<{ email_verified_at: Date | null }>(
        'SELECT email_verified_at FROM users WHERE email = $1',
        [email],
      )
    ).rows;
    expect(row?.email_verified_at).toEqual(expect.any(Date));
  });

  test('when ADMIN_NAME is set, then the admin gets that name; unset or empty, the name is Administrator', async () => {
    const named = adminEmail();
    expect(
      (await seed({ ADMIN_EMAIL: named, ADMIN_PASSWORD: goodPassword(), ADMIN_NAME: '  Ada Admin ' })).code,
    ).toBe(0);
    const unnamed = adminEmail();
    expect((await seed({ ADMIN_EMAIL: unnamed, ADMIN_PASSWORD: goodPassword(), ADMIN_NAME: '' })).code).toBe(
      0,
    );

    const nameOf = async (email: string) =>
      (await db.query<{ name: string }>('SELECT name FROM users WHERE email = $1', [email.toLowerCase()]))
        .rows[0]?.name;
    expect(await nameOf(named)).toBe('Ada Admin');
    expect(await nameOf(unnamed)).toBe('Administrator');
  });

  test('when ADMIN_NAME breaks the name rules, then it exits non-zero naming the variable and creates nobody', async () => {
    const email = adminEmail();
    const result = await seed({
      ADMIN_EMAIL: email,
      ADMIN_PASSWORD: goodPassword(),
      ADMIN_NAME: 'x'.repeat(101),
    });

    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('ADMIN_NAME');
    expect(result.stderr).not.toMatch(/\n\s+at /); // a message, not a stack trace
    expect(await usersWithEmail(email.toLowerCase())).toEqual([]);
  });

  test('when it runs again with the same admin, then nothing changes: same id, same password hash', async () => {
    const email = adminEmail();
    const password = goodPassword();
    const first = await seed({ ADMIN_EMAIL: email, ADMIN_PASSWORD: password });
    expect(first.code).toBe(0);
    const before = await allUsers();

    // Even a different password does not overwrite the existing account.
    const again = await seed({ ADMIN_EMAIL: email.toUpperCase(), ADMIN_PASSWORD: `${password} changed` });

    expect(again.code).toBe(0);
    expect(again.stdout).toContain('already exists; nothing changed');
    expect(await allUsers()).toEqual(before);
    expect(output(first) + output(again)).not.toContain(password);
  });

  describe('with a password the policy refuses', () => {
    const t = useTestApp();

    test('when ADMIN_PASSWORD is too short, then it exits non-zero naming the length rule, creates nobody, and answers like the API', async () => {
      const email = adminEmail();
      const shortPassword = 'short-pw-11'; // 11 characters, the minimum is 12
      const before = await allUsers();

      const result = await seed({ ADMIN_EMAIL: email, ADMIN_PASSWORD: shortPassword });

      expect(result.code).not.toBe(0);
      expect(result.code).not.toBeNull();
      expect(result.stderr).toContain('at least 12 characters');
      expect(output(result)).not.toContain(shortPassword);
      expect(await allUsers()).toEqual(before);
      // The same policy, word for word, as the API applies to the same password.
      const api = await request(t.app)
        .post('/api/auth/register')
        .send({ email: email.toLowerCase(), password: shortPassword, name: 'Admin' });
      expectError(api, 400, 'password_rejected');
      expect(result.stderr).toContain(api.body.error.message);
    });

    // ASVS 5.0 6.2.4: the seed applies the same list.
    test('when ADMIN_PASSWORD is a common password, then it exits non-zero as too common, creates nobody, and answers like the API', async () => {
      const email = adminEmail();
      const commonPassword = 'password1234';
      const before = await allUsers();

      const result = await seed({ ADMIN_EMAIL: email, ADMIN_PASSWORD: commonPassword });

      expect(result.code).not.toBe(0);
      expect(result.code).not.toBeNull();
      expect(result.stderr).toContain('too common or easy to guess');
      expect(output(result)).not.toContain(commonPassword);
      expect(await allUsers()).toEqual(before);
      const api = await request(t.app)
        .post('/api/auth/register')
        .send({ email: email.toLowerCase(), password: commonPassword, name: 'Administrator' });
      expectError(api, 400, 'password_rejected');
      expect(result.stderr).toContain(api.body.error.message);
    });

    test('when PASSWORD_MIN_LENGTH is raised, then the seed applies the raised minimum too', async () => {
      const password = 'fourteen chars'; // accepted by the default 12, refused by 16

      const result = await seed({
        ADMIN_EMAIL: adminEmail(),
        ADMIN_PASSWORD: password,
        PASSWORD_MIN_LENGTH: '16',
      });

      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('at least 16 characters');
    });

    test('when PASSWORD_CONTEXT_WORDS lists a word ADMIN_PASSWORD holds, then it exits non-zero naming the word (ASVS 6.2.11)', async () => {
      const before = await allUsers();

      const result = await seed({
        ADMIN_EMAIL: adminEmail(),
        ADMIN_PASSWORD: 'quantiva otters juggle brass',
        PASSWORD_CONTEXT_WORDS: 'Quantiva',
      });

      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('must not contain "quantiva"');
      expect(await allUsers()).toEqual(before);
    });

    test('when PASSWORD_BREACH_API_URL answers that ADMIN_PASSWORD was breached, then it exits non-zero and creates nobody (ASVS 6.2.12)', async () => {
      const breached = `seed passphrase ${randomBytes(8).toString('hex')}`;
      const range = await startRangeServer();
      range.addBreached(breached);
      const before = await allUsers();
      try {
        const result = await seed({
          ADMIN_EMAIL: adminEmail(),
          ADMIN_PASSWORD: breached,
          PASSWORD_BREACH_API_URL: range.url,
        });

        expect(result.code).not.toBe(0);
        expect(result.stderr).toContain('appears in a known data breach');
        expect(output(result)).not.toContain(breached);
        expect(range.requests).toHaveLength(1);
        expect(await allUsers()).toEqual(before);
      } finally {
        await range.close();
      }
    });
  });
});
