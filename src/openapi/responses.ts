import { z } from 'zod';
import type {
  ZodOpenApiOperationObject,
  ZodOpenApiPathsObject,
  ZodOpenApiResponseObject,
  ZodOpenApiResponsesObject,
} from 'zod-openapi';

/**
 * The error codes an API client can meet, with their status and meaning. Each code has exactly one
 * status, so an operation lists codes and the statuses follow. `csrf_invalid` is absent on purpose: only
 * the HTML form posts of src/web raise it, and they are not part of this API.
 */
export const ERROR_CODES = {
  validation_failed: [
    400,
    'a body, query or path parameter is malformed; `details` lists `{ path, message }`',
  ],
  password_rejected: [400, 'the new password breaks the policy; the message names the rule'],
  invalid_json: [400, 'the body is not valid JSON'],
  invalid_token: [
    400,
    "the link's token is unknown, expired, already used or for another purpose; ask for a new link",
  ],
  bad_request: [400, 'a request Express cannot parse (a malformed percent-encoding, a truncated body)'],
  unauthenticated: [401, 'no valid session'],
  invalid_credentials: [401, 'wrong email or password'],
  invalid_mfa_code: [
    401,
    'the code is wrong, already used or more than one step from now, or the recovery code is unknown or used',
  ],
  mfa_challenge_expired: [
    401,
    'no password step is waiting for a code (none, over 5 minutes old, or the password changed since): sign in again',
  ],
  forbidden: [403, 'the signed-in user may not do this'],
  invalid_current_password: [403, 'the current password is wrong'],
  cross_origin_request: [403, 'a state-changing request sent by another site (`Sec-Fetch-Site`, `Origin`)'],
  email_unverified: [
    403,
    "`REQUIRE_VERIFIED_EMAIL` is on and the signed-in user's address is not verified yet: verify it first",
  ],
  mfa_required: [
    403,
    '`REQUIRE_MFA_FOR_ADMINS` is on and the signed-in admin has no second factor yet: enrol one first',
  ],
  not_found: [404, 'no such resource, or one the signed-in user may not see'],
  email_taken: [409, 'the email is in use'],
  last_admin: [409, 'the last admin would disappear'],
  email_already_verified: [409, 'the address is verified already: no new link is needed'],
  mfa_already_enabled: [409, 'a second factor is already on: disable it first'],
  mfa_not_enabled: [409, 'there is no second factor (or no enrolment was started)'],
  payload_too_large: [413, 'the body is over 100 kB'],
  unsupported_media_type: [415, 'the body is not `application/json`'],
  rate_limited: [429, 'a limit is reached or a login is locked; retry after `Retry-After` seconds'],
  internal_error: [500, 'a bug; the log has the details under the `requestId`'],
  service_unavailable: [503, 'Postgres or Redis is unreachable; retry after `Retry-After` seconds'],
  mfa_unavailable: [
    503,
    "the TOTP secret's key is not in `MFA_ENCRYPTION_KEYS`: codes cannot be checked, a recovery code still works",
  ],
  service_busy: [
    503,
    'password hashing is at capacity (a login flood, say); nothing was checked or changed: retry after `Retry-After` seconds',
  ],
} as const satisfies Record<string, readonly [status: number, when: string]>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** What every /api request can meet before its handler runs: body parsing, the limiter, the session store. */
const EVERY_API_REQUEST: readonly ErrorCode[] = [
  'invalid_json',
  'bad_request',
  'payload_too_large',
  'unsupported_media_type',
  'rate_limited',
  'internal_error',
  'service_unavailable',
];

const errorDetail = z.strictObject({
  path: z.string().meta({ description: 'Where the problem is: `body.email`, `query.limit`, `params.id`.' }),
  message: z.string(),
});

/** The one shape of every API error (src/http/error-handler.ts). Registered once as `Error` and referenced. */
export const errorEnvelope = z.strictObject({
  error: z.strictObject({
    code: z
      .string()
      .meta({ description: 'Stable and machine-readable: branch on it, never on the message.' }),
    message: z.string().meta({ description: 'For people; may change without notice.' }),
    requestId: z.string().meta({ description: 'Also in `X-Request-Id`; the log records it with the error.' }),
    details: z.array(errorDetail).optional().meta({ description: 'Only with `validation_failed`.' }),
    stack: z.string().optional().meta({ description: 'Development only, on a 500.' }),
  }),
});

