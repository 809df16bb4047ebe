import cookieParser from 'cookie-parser';
import { Router, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { passwordResetBody, passwordResetConfirmBody, PASSWORD_RESET_ACCEPTED } from '../auth/auth.schemas';
import type { PasswordResetService } from '../auth/password-reset';
import { confirmResetAndRecord, requestResetThenAnswer } from '../auth/reset-flow';
import { InvalidTokenError, PasswordRejectedError } from '../errors';
import { logRefusal } from '../http/security-events';
import { logInvalidForm } from '../http/validate';
import { CSRF_FIELD, type Csrf } from './csrf';
import { formBody } from './form-body';
import { createFormRenderer, LINK_TOKEN_SCRIPT } from './form-page';
import type { Views } from './views';

const forgotForm = z.strictObject({
  email: passwordResetBody.shape.email,
  [CSRF_FIELD]: z.string(),
});

const resetForm = z.strictObject({
  token: passwordResetConfirmBody.shape.token,
  newPassword: passwordResetConfirmBody.shape.newPassword,
  confirmPassword: z.string(),
  [CSRF_FIELD]: z.string(),
});

/**
 * The pages of a password reset by mail: GET/POST /forgot-password asks for a link, GET/POST
 * /reset-password uses it. They run the API's use case with the API's limits (ASVS 5.0 6.3.3: two
 * pathways, one strength) and are mounted only when mail is on, so otherwise they are the 404 of a
 * page that does not exist, as the API's routes are.
 */
export function createPasswordResetPages(deps: {
  views: Views;
  csrf: Csrf;
  passwordReset: PasswordResetService;
  /** The per-client budget of the API's reset routes, shared with them. */
  limit: RequestHandler;
}): Router {
  const { views, csrf, passwordReset, limit } = deps;
  const cookies = cookieParser();
  const router = Router();

  const render = createFormRenderer(views, csrf);

  const renderForgot = (req: Request, res: Response, status: number, email = '', message = '') =>
    render(req, res, status, 'forgot-password', { title: 'Reset your password', email, message });

  // The token is rendered back only into the hidden field of the same form, on a no-store page: the
  // user can correct a refused password without going back to the mail.
  const renderReset = (req: Request, res: Response, status: number, token = '', message = '') =>
    render(req, res, status, 'reset-password', {
      title: 'Choose a new password',
      script: LINK_TOKEN_SCRIPT,
      token,
      message,
    });

  router.get('/forgot-password', cookies, (req, res) => {
    csrf.ensureAnonymousIdentity(req, res);
    renderForgot(req, res, 200);
  });

  // The CSRF token is checked before the per-client budget is spent: a post forged by another site
  // cannot use up the visitor's budget. The same order on both forms.
  router.post('/forgot-password', cookies, formBody, csrf.verify, limit, async (req, res) => {
    const form = forgotForm.safeParse(req.body);
    if (!form.success) {
      logInvalidForm(req, form.error);
      const { email } = req.body as Record<string, unknown>;
      const echoed = typeof email === 'string' ? email.slice(0, 254) : '';
      return renderForgot(req, res, 400, echoed, 'Enter a valid email address.');
    }
    // One page for every address, sent before the account is looked up (ADR 0015).
    await requestResetThenAnswer(req, passwordReset, form.data.email, () =>
      res.type('html').send(
        views.render('reset-link-sent', {
          title: 'Check your mail',
          message: PASSWORD_RESET_ACCEPTED.message,
        }),
      ),
    );
  });

  router.get('/reset-password', cookies, (req, res) => {
    csrf.ensureAnonymousIdentity(req, res);
    renderReset(req, res, 200);
  });

  router.post('/reset-password', cookies, formBody, csrf.verify, limit, async (req, res) => {
    const form = resetForm.safeParse(req.body);
    if (!form.success) {
      logInvalidForm(req, form.error);
      return renderReset(req, res, 400, '', 'Fill in both password fields.');
    }
    const { token, newPassword, confirmPassword } = form.data;
    if (newPassword !== confirmPassword) {
      return renderReset(req, res, 400, token, 'The two passwords differ. Type the same one twice.');
    }
    try {
      await confirmResetAndRecord(req, passwordReset, token, newPassword);
    } catch (error) {
      // A spent or unknown link and a refused password are the user's to fix, on this page; anything
      // else (429, an outage) is the error page's.
      if (!(error instanceof InvalidTokenError || error instanceof PasswordRejectedError)) throw error;
      logRefusal(req, error);
      // A refused password leaves the link valid, so its token stays in the form; a dead one does not.
      const keptToken = error instanceof PasswordRejectedError ? token : '';
      return renderReset(req, res, 400, keptToken, error.message);
    }
    res.type('html').send(views.render('password-changed', { title: 'Password changed' }));
  });

  return router;
}
