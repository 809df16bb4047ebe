import type { Queryable } from '../lib/db';
import type { SealedSecret } from './secret-box';

/** A user's TOTP row as the domain knows it; the secret stays sealed until the service opens it. */
export interface TotpRecord {
  sealed: SealedSecret;
  confirmed: boolean;
}

/** A stored secret with its owner, as the re-encryption reads it. */
export interface SealedRow {
  userId: string;
  sealed: SealedSecret;
}

interface TotpRow {
  secret_ciphertext: Buffer;
  key_id: string;
  confirmed_at: Date | null;
}

const FIND_TOTP = 'SELECT secret_ciphertext, key_id, confirmed_at FROM user_totp WHERE user_id = $1';
// A new enrolment replaces one that was never confirmed (a QR code shown and abandoned), never a
// confirmed one: no row comes back then, and the caller answers 409.
const START_ENROLMENT = `INSERT INTO user_totp (user_id, secret_ciphertext, key_id) VALUES ($1, $2, $3)
  ON CONFLICT (user_id) DO UPDATE
    SET secret_ciphertext = EXCLUDED.secret_ciphertext, key_id = EXCLUDED.key_id, created_at = now()
    WHERE user_totp.confirmed_at IS NULL
  RETURNING user_id`;
// The first code proves the enrolment and is spent by it, like every later one; only while the
// enrolment is younger than its lifetime ($3 seconds, by the database's clock, which set created_at).
const CONFIRM = `UPDATE user_totp SET confirmed_at = now(), last_used_step = $2
  WHERE user_id = $1 AND confirmed_at IS NULL AND created_at > now() - make_interval(secs => $3)
  RETURNING user_id`;
// An enrolment left unconfirmed past its lifetime goes, secret and all; a confirmed factor never does.
const REMOVE_EXPIRED_ENROLMENT = `DELETE FROM user_totp
  WHERE user_id = $1 AND confirmed_at IS NULL AND created_at <= now() - make_interval(secs => $2)
  RETURNING user_id`;
// Every such enrolment at once, for the periodic sweep (main.ts): only unconfirmed rows, found through
// their partial index (migration 0007), so the sweep never reads the table's confirmed factors. One
// count comes back, not a row per deleted enrolment.
export const SWEEP_EXPIRED_ENROLMENTS = `WITH swept AS (
    DELETE FROM user_totp
    WHERE confirmed_at IS NULL AND created_at <= now() - make_interval(secs => $1)
    RETURNING 1
  ) SELECT count(*)::int AS deleted FROM swept`;
// Replay protection (ASVS 5.0 6.5.1): the step is recorded only if it is later than the last one, in
// one statement, so of two requests carrying the same code (or two codes of one step) only one wins.
const USE_STEP = `UPDATE user_totp SET last_used_step = $2
  WHERE user_id = $1 AND confirmed_at IS NOT NULL AND (last_used_step IS NULL OR last_used_step < $2)
  RETURNING user_id`;
const REMOVE_TOTP = 'DELETE FROM user_totp WHERE user_id = $1 RETURNING confirmed_at';
const REMOVE_RECOVERY_CODES = 'DELETE FROM user_recovery_codes WHERE user_id = $1';
const INSERT_RECOVERY_CODES = `INSERT INTO user_recovery_codes (user_id, code_hash)
  SELECT $1, hash FROM unnest($2::bytea[]) AS hash`;
// Single use: the code is deleted by the statement that finds it, so two requests cannot both spend it.
const USE_RECOVERY_CODE = `DELETE FROM user_recovery_codes WHERE user_id = $1 AND code_hash = $2
  RETURNING user_id`;
const COUNT_RECOVERY_CODES = 'SELECT count(*)::int AS n FROM user_recovery_codes WHERE user_id = $1';
// Re-encryption under the current key (src/mfa/rekey.ts): the next batch of rows sealed under any other
// key, in user id order after the last one seen, so a row that cannot be opened is passed, not re-read.
const SEALED_UNDER_OTHER_KEYS = `SELECT user_id, secret_ciphertext, key_id FROM user_totp
  WHERE key_id <> $1 AND user_id > $2 ORDER BY user_id LIMIT $3`;
// Only if the row still holds the ciphertext that was opened: an enrolment restarted (or a factor
// removed) meanwhile keeps what the app wrote.
const RESEAL = `UPDATE user_totp SET secret_ciphertext = $4, key_id = $5
  WHERE user_id = $1 AND key_id = $2 AND secret_ciphertext = $3 RETURNING user_id`;
