import type { Request } from 'express';
import { logSecurityEvent } from '../http/security-events';
import { recipientOf } from '../mail/recipient';
import type { PasswordResetService } from './password-reset';

/**
 * A reset request as both pathways run it (POST /api/auth/password-reset and POST /forgot-password):
 * spend the address's allowance, let the caller answer, and only then look the account up and queue
 * its mail (docs/decisions/0015-a-reset-request-answers-before-the-lookup.md). `answer` sends the
 * same response whatever the address; the caller's rate limit has already been spent.
 */
export async function requestResetThenAnswer(
  req: Request,
  service: PasswordResetService,
  email: string,
  answer: () => void,
): Promise<void> {
  // The log names the address by a hash only, as the mail events do.
  const recipient = recipientOf(email);
  const pending = await service.requestReset(email, req.requestId);
  answer();

  // Answered: what follows cannot change the answer or its timing, and must not throw into Express.
  if (!pending.admitted) {
    if (pending.firstRefusal) logSecurityEvent(req, 'password_reset.address_limited', { recipient });
    return;
  }
  await pending.mailIfKnown().then(
    (outcome) => logSecurityEvent(req, 'password_reset.requested', { recipient, ...outcome }),
    (err: unknown) => req.log.error({ err, recipient }, 'password reset request failed after its answer'),
  );
}

/**
 * Sets the new password with the token, as both pathways do (the API's confirm and POST
 * /reset-password), and records it. A refused token or password throws its AppError for the caller.
 */
export async function confirmResetAndRecord(
  req: Request,
  service: PasswordResetService,
  token: string,
  newPassword: string,
): Promise<void> {
  const { userId, sessionsEnded } = await service.confirmReset(token, newPassword, req.requestId);
  logSecurityEvent(req, 'password_reset.completed', { targetUserId: userId, sessionsEnded });
}
