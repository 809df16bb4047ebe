import { EmailAlreadyVerifiedError, InvalidTokenError } from '../errors';
import type { Db } from '../lib/db';
import type { MailAddressLimit } from '../mail/address-limit';
import type { Mailer } from '../mail/mailer';
import type { User } from '../users/user';
import { createUsersRepository } from '../users/users.repository';
import { createAccountTokens, TOKEN_LIFETIME_MS } from './account-tokens';

const PURPOSE = 'verify_email';

/** What became of one attempt to mail a verification link: for the log (and the resend's answer). */
export type VerificationMailOutcome =
  | { outcome: 'mail_queued' }
  | { outcome: 'already_verified' }
  | { outcome: 'address_limited'; firstRefusal: boolean; retryAfterS: number }
  | { outcome: 'unknown_user' };

export type EmailVerificationService = ReturnType<typeof createEmailVerificationService>;

/**
 * Proof that an account's address reaches its owner (ASVS 5.0 6.4 and the OWASP Authentication Cheat
 * Sheet: an unproven address must not be trusted for recovery or notices). A new account gets a mailed
 * link holding a single-use token that lives 24 hours; opening it and confirming marks the address
 * verified. No password is involved, so no step here waits for or spends an argon2 hash.
 *
 * `clock` is injectable so tests can move past the link's expiry.
 */
export function createEmailVerificationService(deps: {
  db: Db;
  mailer: Mailer;
  addressLimit: MailAddressLimit;
  clock?: () => Date;
}) {
  const { db, mailer, addressLimit, clock } = deps;
  const tokens = createAccountTokens({ db, ...(clock ? { clock } : {}) });

  /**
   * Mails `user` a new link (replacing the previous one, which stops working), unless the address is
   * verified already. Every mail spends one of the address's mails for the hour, like a reset mail:
   * registering or resending cannot bury an inbox either.
   */
  async function sendVerification(user: User, requestId: string): Promise<VerificationMailOutcome> {
    if (user.emailVerifiedAt) return { outcome: 'already_verified' };
    const allowance = await addressLimit.spend(user.email);
    if (!allowance.allowed) {
      const { firstRefusal, retryAfterS } = allowance;
      return { outcome: 'address_limited', firstRefusal, retryAfterS };
    }
    const issued = await tokens.issue(user, PURPOSE);
    // Deleted since it was read: nothing to mail.
    if (!issued) return { outcome: 'unknown_user' };
    mailer.send(
      user.email,
      {
        kind: 'verify_email',
        name: user.name,
        token: issued.token,
        validForHours: TOKEN_LIFETIME_MS[PURPOSE] / 3_600_000,
      },
      { userId: user.id, requestId },
    );
    return { outcome: 'mail_queued' };
  }

  return {
    sendVerification,

    /** The resend a signed-in user asks for: a verified address is the client's mistake (409). */
    async resend(user: User, requestId: string): Promise<VerificationMailOutcome> {
      if (user.emailVerifiedAt) throw new EmailAlreadyVerifiedError();
      return sendVerification(user, requestId);
    },

    /**
     * Marks the token's user verified. Spending the token and setting `email_verified_at` commit
     * together: of two uses of one link, exactly one consumes it, and a link is never spent without
     * the address being marked. A token is bound to the address it was mailed to, and consuming it
     * fails once the account has another one (account-tokens.repository.ts), so a link mailed to an
     * old address cannot verify a new one.
     */
    async verify(token: string): Promise<{ user: User }> {
      return db.withTransaction(async (tx) => {
        const consumed = await createAccountTokens({ db: tx, ...(clock ? { clock } : {}) }).consume(
          token,
          PURPOSE,
        );
        if (!consumed.ok) throw new InvalidTokenError(PURPOSE, consumed.reason);
        const user = await createUsersRepository(tx).markEmailVerified(consumed.userId);
        // Deleted in the same moment (its tokens go with it): the transaction rolls back.
        if (!user) throw new InvalidTokenError(PURPOSE, 'unknown');
        return { user };
      });
    },
  };
}
