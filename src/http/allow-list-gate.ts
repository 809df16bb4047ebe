import type { RequestHandler } from 'express';
import type { AppError } from '../errors';
import type { User } from '../users/user';

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
 * A deny-by-default gate for signed-in users who still owe the app something (a verified address, a
 * second factor): `refusalFor` says what a user owes, and such a user gets that error everywhere but
 * the routes `allowed` lists (defined next to those routes). A route added later is closed to them
 * until someone decides otherwise. Anonymous requests pass untouched and meet their usual 401 or
 * login page; static files and the probes are answered before the session is read and never come
 * here. HEAD is routed as GET, so it is allowed as GET is.
 */
export function allowListGate(
  allowed: Iterable<RouteKey>,
  refusalFor: (user: User) => AppError | undefined,
): RequestHandler {
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
    const refusal = req.user && refusalFor(req.user);
    if (!refusal) return next();
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    if (open.has(`${method} ${routePath(req.path)}`) || matchesTemplate(method, req.path)) return next();
    next(refusal);
  };
}
