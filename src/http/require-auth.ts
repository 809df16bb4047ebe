import type { RequestHandler } from 'express';
import { ForbiddenError, UnauthenticatedError } from '../errors';
import type { Role } from '../users/users.repository';
import { logSecurityEvent } from './security-events';

export const requireAuth: RequestHandler = (req, _res, next) => {
  next(req.user ? undefined : new UnauthenticatedError());
};

/** Deny by default: only the listed roles pass; every refusal is logged as `authz.denied`. */
export function requireRole(...roles: Role[]): RequestHandler {
  return (req, _res, next) => {
    if (!req.user) return next(new UnauthenticatedError());
    if (roles.includes(req.user.role)) return next();
    logSecurityEvent(req, 'authz.denied', { required: roles, method: req.method, path: req.path });
    next(new ForbiddenError());
  };
}
