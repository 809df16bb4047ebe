import type { InvalidTokenReason, TokenPurpose } from './auth/account-tokens';
import type { LoginLockout } from './auth/login-throttle';
import type { SecurityEvent } from './http/security-events';

/**
 * A security event that a refusal stands for. The error carries it and `logRefusal` writes it, so a
 * refused request is logged the same way whichever layer refused it (ASVS 16.3.1-16.3.3), and a
 * layer never logs and throws by hand.
 */
export interface RefusalEvent {
  name: SecurityEvent;
  fields?: Record<string, unknown>;
}

/**
 * Errors the app means to show. Each has a stable `code` clients can branch on and an HTTP status;
 * the error handler turns them into the JSON envelope. Anything that is not an AppError is a bug
 * (or an outage) and is answered with a generic message.
 */
export class AppError extends Error {
  /** What the log records about this refusal, beyond the access line; most errors record nothing. */
  readonly events: readonly RefusalEvent[] = [];

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

/** A problem with one field of a refused request, as the log records it: where, and zod's issue code. */
export interface InputIssue {
  field: string;
  code: string;
}

/**
 * The most issues one event lists: a body built to fail every field (or a form with hundreds) still
 * makes one short log line. `issueCount` says how many there were.
 */
export const MAX_LOGGED_ISSUES = 10;

/**
 * An input refused for its form (ASVS 16.3.3: attempts to get past input validation are logged). The
 * event names the fields and the kind of problem, never a submitted value: a password typed into the
 * email field, or a token, would otherwise end up in the log.
 */
export const inputRefused = (issues: readonly InputIssue[]): RefusalEvent => ({
  name: 'request.validation_failed',
  fields: { issues: issues.slice(0, MAX_LOGGED_ISSUES), issueCount: issues.length },
});

export class ValidationError extends AppError {
  override readonly events: readonly RefusalEvent[];

  /** `details` go to the client; each may carry its zod issue `code` for the log (`custom` when not). */
  constructor(details: readonly (ErrorDetail & { code?: string })[], message = 'The request is not valid.') {
    super(
      400,
      'validation_failed',
      message,
      details.map(({ path, message: problem }) => ({ path, message: problem })),
    );
    this.events = [inputRefused(details.map(({ path, code }) => ({ field: path, code: code ?? 'custom' })))];
  }
}

/**
 * A well-formed request that a business rule refuses (the last admin, a taken email, a weak password…).
 * Logged as `business_rule.refused` with the rule's code (ASVS 16.3.3): a run of them from one client
 * is someone probing the rules (which emails exist, which passwords pass). Never with the values.
 */
export class BusinessRuleError extends AppError {
  override readonly events: readonly RefusalEvent[];

  constructor(status: number, code: string, message: string) {
    super(status, code, message);
    this.events = [{ name: 'business_rule.refused', fields: { rule: code } }];
  }
}

export class PasswordRejectedError extends BusinessRuleError {
  constructor(rule: string) {
    super(400, 'password_rejected', rule);
  }
}

export class UnauthenticatedError extends AppError {
  constructor() {
    super(401, 'unauthenticated', 'Authentication is required.');
  }
}

/**
 * What a failed login's events say about the account it tried (ADR 0039): never what was typed, which
 * may be a password typed into the email field. `emailTag` names the typed email by a keyed HMAC
 * (src/auth/login-pseudonyms.ts), so guessing against one address shows up as one name; `targetUserId`
 * says whose account it was, when it was one; `notAnEmail` marks a value that is no address at all.
 */
export interface FailedLoginAccount {
  emailTag: string;
  notAnEmail: boolean;
  targetUserId?: string;
}

/**
 * One error for an unknown email and a wrong password (the answer says nothing of which). Its events
 * name the account as above; `lockout` is set when this failure engaged a lock.
 */
export class InvalidCredentialsError extends AppError {
  override readonly events: readonly RefusalEvent[];

  constructor(
    account: FailedLoginAccount,
    /** The lock this failure started, if any (the metrics count them). */
    readonly lockout?: LoginLockout,
  ) {
    super(401, 'invalid_credentials', 'The email or password is incorrect.');
    const fields = { ...account };
    this.events = [
      { name: 'auth.login_failed', fields },
      ...(lockout ? [{ name: 'auth.locked' as const, fields: { ...fields, reason: lockout } }] : []),
    ];
  }
}

/**
 * A wrong second-factor code (TOTP or recovery code), one already used, or a code of a step too far
 * from now: one answer for all, so a guesser learns nothing about which. `lockout` as for passwords.
 */
export class InvalidMfaCodeError extends AppError {
  override readonly events: readonly RefusalEvent[];

