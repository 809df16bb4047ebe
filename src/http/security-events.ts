import type { Request } from 'express';
import type { AppError } from '../errors';
import { pathOf } from './request-context';

export type SecurityEvent =
  | 'auth.login_succeeded'
  | 'auth.login_failed'
  | 'auth.logout'
  | 'auth.password_changed'
  | 'auth.password_rehashed'
  | 'auth.password_rehash_failed'
  | 'session.ended'
  | 'session.limit_ended_oldest'
  | 'session.every_user_ended'
  | 'auth.mfa_challenged'
  | 'auth.mfa_failed'
  | 'auth.mfa_enabled'
  | 'auth.mfa_disabled'
  | 'auth.mfa_reset'
  | 'auth.recovery_code_used'
  | 'auth.recovery_codes_regenerated'
  | 'password_reset.requested'
  | 'password_reset.address_limited'
  | 'password_reset.completed'
  | 'email_change.requested'
  | 'email_change.address_limited'
  | 'email_change.completed'
  | 'account_token.refused'
  | 'email_verification.requested'
  | 'email_verification.resend_limited'
  | 'email_verification.completed'
  | 'user.created'
  | 'user.updated'
  | 'user.deleted'
  | 'authz.denied'
  | 'auth.locked'
  | 'auth.reauth_failed'
  | 'csrf.rejected'
  | 'ratelimit.blocked'
  | 'hash.busy'
  | 'request.cross_origin_rejected'
  | 'request.validation_failed'
  | 'business_rule.refused';

const WARNINGS = new Set<SecurityEvent>([
  'auth.login_failed',
  'authz.denied',
  'auth.locked',
  'auth.reauth_failed',
  // A hash under outdated parameters could not be replaced (src/auth/auth.service.ts).
  'auth.password_rehash_failed',
  // A wrong second-factor code after a right password: the password may be known to someone else.
  'auth.mfa_failed',
  // A second factor removed by an admin: the account signs in with its password alone until re-enrolled.
  'auth.mfa_reset',
  // More reset mails for one address than a person asks for: someone may be bombing that inbox.
  'password_reset.address_limited',
  // Likewise for confirmation mails to one new address: repeated change requests aimed at someone's inbox.
  'email_change.address_limited',
  // A reused link can mean it leaked; a run of unknown ones, guessing.
  'account_token.refused',
  // More verification mails for one address than a person needs in an hour.
  'email_verification.resend_limited',
  'csrf.rejected',
  'ratelimit.blocked',
  // Password hashing is saturated: a login flood, or more sign-ins than the hardware can hash.
  'hash.busy',
  'request.cross_origin_rejected',
  // Every user signed out at once: done after a suspected breach, and what an intruder with an admin
  // session would do to hide, so it should stand out.
  'session.every_user_ended',
]);

/**
 * One log line per security-relevant event, always with the same fields (OWASP Logging Cheat Sheet):
 * what happened, to whom, from where, and the request id that ties it to the access log.
 */
export function logSecurityEvent(
  req: Request,
  event: SecurityEvent,
  fields: Record<string, unknown> = {},
): void {
  const level = WARNINGS.has(event) ? 'warn' : 'info';
  req.log[level](
    // req.log is bound to the request id; the rest is spelled out so every event has the same fields.
    { event, userId: req.user?.id ?? null, clientIp: req.clientIp, ...fields },
    event,
  );
}

/**
 * Logs the security events a refusal carries (see AppError.events), each with the method and path it
 * refused. The error handler calls this for every error it answers; a route that answers a refusal
 * itself (the login form re-rendered after wrong credentials) calls it too, so both pathways log alike.
 */
export function logRefusal(req: Request, error: AppError): void {
  for (const { name, fields } of error.events) {
    logSecurityEvent(req, name, { method: req.method, path: pathOf(req), ...fields });
  }
}
