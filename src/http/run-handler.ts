import type { Request, RequestHandler, Response } from 'express';

/**
 * Calls a middleware and hands every outcome to `next`, as router 2 does for a layer's handler: what
 * the middleware passes to its `next`, what it throws (synchronously), and the reason of a thenable it
 * returns and rejects (or "Rejected promise" when the reason is empty). `next` reads them as the
 * router does: see `isFailure`.
 */
export function runHandler(
  handler: RequestHandler,
  req: Request,
  res: Response,
  next: (outcome?: unknown) => void,
): void {
  let result: unknown;
  try {
    result = handler(req, res, next);
  } catch (thrown) {
    next(thrown);
    return;
  }
  // Any thenable, as the router's own check (is-promise) takes it.
  if (typeof (result as { then?: unknown } | null)?.then === 'function') {
    (result as PromiseLike<unknown>).then(undefined, (reason: unknown) =>
      next(reason || new Error('Rejected promise')),
    );
  }
}

/**
 * Whether an outcome leaves the middlewares that follow: a truthy error, or `'router'` (which leaves
 * the router). A falsy value is no error, and `'route'` goes on with the next middleware.
 */
export function isFailure(outcome: unknown): boolean {
  return Boolean(outcome) && outcome !== 'route';
}
