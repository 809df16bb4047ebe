import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import {
  AppError,
  InvalidJsonError,
  MalformedRequestError,
  MethodNotAllowedError,
  MfaUnavailableError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  ServiceBusyError,
  ServiceUnavailableError,
  UnsupportedMediaTypeError,
  type ErrorDetail,
} from '../errors';
import { asServiceUnavailable } from '../lib/outages';
import { isJsonPath } from './request-context';
import { logRefusal } from './security-events';

/** Errors raised by Express's body parsers, keyed by their `type`, as the errors we answer them with. */
const BODY_PARSER_ERRORS: Record<string, () => AppError> = {
  'entity.parse.failed': () => new InvalidJsonError(),
  'entity.too.large': () => new PayloadTooLargeError(),
  'encoding.unsupported': () => new UnsupportedMediaTypeError('The request body encoding is not supported.'),
  'charset.unsupported': () => new UnsupportedMediaTypeError('The request body charset is not supported.'),
};

/** The AppError an error is answered as, or undefined for a bug (a 500). */
function asAppError(err: unknown): AppError | undefined {
  if (err instanceof AppError) return err;
  const outage = asServiceUnavailable(err);
  if (outage) return outage;
  const type = (err as { type?: unknown } | null)?.type;
  const bodyParserError = typeof type === 'string' ? BODY_PARSER_ERRORS[type] : undefined;
  if (bodyParserError) return bodyParserError();
  // Other client errors raised by Express itself (a malformed percent-encoding in the path, say).
  const status = (err as { status?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new MalformedRequestError(status);
  }
  return undefined;
}

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
  onRateLimited,
  busyRefusalDelayMs = 0,
}: {
  exposeStack: boolean;
  renderPage?: ErrorPageRenderer;
  /** Told of every 429 (the metrics count them; the log has the first refusals of each limit only). */
  onRateLimited?: () => void;
  /** How long a 503 `service_busy` refused on arrival waits before it leaves (HASH_REFUSAL_DELAY_MS). */
  busyRefusalDelayMs?: number;
}): ErrorRequestHandler {
  const delayed = createDelayedAnswers({ delayMs: busyRefusalDelayMs });
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

    const known = asAppError(err);
    if (known instanceof ServiceUnavailableError) {
      req.log.warn({ err: known.cause, service: known.service }, `${known.service} unavailable`);
      res.setHeader('Retry-After', '5');
    }
    if (
      known instanceof RateLimitedError ||
      known instanceof ServiceBusyError ||
      known instanceof MfaUnavailableError
    ) {
      res.setHeader('Retry-After', String(known.retryAfterS));
    }
    if (known instanceof RateLimitedError) onRateLimited?.();
    if (known instanceof MethodNotAllowedError) res.setHeader('Allow', known.allow.join(', '));
    if (known) {
      logRefusal(req, known);
      const answer = () =>
        send(res, known.status, {
          code: known.code,
          message: known.message,
          requestId,
          details: known.details,
        });
      if (known instanceof ServiceBusyError && known.reason === 'queue_full') {
        return delayed.answerLater(res, answer, (error) =>
          req.log.error({ err: error }, 'delayed answer failed'),
        );
      }
      return answer();
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

/** What holding an answer needs of a response: whether it can still be sent, and its end. */
export interface HeldResponse {
  readonly destroyed: boolean;
  readonly headersSent: boolean;
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

/** The most refusals held at once; beyond, they are answered at once (createDelayedAnswers). */
export const MAX_HELD_REFUSALS = 1024;

/**
 * Sends answers after `delayMs`, spending nothing meanwhile (a timer; no place in the hashing line, no
 * hash). Why (ADR 0042): a client refused because the password line is full would otherwise come
 * straight back, so a flood of N connections takes as many event-loop turns as the server can give,
 * every one of them taken from the reads and probes of everyone else. Held for `delayMs`, each
 * connection sends at most one attempt per `delayMs` while the line stays full.
 *
 * At most `maxHeld` wait at once: how many arrive in a delay depends on the sender, not on its
 * connections (one connection can pipeline thousands of requests, an open-loop flood does not wait),
 * and each held one keeps its request, response and timer. Beyond the cap an answer leaves at once,
 * as without a delay. A client that goes away meanwhile is let go (the timer is cleared); nothing is
 * written to a closed response, and an answer that throws is logged, not left to crash the process.
 */
export function createDelayedAnswers({
  delayMs,
  maxHeld = MAX_HELD_REFUSALS,
}: {
  delayMs: number;
  maxHeld?: number;
}) {
  let held = 0;
  return {
    /** Answers held right now. */
    held: () => held,
    answerLater(res: HeldResponse, answer: () => void, onError: (error: unknown) => void): void {
      if (delayMs <= 0 || held >= maxHeld) return answer();
      held++;
      const release = () => {
        held--;
        res.off('close', cancel);
      };
      const timer = setTimeout(() => {
        release();
        if (res.destroyed || res.headersSent) return;
        try {
          answer();
        } catch (error) {
          onError(error);
        }
      }, delayMs);
      const cancel = () => {
        clearTimeout(timer);
        release();
      };
      res.once('close', cancel);
    },
  };
}

export const notFound: RequestHandler = (_req, _res, next) => {
  next(new NotFoundError('There is nothing at this address.'));
};
