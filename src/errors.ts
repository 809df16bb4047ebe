/**
 * Errors the app means to show. Each has a stable `code` clients can branch on and an HTTP status;
 * the error handler turns them into the JSON envelope. Anything that is not an AppError is a bug
 * (or an outage) and is answered with a generic message.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: readonly ErrorDetail[],
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export interface ErrorDetail {
  path: string;
  message: string;
}

export class ValidationError extends AppError {
  constructor(details: readonly ErrorDetail[], message = 'The request is not valid.') {
    super(400, 'validation_failed', message, details);
  }
}

export class PasswordRejectedError extends AppError {
  constructor(rule: string) {
    super(400, 'password_rejected', rule);
  }
}

export class UnauthenticatedError extends AppError {
  constructor() {
    super(401, 'unauthenticated', 'Authentication is required.');
  }
}

export class InvalidCredentialsError extends AppError {
  /** Set when this failure engaged a login lock, so the route can log `auth.locked`. */
  constructor(readonly lockout?: 'consecutive_failures' | 'daily_failures') {
    super(401, 'invalid_credentials', 'The email or password is incorrect.');
  }
}

export class ForbiddenError extends AppError {
  constructor(message = 'You are not allowed to do this.') {
    super(403, 'forbidden', message);
  }
}

export class InvalidCurrentPasswordError extends AppError {
  constructor() {
    super(403, 'invalid_current_password', 'The current password is incorrect.');
  }
}

export class NotFoundError extends AppError {
  constructor(message = 'The resource does not exist.') {
    super(404, 'not_found', message);
  }
}

/**
 * A 404 that stands for "not yours": the client cannot tell it from a missing resource, but the log
 * records the refusal as `authz.denied`.
 */
export class ConcealedError extends NotFoundError {}

export class EmailTakenError extends AppError {
  constructor() {
    super(409, 'email_taken', 'An account with this email already exists.');
  }
}

export class LastAdminError extends AppError {
  constructor() {
    super(409, 'last_admin', 'The last admin cannot be removed or demoted.');
  }
}

/** 403 from the cross-origin guard: a state-changing request sent by another site. */
export class CrossOriginRequestError extends AppError {
  constructor() {
    super(403, 'cross_origin_request', 'Cross-origin requests are not allowed.');
  }
}

/** 403: an HTML form post without a valid CSRF token. */
export class CsrfInvalidError extends AppError {
  constructor() {
    super(
      403,
      'csrf_invalid',
      'The form has expired or was not sent by this site. Reload the page and try again.',
    );
  }
}

/**
 * 429, with the seconds to wait in Retry-After. `event` names the security event to log for it
 * (left out for refusals after the first, so a flood does not become a log flood).
 */
export class RateLimitedError extends AppError {
  constructor(
    readonly retryAfterS: number,
    readonly event?: 'ratelimit.blocked' | 'auth.locked',
    readonly eventDetails: Record<string, unknown> = {},
  ) {
    super(429, 'rate_limited', 'Too many requests. Try again later.');
  }
}

/** Postgres or Redis cannot be reached; the request may succeed later. */
export class ServiceUnavailableError extends AppError {
  constructor(service: 'database' | 'redis', cause?: unknown) {
    super(
      503,
      'service_unavailable',
      'The service is temporarily unavailable. Try again shortly.',
      undefined,
      {
        cause,
      },
    );
    this.service = service;
  }
  readonly service: 'database' | 'redis';
}
