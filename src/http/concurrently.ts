import type { RequestHandler } from 'express';
import { assertPlainMiddleware, isFailure, runHandler } from './run-handler';

/**
 * Runs two middlewares at the same time and continues once both have finished, as if they had run one
 * after the other: with the first one's error if it failed, else the second one's. Each outcome is
 * read as the router reads a layer's (run-handler.ts), once per middleware. Neither may answer the
 * request itself.
 *
 * Why: the per-client rate limiter (one EVAL) and the session load (one GET) each wait for a Redis
 * reply. node-redis writes every command queued before its next write (scheduled with setImmediate) in
 * one socket write, so started together they cost one round trip instead of two. A refused request
 * still answers 429 and runs no route: the session load only read a key, and an unmodified session
 * writes nothing when the response ends.
 */
export function concurrently(first: RequestHandler, second: RequestHandler): RequestHandler {
  assertPlainMiddleware('concurrently', first);
  assertPlainMiddleware('concurrently', second);
  return (req, res, next) => {
    const failures: unknown[] = [];
    let pending = 2;
    const run = (handler: RequestHandler, slot: number) => {
      let reported = false;
      runHandler(handler, req, res, (outcome) => {
        // Once per middleware, whatever it does: a second call of its next is ignored.
        if (reported) return;
        reported = true;
        if (isFailure(outcome)) failures[slot] = outcome;
        pending -= 1;
        if (pending > 0) return;
        if (0 in failures) next(failures[0]);
        else if (1 in failures) next(failures[1]);
        else next();
      });
    };
    run(first, 0);
    run(second, 1);
  };
}
