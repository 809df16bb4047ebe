import request from 'supertest';
import { createPasswordHasher, type PasswordHasher } from '../../src/lib/passwords';
import { createUsersRepository } from '../../src/users/users.repository';
import { expectError } from '../support/assertions';
import { createUser, login, me, uniqueEmail } from '../support/factories';
import { until } from '../support/held-hasher';
import { eventsNamed } from '../support/log-lines';
import { passwords, type TestApp } from '../support/test-app';
import { userRow } from '../support/users';
import { useTestApp } from '../support/use-test-app';

/**
 * ASVS 11.2.2: when the hashing parameters move on, a successful login hashes the password again with
 * the current ones. "Older parameters" here are argon2id at m=8 MiB, t=1 (below OWASP's minimum), and
 * argon2i: what a deployment upgraded from an older configuration still holds.
 */

const PASSWORD = 'otters juggle brass lanterns';
const CURRENT = /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/;
const older = createPasswordHasher({ algorithm: 2, memoryCost: 8192, timeCost: 1, parallelism: 1 });

/** A user whose stored hash was made with the older parameters, as the database of an upgraded app holds it. */
async function userWithOlderHash(t: TestApp): Promise<{ id: string; email: string; oldHash: string }> {
  const email = uniqueEmail('older');
  const oldHash = await older.hash(PASSWORD);
  const user = await createUsersRepository(t.db).insert({
    email,
    name: 'Old Hash',
    role: 'user',
    passwordHash: oldHash,
  });
  return { id: user.id, email, oldHash };
}

const loginWith = (t: TestApp, email: string, password: string) =>
  request(t.app).post('/api/auth/login').send({ email, password });

describe('needsRehash (ASVS 11.2.2)', () => {
  test.each([
    ['argon2i', { algorithm: 1 as const }],
    ['version 0x10', { version: 0 as const }],
    ['less memory', { memoryCost: 8192 }],
    ['one pass', { timeCost: 1 }],
    ['two lanes', { parallelism: 2 }],
    ['a 16-byte output', { outputLen: 16 }],
  ])('when a hash was made with %s, then it needs a rehash', async (_what, changed) => {
    const options = { algorithm: 2 as const, memoryCost: 19456, timeCost: 2, parallelism: 1, ...changed };
    const hash = await createPasswordHasher(options).hash(PASSWORD);

    expect(passwords().needsRehash(hash)).toBe(true);
  });

  test('when a hash was made with the current parameters, then it needs none', async () => {
    expect(passwords().needsRehash(await passwords().hash(PASSWORD))).toBe(false);
  });

  test('when the stored value is not an argon2 hash, then it needs one', () => {
    expect(passwords().needsRehash('$2b$10$notanargon2hashatall')).toBe(true);
  });
});

