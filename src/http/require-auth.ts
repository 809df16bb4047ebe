import type { RequestHandler } from 'express';
import { ForbiddenError, UnauthenticatedError } from '../errors';
import type { Role } from '../users/user';

export const requireAuth: RequestHandler = (req, _res, next) => {
  next(req.user ? undefined : new UnauthenticatedError());
};

/** Deny by default: only the listed roles pass (the error handler logs the refusal as `authz.denied`). */
export function requireRole(...roles: Role[]): RequestHandler {
  return (req, _res, next) => {
    if (!req.user) return next(new UnauthenticatedError());
    next(roles.includes(req.user.role) ? undefined : new ForbiddenError());
  };
}
