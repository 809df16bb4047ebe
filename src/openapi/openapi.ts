import { createDocument } from 'zod-openapi';
import { authPaths } from '../auth/auth.openapi';
import { userSessionsPaths } from '../auth/user-sessions.openapi';
import { healthPaths } from '../http/health.openapi';
import { mfaPaths } from '../mfa/mfa.openapi';
import { userListResponse, userResponse } from '../users/users.schemas';
import { usersPaths } from '../users/users.openapi';
import { errorEnvelope, SESSION_SECURITY } from './responses';

/** The version of the API this document describes (the package's version: they are released together). */
export const API_VERSION = '0.1.0';

const DESCRIPTION = `JSON in and out: request bodies are \`application/json\`, up to 100 kB.

Every answer carries \`X-Request-Id\`. Every \`/api\` answer carries \`RateLimit-Limit\`, \`RateLimit-Remaining\`
and \`RateLimit-Reset\`, and is \`Cache-Control: no-store\`. Errors have one shape, \`Error\`; branch on
\`error.code\`, which each response below lists. 429 and 503 say when to retry in \`Retry-After\`.

Signing in sets an HttpOnly session cookie (\`sid\`; \`__Host-sid\` in production, where it is also
Secure). POST, PUT, PATCH and DELETE sent from a page of another site are refused (403
\`cross_origin_request\`); clients outside a browser send neither \`Sec-Fetch-Site\` nor \`Origin\` and pass.`;

/**
 * The OpenAPI 3.1 description of the JSON API and the health probes, generated from the same zod schemas
 * the routes validate with (ADR 0007). `npm run openapi` writes it to docs/openapi.json; development
 * serves it at /api/openapi.json.
 */
export function createOpenApiDocument(): ReturnType<typeof createDocument> {
  return createDocument({
    openapi: '3.1.1',
    info: {
      title: 'express-hardened-starter API',
      version: API_VERSION,
      description: DESCRIPTION,
      license: { name: 'MIT', identifier: 'MIT' },
    },
    tags: [
      { name: 'auth', description: 'Sessions, registration and the password.' },
      { name: 'sessions', description: 'Signed-in sessions: listing and ending them.' },
      { name: 'mfa', description: 'The second factor: an authenticator app and its recovery codes.' },
      { name: 'users', description: 'Users and their roles.' },
      { name: 'health', description: 'Probes for orchestrators and load balancers.' },
    ],
    paths: { ...authPaths, ...userSessionsPaths, ...mfaPaths, ...usersPaths, ...healthPaths },
    components: {
      schemas: { User: userResponse, UserList: userListResponse, Error: errorEnvelope },
      securitySchemes: {
        [SESSION_SECURITY]: {
          type: 'apiKey',
          in: 'cookie',
          // Development's name; production's differs only by its prefix (see the description).
          name: 'sid',
          description:
            'The session cookie set by login and registration: `sid`, or `__Host-sid` in production.',
        },
      },
    },
  });
}
