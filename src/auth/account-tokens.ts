import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from '../lib/db';
import {
  createAccountTokensRepository,
  type AccountTokensRepository,
  type TokenPurpose,
  type TokenState,
} from './account-tokens.repository';

export type { TokenPurpose };

/**
 * How long a mailed link works. A reset link grants the account to whoever holds it, so it lives
 * half an hour (OWASP Forgot Password Cheat Sheet); a link that proves an address grants nothing
 * else and may wait in an inbox for a day.
 */
export const TOKEN_LIFETIME_MS: Readonly<Record<TokenPurpose, number>> = {
  password_reset: 30 * 60_000,
  verify_email: 24 * 3_600_000,
  change_email: 24 * 3_600_000,
};

/** 256 random bits: far past the 128 a guess must face (ASVS 5.0 6.3.x), and 43 characters in a link. */
const TOKEN_BYTES = 32;
/** The only shape an issued token has (unpadded base64url of TOKEN_BYTES bytes). */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/**
 * Why a token was refused. The caller answers every one of them alike (400 invalid_token) and only
 * logs the reason: a second use of a link can mean it leaked, a flood of unknown ones means guessing.
 */
export type InvalidTokenReason =
  'malformed' | 'unknown' | 'wrong_purpose' | 'expired' | 'used' | 'address_changed';

export type ConsumeResult =
  { ok: true; userId: string; newEmail: string | null } | { ok: false; reason: InvalidTokenReason };

/**
 * The token is hashed as the string it was mailed as, not as the bytes it decodes to: base64url's
 * last character carries two spare bits, so four spellings decode alike, and only the issued one may work.
 */
const hashOf = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

export type AccountTokens = ReturnType<typeof createAccountTokens>;

/**
 * Single-use tokens for the links the app mails. The raw token leaves only in the return value of
 * issue(), bound for the mail; Postgres keeps its SHA-256. A stored hash is useless to a reader of the
 * database: turning it back into a link means finding a SHA-256 preimage of 256 random bits.
 *
 * Consuming looks the token up by that hash through a unique index instead of comparing secrets in
 * code. Whatever the lookup's timing reveals is about the hash of the attacker's own guess, and
 * learning which hashes exist does not help build a token with one of them; so the comparison is
 * constant-time in the sense that matters (OWASP Forgot Password Cheat Sheet), with no
 * timingSafeEqual to forget.
 *
 * `db` may be a transaction, so consuming a token commits or rolls back with what it authorizes (the new
 * password, the new address). `clock` is injectable so tests can move past an expiry.
 */
export function createAccountTokens({ db, clock = () => new Date() }: { db: Queryable; clock?: () => Date }) {
  const tokens = createAccountTokensRepository(db);

  /** Looks a token up with `find` (consuming it or not), and says why when it finds nothing. */
  async function resolve(token: string, purpose: TokenPurpose, find: FindGrant): Promise<ConsumeResult> {
    // Anything that is not the issued shape is refused before it costs a hash and a query.
    if (!TOKEN_SHAPE.test(token)) return { ok: false, reason: 'malformed' };
    const hash = hashOf(token);
    const found = await find(hash, purpose, clock());
    if (found) return { ok: true, ...found };
    return { ok: false, reason: refusalReason(await tokens.findState(hash), purpose, clock()) };
  }

  return {
    /**
     * A new token for `purpose`, replacing the user's previous one of that purpose (that link stops
     * working at once), bound to the address the caller mails it to or about (`account.email`, the
     * account's address as the caller read it): the link works only while the account keeps that
     * address. `newEmail`, normalized, is the address an email change moves to. null when the user
     * no longer exists or no longer has that address.
     */
    async issue(
      account: { id: string; email: string },
      purpose: TokenPurpose,
      { newEmail = null }: { newEmail?: string | null } = {},
    ): Promise<{ token: string; expiresAt: Date } | null> {
      const token = randomBytes(TOKEN_BYTES).toString('base64url');
      const expiresAt = new Date(clock().getTime() + TOKEN_LIFETIME_MS[purpose]);
      const stored = await tokens.issue({
        userId: account.id,
        accountEmail: account.email,
        purpose,
        tokenHash: hashOf(token),
        newEmail,
        expiresAt,
      });
      return stored ? { token, expiresAt } : null;
    },

    /** Consumes a token once: the first caller gets its user, every later or concurrent one a refusal. */
    consume: (token: string, purpose: TokenPurpose) => resolve(token, purpose, tokens.consume),

    /**
     * What consume() would return now, without consuming: lets a flow check what the token is for (a
     * new password against the policy) before it spends the link. Only consume() decides who wins.
     */
    peek: (token: string, purpose: TokenPurpose) => resolve(token, purpose, tokens.findLive),

    /**
     * Kills the user's live links of these purposes, as when the address they were mailed to, or
     * that they would prove, stops being the account's.
     */
    revoke: (userId: string, purposes: readonly TokenPurpose[]) => tokens.revoke(userId, purposes),

    /** Deletes expired and used tokens; returns how many. */
    sweep: () => tokens.sweep(clock()),
  };
}

type FindGrant = AccountTokensRepository['consume'];

/** Why a lookup found nothing, from the row as it is now (a second query: the answer is for the log only). */
function refusalReason(state: TokenState | null, purpose: TokenPurpose, now: Date): InvalidTokenReason {
  if (!state) return 'unknown';
  if (state.purpose !== purpose) return 'wrong_purpose';
  if (state.usedAt) return 'used';
  if (state.expiresAt <= now) return 'expired';
  // Live and of this purpose: the account has moved to another address since the link was mailed.
  return state.addressKept ? 'expired' : 'address_changed';
}
