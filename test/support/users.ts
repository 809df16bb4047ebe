import type { Role, User } from '../../src/users/user';
import { createUsersRepository } from '../../src/users/users.repository';
import { DEFAULT_PASSWORD, uniqueEmail } from './factories';
import { passwords, type TestApp } from './test-app';

/** A user as the API returns it. */
export interface UserJson {
  id: string;
  email: string;
  name: string;
  role: Role;
  createdAt: string;
  updatedAt: string;
  emailVerifiedAt: string | null;
}

export const USER_JSON_KEYS = ['createdAt', 'email', 'emailVerifiedAt', 'id', 'name', 'role', 'updatedAt'];

let defaultHash: Promise<string> | undefined;

/**
 * Inserts users through the real repository with one precomputed hash of DEFAULT_PASSWORD: for tests
 * that need many rows (pagination) without paying argon2 for each. With `oneTransaction` they share
 * one `created_at` (now() is the transaction's start), which exercises the id tie-break of the order.
 */
export async function insertUsers(
  t: TestApp,
  count: number,
  { oneTransaction = false, role = 'user' as Role } = {},
): Promise<User[]> {
  defaultHash ??= passwords().hash(DEFAULT_PASSWORD);
  const passwordHash = await defaultHash;
  const input = () => ({ email: uniqueEmail('page'), name: 'Page User', role, passwordHash });
  if (oneTransaction) {
    return t.db.withTransaction(async (tx) => {
      const users = createUsersRepository(tx);
      const created: User[] = [];
      for (let i = 0; i < count; i++) created.push(await users.insert(input()));
      return created;
    });
  }
  const users = createUsersRepository(t.db);
  const created: User[] = [];
  for (let i = 0; i < count; i++) created.push(await users.insert(input()));
  return created;
}

export interface UserRow {
  id: string;
  email: string;
  name: string;
  role: Role;
  password_hash: string;
  updated_at: Date;
}

/** The row as Postgres holds it (null when it does not exist), to check what a request really changed. */
export async function userRow(t: TestApp, id: string): Promise<UserRow | null> {
  const [row] = await t.db.query<UserRow>(
    'SELECT id, email, name, role, password_hash, updated_at FROM users WHERE id = $1',
    [id],
  );
  return row ?? null;
}

export async function countUsersWithEmail(t: TestApp, email: string): Promise<number> {
  const [row] = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM users WHERE email = $1', [
    email,
  ]);
  return row!.n;
}

export async function adminIds(t: TestApp): Promise<string[]> {
  const rows = await t.db.query<{ id: string }>("SELECT id FROM users WHERE role = 'admin' ORDER BY id");
  return rows.map((r) => r.id);
}

/** The error part of an error envelope without its request id, to compare two refusals. */
export function errorWithoutRequestId(body: { error: Record<string, unknown> }): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body.error).filter(([key]) => key !== 'requestId'));
}
