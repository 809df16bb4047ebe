import cookieParser from 'cookie-parser';
import { Router, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { verifyEmailBody, VERIFICATION_MAIL_QUEUED } from '../auth/auth.schemas';
import type { EmailVerificationService } from '../auth/email-verification';
import { resendAndRecord, verifyAndRecord } from '../auth/verification-flow';
import { EmailAlreadyVerifiedError, InvalidTokenError } from '../errors';
import type { RouteKey } from '../http/require-verified-email';
import { logRefusal } from '../http/security-events';
import { logInvalidForm } from '../http/validate';
import { CSRF_FIELD, type Csrf } from './csrf';
import { formBody } from './form-body';
import { createFormRenderer, LINK_TOKEN_SCRIPT } from './form-page';
import type { Views } from './views';

/** The pages of this file an unverified user may use while REQUIRE_VERIFIED_EMAIL is on: all of them. */
export const UNVERIFIED_VERIFICATION_PAGES: readonly RouteKey[] = [
  'GET /verify-email',
  'POST /verify-email',
  'POST /verify-email/resend',
];

const verifyForm = z.strictObject({
  // An empty field is what the form posts when its script never ran (no JavaScript).
  token: verifyEmailBody.shape.token.min(1),
  [CSRF_FIELD]: z.string(),
});

/**
 * The pages of email verification: GET /verify-email shows a button, POST /verify-email verifies
 * (with the API's use case and per-client budget), POST /verify-email/resend is the home page's "send
 * a new link" button. GET never verifies: mail scanners and link previews open every link in a mail,
 * and a GET that spent the token would verify the address for whoever's scanner it was, and leave
 * the owner a dead link (ASVS 5.0 3.5.3). Mounted only when mail is on.
 */
export function createEmailVerificationPages(deps: {
  views: Views;
  csrf: Csrf;
  emailVerification: EmailVerificationService;
  /** The per-client budget of the mailed-link routes, shared with the API's. */
  limit: RequestHandler;
}): Router {
  const { views, csrf, emailVerification, limit } = deps;
  const cookies = cookieParser();
  const router = Router();

  const render = createFormRenderer(views, csrf);
  const renderForm = (req: Request, res: Response, status: number, message = '') =>
    render(req, res, status, 'verify-email', {
      title: 'Confirm your email address',
      script: LINK_TOKEN_SCRIPT,
      token: '',
      message,
    });

  // Anyone may open the link, signed in or not, on any device: the token alone is the proof.
  router.get('/verify-email', cookies, (req, res) => {
    csrf.ensureAnonymousIdentity(req, res);
    renderForm(req, res, 200);
  });

  // CSRF before the budget, as on the reset forms: another site's post cannot spend the visitor's budget.
  router.post('/verify-email', cookies, formBody, csrf.verify, limit, async (req, res) => {
    const form = verifyForm.safeParse(req.body);
    if (!form.success) {
      logInvalidForm(req, form.error);
      return renderForm(req, res, 400, 'Open the link from your mail again.');
    }
    try {
      await verifyAndRecord(req, emailVerification, form.data.token);
    } catch (error) {
      // A spent or unknown link is the user's to fix from here; anything else is the error page's.
      if (!(error instanceof InvalidTokenError)) throw error;
      logRefusal(req, error);
      return renderForm(req, res, 400, error.message);
    }
    res
      .type('html')
      .send(views.render('email-verified', { title: 'Address confirmed', signedIn: req.user !== undefined }));
  });

  // Resending needs a session: the link goes to the signed-in user's own address, never one typed here.
  const signedInOrToLogin: RequestHandler = (req, res, next) =>
    req.user ? next() : res.redirect(303, '/login');

  router.post(
    '/verify-email/resend',
    cookies,
    formBody,
    signedInOrToLogin,
    csrf.verify,
    limit,
    async (req, res) => {
      try {
        await resendAndRecord(req, emailVerification, req.user!);
      } catch (error) {
        // Verified meanwhile (in another tab): home shows it. A spent allowance is the error page's 429.
        if (error instanceof EmailAlreadyVerifiedError) return res.redirect(303, '/');
        throw error;
      }
      res.type('html').send(
        views.render('verification-sent', {
          title: 'Check your mail',
          message: VERIFICATION_MAIL_QUEUED.message,
        }),
      );
    },
  );

  return router;
}
