import type { RequestHandler } from 'express';
import { EmailUnverifiedError } from '../errors';

/**
 * A route as `METHOD /path`, the path as the app sees it (mount point included). A segment written
 * `{name}` (as the OpenAPI description writes it) stands for any one non-empty segment.
 */
export type RouteKey = `${'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'} /${string}`;

/**
 * Express matches paths case-insensitively and ignores one trailing slash, so `/API/auth/me/` reaches
 * the same handler as `/api/auth/me`: the allow-list compares the spelling Express would match.
 */
const routePath = (path: string): string => {
  const lower = path.toLowerCase();
  return lower.length > 1 && lower.endsWith('/') ? lower.slice(0, -1) : lower;
};

/**
 * REQUIRE_VERIFIED_EMAIL: a signed-in user whose address is not verified gets 403 email_unverified
 * everywhere but the routes `allowed` lists (defined next to those routes). Deny by default: a route
 * added later is closed to unverified users until someone decides otherwise. Anonymous requests pass
 * untouched and meet their usual 401 or login page; static files and the probes are answered before
 * the session is read and never come here. HEAD is routed as GET, so it is allowed as GET is.
 */
export function requireVerifiedEmail(allowed: Iterable<RouteKey>): RequestHandler {
  const open = new Set<string>();
  const templates: { method: string; segments: string[] }[] = [];
  for (const key of allowed) {
    const [method, path] = key.split(' ') as [string, string];
    if (path.includes('{')) templates.push({ method, segments: routePath(path).split('/') });
    else open.add(`${method} ${routePath(path)}`);
  }
  /** Segment by segment, so a `{name}` never spans a `/` and a longer or shorter path never matches. */
  const matchesTemplate = (method: string, path: string) => {
    const segments = routePath(path).split('/');
    return templates.some(
      (t) =>
        t.method === method &&
        t.segments.length === segments.length &&
        t.segments.every((s, i) => s === segments[i] || (s.startsWith('{') && segments[i] !== '')),
    );
  };
  return (req, _res, next) => {
    if (!req.user || req.user.emailVerifiedAt) return next();
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    if (open.has(`${method} ${routePath(req.path)}`) || matchesTemplate(method, req.path)) return next();
    next(new EmailUnverifiedError());
  };
}
