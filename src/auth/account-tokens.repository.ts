import { DatabaseError } from 'pg';
import type { Queryable } from '../lib/db';

/** What a mailed token lets its holder do; the table's CHECK lists the same three. */
export type TokenPurpose = 'password_reset' | 'verify_email' | 'change_email';

/** A token row as consuming it failed to find it, to tell why. */
export interface TokenState {
  purpose: TokenPurpose;
  expiresAt: Date;
  usedAt: Date | null;
  /** Whether the account still has the address the token was mailed for. */
  addressKept: boolean;
}

// One statement issues a token and revokes the user's previous live token of that purpose: the
// partial unique index (user_id, purpose) WHERE used_at IS NULL makes the older row the conflict,
// and overwriting its hash is what makes the older link worthless. Two requests at once serialize on
// that index entry, so they can never leave two valid links behind. The row is made only while the
// account still has the address the caller is about to mail: a link is never issued for an address
// the account left between the caller's read and this statement.
const ISSUE = `INSERT INTO account_tokens (user_id, purpose, token_hash, new_email, expires_at, account_email)
  SELECT id, $2, $3, $4, $5, email FROM users WHERE id = $1 AND email = $6
  ON CONFLICT (user_id, purpose) WHERE used_at IS NULL DO UPDATE SET
    token_hash = EXCLUDED.token_hash, new_email = EXCLUDED.new_email,
    account_email = EXCLUDED.account_email, expires_at = EXCLUDED.expires_at, created_at = now()
  RETURNING 1`;
// Check and consume in one statement. The token row is locked first: of two concurrent uses of one
// token, the second waits for the first, then re-checks the committed row, finds used_at set and
// updates nothing, so exactly one gets the row back, and the loser never holds a lock on the user.
// Then the account must still have the address the link was mailed for. Its row is read FOR KEY
// SHARE: a change of address (email is a unique column, so changing it takes the row's strongest
// lock) committing meanwhile is waited for and seen, since READ COMMITTED re-checks a locked row's
// newest version; the updates the flows make next (a password hash, email_verified_at) take weaker
// locks that this one does not block, so a use of a link never deadlocks with its own flow.
const CONSUME = `WITH live AS (
    SELECT id, user_id, account_email FROM account_tokens
    WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3
    FOR UPDATE
  ), owner AS (
    SELECT u.id FROM users u JOIN live ON u.id = live.user_id AND u.email = live.account_email
    FOR KEY SHARE OF u
  )
  UPDATE account_tokens t SET used_at = $3 FROM live, owner
  WHERE t.id = live.id AND owner.id = t.user_id
  RETURNING t.user_id, t.new_email`;
// The row consume() would take, read without taking it.
const FIND_LIVE = `SELECT t.user_id, t.new_email FROM account_tokens t JOIN users u ON u.id = t.user_id
  WHERE t.token_hash = $1 AND t.purpose = $2 AND t.used_at IS NULL AND t.expires_at > $3
    AND u.email = t.account_email`;
const FIND_STATE = `SELECT t.purpose, t.expires_at, t.used_at, u.email IS NOT DISTINCT FROM t.account_email AS address_kept
  FROM account_tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1`;
const REVOKE = `DELETE FROM account_tokens WHERE user_id = $1 AND purpose = ANY($2::text[]) AND used_at IS NULL`;
const SWEEP = `WITH gone AS (
    DELETE FROM account_tokens WHERE expires_at <= $1 OR used_at IS NOT NULL RETURNING 1
  ) SELECT count(*)::int AS n FROM gone`;

const FOREIGN_KEY_VIOLATION = '23503';

/** What a live token grants: its user, and for an email change the address to move to. */
export interface TokenGrant {
  userId: string;
  newEmail: string | null;
}

/** Runs CONSUME or FIND_LIVE (same parameters, same columns returned). */
async function findGrant(
  db: Queryable,
  sql: string,
  tokenHash: Buffer,
  purpose: TokenPurpose,
  now: Date,
): Promise<TokenGrant | null> {
  const [row] = await db.query<{ user_id: string; new_email: string | null }>(sql, [tokenHash, purpose, now]);
  return row ? { userId: row.user_id, newEmail: row.new_email } : null;
}

export type AccountTokensRepository = ReturnType<typeof createAccountTokensRepository>;

export function createAccountTokensRepository(db: Queryable) {
  return {
    /**
     * Stores a token's hash, bound to `accountEmail`; false when the user no longer exists or no
     * longer has that address (changed or deleted in the meantime).
     */
    async issue(input: {
      userId: string;
      accountEmail: string;
      purpose: TokenPurpose;
      tokenHash: Buffer;
      newEmail: string | null;
      expiresAt: Date;
    }): Promise<boolean> {
      try {
        const rows = await db.query(ISSUE, [
          input.userId,
          input.purpose,
          input.tokenHash,
          input.newEmail,
          input.expiresAt,
          input.accountEmail,
        ]);
        return rows.length > 0;
      } catch (error) {
        if (error instanceof DatabaseError && error.code === FOREIGN_KEY_VIOLATION) return false;
        throw error;
      }
    },

    /** Marks the live, unexpired token of this hash and purpose used; null when there is none. */
    consume: (tokenHash: Buffer, purpose: TokenPurpose, now: Date) =>
      findGrant(db, CONSUME, tokenHash, purpose, now),

    /** The live, unexpired token of this hash and purpose, left unused; null when there is none. */
    findLive: (tokenHash: Buffer, purpose: TokenPurpose, now: Date) =>
      findGrant(db, FIND_LIVE, tokenHash, purpose, now),

    async findState(tokenHash: Buffer): Promise<TokenState | null> {
      const [row] = await db.query<{
        purpose: TokenPurpose;
        expires_at: Date;
        used_at: Date | null;
        address_kept: boolean;
      }>(FIND_STATE, [tokenHash]);
      if (!row) return null;
      return {
        purpose: row.purpose,
        expiresAt: row.expires_at,
        usedAt: row.used_at,
        addressKept: row.address_kept,
      };
    },

    /** Deletes the user's live tokens of these purposes: their links stop working at once. */
    async revoke(userId: string, purposes: readonly TokenPurpose[]): Promise<void> {
      await db.query(REVOKE, [userId, purposes]);
    },

    /** Deletes expired and used tokens; returns how many. */
    async sweep(now: Date): Promise<number> {
      const [row] = await db.query<{ n: number }>(SWEEP, [now]);
      return row!.n;
    },
  };
}
