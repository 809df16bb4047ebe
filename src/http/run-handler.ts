import type { Request, RequestHandler, Response } from 'express';

/** Ignores a fulfilled handler's value, as the router does (some thenables call what they get). */
const ignore = () => {};

/**
 * Calls a middleware and hands every outcome to `next`, as router 2 does for a layer's handler: what
 * the middleware passes to its `next`, what it throws (synchronously, its thenable's `then` included),
 * and the reason of a thenable it returns and rejects (or "Rejected promise" when the reason is empty).
 * `next` reads them as the router does: see `isFailure`.
 */
export function runHandler(
  handler: RequestHandler,
  req: Request,
  res: Response,
  next: (outcome?: unknown) => void,
): void {
  try {
    const result: unknown = handler(req, res, next);
    // Any thenable, as the router's own check (is-promise) takes it.
    if (typeof (result as { then?: unknown } | null)?.then === 'function') {
      (result as PromiseLike<unknown>).then(ignore, (reason: unknown) =>
        next(reason || new Error('Rejected promise')),
      );
    }
  } catch (thrown) {
    next(thrown);
  }
}

/**
 * Whether an outcome leaves the middlewares that follow: a truthy error, or `'router'` (which leaves
 * the router). A falsy value is no error, and `'route'` goes on with the next middleware.
 */
export function isFailure(outcome: unknown): boolean {
  return Boolean(outcome) && outcome !== 'route';
}

/**
 * Refuses, when a combinator is built, what must stay a layer of its own: an error handler (four
 * parameters) would be called on the request path, and a router would hide its routes from what walks
 * the app's layers to find them (the request metrics' route templates, the API description's check).
 */
export function assertPlainMiddleware(combinator: string, handler: RequestHandler): void {
  if (handler.length > 3) throw new TypeError(`${combinator}(): an error handler cannot be combined`);
  if (Array.isArray((handler as { stack?: unknown }).stack)) {
    throw new TypeError(
      `${combinator}(): a router must stay a layer of its own, where its routes can be found`,
    );
  }
}
