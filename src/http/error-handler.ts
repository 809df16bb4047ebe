import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import {
  AppError,
  ConcealedError,
  CrossOriginRequestError,
  InvalidCurrentPasswordError,
  ForbiddenError,
  NotFoundError,
  RateLimitedError,
  ServiceUnavailableError,
  type ErrorDetail,
} from '../errors';
import { isRedisUnavailableError } from '../lib/redis';
import { isJsonPath } from './request-context';
import { logSecurityEvent } from './security-events';

/** Errors raised by Express's body parser, keyed by their `type`. */
const BODY_PARSER_ERRORS: Record<string, [status: number, code: string, message: string]> = {
  'entity.parse.failed': [400, 'invalid_json', 'The request body is not valid JSON.'],
  'entity.too.large': [413, 'payload_too_large', 'The request body is too large.'],
  'encoding.unsupported': [415, 'unsupported_media_type', 'The request body encoding is not supported.'],
  'charset.unsupported': [415, 'unsupported_media_type', 'The request body charset is not supported.'],
};

interface Envelope {
  error: {
    code: string;
    message: string;
    requestId: string;
    details?: readonly ErrorDetail[];
    stack?: string;
  };
}

function sendJson(res: Response, status: number, body: Envelope['error']): void {
  res.status(status).json({ error: body } satisfies Envelope);
}

/** What an HTML error page may show: exactly what the JSON envelope would (details aside). */
export interface ErrorPage {
  status: number;
  code: string;
  message: string;
  requestId: string;
  /** Development only, as in the envelope. */
  stack?: string;
}

/** Turns an error into a complete HTML document (src/web renders it with the page templates). */
export type ErrorPageRenderer = (page: ErrorPage) => string;

/** Shown if the page template itself fails: an error page must never fail into Express's own. */
const FALLBACK_PAGE =
  '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error</title></head>' +
  '<body><h1>Something went wrong</h1><p>Please try again later.</p></body></html>';

/**
 * Known errors become the JSON envelope; anything else is a 500 whose details stay in the log. With
 * `renderPage`, browser routes (everything outside /api and the probes) get the same status and
 * content as an HTML page of our own instead: a browser user sees neither JSON nor Express's default
 * "Cannot GET" page and stack trace (OWASP Error Handling Cheat Sheet).
 */
export function createErrorHandler({
  exposeStack,
  renderPage,
}: {
  exposeStack: boolean;
  renderPage?: ErrorPageRenderer;
}): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    if (res.headersSent) return next(err);
    const requestId = req.requestId;
    // req.path is the path the routers matched on (the app-level handler sees the full one).
    const renderAsPage = isJsonPath(req.path) ? undefined : renderPage;
    const send = (res: Response, status: number, body: Envelope['error']): void => {
      if (!renderAsPage) return sendJson(res, status, body);
      const { code, message, stack } = body;
      let html: string;
      try {
        html = renderAsPage({ status, code, message, requestId, ...(stack ? { stack } : {}) });
      } catch (renderError) {
        req.log.error({ err: renderError }, 'error page failed to render');
        html = FALLBACK_PAGE;
      }
      res.status(status).type('html').send(html);
    };

    if (isRedisUnavailableError(err)) err = new ServiceUnavailableError('redis', err);
    if (err instanceof ServiceUnavailableError) {
      req.log.warn({ err: err.cause, service: err.service }, `${err.service} unavailable`);
      res.setHeader('Retry-After', '5');
    }
    if (err instanceof RateLimitedError) {
      res.setHeader('Retry-After', String(err.retryAfterS));
      if (err.event) logSecurityEvent(req, err.event, err.eventDetails);
    }
    if (err instanceof InvalidCurrentPasswordError) {
      logSecurityEvent(req, 'auth.reauth_failed', {
        method: req.method,
        path: req.originalUrl.split('?')[0],
      });
    }
    if (err instanceof CrossOriginRequestError) {
      logSecurityEvent(req, 'request.cross_origin_rejected', {
        method: req.method,
        origin: req.get('origin') ?? null,
        secFetchSite: req.get('sec-fetch-site') ?? null,
      });
    }
    // Every refused authorization is a security event (ASVS 16.3), whichever layer refused it.
    if (err instanceof ForbiddenError || err instanceof ConcealedError) {
      logSecurityEvent(req, 'authz.denied', { method: req.method, path: req.originalUrl.split('?')[0] });
    }
    if (err instanceof AppError) {
      return send(res, err.status, { code: err.code, message: err.message, requestId, details: err.details });
    }

    const type = (err as { type?: unknown } | null)?.type;
    const known = typeof type === 'string' ? BODY_PARSER_ERRORS[type] : undefined;
    if (known) return send(res, known[0], { code: known[1], message: known[2], requestId });

    // Other client errors raised by Express itself (a malformed percent-encoding in the path, say).
    const status = (err as { status?: unknown } | null)?.status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return send(res, status, { code: 'bad_request', message: 'The request is malformed.', requestId });
    }

    req.log.error({ err }, 'unhandled error');
    send(res, 500, {
      code: 'internal_error',
      message: 'Something went wrong. The error has been logged.',
      requestId,
      // Development only: production never shows a stack trace (OWASP Error Handling Cheat Sheet).
      ...(exposeStack && err instanceof Error ? { stack: err.stack } : {}),
    });
  };
}

export const notFound: RequestHandler = (_req, _res, next) => {
  next(new NotFoundError('There is nothing at this address.'));
};
