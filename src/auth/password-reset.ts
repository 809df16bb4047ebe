import { InvalidTokenError } from '../errors';
import type { Db } from '../lib/db';
import type { PasswordHashing } from '../lib/password-queue';
import type { MailAddressLimit } from '../mail/address-limit';
import type { Mailer } from '../mail/mailer';
import { createUsersRepository } from '../users/users.repository';
import { createAccountTokens, TOKEN_LIFETIME_MS } from './account-tokens';
import type { PasswordPolicy } from './password-policy';
import type { SessionIndex } from './sessions';

const PURPOSE = 'password_reset';

/** What became of a reset request once it was answered: for the log, never for the client. */
export type ResetRequestOutcome =
  { outcome: 'mail_queued'; targetUserId: string } | { outcome: 'unknown_email' };

/**
 * A reset request past the per-address limit, or one admitted with the work it still has to do. That
 * work runs after the answer (see requestReset), so it is handed back rather than done here.
 */
export type ResetRequest =
  | { admitted: false; firstRefusal: boolean }
  | { admitted: true; mailIfKnown(): Promise<ResetRequestOutcome> };

export type PasswordResetService = ReturnType<typeof createPasswordResetService>;

/**
 * Password reset by mailed link (OWASP Forgot Password Cheat Sheet): asking says nothing about whether
 * the account exists, the link holds a single-use token that lives 30 minutes, and using it sets a
 * new password that ends every session of the account.
 */
export function createPasswordResetService(deps: {
  db: Db;
  passwords: PasswordHashing;
  passwordPolicy: PasswordPolicy;
  sessions: SessionIndex;
  mailer: Mailer;
  addressLimit: MailAddressLimit;
}) {
  const { db, passwords, passwordPolicy, sessions, mailer, addressLimit } = deps;
  const users = createUsersRepository(db);
  const tokens = createAccountTokens({ db });

  return {
    /**
     * Spends one of the address's mails for the hour, then hands back the rest of the work: looking
     * the account up, issuing its token and queueing the mail. The caller answers first and runs that
     * work afterwards, so the answer comes after the same steps whether or not an account uses the
     * address: its timing cannot tell them apart (ASVS 6.3.8). Done before the answer, the token's
     * INSERT (a write and a WAL flush) would make a known address measurably slower.
     */
    async requestReset(email: string, requestId: string): Promise<ResetRequest> {
      const allowance = await addressLimit.spend(email);
      if (!allowance.allowed) return { admitted: false, firstRefusal: allowance.firstRefusal };
      return {
        admitted: true,
        async mailIfKnown() {
          const user = await users.findByEmail(email);
          const issued = user && (await tokens.issue(user, PURPOSE));
          // No account, or one deleted since the lookup: nothing to mail, and nothing to say so.
          if (!user || !issued) return { outcome: 'unknown_email' };
          mailer.send(
            user.email,
            {
              kind: 'password_reset',
              name: user.name,
              token: issued.token,
              validForMinutes: TOKEN_LIFETIME_MS[PURPOSE] / 60_000,
            },
            { userId: user.id, requestId },
          );
          return { outcome: 'mail_queued', targetUserId: user.id };
        },
      };
    },

    /**
     * Sets a new password with a reset token. The new password is checked against the policy and
     * hashed before the token is spent, so a refused password leaves the link working. Spending the
     * token and storing the hash then commit together, in one transaction: of two uses of one link,
     * exactly one consumes it and changes the password. The new hash moves the session epoch, so every
     * session of the account ends (ASVS 7.4.3); the index deletes them now. The owner is told by mail.
     */
    async confirmReset(
      token: string,
      newPassword: string,
      requestId: string,
    ): Promise<{ userId: string; sessionsEnded: number }> {
      const peeked = await tokens.peek(token, PURPOSE);
      if (!peeked.ok) throw new InvalidTokenError(PURPOSE, peeked.reason);
      const user = await users.findById(peeked.userId);
      // Deleted since the link was mailed (its tokens went with it, so this is a race of moments).
      if (!user) throw new InvalidTokenError(PURPOSE, 'unknown');
      // Before a place at the hasher is taken: the policy's breached-password lookup can wait on the
      // network, and a place held meanwhile would be one fewer for every login.
      await passwordPolicy.check(newPassword, { email: user.email, name: user.name });
      const passwordHash = await passwords.hash(newPassword);

      await db.withTransaction(async (tx) => {
        const consumed = await createAccountTokens({ db: tx }).consume(token, PURPOSE);
        if (!consumed.ok) throw new InvalidTokenError(PURPOSE, consumed.reason);
        await createUsersRepository(tx).updatePasswordHash(user.id, passwordHash);
      });
      const sessionsEnded = await sessions.revokeAll(user.id);
      mailer.send(user.email, { kind: 'password_changed', name: user.name }, { userId: user.id, requestId });
      return { userId: user.id, sessionsEnded };
    },
  };
}