  constructor(
    userId: string,
    /** The lock this failure started, if any. */
    readonly lockout?: LoginLockout,
  ) {
    super(401, 'invalid_mfa_code', 'The code is incorrect or was already used.');
    this.events = [
      { name: 'auth.mfa_failed', fields: { targetUserId: userId } },
      ...(lockout
        ? [{ name: 'auth.locked' as const, fields: { targetUserId: userId, reason: lockout } }]
        : []),
    ];
  }
}

/** 401: a code was sent without a password step waiting for it, or after that step expired. */
export class MfaChallengeExpiredError extends AppError {
  constructor() {
    super(401, 'mfa_challenge_expired', 'Sign in with your email and password again.');
  }
}

/**
 * 403 while REQUIRE_MFA_FOR_ADMINS is on and the signed-in admin has no confirmed second factor
 * (src/mfa/require-mfa.ts). A refused authorization like any other, so it is logged as one.
 */
export class MfaRequiredError extends AppError {
  override readonly events: readonly RefusalEvent[] = [
    { name: 'authz.denied', fields: { reason: 'mfa_required' } },
  ];

  constructor() {
    super(403, 'mfa_required', 'Set up a second factor (an authenticator app) first.');
  }
}

/** 409: enrolment asked for while a confirmed second factor exists (disable it first). */
export class MfaAlreadyEnabledError extends BusinessRuleError {
  constructor() {
    super(409, 'mfa_already_enabled', 'A second factor is already set up.');
  }
}

/** 409: the action needs a confirmed second factor (or a started enrolment) that is not there. */
export class MfaNotEnabledError extends BusinessRuleError {
  constructor(message = 'No second factor is set up.') {
    super(409, 'mfa_not_enabled', message);
  }
}

/**
 * 503: a TOTP secret is stored under a key MFA_ENCRYPTION_KEYS no longer holds (or the key changed
 * under its id). The login is refused, never let through on the password alone; a recovery code still
 * works, since it needs no key.
 */
export class MfaUnavailableError extends AppError {
  override readonly events: readonly RefusalEvent[];
  /** An operator has to put the key back: minutes, not seconds. */
  readonly retryAfterS = 300;

  constructor(userId: string, keyId: string, cause: unknown) {
    super(
      503,
      'mfa_unavailable',
      'Codes from your authenticator cannot be checked right now. Use a recovery code, or try again later.',
      undefined,
      { cause },
    );
    // A warning in the log that names the key: the operator has a key to put back.
    this.events = [
      { name: 'auth.mfa_failed', fields: { targetUserId: userId, reason: 'key_unavailable', keyId } },
    ];
  }
}

/** Every refused authorization is a security event (ASVS 16.3.2), whichever layer refused it. */
export class ForbiddenError extends AppError {
  override readonly events: readonly RefusalEvent[] = [{ name: 'authz.denied' }];

  constructor(message = 'You are not allowed to do this.') {
    super(403, 'forbidden', message);
  }
}

/**
 * 403 while REQUIRE_VERIFIED_EMAIL is on and the signed-in user has not yet proven their address
 * (src/http/require-verified-email.ts). A refused authorization like any other, so it is logged as one.
 */
export class EmailUnverifiedError extends AppError {
  override readonly events: readonly RefusalEvent[] = [
    { name: 'authz.denied', fields: { reason: 'email_unverified' } },
  ];

  constructor() {
    super(
      403,
      'email_unverified',
      'Confirm your email address first: open the link we mailed you, or ask for a new one.',
    );
  }
}

/** 409: a new verification link was asked for an address that is already verified. */
export class EmailAlreadyVerifiedError extends BusinessRuleError {
  constructor() {
    super(409, 'email_already_verified', 'Your email address is already verified.');
  }
}

export class InvalidCurrentPasswordError extends AppError {
  override readonly events: readonly RefusalEvent[] = [{ name: 'auth.reauth_failed' }];

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
export class ConcealedError extends NotFoundError {
  override readonly events: readonly RefusalEvent[] = [{ name: 'authz.denied' }];
}

/**
 * One answer for every refused link (unknown, expired, used, of another purpose, malformed): the
 * client learns only that it needs a new one. The log keeps the reason, never the token.
 */
export class InvalidTokenError extends AppError {
  override readonly events: readonly RefusalEvent[];

  constructor(purpose: TokenPurpose, reason: InvalidTokenReason) {
    super(400, 'invalid_token', 'The link is invalid, expired or already used. Ask for a new one.');
    this.events = [{ name: 'account_token.refused', fields: { purpose, reason } }];
  }
}

export class EmailTakenError extends BusinessRuleError {
  constructor() {
    super(409, 'email_taken', 'An account with this email already exists.');
  }
}

export class LastAdminError extends BusinessRuleError {
  constructor() {
    super(409, 'last_admin', 'The last admin cannot be removed or demoted.');
  }
}

/** 403 from the cross-origin guard: a state-changing request sent by another site. */
export class CrossOriginRequestError extends AppError {
  override readonly events: readonly RefusalEvent[];

