import { Router, type RequestHandler } from 'express';
import type { AppConfig } from '../../config/config';
import { NotFoundError, UnauthenticatedError } from '../errors';
import type { RouteKey } from '../http/require-verified-email';
import type { RequestLimits } from '../http/rate-limit';
import { requireAuth } from '../http/require-auth';
import { logSecurityEvent } from '../http/security-events';
import { validate } from '../http/validate';
import { mfaLoginBody } from '../mfa/mfa.schemas';
import type { MfaService } from '../mfa/mfa.service';
import { toUserResponse } from '../users/users.schemas';
import type { UsersService } from '../users/users.service';
import {
  changePasswordBody,
  loginBody,
  PASSWORD_RESET_ACCEPTED,
  passwordResetBody,
  passwordResetConfirmBody,
  registerBody,
  VERIFICATION_MAIL_QUEUED,
  verifyEmailBody,
} from './auth.schemas';
import type { AuthService } from './auth.service';
import type { EmailVerificationService } from './email-verification';
import { completeMfaLogin, logIn, type CodeStepObserver } from './login';
import type { PasswordResetService } from './password-reset';
import { confirmResetAndRecord, requestResetThenAnswer } from './reset-flow';
import { endSession, pendingMfaChallenge, rotateSession, startSession, type SessionIndex } from './sessions';
import { UNVERIFIED_SESSION_ROUTES } from './user-sessions.routes';
import { mailVerificationAfterAnswer, resendAndRecord, verifyAndRecord } from './verification-flow';

/**
 * What a signed-in user whose address is not verified may still do while REQUIRE_VERIFIED_EMAIL is on
 * (src/http/require-verified-email.ts): see who they are, sign out or in again, prove the address, and
 * see and end their sessions (user-sessions.routes.ts). Every other route, including any added later,
 * answers 403 email_unverified.
 */
export const UNVERIFIED_API_ROUTES: readonly RouteKey[] = [
  'GET /api/auth/me',
  'POST /api/auth/login',
  'POST /api/auth/login/mfa',
  'POST /api/auth/logout',
  'POST /api/auth/verify-email',
  'POST /api/auth/verify-email/resend',
  ...UNVERIFIED_SESSION_ROUTES,
];

export function createAuthRouter(deps: {
  config: AppConfig;
  authService: AuthService;
  usersService: UsersService;
  sessions: SessionIndex;
  mfa: MfaService;
  /** null when mail is off: the reset routes then answer 404, as if they did not exist. */
  passwordReset: PasswordResetService | null;
  /** null when mail is off: the verification routes then answer 404, and no account is mailed. */
  emailVerification: EmailVerificationService | null;
  limits: Pick<RequestLimits, 'registration' | 'passwordReset'>;
  /** Counts how code steps end (src/metrics), when metrics are on. */
  codeStepObserver?: CodeStepObserver;
}): Router {
  const { config, authService, usersService, sessions, mfa, passwordReset, emailVerification, limits } = deps;
  const codeStep = { mfa, sessions, findUser: usersService.findById, observer: deps.codeStepObserver };
  const router = Router();

  /** The reset service, or the 404 of a route that does not exist (mail is off). */
  const requirePasswordReset = (): PasswordResetService => {
    if (!passwordReset) throw new NotFoundError('There is nothing at this address.');
    return passwordReset;
  };

  /** The verification service, or the 404 of a route that does not exist (mail is off). */
  const requireEmailVerification = (): EmailVerificationService => {
    if (!emailVerification) throw new NotFoundError('There is nothing at this address.');
    return emailVerification;
  };

  router.post('/login', async (req, res) => {
    const { email, password } = validate(loginBody, req.body, 'body');
    const result = await logIn(req, { authService, sessions }, email, password);
    // 202: the password was right but the login is not finished; POST /login/mfa finishes it.
    if (result.mfaRequired) return res.status(202).json({ mfaRequired: true });
    res.json(toUserResponse(result.user));
  });

  router.post('/login/mfa', async (req, res) => {
    const proof = validate(mfaLoginBody, req.body, 'body');
    const user = await completeMfaLogin(req, codeStep, proof);
    res.json(toUserResponse(user));
  });

  // A login waiting for its code can be abandoned as well (a shared computer): its session ends too.
  const signedInOrPending: RequestHandler = (req, res, next) =>
    pendingMfaChallenge(req) ? next() : requireAuth(req, res, next);

  router.post('/logout', signedInOrPending, async (req, res) => {
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
    if (emailVerification) await mailVerificationAfterAnswer(req, emailVerification, user, 'registration');
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
    await requestResetThenAnswer(req, service, email, () => res.status(202).json(PASSWORD_RESET_ACCEPTED));
  });

  router.post('/password-reset/confirm', limits.passwordReset, async (req, res) => {
    const service = requirePasswordReset();
    const { token, newPassword } = validate(passwordResetConfirmBody, req.body, 'body');
    await confirmResetAndRecord(req, service, token, newPassword);
    res.status(204).end();
  });

  // The mailed links' routes share the reset routes' per-client budget: each ask may send a mail and
  // write a token, each use is a token lookup. Spent before anything else, the mail-off 404 included.
  // No session is needed to use a link: it may be opened on another device than the one signed in.
  router.post('/verify-email', limits.passwordReset, async (req, res) => {
    const service = requireEmailVerification();
    const { token } = validate(verifyEmailBody, req.body, 'body');
    await verifyAndRecord(req, service, token);
    res.status(204).end();
  });

  router.post('/verify-email/resend', limits.passwordReset, async (req, res) => {
    const service = requireEmailVerification();
    if (!req.user) throw new UnauthenticatedError();
    await resendAndRecord(req, service, req.user);
    res.status(202).json(VERIFICATION_MAIL_QUEUED);
  });

  return router;
}
