import { z } from 'zod';
import { apiPaths, json, locationHeader, setSessionCookieHeader } from '../openapi/responses';
import { userResponse } from '../users/users.schemas';
import { changePasswordBody, loginBody, registerBody } from './auth.schemas';

/** The description of auth.routes.ts (src/openapi assembles the document; a test holds the two together). */
export const authPaths = apiPaths({
  '/api/auth/login': {
    post: {
      operationId: 'logIn',
      tags: ['auth'],
      summary: 'Sign in with email and password',
      description:
        'Starts a new session under a new id. Failures are throttled per email and client and per client ' +
        'per day; a locked login answers 429 until the lock ends, whether or not the password is right. ' +
        'While password hashing is at capacity the attempt is refused with 503 `service_busy` before it ' +
        'counts against those limits or the per-client limit (that answer may lack the RateLimit-* headers).',
      signedIn: false,
      requestBody: { required: true, content: json(loginBody) },
      responses: {
        200: {
          description: 'Signed in: the user, and the session cookie.',
          headers: z.object({ 'Set-Cookie': setSessionCookieHeader('the new session.') }),
          content: json(userResponse),
        },
      },
      errors: ['validation_failed', 'invalid_credentials', 'service_busy'],
    },
  },
  '/api/auth/logout': {
    post: {
      operationId: 'logOut',
      tags: ['auth'],
      summary: 'End the current session',
      signedIn: true,
      responses: {
        204: {
          description: 'The session is gone and the cookie cleared.',
          headers: z.object({ 'Set-Cookie': setSessionCookieHeader('cleared.') }),
        },
      },
      errors: [],
    },
  },
  '/api/auth/me': {
    get: {
      operationId: 'getCurrentUser',
      tags: ['auth'],
      summary: 'The signed-in user',
      signedIn: true,
      responses: { 200: { description: 'The signed-in user.', content: json(userResponse) } },
      errors: [],
    },
  },
  '/api/auth/register': {
    post: {
      operationId: 'register',
      tags: ['auth'],
      summary: 'Create an account (role `user`) and sign in',
      description:
        'When registration is disabled (`REGISTRATION_ENABLED=false`) this answers 404 `not_found`.',
      signedIn: false,
      requestBody: { required: true, content: json(registerBody) },
      responses: {
        201: {
          description: 'The new user, signed in.',
          headers: z.object({
            Location: locationHeader,
            'Set-Cookie': setSessionCookieHeader('the new session.'),
          }),
          content: json(userResponse),
        },
      },
      errors: ['validation_failed', 'password_rejected', 'not_found', 'email_taken', 'service_busy'],
    },
  },
  '/api/auth/password': {
    put: {
      operationId: 'changePassword',
      tags: ['auth'],
      summary: 'Change the password',
      description:
        'Every other session of the user ends; this one continues under a new id. Checks of the current ' +
        'password share a per-user hourly budget (429 once spent).',
      signedIn: true,
      requestBody: { required: true, content: json(changePasswordBody) },
      responses: {
        204: {
          description: 'Changed.',
          headers: z.object({ 'Set-Cookie': setSessionCookieHeader('the same session under a new id.') }),
        },
      },
      errors: ['validation_failed', 'password_rejected', 'invalid_current_password', 'service_busy'],
    },
  },
});