const COUNT_BY_KEY = 'SELECT key_id, count(*)::int AS n FROM user_totp GROUP BY key_id ORDER BY key_id';

export function createMfaRepository(db: Queryable) {
  return {
    async findTotp(userId: string): Promise<TotpRecord | null> {
      const [row] = await db.query<TotpRow>(FIND_TOTP, [userId]);
      if (!row) return null;
      return {
        sealed: { keyId: row.key_id, ciphertext: row.secret_ciphertext },
        confirmed: row.confirmed_at !== null,
      };
    },

    /** false: the user already has a confirmed factor. */
    async startEnrolment(userId: string, sealed: SealedSecret): Promise<boolean> {
      const rows = await db.query(START_ENROLMENT, [userId, sealed.ciphertext, sealed.keyId]);
      return rows.length === 1;
    },

    /**
     * false: there was no enrolment waiting (never started, confirmed meanwhile, or older than
     * `lifetimeS` seconds).
     */
    async confirm(userId: string, step: number, lifetimeS: number): Promise<boolean> {
      return (await db.query(CONFIRM, [userId, step, lifetimeS])).length === 1;
    },

    /** Deletes the user's unconfirmed enrolment if it is `lifetimeS` seconds old or more; true if it did. */
    async removeExpiredEnrolment(userId: string, lifetimeS: number): Promise<boolean> {
      return (await db.query(REMOVE_EXPIRED_ENROLMENT, [userId, lifetimeS])).length === 1;
    },

    /** Deletes every enrolment left unconfirmed past `lifetimeS`; how many it deleted. */
    async sweepExpiredEnrolments(lifetimeS: number): Promise<number> {
      const [row] = await db.query<{ deleted: number }>(SWEEP_EXPIRED_ENROLMENTS, [lifetimeS]);
      return row!.deleted;
    },

    /** false: this step, or a later one, was already used (a replay). */
    async useStep(userId: string, step: number): Promise<boolean> {
      return (await db.query(USE_STEP, [userId, step])).length === 1;
    },

    /** The user's recovery codes become exactly these (call within a transaction). */
    async replaceRecoveryCodes(userId: string, hashes: readonly Buffer[]): Promise<void> {
      await db.query(REMOVE_RECOVERY_CODES, [userId]);
      await db.query(INSERT_RECOVERY_CODES, [userId, hashes]);
    },

    /** false: no such code (never issued, or already used). */
    async useRecoveryCode(userId: string, hash: Buffer): Promise<boolean> {
      return (await db.query(USE_RECOVERY_CODE, [userId, hash])).length === 1;
    },

    async countRecoveryCodes(userId: string): Promise<number> {
      const [row] = await db.query<{ n: number }>(COUNT_RECOVERY_CODES, [userId]);
      return row!.n;
    },

    /** Up to `limit` rows sealed under a key other than `currentKeyId`, with user ids after `afterUserId`. */
    async sealedUnderOtherKeys(
      currentKeyId: string,
      afterUserId: string,
      limit: number,
    ): Promise<SealedRow[]> {
      const rows = await db.query<TotpRow & { user_id: string }>(SEALED_UNDER_OTHER_KEYS, [
        currentKeyId,
        afterUserId,
        limit,
      ]);
      return rows.map((row) => ({
        userId: row.user_id,
        sealed: { keyId: row.key_id, ciphertext: row.secret_ciphertext },
      }));
    },

    /** false: the row no longer holds `old` (changed or removed since it was read). */
    async reseal(userId: string, old: SealedSecret, next: SealedSecret): Promise<boolean> {
      const params = [userId, old.keyId, old.ciphertext, next.ciphertext, next.keyId];
      return (await db.query(RESEAL, params)).length === 1;
    },

    /** How many stored secrets each key id seals. */
    async countByKey(): Promise<Record<string, number>> {
      const rows = await db.query<{ key_id: string; n: number }>(COUNT_BY_KEY);
      return Object.fromEntries(rows.map((row) => [row.key_id, row.n]));
    },

    /** Removes the factor and its codes (call within a transaction). true: a confirmed factor was removed. */
    async remove(userId: string): Promise<boolean> {
      await db.query(REMOVE_RECOVERY_CODES, [userId]);
      const [row] = await db.query<{ confirmed_at: Date | null }>(REMOVE_TOTP, [userId]);
      return Boolean(row?.confirmed_at);
    },
  };
}

export type MfaRepository = ReturnType<typeof createMfaRepository>;