  constructor(headers: { origin: string | null; secFetchSite: string | null }) {
    super(403, 'cross_origin_request', 'Cross-origin requests are not allowed.');
    this.events = [{ name: 'request.cross_origin_rejected', fields: headers }];
  }
}

/** 403: an HTML form post without a valid CSRF token. */
export class CsrfInvalidError extends AppError {
  override readonly events: readonly RefusalEvent[] = [{ name: 'csrf.rejected' }];

  constructor() {
    super(
      403,
      'csrf_invalid',
      'The form has expired or was not sent by this site. Reload the page and try again.',
    );
  }
}

/**
 * 405: a method the app serves on no path (src/http/methods.ts). `allow` is what the Allow header lists,
 * as a 405 must (RFC 9110 15.5.6).
 */
export class MethodNotAllowedError extends AppError {
  constructor(readonly allow: readonly string[]) {
    super(405, 'method_not_allowed', 'This method is not allowed.');
  }
}

/** 415: a body of a type the route does not read (OWASP REST Security Cheat Sheet). */
export class UnsupportedMediaTypeError extends AppError {
  override readonly events: readonly RefusalEvent[] = [
    inputRefused([{ field: 'body', code: 'unsupported_media_type' }]),
  ];

  constructor(message: string) {
    super(415, 'unsupported_media_type', message);
  }
}

/** 413: a body over the parser's limit (100 kB). Refused input, logged as such, the body unread. */
export class PayloadTooLargeError extends AppError {
  override readonly events: readonly RefusalEvent[] = [
    inputRefused([{ field: 'body', code: 'payload_too_large' }]),
  ];

  constructor() {
    super(413, 'payload_too_large', 'The request body is too large.');
  }
}

/**
 * 4xx: a request Express itself could not take apart (a malformed percent-encoding in the path, a body
 * that ends early). Refused input: logged under `request`, since it is not always the body at fault.
 */
export class MalformedRequestError extends AppError {
  override readonly events: readonly RefusalEvent[] = [
    inputRefused([{ field: 'request', code: 'bad_request' }]),
  ];

  constructor(status: number) {
    super(status, 'bad_request', 'The request is malformed.');
  }
}

/** 400: a JSON body that does not parse. Refused input like any other, so logged as such. */
export class InvalidJsonError extends AppError {
  override readonly events: readonly RefusalEvent[] = [
    inputRefused([{ field: 'body', code: 'invalid_json' }]),
  ];

  constructor() {
    super(400, 'invalid_json', 'The request body is not valid JSON.');
  }
}

/**
 * 429, with the seconds to wait in Retry-After. `event` is given for the first refusals of a limit
 * only, so a flood does not become a log flood.
 */
export class RateLimitedError extends AppError {
  override readonly events: readonly RefusalEvent[];

  constructor(
    readonly retryAfterS: number,
    event?: RefusalEvent & {
      name:
        | 'ratelimit.blocked'
        | 'auth.locked'
        | 'email_verification.resend_limited'
        | 'email_change.address_limited';
    },
  ) {
    super(429, 'rate_limited', 'Too many requests. Try again later.');
    this.events = event ? [event] : [];
  }
}

/** Postgres or Redis cannot be reached; the request may succeed later (see lib/outages.ts). */
export class ServiceUnavailableError extends AppError {
  constructor(
    readonly service: 'database' | 'redis',
    cause?: unknown,
  ) {
    super(
      503,
      'service_unavailable',
      'The service is temporarily unavailable. Try again shortly.',
      undefined,
      { cause },
    );
  }
}

/**
 * 503, with Retry-After: every password-hashing slot and place in line is taken, or the wait for a
 * turn ran out (lib/password-queue.ts). 503 rather than 429: the server is out of capacity, whoever
 * asks; the client did nothing wrong (RFC 9110 15.6.4). `event` is given for the first refusal of a
 * burst only, so a flood is one log line.
 */
export class ServiceBusyError extends AppError {
  override readonly events: readonly RefusalEvent[];
  /** A turn comes within milliseconds once the burst passes: the shortest wait Retry-After can say. */
  readonly retryAfterS = 1;

  constructor(
    /** queue_full: refused on arrival, nothing waited; wait_exceeded: waited its longest for a turn. */
    readonly reason: 'queue_full' | 'wait_exceeded',
    event?: RefusalEvent & { name: 'hash.busy' },
  ) {
    super(503, 'service_busy', 'The service is busy. Try again in a moment.');
    this.events = event ? [event] : [];
  }
}
