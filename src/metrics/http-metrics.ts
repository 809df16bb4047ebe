import type { Express, Request, RequestHandler, Response } from 'express';
import { Histogram, type Registry } from 'prom-client';

/** The label of a request no route answered: a 404, or a refusal before routing (the per-client 429). */
export const UNMATCHED = 'unmatched';

/**
 * The methods the app routes; the others Node's parser accepts (a few dozen: PROPFIND, MKCOL…) share
 * one label.
 */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** What a router looks like to the walk below (router 2.3's public listRoutes, and each route layer). */
interface WalkableRouter {
  stack: ReadonlyArray<{ route?: { path: unknown } }>;
  listRoutes(): ReadonlyArray<{ path: unknown; router?: WalkableRouter }>;
}

/**
 * `/api` + `/users/:id`. A router mounted without a path sits at `/`, which adds nothing to the routes
 * below it; a route at `/` of a mounted router is the mount itself (`/api/users`).
 */
function join(prefix: string, path: unknown): string {
  const tail = String(path);
  if (tail === '/') return prefix || '/';
  return `${prefix}${tail}`;
}
const mountPrefix = (prefix: string, path: unknown): string =>
  String(path) === '/' ? prefix : `${prefix}${String(path)}`;

export interface HttpMetrics {
  /** Mounted first: observes each response's duration once it is sent. */
  readonly middleware: RequestHandler;
  /**
   * Learns every route's full template (mount paths included) once the app is composed. `mounts` are
   * plain middleware mounts that answer requests themselves (the static files): `/static` is labelled
   * `/static/*`.
   */
  learnRoutes(app: Express, mounts?: readonly string[]): void;
}

/**
 * Request counts and durations by method, route template and status: one histogram (its `_count` is the
 * request count), one observation per response.
 *
 * The route label is never the path a client sent: a label value per distinct path would let anyone
 * grow the scraper's memory without bound, and paths carry user input (ids, tokens in reset links,
 * emails). `req.route` is the route object that answered; the template of every route object, with
 * the mount paths of the routers above it, is learnt once when the app is composed, so a request
 * costs one Map lookup and no string work. `req.baseUrl` is not used for routers: it is the path as
 * sent (routing ignores case, so `/API/users` would be a label of its own), and a mount with a
 * parameter would put the value in the label.
 */
export function createHttpMetrics(registry: Registry): HttpMetrics {
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from the request reaching the app to its response being sent, by route template.',
    labelNames: ['method', 'route', 'status'] as const,
    // From a cached read (~1 ms) to a login under a full hashing line (the 1 s wait, then the hash).
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const templates = new Map<unknown, string>();
  const mountLabels = new Map<string, string>();

  function walk(router: WalkableRouter, prefix: string): void {
    for (const layer of router.stack) {
      // A route object mounted twice keeps its first template: both are templates, neither user input.
      if (layer.route && !templates.has(layer.route))
        templates.set(layer.route, join(prefix, layer.route.path));
    }
    for (const entry of router.listRoutes())
      if (entry.router) walk(entry.router, mountPrefix(prefix, entry.path));
  }

  function routeOf(req: Request): string {
    if (req.route) return templates.get(req.route) ?? UNMATCHED;
    // Exact match: a case variant of a mount falls to UNMATCHED rather than becoming a label.
    return mountLabels.get(req.baseUrl) ?? UNMATCHED;
  }

  function observe(req: Request, res: Response, start: number): void {
    const seconds = (performance.now() - start) / 1000;
    const method = METHODS.has(req.method) ? req.method : 'OTHER';
    duration.observe({ method, route: routeOf(req), status: res.statusCode }, seconds);
  }

  return {
    middleware: (req, res, next) => {
      const start = performance.now();
      // 'finish': the response was handed to the socket. A request whose client left first is not
      // counted (the access log's `aborted` lines show those).
      res.once('finish', () => observe(req, res, start));
      next();
    },
    learnRoutes(app, mounts = []) {
      walk(app.router as unknown as WalkableRouter, '');
      for (const mount of mounts) mountLabels.set(mount, `${mount}/*`);
    },
  };
}
