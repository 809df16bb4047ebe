import { Router } from 'express';
import type { AppConfig } from '../../config/config';
import { NotFoundError } from '../errors';
import type { RequestLimits } from '../http/rate-limit';
import { requireAuth } from '../http/require-auth';
import { logSecurityEvent } from '../http/security-events';
import { validate } from '../http/validate';
import { toUserResponse } from '../users/users.schemas';
import type { UsersService } from '../users/users.service';
import { recipientOf } from '../mail/recipient';
import {
  changePasswordBody,
  loginBody,
  PASSWORD_RESET_ACCEPTED,
  passwordResetBody,
  passwordResetConfirmBody,
  registerBody,
} from './auth.schemas';
import type { AuthService } from './auth.service';
import { logIn } from './login';
import type { PasswordResetService } from './password-reset';
import { endSession, rotateSession, startSession, type SessionIndex } from './sessions';

export function createAuthRouter(deps: {
  config: AppConfig;
  authService: AuthService;
  usersService: UsersService;
  sessions: SessionIndex;
  /** null when mail is off: the reset routes then answer 404, as if they did not exist. */
  passwordReset: PasswordResetService | null;
  limits: Pick<RequestLimits, 'registration' | 'passwordReset'>;
}): Router {
  const { config, authService, usersService, sessions, passwordReset, limits } = deps;
  const router = Router();

  /** The reset service, or the 404 of a route that does not exist (mail is off). */
  const requirePasswordReset = (): PasswordResetService => {
    if (!passwordReset) throw new NotFoundError('There is nothing at this address.');
    return passwordReset;
  };

  router.post('/login', async (req, res) => {
    const { email, password } = validate(loginBody, req.body, 'body');
    const user = await logIn(req, { authService, sessions }, email, password);
    res.json(toUserResponse(user));
  });

  router.post('/logout', requireAuth, async (req, res) => {
    logSecurityEvent(req, 'auth.logout');
    await endSession(req, res, sessions, config);
    res.status(204).end();
  });

  router.get('/me', requireAuth, (req, res) => {
    res.json(toUserResponse(req.user!));
  });

  router.post('/register', limits.registration, async (req, res) => {
    // Closed registration looks like no registration at all.
    if (!config.registrationEnabled) throw new NotFoundError('There is nothing at this address.');
    const input = validate(registerBody, req.body, 'body');
    const user = await usersService.createUser({ ...input, role: 'user' });
    await startSession(req, sessions, user);
    req.user = user;
    logSecurityEvent(req, 'user.created', { targetUserId: user.id, role: user.role, via: 'registration' });
    res.status(201).location(`/api/users/${user.id}`).json(toUserResponse(user));
  });

  router.put('/password', requireAuth, async (req, res) => {
    const { currentPassword, newPassword } = validate(changePasswordBody, req.body, 'body');
    const userId = req.user!.id;
    const epoch = await authService.changePassword(userId, currentPassword, newPassword);
    // ASVS 7.4.3: a new password ends every other session (the new epoch refuses them; the index
    // deletes them now); this one continues in the new epoch under a fresh id.
    await rotateSession(req, sessions, epoch);
    const ended = await sessions.revokeAll(userId, req.sessionID);
    logSecurityEvent(req, 'auth.password_changed', { otherSessionsEnded: ended });
    res.status(204).end();
  });

  router.post('/password-reset', limits.passwordReset, async (req, res) => {
    const service = requirePasswordReset();
    const { email } = validate(passwordResetBody, req.body, 'body');
    // The log names the address by a hash only, as the mail events do.
    const recipient = recipientOf(email);
    const pending = await service.requestReset(email, req.requestId);
    res.status(202).json(PASSWORD_RESET_ACCEPTED);

    // Answered: what follows cannot change the answer or its timing, and must not throw into Express.
    if (!pending.admitted) {
      if (pending.firstRefusal) logSecurityEvent(req, 'password_reset.address_limited', { recipient });
      return;
    }
    await pending.mailIfKnown().then(
      (outcome) => logSecurityEvent(req, 'password_reset.requested', { recipient, ...outcome }),
      (err: unknown) => req.log.error({ err, recipient }, 'password reset request failed after its answer'),
    );
  });

  router.post('/password-reset/confirm', limits.passwordReset, async (req, res) => {
    const service = requirePasswordReset();
    const { token, newPassword } = validate(passwordResetConfirmBody, req.body, 'body');
    const { userId, sessionsEnded } = await service.confirmReset(token, newPassword, req.requestId);
    logSecurityEvent(req, 'password_reset.completed', { targetUserId: userId, sessionsEnded });
    res.status(204).end();
  });

  return router;
}
