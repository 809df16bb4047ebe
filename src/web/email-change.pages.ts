import cookieParser from 'cookie-parser';
import { Router, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { EmailTakenError, InvalidTokenError } from '../errors';
import { logRefusal } from '../http/security-events';
import { logInvalidForm } from '../http/validate';
import type { EmailChange } from '../users/email-change';
import { confirmEmailChangeAndRecord } from '../users/email-change.routes';
import { emailChangeConfirmBody } from '../users/users.schemas';
import { CSRF_FIELD, type Csrf } from './csrf';
import { formBody } from './form-body';
import { createFormRenderer, LINK_TOKEN_SCRIPT } from './form-page';
import type { Views } from './views';

const confirmForm = z.strictObject({
  // An empty field is what the form posts when its script never ran (no JavaScript).
  token: emailChangeConfirmBody.shape.token.min(1),
  [CSRF_FIELD]: z.string(),
});

/**
 * The page a mailed email change link opens: GET /confirm-email shows a button, POST /confirm-email
 * switches the address. The GET changes nothing, since mail scanners open links before their reader
 * does (ASVS 5.0 3.5.3): a switch needs the click. It runs the API's use case with the API's limit,
 * and is mounted only when mail is on, so otherwise it is the 404 of a page that does not exist.
 */
export function createEmailChangePages(deps: {
  views: Views;
  csrf: Csrf;
  emailChange: EmailChange;
  /** The per-client budget of the mailed links, shared with the API's confirm route. */
  limit: RequestHandler;
}): Router {
  const { views, csrf, emailChange, limit } = deps;
  const cookies = cookieParser();
  const router = Router();

  const render = createFormRenderer(views, csrf);
  const renderConfirm = (req: Request, res: Response, status: number, message = '') =>
    render(req, res, status, 'confirm-email', {
      title: 'Confirm your new email address',
      script: LINK_TOKEN_SCRIPT,
      message,
    });

  router.get('/confirm-email', cookies, (req, res) => {
    csrf.ensureAnonymousIdentity(req, res);
    renderConfirm(req, res, 200);
  });

  // The CSRF token is checked before the per-client budget is spent, as on the reset forms: a post
  // forged by another site cannot use up the visitor's budget.
  router.post('/confirm-email', cookies, formBody, csrf.verify, limit, async (req, res) => {
    const form = confirmForm.safeParse(req.body);
    if (!form.success) {
      logInvalidForm(req, form.error);
      // No token field, or one longer than any link carries.
      return renderConfirm(req, res, 400, 'The link from your mail did not reach this page. Open it again.');
    }
    try {
      const user = await confirmEmailChangeAndRecord(req, emailChange, form.data.token);
      res
        .type('html')
        .send(views.render('email-changed', { title: 'Email address changed', email: user.email }));
    } catch (error) {
      // A dead link and a taken address are the user's to know about, on this page; anything else
      // (429, an outage) is the error page's. The form comes back without the token in either case.
      if (!(error instanceof InvalidTokenError || error instanceof EmailTakenError)) throw error;
      logRefusal(req, error);
      const message =
        error instanceof EmailTakenError
          ? 'Another account uses this address now, so yours cannot move to it. Ask for a change to another address.'
          : error.message;
      renderConfirm(req, res, 400, message);
    }
  });

  return router;
}
