import type { Request } from 'express';
import { RateLimitedError } from '../errors';
import { logSecurityEvent } from '../http/security-events';
import { recipientOf } from '../mail/recipient';
import type { User } from '../users/user';
import type { EmailVerificationService } from './email-verification';

/** How a verification mail came to be asked for, in its security event. */
export type VerificationVia = 'registration' | 'admin' | 'address_changed' | 'resend';

/**
 * Mails a new account its verification link once the account's answer has gone: the mail is part of
 * creating the account, never of its answer, so a slow Redis, a refused address or an outbox problem
 * cannot change or delay what the client was told (201). Never throws into Express.
 */
export async function mailVerificationAfterAnswer(
  req: Request,
  service: EmailVerificationService,
  user: User,
  via: Exclude<VerificationVia, 'resend'>,
): Promise<void> {
  // The log names the address by a hash only, as the mail events do.
  const recipient = recipientOf(user.email);
  await service.sendVerification(user, req.requestId).then(
    ({ outcome }) =>
      logSecurityEvent(req, 'email_verification.requested', {
        targetUserId: user.id,
        recipient,
        via,
        outcome,
      }),
    (err: unknown) => req.log.error({ err, recipient }, 'verification mail failed after its answer'),
  );
}

/**
 * A signed-in user's request for a new link (the API's resend and the home page's button). The user
 * asks about their own address, so a spent allowance is said plainly (429 with Retry-After): it
 * reveals nothing they do not know. Throws 409 when the address is already verified.
 */
export async function resendAndRecord(
  req: Request,
  service: EmailVerificationService,
  user: User,
): Promise<void> {
  const recipient = recipientOf(user.email);
  const sent = await service.resend(user, req.requestId);
  if (sent.outcome === 'address_limited') {
    // Only the request that crosses the limit is logged: a flood is one line per address-hour.
    const event = sent.firstRefusal
      ? { name: 'email_verification.resend_limited' as const, fields: { recipient } }
      : undefined;
    throw new RateLimitedError(sent.retryAfterS, event);
  }
  logSecurityEvent(req, 'email_verification.requested', {
    targetUserId: user.id,
    recipient,
    via: 'resend',
    outcome: sent.outcome,
  });
}

/** Verifies with the mailed token, as the API and the page both do, and records it. */
export async function verifyAndRecord(
  req: Request,
  service: EmailVerificationService,
  token: string,
): Promise<User> {
  const { user } = await service.verify(token);
  logSecurityEvent(req, 'email_verification.completed', { targetUserId: user.id });
  return user;
}
