import type { RequestHandler } from 'express';
import { MfaRequiredError } from '../errors';
import { allowListGate, type RouteKey } from '../http/allow-list-gate';

/**
 * REQUIRE_MFA_FOR_ADMINS: a signed-in admin without a confirmed second factor gets 403 mfa_required
 * everywhere but the routes `allowed` lists (enrolling one, seeing who they are, signing in and out).
 * Deny by default (allow-list-gate.ts), so an admin route added later is closed until the admin
 * enrols. Users of other roles pass: the requirement is the admins' (ASVS 5.0 6.3.3 at its narrowest;
 * docs/decisions, admins need a second factor in production).
 */
export function requireMfaForAdmins(allowed: Iterable<RouteKey>): RequestHandler {
  return allowListGate(allowed, (user) =>
    user.role === 'admin' && !user.mfaEnabled ? new MfaRequiredError() : undefined,
  );
}
