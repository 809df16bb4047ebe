import type { ErrorPage, ErrorPageRenderer } from '../http/error-handler';
import type { Views } from './views';

const TITLES_BY_CODE: Record<string, string> = {
  csrf_invalid: 'This form has expired',
  rate_limited: 'Too many attempts',
  service_busy: 'Too busy right now',
};

const TITLES_BY_STATUS: Record<number, string> = {
  400: 'Bad request',
  401: 'Sign-in required',
  403: 'Not allowed',
  404: 'Page not found',
  405: 'Method not allowed',
  413: 'Request too large',
  415: 'Unsupported form',
  429: 'Too many requests',
  500: 'Something went wrong',
  503: 'Temporarily unavailable',
};

function titleOf(page: ErrorPage): string {
  return (
    TITLES_BY_CODE[page.code] ??
    TITLES_BY_STATUS[page.status] ??
    (page.status >= 500 ? 'Something went wrong' : 'Request refused')
  );
}

/**
 * The error page of the browser routes: a human title, the error's public message and the request id
 * to quote to support. It shows what the JSON envelope would show and nothing more (the stack only in
 * development, as there); the error handler decides what that is.
 */
export function createErrorPageRenderer(views: Views): ErrorPageRenderer {
  return (page) => views.render('error', { ...page, title: titleOf(page) });
}
