import { createHmac, randomBytes } from 'node:crypto';
import { doubleCsrf } from 'csrf-csrf';
import type { Request, RequestHandler, Response } from 'express';
import type { AppConfig } from '../../config/config';
import { CsrfInvalidError } from '../errors';
import { cookieAttributes } from '../http/cookies';

/** The form field that carries the token. */
export const CSRF_FIELD = '_csrf';

/** 32 random bytes, base64url: the anonymous identity cookie's only acceptable shape. */
const ANONYMOUS_ID = /^[A-Za-z0-9_-]{43}$/;

export interface Csrf {
  /** A token for the form being rendered, bound to the current identity (and its cookie, set on `res`). */
  tokenFor(req: Request, res: Response): string;
  /** Gives an anonymous visitor an identity cookie if they have none (GET /login), so a token can exist. */
  ensureAnonymousIdentity(req: Request, res: Response): void;
  /** Refuses a form post whose token is missing, wrong, or bound to another identity: 403 csrf_invalid. */
  verify: RequestHandler;
}

/**
 * CSRF tokens for the HTML forms: csrf-csrf's signed double-submit cookie (OWASP CSRF Prevention Cheat
 * Sheet, "Signed Double-Submit Cookie"; ASVS 5.0 3.5.1). The token is HMAC(secret, identity, random);
 * it sits in an HttpOnly cookie and in the form, and a post passes only when both match and the HMAC
 * is valid for the identity of the request. Another site can make the browser send our cookies but
 * cannot read the token out of our page.
 *
 * The identity is the session id once signed in. Before login there is no session (sessions are only
 * created at login: saveUninitialized is false), yet the login form needs protection too, against login
 * CSRF (signing a victim into the attacker's account). So an anonymous visitor gets a random identifier
 * of their own in a cookie, set by GET /login. It grants nothing; it only ties a token to one browser.
 * Both cookies are HttpOnly, SameSite=Lax and, in production, Secure and `__Host-` (ASVS 5.0 3.3.1,
 * 3.3.3, 3.3.4), so a sibling subdomain cannot plant a matching pair.
 *
 * The JSON API takes no tokens: it accepts only application/json (which a cross-site form cannot send
 * without a CORS preflight we never grant) and the cross-origin guard refuses other sites' requests.
 */
export function createCsrf(config: AppConfig): Csrf {
  const prefix = config.isProduction ? '__Host-' : '';
  const identityCookie = `${prefix}pre`;
  const cookieOptions = cookieAttributes(config);

  // Derived from SESSION_SECRET rather than a variable of its own: one secret to provision, and rotating
  // SESSION_SECRET rotates these too (the first signs, all verify). HMAC-SHA256(secret, 'csrf-token') is a
  // one-step key derivation with a fixed label (as in NIST SP 800-108): the CSRF key is never the key
  // express-session signs cookies with, and knowing one tells nothing about the other.
  const secrets = config.session.secrets.map((secret) =>
    createHmac('sha256', secret).update('csrf-token').digest('base64url'),
  );

  const anonymousIdOf = (req: Request): string | undefined => {
    const value = (req.cookies as Record<string, unknown> | undefined)?.[identityCookie];
    return typeof value === 'string' && ANONYMOUS_ID.test(value) ? value : undefined;
  };

  /** `s:` and `a:` keep the two kinds of identity apart; '' means the request has none. */
  const identityOf = (req: Request): string => {
    if (req.user) return `s:${req.sessionID}`;
    const anonymous = anonymousIdOf(req);
    return anonymous ? `a:${anonymous}` : '';
  };

  const { generateCsrfToken, validateRequest } = doubleCsrf({
    getSecret: () => secrets,
    getSessionIdentifier: identityOf,
    cookieName: `${prefix}csrf`,
    // Lax, not the library's Strict: a visitor who follows a link from another site to a page of ours
    // would otherwise arrive without the cookie, get a new token, and invalidate the form in any other
    // tab. The token in the form, not the cookie's SameSite, is what stops the forgery.
    cookieOptions,
    getCsrfTokenFromRequest: (req) => {
      const value = (req.body as Record<string, unknown> | undefined)?.[CSRF_FIELD];
      return typeof value === 'string' ? value : undefined;
    },
  });

  return {
    tokenFor: (req, res) => generateCsrfToken(req, res),

    ensureAnonymousIdentity(req, res) {
      if (req.user || anonymousIdOf(req)) return;
      const id = randomBytes(32).toString('base64url');
      res.cookie(identityCookie, id, cookieOptions);
      // The token rendered in this same response must already be bound to it.
      (req.cookies as Record<string, string>)[identityCookie] = id;
    },

    verify(req, _res, next) {
      // A request without any identity never gets a token from us, so it cannot have a valid one.
      if (identityOf(req) !== '' && validateRequest(req)) return next();
      next(new CsrfInvalidError());
    },
  };
}
