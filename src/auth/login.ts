import type { Request, RequestHandler } from 'express';
import type { PasswordHashing } from '../lib/password-queue';
import { logSecurityEvent } from '../http/security-events';
import type { User } from '../users/user';
import type { AuthService, LoginObserver } from './auth.service';
import { startSession, type SessionIndex } from './sessions';

/**
 * The one login flow behind both the API and the HTML form: the same throttling, the same new session
 * and the same security events, so neither pathway is weaker than the other (ASVS 6.3.3). A failure
 * is thrown as InvalidCredentialsError, which carries its own `auth.login_failed` (and `auth.locked`)
 * events for whoever answers it.
 */
export async function logIn(
  req: Request,
  deps: { authService: AuthService; sessions: SessionIndex },
  email: string,
  password: string,
): Promise<User> {
  const { user, rehash } = await deps.authService.authenticate(email, password, req.clientIp);
  await startSession(req, deps.sessions, user);
  req.user = user;
  logSecurityEvent(req, 'auth.login_succeeded');
  if (rehash.outcome === 'rehashed') logSecurityEvent(req, 'auth.password_rehashed');
  // The old hash stays and the next login tries again; an operator sees hashes that never move on.
  if (rehash.outcome === 'failed')
    logSecurityEvent(req, 'auth.password_rehash_failed', { err: rehash.error });
  return user;
}

/** The login pathways (API and form): what an attacker floods, and the only anonymous hashing routes. */
export const LOGIN_PATHS = ['/api/auth/login', '/login'];

/**
 * Mounted on LOGIN_PATHS ahead of the request limiter, the session and the body parser: while the
 * password line is full, a login is refused here with the same 503 `service_busy` the line itself
 * would give, before anything is spent on it. What it saves, per refused request under a flood: the
 * limiter's Redis round trip, reading and parsing the body, validation, the cross-origin guard; the
 * event loop keeps that time for the requests it can serve (signed-in reads keep their pace). What it
 * keeps: a refusal was never counted by the login throttle (it is not a guess), so skipping the
 * per-client limit changes no lockout; an admitted login still takes its place in the line, which
 * still refuses when a burst fills it in between. Every refusal is still answered and logged (the
 * access log runs before this; `hash.busy` once per burst).
 */
export const refuseLoginWhileHashingIsFull =
  (
    passwords: Pick<PasswordHashing, 'refuseIfFull'>,
    loginObserver?: Pick<LoginObserver, 'loginAttempt'>,
  ): RequestHandler =>
  (_req, _res, next) => {
    try {
      passwords.refuseIfFull();
    } catch (error) {
      // Refused before authenticate() runs: counted here, as the busy login it is.
      loginObserver?.loginAttempt('busy');
      throw error;
    }
    next();
  };
