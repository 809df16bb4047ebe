import { randomUUID } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import ipaddr from 'ipaddr.js';

// A client-chosen id is kept for tracing across services, but only in a shape that cannot inject
// anything into logs or headers.
const ACCEPTABLE_REQUEST_ID = /^[A-Za-z0-9._-]{8,64}$/;

/**
 * One form for every address: `::ffff:127.0.0.1` and `127.0.0.1` are the same client, and IPv6 is
 * written in its canonical short form (`2001:DB8:0::1` and `2001:db8::1` are the same too).
 */
export function normalizeIp(ip: string | undefined): string {
  if (!ip || !ipaddr.isValid(ip)) return ip || 'unknown';
  return ipaddr.process(ip).toString();
}

/**
 * The unit a per-client limit counts: an IPv4 address, or an IPv6 /64. Anyone with IPv6 holds at
 * least a /64 (2^64 addresses), so keying by the full address would let one client rotate addresses
 * past every per-IP limit.
 */
export function clientLimitKey(ip: string): string {
  if (!ipaddr.isValid(ip)) return ip;
  const address = ipaddr.process(ip);
  if (address.kind() === 'ipv4') return address.toString();
  return `${address.toNormalizedString().split(':').slice(0, 4).join(':')}::/64`;
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

/** The path a request asked for, without its query: what logs show (a query can carry anything). */
export const pathOf = (req: Request): string => req.originalUrl.split('?')[0]!;

/**
 * Paths that speak JSON whatever the client accepts: the API and the health probes. Express matches
 * routes case-insensitively, so `/API/users` reaches the API and is treated as such everywhere.
 */
export function isJsonPath(path: string): boolean {
  const p = path.toLowerCase();
  return p === '/api' || p.startsWith('/api/') || p === '/healthz' || p === '/readyz';
}
