import { Router, type Request } from 'express';
import { ForbiddenError, NotFoundError } from '../errors';
import { requireAuth, requireRole } from '../http/require-auth';
import type { RouteKey } from '../http/require-verified-email';
import { logSecurityEvent } from '../http/security-events';
import { validate } from '../http/validate';
import type { SessionIndex } from '../auth/sessions';
import type { User } from '../users/user';
import { userIdParams } from '../users/users.schemas';
import {
  confirmEnrolmentBody,
  disableMfaBody,
  regenerateRecoveryCodesBody,
  startEnrolmentBody,
} from './mfa.schemas';
import type { MfaService } from './mfa.service';

/**
 * The routes an admin without a second factor may still use while REQUIRE_MFA_FOR_ADMINS is on
 * (require-mfa.ts): see the factor's state and enrol one. The code step of a login is anonymous and
 * listed with the login routes.
 */
export const ENROLMENT_API_ROUTES: readonly RouteKey[] = [
  'GET /api/auth/mfa',
  'POST /api/auth/mfa/enrolment',
  'POST /api/auth/mfa/enrolment/confirm',
];

/**
 * After the factor is turned on or off: the user's other sessions end, this one goes on, and the change
 * is logged with how many ended (shared by the API and the pages).
 */
export async function sessionsRevokedAfterMfaChange(
  req: Request,
  sessions: SessionIndex,
  event: 'auth.mfa_enabled' | 'auth.mfa_disabled',
): Promise<void> {
  const ended = await sessions.revokeAll(req.user!.id, req.sessionID);
  logSecurityEvent(req, event, { otherSessionsEnded: ended });
}

/**
 * A user's own second factor, under /api/auth/mfa: its state, enrolment (start with the current
 * password, confirm with a first code), new recovery codes (the current password), and disabling
 * (the current password and a code). Every change of the factor ends the user's other sessions
 * (ASVS 5.0 7.4.3): a session opened before the change was not opened under the new rules.
 */
export function createMfaRouter(deps: { mfa: MfaService; sessions: SessionIndex }): Router {
  const { mfa, sessions } = deps;
  const router = Router();
  router.use(requireAuth);

  router.get('/', async (req, res) => {
    res.json(await mfa.status(req.user!.id));
  });

  router.post('/enrolment', async (req, res) => {
    const { currentPassword } = validate(startEnrolmentBody, req.body, 'body');
    // 201: an enrolment now exists, waiting for its first code. no-store (app-wide) keeps the secret
    // out of every cache.
    res.status(201).json(await mfa.startEnrolment(req.user!, currentPassword));
  });

  router.post('/enrolment/confirm', async (req, res) => {
    const { code } = validate(confirmEnrolmentBody, req.body, 'body');
    const recoveryCodes = await mfa.confirmEnrolment(req.user!.id, code, req.clientIp);
    await sessionsRevokedAfterMfaChange(req, sessions, 'auth.mfa_enabled');
    res.json({ recoveryCodes });
  });

  router.post('/recovery-codes', async (req, res) => {
    const { currentPassword } = validate(regenerateRecoveryCodesBody, req.body, 'body');
    const recoveryCodes = await mfa.regenerateRecoveryCodes(req.user!.id, currentPassword);
    logSecurityEvent(req, 'auth.recovery_codes_regenerated');
    res.json({ recoveryCodes });
  });

  router.post('/disable', async (req, res) => {
    const { currentPassword, ...proof } = validate(disableMfaBody, req.body, 'body');
    await mfa.disable(req.user!.id, currentPassword, proof, req.clientIp);
    await sessionsRevokedAfterMfaChange(req, sessions, 'auth.mfa_disabled');
    res.status(204).end();
  });

  return router;
}

/**
 * DELETE /api/users/:id/mfa: an admin removes a user's second factor (lost phone and codes). Every
 * session of that user ends, the reset is logged as a warning, and the user is mailed when mail is on.
 */
export function createMfaAdminRouter(deps: {
  mfa: MfaService;
  sessions: SessionIndex;
  findUser: (id: string) => Promise<User | null>;
}): Router {
  const { mfa, sessions, findUser } = deps;
  const router = Router();

  router.delete('/:id/mfa', requireRole('admin'), async (req, res) => {
    const { id } = validate(userIdParams, req.params, 'params');
    // Not one's own: that would let a stolen admin session drop the factor without the password and a
    // code, which disabling asks for (POST /api/auth/mfa/disable).
    if (id === req.user!.id) {
      throw new ForbiddenError('Turn off your own second factor with your password and a code.');
    }
    const target = await findUser(id);
    if (!target) throw new NotFoundError();
    if (!(await mfa.reset(target))) throw new NotFoundError('The user has no second factor.');
    const ended = await sessions.revokeAll(id);
    logSecurityEvent(req, 'auth.mfa_reset', { targetUserId: id, sessionsEnded: ended });
    res.status(204).end();
  });

  return router;
}
