import path from 'node:path';
import cookieParser from 'cookie-parser';
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import type { AppConfig } from '../../config/config';
import type { AuthService } from '../auth/auth.service';
import type { EmailVerificationService } from '../auth/email-verification';
import type { PasswordResetService } from '../auth/password-reset';
import type { EmailChange } from '../users/email-change';
import { loginBody } from '../auth/auth.schemas';
import { completeMfaLogin, logIn, type CodeStepObserver, type PasswordStepResult } from '../auth/login';
import { endSession, pendingMfaChallenge, type SessionIndex } from '../auth/sessions';
import type { UserSessions } from '../auth/user-sessions';
import { InvalidCredentialsError, InvalidMfaCodeError, MfaChallengeExpiredError } from '../errors';
import { proofOfTypedCode, type MfaService } from '../mfa/mfa.service';
import type { User } from '../users/user';
import type { RouteKey } from '../http/require-verified-email';
import { logRefusal, logSecurityEvent } from '../http/security-events';
import { logInvalidForm } from '../http/validate';
import { CSRF_FIELD, createCsrf } from './csrf';
import { createEmailVerificationPages } from './email-verification.pages';
import { formBody } from './form-body';
import { createFormRenderer } from './form-page';
import { createEmailChangePages } from './email-change.pages';
import { createMfaPages } from './mfa.pages';
import { createPasswordResetPages } from './password-reset.pages';
import { createSessionsPages, UNVERIFIED_SESSION_PAGES } from './sessions.pages';
import { safeRedirectTarget } from './safe-redirect';
import type { Views } from './views';

const STATIC_DIR = path.join(__dirname, 'static');

/**
 * The pages of this file an unverified user may use while REQUIRE_VERIFIED_EMAIL is on: home (where
 * the resend button is), signing in again, signing out, and their sessions (sessions.pages.ts). The
 * login page only redirects a signed-in user, and signing in grants nothing an anonymous visitor could
 * not get.
 */
export const UNVERIFIED_PAGES: readonly RouteKey[] = [
  'GET /',
  'GET /login',
  'POST /login',
  'GET /login/mfa',
  'POST /login/mfa',
  'POST /logout',
  ...UNVERIFIED_SESSION_PAGES,
];

const loginForm = z.strictObject({
  // As the API: no format check at login, any string is simply "wrong credentials".
  email: loginBody.shape.email.pipe(z.string().min(1)),
  password: z.string().min(1).max(1024),
  [CSRF_FIELD]: z.string(),
  next: z.unknown(),
});

const codeForm = z.strictObject({
  // One field for both: six digits are the app's code, anything else is tried as a recovery code.
  code: z.string().trim().min(1).max(64),
  [CSRF_FIELD]: z.string(),
  next: z.unknown(),
});

/**
 * /static: the stylesheet and the reset page's script, served before the session middleware so they
 * never touch Redis. No directory listings, no dotfiles, no trailing-slash redirects; a missing file
 * falls through to our 404 page. An hour of caching: the names carry no content hash, so not `immutable`.
 */
export function createStaticHandler(): RequestHandler {
  return express.static(STATIC_DIR, { index: false, dotfiles: 'ignore', redirect: false, maxAge: '1h' });
}

/**
 * The server-rendered pages: GET/POST /login, GET /, POST /logout, the sessions page
 * (sessions.pages.ts), and with mail on the reset pages (password-reset.pages.ts), the verification
 * pages (email-verification.pages.ts) and the email change confirmation (email-change.pages.ts). No
 * GET changes state (ASVS 5.0 3.5.3): GET /login only sets the anonymous CSRF identity, which grants nothing. Responses are
 * `no-store` (the app-wide noStore): they carry a CSRF token or personal data.
 */
