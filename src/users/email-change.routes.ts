import { Router, type Request, type RequestHandler } from 'express';
import { NotFoundError } from '../errors';
import { logSecurityEvent } from '../http/security-events';
import { validate } from '../http/validate';
import { recipientOf } from '../mail/recipient';
import type { EmailChange } from './email-change';
import type { User } from './user';
import { emailChangeConfirmBody } from './users.schemas';

/**
 * Confirms an email change with the mailed token, as both pathways do (the API's confirm and POST
 * /confirm-email), and records it. A refused token or a taken address throws its AppError for the caller.
 */
export async function confirmEmailChangeAndRecord(
  req: Request,
  emailChange: EmailChange,
  token: string,
): Promise<User> {
  const user = await emailChange.confirm(token);
  logSecurityEvent(req, 'email_change.completed', {
    targetUserId: user.id,
    recipient: recipientOf(user.email),
  });
  return user;
}

/**
 * POST /api/auth/email-change/confirm. No session is required: the link may be opened on another
 * device than the one that asked, and the token alone is the proof that the new address answers.
 */
export function createEmailChangeRouter(deps: {
  /** null when mail is off: the route then answers 404, as if it did not exist. */
  emailChange: EmailChange | null;
  /** The per-client budget of the mailed links (shared with password reset): spent first, 404 included. */
  limit: RequestHandler;
}): Router {
  const { emailChange, limit } = deps;
  const router = Router();

  router.post('/confirm', limit, async (req, res) => {
    if (!emailChange) throw new NotFoundError('There is nothing at this address.');
    const { token } = validate(emailChangeConfirmBody, req.body, 'body');
    await confirmEmailChangeAndRecord(req, emailChange, token);
    res.status(204).end();
  });

  return router;
}
