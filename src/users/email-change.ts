import { createAccountTokens, TOKEN_LIFETIME_MS } from '../auth/account-tokens';
import { EmailTakenError, InvalidTokenError, NotFoundError, RateLimitedError } from '../errors';
import type { Db } from '../lib/db';
import type { MailAddressLimit } from '../mail/address-limit';
import type { Mailer } from '../mail/mailer';
import { maskAddress, recipientOf } from '../mail/recipient';
import type { User } from './user';
import { createUsersRepository } from './users.repository';

const PURPOSE = 'change_email';

export type EmailChange = ReturnType<typeof createEmailChange>;

/**
 * A user's change of their own sign-in address, proven from the new address before it takes effect
 * (OWASP Authentication Cheat Sheet, "changing a user's registered email address"): a stolen session,
 * even with the password, cannot move the account to an address that does not answer, and a typo
 * cannot lock the owner out. The old address is told, with the way back (a reset it can still ask
 * for while the change is pending). Only when mail is on: without it users.service switches at once.
 */
export function createEmailChange(deps: { db: Db; mailer: Mailer; addressLimit: MailAddressLimit }) {
  const { db, mailer, addressLimit } = deps;
  const users = createUsersRepository(db);
  const tokens = createAccountTokens({ db });

  const sendNotice = (user: User, newEmail: string, requestId: string) =>
    mailer.send(
      user.email,
      { kind: 'email_change_notice', name: user.name, maskedNewEmail: maskAddress(newEmail) },
      { userId: user.id, requestId },
    );

  return {
    /**
     * What must hold before a change is asked for, checked before anything of the request changes: the
     * address is free (409 email_taken, the answer an immediate change gives too), and it may receive
     * one more mail this hour, so repeated requests cannot bury a stranger's inbox (429).
     */
    async admit(newEmail: string): Promise<void> {
      if (await users.findByEmail(newEmail)) throw new EmailTakenError();
      const allowance = await addressLimit.spend(newEmail);
      if (allowance.allowed) return;
      // Only the refusal that crosses the limit is logged: a bombing run is one line per address-hour.
      const event = allowance.firstRefusal
        ? { name: 'email_change.address_limited' as const, fields: { recipient: recipientOf(newEmail) } }
        : undefined;
      throw new RateLimitedError(allowance.retryAfterS, event);
    },

    /**
     * Issues the link (replacing any earlier one of the user's: only the latest change can be
     * confirmed), mails it to the new address and a notice without it to the old one.
     */
    async request(user: User, newEmail: string, requestId: string): Promise<void> {
      const issued = await tokens.issue(user, PURPOSE, { newEmail });
      // Deleted since this request began: there is nobody left to change.
      if (!issued) throw new NotFoundError();
      mailer.send(
        newEmail,
        {
          kind: 'email_change_confirm',
          name: user.name,
          token: issued.token,
          newEmail,
          validForHours: TOKEN_LIFETIME_MS[PURPOSE] / 3_600_000,
        },
        { userId: user.id, requestId },
      );
      sendNotice(user, newEmail, requestId);
    },

    /** Tells the old address that the account moved (an admin's change, which takes effect at once). */
    notifyOldAddress: sendNotice,

    /**
     * Moves the account to the address the token was mailed to. Spending the token, switching the
     * address (verified now: the link proved it) and killing the verification links of the old
     * address commit together: of two uses of one link exactly one wins. If another account took the
     * address since the request, the transaction rolls back with 409 email_taken: the token stays
     * unspent but cannot succeed while the address is taken, and it expires as usual.
     */
    async confirm(token: string): Promise<User> {
      return db.withTransaction(async (tx) => {
        const txTokens = createAccountTokens({ db: tx });
        const consumed = await txTokens.consume(token, PURPOSE);
        if (!consumed.ok) throw new InvalidTokenError(PURPOSE, consumed.reason);
        // The table's CHECK gives every change_email token an address; a user deleted in between is gone.
        const user = consumed.newEmail
          ? await createUsersRepository(tx).confirmEmail(consumed.userId, consumed.newEmail)
          : null;
        if (!user) throw new InvalidTokenError(PURPOSE, 'unknown');
        // The old address's links die with it: its verification, and a reset mailed there, which in the
        // hands of whoever reads that mailbox would take the account back. Each token is also bound to
        // the address it was mailed for (account_tokens.account_email), so this is tidiness on top.
        await txTokens.revoke(user.id, ['verify_email', 'password_reset']);
        return user;
      });
    },
  };
}
