import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { assertPlainMiddleware, isFailure, runHandler } from './run-handler';

/**
 * Middlewares run one after another as a single layer of the app's router: the same order, the same
 * errors, the same way out as separate `app.use` calls, for less work per request. The router matches
 * every layer it passes against the path and allocates for each (a match object, its params, a
 * callback); every request passes these, and a sampling heap profile put the router at about a fifth
 * of a signed-in read's allocations. With the app-wide middlewares in chains (src/app.ts), alternating
 * bench runs measured 2-6 % less server CPU per signed-in read.
 *
 * Each handler gets a `next` that runs the following one, and every outcome is read as router 2 reads
 * it for a layer of its own: a truthy error passed to `next` or thrown leaves the chain for the error
 * handlers (a falsy one is no error), a rejected promise leaves with its reason (or "Rejected promise"
 * when it has none), `'router'` leaves the router and `'route'` goes on with the following handler. A
 * handler that answers and does not call `next` ends the request there.
 *
 * Only plain middlewares: an error handler (four parameters) would be called on the request path, and
 * a router would hide its routes from what walks the app's layers to find them (the request metrics'
 * route templates, the API description's check), so both are refused when the chain is built.
 */
export function chain(...handlers: RequestHandler[]): RequestHandler {
  for (const handler of handlers) assertPlainMiddleware('chain', handler);
  return function chained(req: Request, res: Response, done: NextFunction) {
    let index = 0;
    const step = (outcome?: unknown): void => {
      if (isFailure(outcome)) return done(outcome);
      const handler = handlers[index++];
      if (!handler) return done();
      runHandler(handler, req, res, step);
    };
    step();
  };
}
