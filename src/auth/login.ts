import type { Request } from 'express';
import { logSecurityEvent } from '../http/security-events';
import type { User } from '../users/user';
import type { AuthService } from './auth.service';
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
  const user = await deps.authService.authenticate(email, password, req.clientIp);
  await startSession(req, deps.sessions, user);
  req.user = user;
  logSecurityEvent(req, 'auth.login_succeeded');
  return user;
}
