import { Router } from 'express';
import type { EmailVerificationService } from '../auth/email-verification';
import { endSession, type SessionIndex } from '../auth/sessions';
import { mailVerificationAfterAnswer } from '../auth/verification-flow';
import type { AppConfig } from '../../config/config';
import { requireAuth, requireRole } from '../http/require-auth';
import { logSecurityEvent } from '../http/security-events';
import { validate } from '../http/validate';
import { recipientOf } from '../mail/recipient';
import {
  createUserBody,
  encodeCursor,
  listUsersQuery,
  toUserResponse,
  updateUserBody,
  userIdParams,
} from './users.schemas';
import type { UsersService } from './users.service';

export function createUsersRouter(deps: {
  usersService: UsersService;
  sessions: SessionIndex;
  config: AppConfig;
  /** null when mail is off: a created account is then left unverified, unmailed. */
  emailVerification: EmailVerificationService | null;
}): Router {
  const { usersService, sessions, config, emailVerification } = deps;
  const router = Router();

  router.get('/', requireRole('admin'), async (req, res) => {
    const { limit, cursor } = validate(listUsersQuery, req.query, 'query');
    const { users, last } = await usersService.listUsers(limit, cursor);
    res.json({
      data: users.map(toUserResponse),
      nextCursor: users.length === limit && last ? encodeCursor(last) : null,
    });
  });

  router.post('/', requireRole('admin'), async (req, res) => {
    const input = validate(createUserBody, req.body, 'body');
    const user = await usersService.createUser(input);
    logSecurityEvent(req, 'user.created', { targetUserId: user.id, role: user.role });
    res.status(201).location(`/api/users/${user.id}`).json(toUserResponse(user));
    // The admin typed the address; only its owner can prove it reaches them.
    if (emailVerification) await mailVerificationAfterAnswer(req, emailVerification, user, 'admin');
  });

  router.get('/:id', requireAuth, async (req, res) => {
    const { id } = validate(userIdParams, req.params, 'params');
    res.json(toUserResponse(await usersService.getUser(req.user!, id)));
  });

  router.patch('/:id', requireAuth, async (req, res) => {
    const { id } = validate(userIdParams, req.params, 'params');
    const changes = validate(updateUserBody, req.body, 'body');
    const { user, pendingEmail, emailChanged } = await usersService.updateUser(
      req.user!,
      id,
      changes,
      req.requestId,
    );
    // A requested address is not an updated one: it is logged as a request, by hashes of both addresses.
    const fields = (['name', 'email', 'role'] as const).filter(
      (f) => changes[f] !== undefined && !(f === 'email' && pendingEmail),
    );
    if (fields.length > 0)
      logSecurityEvent(req, 'user.updated', { targetUserId: id, fields, role: user.role });
    if (!pendingEmail) {
      res.json(toUserResponse(user));
      // An address set at once (an admin's change) is stored unverified: its new owner is mailed the
      // link that proves it, after the answer, as a new account is.
      if (emailVerification && emailChanged && !user.emailVerifiedAt) {
        await mailVerificationAfterAnswer(req, emailVerification, user, 'address_changed');
      }
      return;
    }
    logSecurityEvent(req, 'email_change.requested', {
      targetUserId: id,
      recipient: recipientOf(pendingEmail),
      previousRecipient: recipientOf(user.email),
    });
    // 202: the address changes only once the mailed link is followed.
    res.status(202).json({ ...toUserResponse(user), pendingEmail });
  });

  router.delete('/:id', requireAuth, async (req, res) => {
    const { id } = validate(userIdParams, req.params, 'params');
    await usersService.deleteUser(req.user!, id);
    logSecurityEvent(req, 'user.deleted', { targetUserId: id });
    if (id === req.user!.id) await endSession(req, res, sessions, config);
    res.status(204).end();
  });

  return router;
}
