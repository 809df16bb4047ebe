import { DatabaseError } from 'pg';
import { EmailTakenError } from '../errors';
import type { Queryable } from '../lib/db';
import type { Role, User } from './user';

/** Position of a row in the newest-first order: creation time in microseconds, then id. */
export interface UserPosition {
  createdUs: string;
  id: string;
}

interface UserRow {
  id: string;
  email: string;
  name: string;
  role: Role;
  created_at: Date;
  updated_at: Date;
  session_epoch: number;
  email_verified_at: Date | null;
  mfa_enabled: boolean;
}

// Explicit column lists everywhere: a column added later (say, an MFA secret) is never selected by accident.
// mfa_enabled is read with the user, in the same statement, so the session check that loads the user on
// every request (and the REQUIRE_MFA_FOR_ADMINS gate after it) costs no second query; user_totp's
// primary key makes it one index probe. Only a confirmed factor counts: an enrolment started and never
// proven grants nothing.
const COLUMNS = `id, email, name, role, created_at, updated_at, session_epoch, email_verified_at,
  EXISTS (SELECT 1 FROM user_totp WHERE user_totp.user_id = users.id AND user_totp.confirmed_at IS NOT NULL) AS mfa_enabled`;

// $5: the address is known to reach its owner already (the seed's first admin), so it starts verified.
const INSERT = `INSERT INTO users (email, name, role, password_hash, email_verified_at)
  VALUES ($1, $2, $3, $4, CASE WHEN $5::boolean THEN now() END) RETURNING ${COLUMNS}`;
const FIND_BY_ID = `SELECT ${COLUMNS} FROM users WHERE id = $1`;
const FIND_BY_EMAIL = `SELECT ${COLUMNS} FROM users WHERE email = $1`;
const FIND_CREDENTIALS_BY_EMAIL = `SELECT ${COLUMNS}, password_hash FROM users WHERE email = $1`;
const FIND_PASSWORD_HASH = 'SELECT password_hash FROM users WHERE id = $1';
// created_at has microsecond precision, more than a JS Date keeps, so the cursor carries the exact
// integer and converts it back in SQL.
const LIST_FIRST = `SELECT ${COLUMNS}, (extract(epoch FROM created_at) * 1000000)::bigint::text AS created_us
  FROM users ORDER BY created_at DESC, id DESC LIMIT $1`;
const LIST_AFTER = `SELECT ${COLUMNS}, (extract(epoch FROM created_at) * 1000000)::bigint::text AS created_us
  FROM users
  WHERE (created_at, id) < (to_timestamp(0) + $2::bigint * interval '1 microsecond', $3::uuid)
  ORDER BY created_at DESC, id DESC LIMIT $1`;
// One constant statement for every partial update: NULL means "leave as is". A role change also
// moves the session epoch (right-hand sides read the row as it was before the update). An address set
// here was proven by nobody (an admin's change, or a change while mail is off), so it is unverified
// until a mailed link proves it; only CONFIRM_EMAIL marks an address verified.
const UPDATE = `UPDATE users SET
    name = COALESCE($2, name), email = COALESCE($3, email), role = COALESCE($4, role),
    session_epoch = session_epoch + CASE WHEN $4::text IS DISTINCT FROM role AND $4::text IS NOT NULL THEN 1 ELSE 0 END,
    email_verified_at = CASE WHEN $3::text IS DISTINCT FROM email AND $3::text IS NOT NULL THEN NULL ELSE email_verified_at END,
    updated_at = now()
  WHERE id = $1 RETURNING ${COLUMNS}`;
// The address a mailed link just proved: it becomes the sign-in address, verified now.
const CONFIRM_EMAIL = `UPDATE users SET email = $2, email_verified_at = now(), updated_at = now()
  WHERE id = $1 RETURNING ${COLUMNS}`;
// A new password also cancels an email change still waiting for its link: the notice of a change
// tells the owner to reset the password if it was not them, and that must stop whoever asked (the
// link went to their address and needs no session). One statement, so no path that sets a password
// can forget it.
const UPDATE_PASSWORD_HASH = `WITH cancelled_change AS (
    DELETE FROM account_tokens WHERE user_id = $1 AND purpose = 'change_email' AND used_at IS NULL
  )
  UPDATE users SET password_hash = $2, session_epoch = session_epoch + 1, updated_at = now()
  WHERE id = $1 RETURNING session_epoch`;
// The same password under new hashing parameters (ASVS 11.2.2): not a password change, so the session
// epoch, the pending email change and updated_at stay as they are. Only while the row still holds the
// hash that was just verified: a password change committed in between wins, never the old password.
const REHASH_PASSWORD =
  'UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2 RETURNING id';
const MARK_EMAIL_VERIFIED = `UPDATE users SET email_verified_at = now(), updated_at = now()
  WHERE id = $1 RETURNING ${COLUMNS}`;
const DELETE = 'DELETE FROM users WHERE id = $1 RETURNING id';
// Every user's epoch in one statement: one transaction, so no user is left in the old epoch, and every
// session from before it is refused on its next request (loadSessionUser), whatever Redis holds.
const MOVE_EVERY_SESSION_EPOCH = `WITH moved AS (
    UPDATE users SET session_epoch = session_epoch + 1 RETURNING 1
  )
  SELECT count(*)::int AS users FROM moved`;