/**
 * The envelope narrowed to the codes one operation can answer with at one status: the shared `Error`
 * schema, plus an enum on `code`. The narrowing part lets every other property through, since the
 * shared schema already constrains them.
 */
function errorEnvelopeWith(codes: readonly [ErrorCode, ...ErrorCode[]]) {
  const open = ({ jsonSchema }: { jsonSchema: Record<string, unknown> }) => {
    delete jsonSchema.additionalProperties;
  };
  const narrowing = z
    .looseObject({ error: z.looseObject({ code: z.enum(codes) }).meta({ override: open }) })
    .meta({ override: open });
  return z.intersection(errorEnvelope, narrowing);
}

/** Header values are strings on the wire; these are whole numbers of seconds or requests. */
const count = (minimum: number) =>
  z
    .int()
    .min(minimum)
    .meta({
      override: ({ jsonSchema }) => {
        delete jsonSchema.maximum;
      },
    });

export const requestIdHeader = z.string().meta({
  header: {
    id: 'X-Request-Id',
    description: 'The id the log records this request under: yours if it matches `^[A-Za-z0-9._-]{8,64}$`.',
  },
});

/** IETF draft "RateLimit header fields for HTTP", sent by the per-client limiter on every API answer. */
const rateLimitHeaders = {
  'RateLimit-Limit': count(1).meta({
    header: { id: 'RateLimit-Limit', description: 'Requests allowed per client per minute.' },
  }),
  'RateLimit-Remaining': count(0).meta({
    header: { id: 'RateLimit-Remaining', description: 'Requests left in the current minute.' },
  }),
  'RateLimit-Reset': count(0).meta({
    header: { id: 'RateLimit-Reset', description: 'Seconds until the count starts over.' },
  }),
};

const retryAfterHeader = count(1).meta({
  header: { id: 'Retry-After', description: 'Seconds to wait before trying again.' },
});

export const locationHeader = z.string().meta({
  header: { id: 'Location', description: 'The path of the user just created.' },
});

/** `Set-Cookie` with the session cookie; `sometimes` when only some answers of the operation set it. */
export const setSessionCookieHeader = (description: string, sometimes = false) =>
  (sometimes ? z.string().optional() : z.string()).meta({
    header: { description: `The session cookie (\`sid\`; \`__Host-sid\` in production): ${description}` },
  });

/**
 * `Clear-Site-Data` of an answer that ends the caller's session (src/auth/sessions.ts, CLEAR_SITE_DATA);
 * `sometimes` when only some answers of the operation end it.
 */
export const clearSiteDataHeader = (sometimes = false) =>
  (sometimes ? z.string().optional() : z.string()).meta({
    header: {
      description:
        '`"cache", "storage"`, when the session ending is the caller\'s: the browser drops what this ' +
        'origin cached or stored (browsers act on it from https origins).',
    },
  });

/** The name under which operations refer to the session cookie in their `security`. */
export const SESSION_SECURITY = 'session';

/** `application/json` content of a zod schema. */
export const json = (schema: z.ZodType) => ({ 'application/json': { schema } });

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface ApiOperation extends Omit<ZodOpenApiOperationObject, 'responses' | 'security'> {
  /** Behind requireAuth or requireRole: the session cookie is required, and 401 answers without it. */
  signedIn: boolean;
  /** The success responses; the headers of every API answer are added. */
  responses: Record<`2${string}`, ZodOpenApiResponseObject>;
  /** The codes this operation's guards, handler and service raise. Those of the middleware are added. */
  errors: readonly ErrorCode[];
  /**
   * Open to a signed-in user whose address is not verified while REQUIRE_VERIFIED_EMAIL is on (the
   * allow-list of src/http/require-verified-email.ts). Every other operation may answer a signed-in,
   * unverified caller with 403 `email_unverified`, whether or not it needs a session.
   */
  openToUnverified?: true;
  /**
   * Open to a signed-in admin without a second factor while REQUIRE_MFA_FOR_ADMINS is on (the allow-list
   * of src/mfa/require-mfa.ts). Every other operation may answer such an admin with 403 `mfa_required`.
   */
  openWithoutMfa?: true;
}

