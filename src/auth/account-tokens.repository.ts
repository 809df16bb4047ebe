import { DatabaseError } from 'pg';
import type { Queryable } from '../lib/db';

/** What a mailed token lets its holder do; the table's CHECK lists the same three. */
export type TokenPurpose = 'password_reset' | 'verify_email' | 'change_email';

/** A token row as consuming it failed to find it, to tell why. */
export interface TokenState {
  purpose: TokenPurpose;
  expiresAt: Date;
  usedAt: Date | null;
}

// One statement issues a token and revokes the user's previous live token of that purpose: the
// partial unique index (user_id, purpose) WHERE used_at IS NULL makes the older row the conflict,
// and overwriting its hash is what makes the older link worthless. Two requests at once serialize on
// that index entry, so they can never leave two valid links behind.
const ISSUE = `INSERT INTO account_tokens (user_id, purpose, token_hash, new_email, expires_at)
  VALUES ($1, $2, $3, $4, $5)
  ON CONFLICT (user_id, purpose) WHERE used_at IS NULL DO UPDATE SET
    token_hash = EXCLUDED.token_hash, new_email = EXCLUDED.new_email,
    expires_at = EXCLUDED.expires_at, created_at = now()`;
// Check and consume in one statement. Of two concurrent uses of one token, the second waits for the
// first's row lock, then re-checks its WHERE against the committed row, finds used_at set and
// updates nothing: exactly one of them gets the row back.
const CONSUME = `UPDATE account_tokens SET used_at = $3
  WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3
  RETURNING user_id, new_email`;
// The row consume() would take, read without taking it.
const FIND_LIVE = `SELECT user_id, new_email FROM account_tokens
  WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3`;
const FIND_STATE = 'SELECT purpose, expires_at, used_at FROM account_tokens WHERE token_hash = $1';
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
    /** Stores a token's hash; false when the user no longer exists (deleted in the meantime). */
    async issue(input: {
      userId: string;
      purpose: TokenPurpose;
      tokenHash: Buffer;
      newEmail: string | null;
      expiresAt: Date;
    }): Promise<boolean> {
      try {
        await db.query(ISSUE, [
          input.userId,
          input.purpose,
          input.tokenHash,
          input.newEmail,
          input.expiresAt,
        ]);
        return true;
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
      const [row] = await db.query<{ purpose: TokenPurpose; expires_at: Date; used_at: Date | null }>(
        FIND_STATE,
        [tokenHash],
      );
      return row ? { purpose: row.purpose, expiresAt: row.expires_at, usedAt: row.used_at } : null;
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
