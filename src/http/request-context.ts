import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';

// A client-chosen id is kept for tracing across services, but only in a shape that cannot inject
// anything into logs or headers.
const ACCEPTABLE_REQUEST_ID = /^[A-Za-z0-9._-]{8,64}$/;

/** `::ffff:127.0.0.1` and `127.0.0.1` are the same client: one form for logs and rate-limit keys. */
export function normalizeIp(ip: string | undefined): string {
  if (!ip) return 'unknown';
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/**
 * Gives every request an id (echoed in `X-Request-Id`) and its client IP. `req.ip` honours exactly the
 * configured number of proxy hops (`trust proxy`), so with TRUST_PROXY=0 a forged X-Forwarded-For is ignored.
 */
export const requestContext: RequestHandler = (req, res, next) => {
  const incoming = req.get('x-request-id');
  req.requestId = incoming && ACCEPTABLE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
  req.clientIp = normalizeIp(req.ip);
  res.setHeader('X-Request-Id', req.requestId);
  next();
};