describe('POST /api/auth/login with a hash made under older parameters (ASVS 11.2.2)', () => {
  const t = useTestApp();

  test('when the password is right, then the stored hash is replaced by one with the current parameters, and it signs in again', async () => {
    const { id, email, oldHash } = await userWithOlderHash(t);
    const before = await userRow(t, id);

    const res = await loginWith(t, email, PASSWORD);

    expect(res.status).toBe(200);
    const after = await userRow(t, id);
    expect(after!.password_hash).not.toBe(oldHash);
    expect(after!.password_hash).toMatch(CURRENT);
    expect(passwords().needsRehash(after!.password_hash)).toBe(false);
    // The same password under a new hash is no change of the account.
    expect(after!.updated_at).toEqual(before!.updated_at);
    expect(eventsNamed(t, 'auth.password_rehashed').filter((l) => l.userId === id)).toHaveLength(1);
    expect((await loginWith(t, email, PASSWORD)).status).toBe(200);
    expect((await loginWith(t, email, 'not the password at all')).status).toBe(401);
  });

  test('when the hash is replaced, then the sessions signed in before stay signed in: it is not a password change', async () => {
    const { user, email, password } = await createUser(t, { password: PASSWORD });
    const earlier = await login(t, { email, password });
    const epoch = (
      await t.db.query<{ e: number }>('SELECT session_epoch AS e FROM users WHERE id = $1', [user.id])
    )[0]!.e;
    // The deployment's parameters were raised after this user last set a password.
    await t.db.query('UPDATE users SET password_hash = $2 WHERE id = $1', [
      user.id,
      await older.hash(PASSWORD),
    ]);

    await login(t, { email, password });

    expect((await userRow(t, user.id))!.password_hash).toMatch(CURRENT);
    expect((await me(t, earlier)).status).toBe(200);
    const [row] = await t.db.query<{ e: number }>('SELECT session_epoch AS e FROM users WHERE id = $1', [
      user.id,
    ]);
    expect(row!.e).toBe(epoch);
  });

  test('when the password is wrong, then 401 and the old hash stays', async () => {
    const { id, email, oldHash } = await userWithOlderHash(t);

    const res = await loginWith(t, email, 'not the password at all');

    expectError(res, 401, 'invalid_credentials');
    expect((await userRow(t, id))!.password_hash).toBe(oldHash);
    expect(eventsNamed(t, 'auth.password_rehashed').filter((l) => l.userId === id)).toEqual([]);
  });

  test('when the hash already has the current parameters, then a login leaves it as it is', async () => {
    const { user, email, password } = await createUser(t, { password: PASSWORD });
    const stored = (await userRow(t, user.id))!.password_hash;

    await login(t, { email, password });

    expect((await userRow(t, user.id))!.password_hash).toBe(stored);
  });
});

describe('a rehash racing a password change (ASVS 11.2.2)', () => {
  // The real hasher, with new hashes (only the rehash hashes here) held at a gate the test opens.
  let gate: Promise<void> = Promise.resolve();
  let open = () => undefined as void;
  let hashesStarted = 0;
  const gated: PasswordHasher = {
    ...passwords(),
    hash: async (password) => {
      hashesStarted++;
      await gate;
      return passwords().hash(password);
    },
  };
  const t = useTestApp({}, { passwords: gated });

  test('when the password changes between the verification and the rehash, then the changed hash stays and the login still succeeds', async () => {
    const { id, email } = await userWithOlderHash(t);
    gate = new Promise((resolve) => (open = resolve));

    const pending = loginWith(t, email, PASSWORD).then((res) => res);
    await until(() => hashesStarted === 1, 'the rehash has started');
    // A password change commits meanwhile (through the statement every change uses).
    const changed = await passwords().hash('a brand new passphrase 77');
    await createUsersRepository(t.db).updatePasswordHash(id, changed);
    open();
    const res = await pending;

    expect(res.status).toBe(200);
    expect((await userRow(t, id))!.password_hash).toBe(changed);
    expect(eventsNamed(t, 'auth.password_rehashed').filter((l) => l.userId === id)).toEqual([]);
  });
});

describe('a rehash that cannot be stored (ASVS 11.2.2)', () => {
  const t = useTestApp({}, { isolatedDatabase: 'password_rehash_refused' });

  beforeAll(async () => {
    // A real failure from Postgres, on this database only: every change of a stored hash is refused.
    await t.db.query(`CREATE FUNCTION refuse_hash_update() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'password_hash is read-only in this test'; END $$`);
    await t.db.query(`CREATE TRIGGER refuse_hash_update BEFORE UPDATE OF password_hash ON users
      FOR EACH ROW EXECUTE FUNCTION refuse_hash_update()`);
  });

  test('when storing the new hash fails, then the login still succeeds, the old hash stays, and the failure is logged', async () => {
    const { id, email, oldHash } = await userWithOlderHash(t);

    const res = await loginWith(t, email, PASSWORD);

    expect(res.status).toBe(200);
    expect((await userRow(t, id))!.password_hash).toBe(oldHash);
    const [failed] = eventsNamed(t, 'auth.password_rehash_failed').filter((l) => l.userId === id);
    expect(failed).toMatchObject({ level: 'warn', requestId: res.headers['x-request-id'] });
    expect(JSON.stringify(failed)).toMatch(/read-only in this test/);
    expect((await loginWith(t, email, PASSWORD)).status).toBe(200);
  });
});
