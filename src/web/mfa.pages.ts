import cookieParser from 'cookie-parser';
import { Router, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { sessionsRevokedAfterMfaChange } from '../mfa/mfa.routes';
import type { SessionIndex } from '../auth/sessions';
import { InvalidCurrentPasswordError, InvalidMfaCodeError, MfaNotEnabledError } from '../errors';
import type { RouteKey } from '../http/require-verified-email';
import { logRefusal, logSecurityEvent } from '../http/security-events';
import { logInvalidForm } from '../http/validate';
import { totpCode } from '../mfa/mfa.schemas';
import { proofOfTypedCode, type MfaService } from '../mfa/mfa.service';
import { CSRF_FIELD, type Csrf } from './csrf';
import { formBody } from './form-body';
import { createFormRenderer } from './form-page';
import type { Views } from './views';

/** The enrolment pages an admin without a second factor keeps while REQUIRE_MFA_FOR_ADMINS is on. */
export const ENROLMENT_PAGES: readonly RouteKey[] = [
  'GET /mfa',
  'POST /mfa/enrolment',
  'POST /mfa/enrolment/confirm',
];

const passwordForm = z.strictObject({
  currentPassword: z.string().min(1).max(1024),
  [CSRF_FIELD]: z.string(),
});
const codeForm = z.strictObject({ code: totpCode, [CSRF_FIELD]: z.string() });
/** Turning the factor off: the password and one field for the app's code or a recovery code. */
const disableForm = z.strictObject({
  currentPassword: z.string().min(1).max(1024),
  code: z.string().trim().min(1).max(64),
  [CSRF_FIELD]: z.string(),
});

/**
 * The second factor's pages: its state (GET /mfa), enrolment with the current password (the QR code
 * is inline SVG made by the server: no image request, nothing the CSP has to allow), the recovery
 * codes, shown once after the first code and again when new ones replace them (the current password
 * first), and turning the factor off (the password and a code). The same use cases as /api/auth/mfa,
 * behind CSRF tokens.
 */
export function createMfaPages(deps: {
  views: Views;
  csrf: Csrf;
  mfa: MfaService;
  sessions: SessionIndex;
}): Router {
  const { views, csrf, mfa, sessions } = deps;
  const router = Router();
  const render = createFormRenderer(views, csrf);
  const cookies = cookieParser();
  const signedIn: RequestHandler = (req, res, next) =>
    req.user ? next() : res.redirect(303, `/login?next=${encodeURIComponent('/mfa')}`);

  router.get('/mfa', cookies, signedIn, async (req, res) => {
    const state = await mfa.status(req.user!.id);
    render(req, res, 200, 'mfa', { title: 'Second factor', ...state, message: '' });
  });

  router.post('/mfa/enrolment', cookies, formBody, signedIn, csrf.verify, async (req, res) => {
    const form = passwordForm.safeParse(req.body);
    const again = (status: number, message: string) =>
      render(req, res, status, 'mfa', {
        title: 'Second factor',
        enabled: false,
        recoveryCodesLeft: 0,
        message,
      });
    if (!form.success) {
      logInvalidForm(req, form.error);
      return again(400, 'Enter your current password.');
    }
    try {
      const enrolment = await mfa.startEnrolment(req.user!, form.data.currentPassword);
      render(req, res, 200, 'mfa-enrol', { title: 'Scan this code', ...enrolment, message: '' });
    } catch (error) {
      if (!(error instanceof InvalidCurrentPasswordError)) throw error;
      logRefusal(req, error);
      again(403, error.message);
    }
  });

  router.post('/mfa/enrolment/confirm', cookies, formBody, signedIn, csrf.verify, async (req, res) => {
    const form = codeForm.safeParse(req.body);
    // A wrong first code: back to the password, which starts a new secret (the shown one is not kept
    // in the page, and showing it again would need it out of the database).
    if (!form.success) {
      logInvalidForm(req, form.error);
      return res.redirect(303, '/mfa');
    }
    try {
      const recoveryCodes = await mfa.confirmEnrolment(req.user!.id, form.data.code, req.clientIp);
      await sessionsRevokedAfterMfaChange(req, sessions, 'auth.mfa_enabled');
      render(req, res, 200, 'mfa-recovery-codes', { title: 'Your recovery codes', recoveryCodes });
    } catch (error) {
      if (!(error instanceof InvalidMfaCodeError)) throw error;
      logRefusal(req, error);
      render(req, res, 401, 'mfa', {
        title: 'Second factor',
        enabled: false,
        recoveryCodesLeft: 0,
        message: 'That code did not match. Start again with your password.',
      });
    }
  });

  /** The state page again, with a message: a refused password or code, or what just happened. */
  const statePage = async (req: Request, res: Response, status: number, message: string) =>
    render(req, res, status, 'mfa', {
      title: 'Second factor',
      ...(await mfa.status(req.user!.id)),
      message,
    });
  /** A wrong password or code is shown on the page (and logged); anything else is the error page. */
  const refusedOnPage = async (req: Request, res: Response, error: unknown) => {
    if (error instanceof InvalidCurrentPasswordError) {
      logRefusal(req, error);
      return statePage(req, res, 403, error.message);
    }
    if (error instanceof InvalidMfaCodeError || error instanceof MfaNotEnabledError) {
      logRefusal(req, error);
      return statePage(req, res, error.status, error.message);
    }
    throw error; // 429 (the re-authentication budget, the code-step lock), outages: the error page
  };

  router.post('/mfa/recovery-codes', cookies, formBody, signedIn, csrf.verify, async (req, res) => {
    const form = passwordForm.safeParse(req.body);
    if (!form.success) {
      logInvalidForm(req, form.error);
      return statePage(req, res, 400, 'Enter your current password.');
    }
    try {
      const recoveryCodes = await mfa.regenerateRecoveryCodes(req.user!.id, form.data.currentPassword);
      logSecurityEvent(req, 'auth.recovery_codes_regenerated');
      render(req, res, 200, 'mfa-recovery-codes', { title: 'Your new recovery codes', recoveryCodes });
    } catch (error) {
      await refusedOnPage(req, res, error);
    }
  });

  router.post('/mfa/disable', cookies, formBody, signedIn, csrf.verify, async (req, res) => {
    const form = disableForm.safeParse(req.body);
    if (!form.success) {
      logInvalidForm(req, form.error);
      return statePage(req, res, 400, 'Enter your current password and a code.');
    }
    const proof = proofOfTypedCode(form.data.code);
    try {
      await mfa.disable(req.user!.id, form.data.currentPassword, proof, req.clientIp);
    } catch (error) {
      return refusedOnPage(req, res, error);
    }
    await sessionsRevokedAfterMfaChange(req, sessions, 'auth.mfa_disabled');
    await statePage(req, res, 200, 'The authenticator app is no longer asked for when you sign in.');
  });

  return router;
}