export function createWebRouter(deps: {
  config: AppConfig;
  views: Views;
  authService: AuthService;
  sessions: SessionIndex;
  userSessions: UserSessions;
  mfa: MfaService;
  findUser: (id: string) => Promise<User | null>;
  /** null when mail is off: then the reset pages do not exist (404) and the login page does not link them. */
  passwordReset: PasswordResetService | null;
  /** null when mail is off: then the verification pages do not exist and home offers no resend. */
  emailVerification: EmailVerificationService | null;
  /** null when mail is off: then the email change page does not exist (404). */
  emailChange: EmailChange | null;
  /** The per-client budget of the mailed links, the same one the API's reset and confirm routes spend. */
  passwordResetLimit: RequestHandler;
  /** Counts how code steps end (src/metrics), when metrics are on. */
  codeStepObserver?: CodeStepObserver;
}): Router {
  const {
    config,
    views,
    authService,
    sessions,
    userSessions,
    mfa,
    findUser,
    passwordReset,
    emailVerification,
    emailChange,
    passwordResetLimit,
  } = deps;
  const csrf = createCsrf(config);
  const cookies = cookieParser();
  const router = Router();
  const canReset = passwordReset !== null;

  const render = createFormRenderer(views, csrf);
  // The password is never rendered back; the email is, escaped, so the user can correct it.
  const renderLogin = (
    req: Request,
    res: Response,
    status: number,
    { next, email = '', message = '' }: { next: string; email?: string; message?: string },
  ) => render(req, res, status, 'login', { title: 'Sign in', next, email, message, canReset });

  router.get('/login', cookies, (req, res) => {
    const next = safeRedirectTarget(req.query.next);
    if (req.user) return res.redirect(303, next);
    csrf.ensureAnonymousIdentity(req, res);
    renderLogin(req, res, 200, { next });
  });

  router.post('/login', cookies, formBody, csrf.verify, async (req, res) => {
    const body = req.body as Record<string, unknown>;
    // Checked again here: the hidden field is as much the attacker's as the query string was.
    const next = safeRedirectTarget(body.next);
    const form = loginForm.safeParse(body);
    if (!form.success) {
      logInvalidForm(req, form.error);
      const email = typeof body.email === 'string' ? body.email.slice(0, 254) : '';
      return renderLogin(req, res, 400, { next, email, message: 'Enter your email address and password.' });
    }
    const { email, password } = form.data;
    // The same use case, limits and security events as POST /api/auth/login: two pathways, one
    // strength (ASVS 5.0 6.3.3).
    let result: PasswordStepResult;
    try {
      result = await logIn(req, { authService, sessions }, email, password);
    } catch (error) {
      if (!(error instanceof InvalidCredentialsError)) throw error; // 429, outages: the error page
      // Answered here rather than by the error handler, so logged here, through the same function.
      logRefusal(req, error);
      // One message for an unknown email and a wrong password (ASVS 5.0 6.3.8).
      return renderLogin(req, res, 401, { next, email, message: error.message });
    }
    // The password was right and a second factor is due: the code page, which keeps `next`.
    if (result.mfaRequired) return res.redirect(303, `/login/mfa?next=${encodeURIComponent(next)}`);
    // 303: the browser follows with a GET, so a reload of the next page never re-posts the password.
    res.redirect(303, next);
  });

  const renderCodeStep = (req: Request, res: Response, status: number, next: string, message = '') =>
    render(req, res, status, 'login-mfa', { title: 'Enter your code', next, message });

  // The code step of the form login: only while the session holds a live challenge from the password.
  router.get('/login/mfa', cookies, (req, res) => {
    const next = safeRedirectTarget(req.query.next);
    if (req.user) return res.redirect(303, next);
    if (!pendingMfaChallenge(req)) return res.redirect(303, `/login?next=${encodeURIComponent(next)}`);
    renderCodeStep(req, res, 200, next);
  });

  router.post('/login/mfa', cookies, formBody, csrf.verify, async (req, res) => {
    const body = req.body as Record<string, unknown>;
    const next = safeRedirectTarget(body.next);
    const form = codeForm.safeParse(body);
    if (!form.success) {
      logInvalidForm(req, form.error);
      return renderCodeStep(req, res, 400, next, 'Enter the code.');
    }
    const proof = proofOfTypedCode(form.data.code);
    // The same use case, throttle and events as POST /api/auth/login/mfa.
    try {
      await completeMfaLogin(req, { mfa, sessions, findUser, observer: deps.codeStepObserver }, proof);
    } catch (error) {
      if (error instanceof MfaChallengeExpiredError) {
        return res.redirect(303, `/login?next=${encodeURIComponent(next)}`);
      }
      if (!(error instanceof InvalidMfaCodeError)) throw error; // 429, outages: the error page
      logRefusal(req, error);
      return renderCodeStep(req, res, 401, next, error.message);
    }
    res.redirect(303, next);
  });

  router.get('/', cookies, (req, res) => {
    if (!req.user)
      return res.redirect(303, `/login?next=${encodeURIComponent(safeRedirectTarget(req.originalUrl))}`);
    // The resend button needs mail; without it there is nothing the user could do about the notice.
    const unverified = emailVerification !== null && req.user.emailVerifiedAt === null;
    // The session id changed at login, so the form's CSRF token is a fresh one bound to the new identity.
    render(req, res, 200, 'home', { title: 'Home', name: req.user.name, unverified, mfa: mfa.available });
  });

  // Logging out without a session changes nothing, so it needs no token: straight to the login page.
  // A login waiting for its code is a session too, and ends like one (a shared computer).
  const signedInOrToLogin: RequestHandler = (req, res, next) =>
    req.user || pendingMfaChallenge(req) ? next() : res.redirect(303, '/login');

  router.post('/logout', cookies, formBody, signedInOrToLogin, csrf.verify, async (req, res) => {
    logSecurityEvent(req, 'auth.logout');
    await endSession(req, res, sessions, config);
    res.redirect(303, '/login');
  });

  router.use(createSessionsPages({ config, index: sessions, userSessions, views, csrf }));
  if (mfa.available) router.use(createMfaPages({ views, csrf, mfa, sessions }));
  if (passwordReset) {
    router.use(createPasswordResetPages({ views, csrf, passwordReset, limit: passwordResetLimit }));
  }
  if (emailVerification) {
    router.use(createEmailVerificationPages({ views, csrf, emailVerification, limit: passwordResetLimit }));
  }
  if (emailChange) {
    router.use(createEmailChangePages({ views, csrf, emailChange, limit: passwordResetLimit }));
  }

  return router;
}
