import type { RequestHandler } from 'express';
import { EmailUnverifiedError } from '../errors';
import { allowListGate, type RouteKey } from './allow-list-gate';

export type { RouteKey };

/**
 * REQUIRE_VERIFIED_EMAIL: a signed-in user whose address is not verified gets 403 email_unverified
 * everywhere but the routes `allowed` lists (ADR 0017). Deny by default (allow-list-gate.ts).
 */
export function requireVerifiedEmail(allowed: Iterable<RouteKey>): RequestHandler {
  return allowListGate(allowed, (user) => (user.emailVerifiedAt ? undefined : new EmailUnverifiedError()));
}
