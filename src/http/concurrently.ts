import { types } from 'node:util';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/** Calls `handler` and reports its outcome once to `done`, whether it calls next, throws or rejects. */
function runInto(handler: RequestHandler, req: Request, res: Response, done: NextFunction): void {
  let reported = false;
  const report: NextFunction = (error?: unknown) => {
    if (reported) return;
    reported = true;
    done(error);
  };
  try {
    const result: unknown = handler(req, res, report);
    if (types.isPromise(result)) result.catch(report);
  } catch (error) {
    report(error);
  }
}

/**
 * Runs two middlewares at the same time and continues once both have finished, as if they had run one
 * after the other: with the first one's error if it failed, else the second one's. Neither may answer
 * the request itself.
 *
 * Why: the per-client rate limiter (one EVAL) and the session load (one GET) each wait for a Redis
 * reply. node-redis writes every command queued before its next write (scheduled with setImmediate) in
 * one socket write, so started together they cost one round trip instead of two. A refused request
 * still answers 429 and runs no route: the session load only read a key, and an unmodified session
 * writes nothing when the response ends.
 */
export function concurrently(first: RequestHandler, second: RequestHandler): RequestHandler {
  return (req, res, next) => {
    const outcomes: unknown[] = [];
    let pending = 2;
    const settle = (slot: number) => (error?: unknown) => {
      outcomes[slot] = error;
      pending -= 1;
      if (pending > 0) return;
      const failure = outcomes[0] ?? outcomes[1];
      if (failure === undefined || failure === null) next();
      else next(failure);
    };
    runInto(first, req, res, settle(0));
    runInto(second, req, res, settle(1));
  };
}
