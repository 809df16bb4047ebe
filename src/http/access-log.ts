import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, RequestHandler } from 'express';
import type pino from 'pino';
import { pinoHttp, startTime } from 'pino-http';
import type { Logger } from '../lib/logger';

/**
 * The request headers an operator needs to explain a request: where it was addressed and what the proxy
 * said about the client (to check that nginx overwrote X-Forwarded-*), who sent it and from which page
 * (cross-origin decisions), what body it claimed to carry. An allowlist, so a header a later feature
 * adds (an API key, a signed token) stays out of the log until someone decides it belongs there. The
 * credential headers are listed only so the line shows that one was sent: REDACT_PATHS in
 * src/lib/logger.ts replaces their values before anything is written.
 */
const LOGGED_REQUEST_HEADERS = [
  'host',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'user-agent',
  'referer',
  'origin',
  'sec-fetch-site',
  'content-type',
  'content-length',
  'cookie',
  'authorization',
  'proxy-authorization',
];

function loggedRequest(req: pino.SerializedRequest) {
  const headers: Record<string, unknown> = {};
  for (const name of LOGGED_REQUEST_HEADERS) {
    if (req.headers[name] !== undefined) headers[name] = req.headers[name];
  }
  // The socket's peer is the proxy behind TRUST_PROXY; the client's own address is clientIp.
  return {
    method: req.method,
    url: req.url,
    headers,
    remoteAddress: req.remoteAddress,
    remotePort: req.remotePort,
  };
}

/**
 * The status and nothing else: response headers are ours, the same on every response (security headers,
 * CSP), and the one that varies is Set-Cookie, a session credential.
 */
const loggedResponse = (res: pino.SerializedResponse) => ({ statusCode: res.statusCode });

/** `GET /api/auth/me 401 3ms`: the query is left out, as in security events, to keep the line short. */
function shortLine(req: IncomingMessage, res: ServerResponse, responseTime: number): string {
  const path = ((req as Request).originalUrl ?? req.url ?? '').split('?')[0];
  const outcome = !req.readableAborted && res.writableEnded ? String(res.statusCode) : 'aborted';
  return `${req.method} ${path} ${outcome} ${responseTime}ms`;
}

export interface AccessLogOptions {
  logger: Logger;
  /**
   * The full structured line (production, log shippers, tests); otherwise one short line per request,
   * for a developer's terminal, where the pretty logger adds the request id.
   */
  verbose: boolean;
}

/** One access log line per request, written when the response ends, under the request's id. */
export function createAccessLog({ logger, verbose }: AccessLogOptions): RequestHandler {
  const common = {
    logger,
    genReqId: (req: IncomingMessage) => (req as Request).requestId,
    // req.log (security events, errors) carries only the request id, not a copy of the request.
    quietReqLogger: true,
    customAttributeKeys: { reqId: 'requestId' },
    // Health probes every few seconds would drown the access log.
    autoLogging: { ignore: (req: IncomingMessage) => req.url === '/healthz' || req.url === '/readyz' },
  };
  if (!verbose) {
    return pinoHttp({
      ...common,
      // Everything is in the message: no request, response or timing objects after it.
      quietResLogger: true,
      customSuccessMessage: shortLine,
      customSuccessObject: () => ({}),
      // A 5xx: the error handler has already logged the error with its stack.
      customErrorMessage: (req, res) => shortLine(req, res, Date.now() - res[startTime]),
      customErrorObject: () => ({}),
    });
  }
  return pinoHttp({
    ...common,
    // The normalized client address (see request-context.ts), next to the proxy's socket address.
    customProps: (req) => ({ clientIp: (req as Request).clientIp }),
    serializers: { req: loggedRequest, res: loggedResponse },
  });
}