// Locks every admin row until the transaction ends, so two concurrent demotions or deletions cannot
// both see "another admin remains" and leave none.
const LOCK_ADMINS = "SELECT id FROM users WHERE role = 'admin' ORDER BY id FOR UPDATE";

const UNIQUE_VIOLATION = '23505';

function toUser(row: UserRow): User {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    role: row.role,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    sessionEpoch: row.session_epoch,
    emailVerifiedAt: row.email_verified_at,
    mfaEnabled: row.mfa_enabled,
  };
}

function rethrowEmailTaken(error: unknown): never {
  if (
    error instanceof DatabaseError &&
    error.code === UNIQUE_VIOLATION &&
    error.constraint === 'users_email_key'
  ) {
    throw new EmailTakenError();
  }
  throw error;
}

export type UsersRepository = ReturnType<typeof createUsersRepository>;

export function createUsersRepository(db: Queryable) {
  return {
    async insert(input: {
      email: string;
      name: string;
      role: Role;
      passwordHash: string;
      emailVerified?: boolean;
    }): Promise<User> {
      const values = [input.email, input.name, input.role, input.passwordHash, input.emailVerified ?? false];
      const rows = await db.query<UserRow>(INSERT, values).catch(rethrowEmailTaken);
      return toUser(rows[0]!);
    },

    /** Every signed-in request's lookup (loadSessionUser): prepared once per connection (ADR 0043). */
    async findById(id: string): Promise<User | null> {
      const [row] = await db.query<UserRow>(FIND_BY_ID, [id], { prepare: 'users_find_by_id' });
      return row ? toUser(row) : null;
    },

    async findByEmail(email: string): Promise<User | null> {
      const [row] = await db.query<UserRow>(FIND_BY_EMAIL, [email]);
      return row ? toUser(row) : null;
    },

    /** For login only: the one place a hash leaves the table, to be verified and dropped. */
    async findCredentialsByEmail(email: string): Promise<{ user: User; passwordHash: string } | null> {
      const [row] = await db.query<UserRow & { password_hash: string }>(FIND_CREDENTIALS_BY_EMAIL, [email]);
      return row ? { user: toUser(row), passwordHash: row.password_hash } : null;
    },

    async findPasswordHash(id: string): Promise<string | null> {
      const [row] = await db.query<{ password_hash: string }>(FIND_PASSWORD_HASH, [id]);
      return row?.password_hash ?? null;
    },

    async list(limit: number, after?: UserPosition): Promise<{ users: User[]; last: UserPosition | null }> {
      const rows = after
        ? await db.query<UserRow & { created_us: string }>(LIST_AFTER, [limit, after.createdUs, after.id])
        : await db.query<UserRow & { created_us: string }>(LIST_FIRST, [limit]);
      const lastRow = rows.at(-1);
      return {
        users: rows.map(toUser),
        last: lastRow ? { createdUs: lastRow.created_us, id: lastRow.id } : null,
      };
    },

    async update(id: string, changes: { name?: string; email?: string; role?: Role }): Promise<User | null> {
      const rows = await db
        .query<UserRow>(UPDATE, [id, changes.name ?? null, changes.email ?? null, changes.role ?? null])
        .catch(rethrowEmailTaken);
      return rows[0] ? toUser(rows[0]) : null;
    },

    /**
     * Moves the user to an address proven by a mailed link and marks it verified; null when the user
     * no longer exists, EmailTakenError when another account took the address in the meantime.
     */
    async confirmEmail(id: string, email: string): Promise<User | null> {
      const rows = await db.query<UserRow>(CONFIRM_EMAIL, [id, email]).catch(rethrowEmailTaken);
      return rows[0] ? toUser(rows[0]) : null;
    },

    /** Returns the new session epoch (null when the user no longer exists). */
    async updatePasswordHash(id: string, passwordHash: string): Promise<number | null> {
      const [row] = await db.query<{ session_epoch: number }>(UPDATE_PASSWORD_HASH, [id, passwordHash]);
      return row?.session_epoch ?? null;
    },

    /**
     * Replaces `verifiedHash` with `newHash`, a hash of the same password; false when the row no longer
     * holds `verifiedHash` (the password changed meanwhile, or the user is gone) and nothing changed.
     */
    async rehashPassword(id: string, verifiedHash: string, newHash: string): Promise<boolean> {
      const rows = await db.query(REHASH_PASSWORD, [id, verifiedHash, newHash]);
      return rows.length > 0;
    },

    /** Records that the address was just proven to reach its owner; null when the user no longer exists. */
    async markEmailVerified(id: string): Promise<User | null> {
      const [row] = await db.query<UserRow>(MARK_EMAIL_VERIFIED, [id]);
      return row ? toUser(row) : null;
    },

    async delete(id: string): Promise<boolean> {
      const rows = await db.query(DELETE, [id]);
      return rows.length > 0;
    },

    /** Moves the session epoch of every user; returns how many users that is. */
    async moveEverySessionEpoch(): Promise<number> {
      const [row] = await db.query<{ users: number }>(MOVE_EVERY_SESSION_EPOCH);
      return row!.users;
    },

    /** Call inside a transaction: returns the admins' ids, locked until commit. */
    async lockAdmins(): Promise<string[]> {
      const rows = await db.query<{ id: string }>(LOCK_ADMINS);
      return rows.map((r) => r.id);
    },
  };
}