/**
 * A login refused while hashing is at capacity is answered before the limiter runs (src/auth/login.ts),
 * so that answer alone may come without the RateLimit-* headers.
 */
const rateLimitHeadersBeforeTheLimiter = Object.fromEntries(
  Object.entries(rateLimitHeaders).map(([name, schema]) => [name, schema.optional()]),
);

function withApiHeaders(
  response: ZodOpenApiResponseObject,
  extra: Record<string, z.ZodType> = {},
  limiterRan = true,
) {
  const own = response.headers instanceof z.ZodObject ? response.headers.shape : {};
  const limits = limiterRan ? rateLimitHeaders : rateLimitHeadersBeforeTheLimiter;
  return {
    ...response,
    headers: z.object({ 'X-Request-Id': requestIdHeader, ...limits, ...extra, ...own }),
  };
}

/** The error response for one status and the codes it can carry, in its description and its schema. */
function errorResponse(
  status: number,
  codes: readonly [ErrorCode, ...ErrorCode[]],
): ZodOpenApiResponseObject {
  const waits = status === 429 || status === 503;
  return withApiHeaders(
    {
      description: codes.map((code) => `\`${code}\`: ${ERROR_CODES[code][1]}`).join('; '),
      content: json(errorEnvelopeWith(codes)),
    },
    waits ? { 'Retry-After': retryAfterHeader } : {},
    !codes.includes('service_busy'),
  );
}

/**
 * A status that carries a single code is the same response wherever it appears (a 429 is a 429): each
 * is built once and registered as a component named after its code, and operations refer to it.
 */
const SINGLE_CODE_RESPONSES = Object.fromEntries(
  Object.entries(ERROR_CODES).map(([code, [status]]) => [
    code,
    {
      ...errorResponse(status, [code as ErrorCode]),
      id: code.replace(/(?:^|_)([a-z])/g, (_, letter: string) => letter.toUpperCase()),
    },
  ]),
) as Record<ErrorCode, ZodOpenApiResponseObject>;

/** One error response per status an operation can answer with. */
function errorResponses(codes: readonly ErrorCode[]): ZodOpenApiResponsesObject {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codes)) {
    const status = ERROR_CODES[code][0];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: ZodOpenApiResponsesObject = {};
  for (const status of [...byStatus.keys()].sort((a, b) => a - b)) {
    const [first, ...rest] = byStatus.get(status)!;
    responses[`${status}` as `4${string}`] =
      rest.length === 0 ? SINGLE_CODE_RESPONSES[first!] : errorResponse(status, [first!, ...rest]);
  }
  return responses;
}

const STATE_CHANGING = new Set<Method>(['post', 'put', 'patch', 'delete']);

/**
 * Paths under /api, with what the shared middleware adds to each operation: the rate-limit and request
 * id headers, the session requirement, and the errors of body parsing, the limiter, the session store
 * and (for state-changing methods) the cross-origin guard.
 */
export function apiPaths(
  paths: Record<string, Partial<Record<Method, ApiOperation>>>,
): ZodOpenApiPathsObject {
  return Object.fromEntries(
    Object.entries(paths).map(([path, operations]) => [
      path,
      Object.fromEntries(
        Object.entries(operations).map(
          ([method, { signedIn, responses, errors, openToUnverified, openWithoutMfa, ...operation }]) => {
            const guards: ErrorCode[] = [
              ...(signedIn ? (['unauthenticated'] as const) : []),
              ...(openToUnverified ? [] : (['email_unverified'] as const)),
              ...(openToUnverified || openWithoutMfa ? [] : (['mfa_required'] as const)),
              ...(STATE_CHANGING.has(method as Method) ? (['cross_origin_request'] as const) : []),
            ];
            const success = Object.fromEntries(
              Object.entries(responses).map(([status, response]) => [status, withApiHeaders(response)]),
            );
            return [
              method,
              {
                ...operation,
                ...(signedIn ? { security: [{ [SESSION_SECURITY]: [] }] } : {}),
                responses: { ...success, ...errorResponses([...errors, ...guards, ...EVERY_API_REQUEST]) },
              } satisfies ZodOpenApiOperationObject,
            ];
          },
        ),
      ),
    ]),
  );
}
