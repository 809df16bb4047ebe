import type { IncomingHttpHeaders } from 'node:http';
import type { Express, Request, RequestHandler, Response } from 'express';
import { REDACTED, type Logger } from '../lib/logger';
import { pathOf } from './request-context';

/**
 * The request headers an operator needs to explain a request: where it was addressed and what the proxy
 * said about the client (to check that nginx overwrote X-Forwarded-*), who sent it and from which page
 * (cross-origin decisions), what body it claimed to carry. An allowlist, so a header a later feature
 * adds (an API key, a signed token) stays out of the log until someone decides it belongs there.
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
];

/** Credentials: the line shows that one was sent, never its value. */
const CENSORED_REQUEST_HEADERS = ['cookie', 'authorization', 'proxy-authorization'];

/**
 * A URL as the access line keeps it: the path, and the query's parameter names with every value
 * replaced (`/verify?token=[redacted]&next=[redacted]`; a part without a name is replaced whole). A
 * query can carry anything a client or a link put there: a token of a link opened as GET, an address,
 * a search (ASVS 5.0 14.2.1, 16.2.5; ADR 0040). The names stay, so an operator still sees which
 * parameters a request sent. A URL without a query is kept as it is.
 */
export function withoutQueryValues(url: string): string {
  const start = url.indexOf('?');
  if (start < 0) return url;
  const parts = url
    .slice(start + 1)
    .split('&')
    .map((part) => {
      const equals = part.indexOf('=');
      if (equals >= 0) return `${part.slice(0, equals)}=${REDACTED}`;
      return part === '' ? part : REDACTED;
    });
  return `${url.slice(0, start)}?${parts.join('&')}`;
}

function loggedHeaders(headers: IncomingHttpHeaders): Record<string, unknown> {
  const logged: Record<string, unknown> = {};
  for (const name of LOGGED_REQUEST_HEADERS) {
    if (headers[name] !== undefined) logged[name] = headers[name];
  }
  // The page a request came from is a URL like any other: a page opened from a link with a token in
  // its query would hand it on here (our pages send no Referer, another site's may).
  if (typeof logged.referer === 'string') logged.referer = withoutQueryValues(logged.referer);
  for (const name of CENSORED_REQUEST_HEADERS) {
    if (headers[name] !== undefined) logged[name] = REDACTED;
  }
  return logged;
}

/**
 * Gives every request `req.log`, a logger bound to its request id, for the lines a request writes besides
 * its access line (security events, errors). Made on first use and kept on the request: most requests
 * write no such line, and a child logger per request (what pino-http makes) was a tenth of the CPU of a
 * signed-in read. A getter on the app's request prototype, so any middleware, even one that runs before
 * the access log, can log.
 */
export function provideRequestLogger(app: Express, logger: Logger): void {
  Object.defineProperty(app.request, 'log', {
    configurable: true,
    get(this: Request): Logger {
      const log = logger.child({ requestId: this.requestId });
      Object.defineProperty(this, 'log', { value: log, configurable: true, writable: true });
      return log;
    },
  });
}

export interface AccessLogOptions {
  logger: Logger;
  /**
   * The full structured line (production, log shippers, tests); otherwise one short line per request,
   * for a developer's terminal, where the pretty logger adds the request id.
   */
  verbose: boolean;
}

type Outcome = 'completed' | 'errored' | 'aborted';

function outcomeOf(req: Request, res: Response): Outcome {
  if (req.readableAborted || !res.writableFinished) return 'aborted';
  return res.statusCode >= 500 ? 'errored' : 'completed';
}

/**
 * One access line per request, written when the response is over (finished, or the client went away),
 * under the request's id. A 5xx is logged at `error` (the error handler has logged the error itself with
 * its stack); the rest at `info`.
 *
 * Why not pino-http: it builds two child loggers per request and serializes through the logger's
 * redaction pass, which together cost more than the rest of a signed-in read's logging. Here the line
 * is one plain object built from an allowlist with credentials censored at the source, so it is written
 * by a child logger without the redaction pass (the root logger keeps it for every other line: an
 * error's fields, a security event's).
 */
export function createAccessLog({ logger, verbose }: AccessLogOptions): RequestHandler {
  const access = logger.child({}, { redact: [] });
  return (req, res, next) => {
    const start = performance.now();
    res.once('close', () => {
      const responseTime = Math.round(performance.now() - start);
      const outcome = outcomeOf(req, res);
      const level = outcome === 'errored' ? 'error' : 'info';
      if (!verbose) {
        // `GET /api/auth/me 401 3ms`: the query is left out, as in security events, to keep the line short.
        const status = outcome === 'aborted' ? 'aborted' : String(res.statusCode);
        access[level](
          { requestId: req.requestId },
          `${req.method} ${pathOf(req)} ${status} ${responseTime}ms`,
        );
        return;
      }
      const line = {
        requestId: req.requestId,
        // The normalized client address (see request-context.ts), next to the proxy's socket address.
        clientIp: req.clientIp,
        req: {
          method: req.method,
          url: withoutQueryValues(req.originalUrl),
          headers: loggedHeaders(req.headers),
          remoteAddress: req.socket.remoteAddress,
          remotePort: req.socket.remotePort,
        },
        // The status and nothing else: response headers are ours, the same on every response (security
        // headers, CSP), and the one that varies is Set-Cookie, a session credential.
        res: { statusCode: res.statusCode },
        responseTime,
      };
      access[level](line, `request ${outcome}`);
    });
    next();
  };
}
