import { AsyncLocalStorage } from 'node:async_hooks';
import type { Request, RequestHandler } from 'express';
import type { Logger } from '../lib/logger';

/**
 * The logger of the request being served, for code that runs below the request and is given no `req`
 * (services, the password policy's breach lookup): its lines carry the request id like every other
 * line of that request (ASVS 5.0 16.2.1), so a warning logged deep in a use case still leads back to
 * the access line, the security events and the error answer the user quotes.
 *
 * The middleware runs the rest of the request inside an AsyncLocalStorage holding the request, and
 * every promise and callback started from there sees it; `logger()` answers the request's own logger
 * (`req.log`, made on first use) there, and the root logger anywhere else (start-up, the outbox, a
 * timer). Built once per app, like every other dependency: no module-level state.
 *
 * Only for work that ends with the request: a loop or timer first started while serving a request
 * (the outbox's delivery) would keep seeing that request long after it, and log under its id. Such
 * work keeps the root logger and names what it serves in its own fields.
 */
export function createRequestLogContext(root: Logger) {
  const serving = new AsyncLocalStorage<Request>();
  return {
    /** Mounted after the request id is set (requestContext), before anything that may log below. */
    middleware: ((req, _res, next) => serving.run(req, next)) as RequestHandler,
    /** The logger to write with here: the current request's, or the root one outside any request. */
    logger: (): Logger => serving.getStore()?.log ?? root,
  };
}

export type RequestLogContext = ReturnType<typeof createRequestLogContext>;
