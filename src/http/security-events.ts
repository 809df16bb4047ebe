import type { Request } from 'express';

export type SecurityEvent =
  | 'auth.login_succeeded'
  | 'auth.login_failed'
  | 'auth.logout'
  | 'auth.password_changed'
  | 'user.created'
  | 'user.updated'
  | 'user.deleted'
  | 'authz.denied'
  | 'auth.locked'
  | 'auth.reauth_failed'
  | 'csrf.rejected'
  | 'ratelimit.blocked'
  | 'request.cross_origin_rejected';

const WARNINGS = new Set<SecurityEvent>([
  'auth.login_failed',
  'authz.denied',
  'auth.locked',
  'auth.reauth_failed',
  'csrf.rejected',
  'ratelimit.blocked',
  'request.cross_origin_rejected',
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
