import { z } from 'zod';
import { apiPaths, clearSiteDataHeader, json, setSessionCookieHeader } from '../openapi/responses';
import { userIdParams } from '../users/users.schemas';
import {
  endedSessionsResponse,
  endOwnSessionsBody,
  sessionHandleParams,
  sessionListResponse,
  userSessionParams,
} from './user-sessions.schemas';

/** The answer of a route that may end the caller's own session (then it is a logout). */
const endedOne = {
  description: 'Ended. If it was the session making the request, its cookie is cleared too.',
  headers: z.object({
    'Set-Cookie': setSessionCookieHeader('cleared, when the session ended was this one.', true),
    'Clear-Site-Data': clearSiteDataHeader(true),
  }),
};

const REAUTHENTICATION =
  'Asks for your current password, so a stolen session cannot sign you out everywhere else; checks ' +
  'share the per-user hourly budget of the password change (429 once spent).';

const LIST =
  'Newest sign-in first; only live sessions. `lastSeenAt` is the last renewal, so it trails the last ' +
  'request by up to a minute: recording every request would cost a write on every read.';

/** The description of user-sessions.routes.ts (src/openapi assembles the document). */
export const userSessionsPaths = apiPaths({
  '/api/auth/sessions': {
    get: {
      operationId: 'listMySessions',
      tags: ['sessions'],
      summary: 'Your sessions',
      description: `${LIST} The one making the request has \`current: true\`.`,
      signedIn: true,
      openToUnverified: true,
      responses: { 200: { description: 'Your sessions.', content: json(sessionListResponse) } },
      errors: [],
    },
    delete: {
      operationId: 'endMyOtherSessions',
      tags: ['sessions'],
      summary: 'End every session of yours but this one',
      description: REAUTHENTICATION,
      signedIn: true,
      openToUnverified: true,
      requestBody: { required: true, content: json(endOwnSessionsBody) },
      responses: { 200: { description: 'How many ended.', content: json(endedSessionsResponse) } },
      errors: ['validation_failed', 'invalid_current_password', 'service_busy'],
    },
  },
  '/api/auth/sessions/{sessionId}': {
    delete: {
      operationId: 'endMySession',
      tags: ['sessions'],
      summary: 'End one of your sessions',
      description:
        "A handle that is not one of your sessions answers 404, whether it is someone else's or no session's. " +
        'Ending the current session signs you out, as `POST /api/auth/logout` does (which needs no ' +
        `password). ${REAUTHENTICATION}`,
      signedIn: true,
      openToUnverified: true,
      requestParams: { path: sessionHandleParams },
      requestBody: { required: true, content: json(endOwnSessionsBody) },
      responses: { 204: endedOne },
      errors: ['validation_failed', 'not_found', 'invalid_current_password', 'service_busy'],
    },
  },
  '/api/users/{id}/sessions': {
    get: {
      operationId: 'listUserSessions',
      tags: ['sessions'],
      summary: "A user's sessions (admin)",
      description: LIST,
      signedIn: true,
      requestParams: { path: userIdParams },
      responses: { 200: { description: 'The sessions.', content: json(sessionListResponse) } },
      errors: ['validation_failed', 'forbidden', 'not_found'],
    },
    delete: {
      operationId: 'endUserSessions',
      tags: ['sessions'],
      summary: 'End every session of a user (admin)',
      description: 'All of them, except the one making the request when the user is yourself.',
      signedIn: true,
      requestParams: { path: userIdParams },
      responses: { 200: { description: 'How many ended.', content: json(endedSessionsResponse) } },
      errors: ['validation_failed', 'forbidden', 'not_found'],
    },
  },
  '/api/users/{id}/sessions/{sessionId}': {
    delete: {
      operationId: 'endUserSession',
      tags: ['sessions'],
      summary: "End one of a user's sessions (admin)",
      signedIn: true,
      requestParams: { path: userSessionParams },
      responses: { 204: endedOne },
      errors: ['validation_failed', 'forbidden', 'not_found'],
    },
  },
  '/api/sessions': {
    delete: {
      operationId: 'endEverySession',
      tags: ['sessions'],
      summary: 'End every session of every user (admin)',
      description:
        "Yours included: everyone signs in again. Every user's session epoch moves in one statement, so " +
        'each session is refused on its next request whatever Redis holds. Logged as a ' +
        '`session.every_user_ended` warning.',
      signedIn: true,
      responses: {
        204: {
          description: 'Every session is over, and your cookie cleared.',
          headers: z.object({
            'Set-Cookie': setSessionCookieHeader('cleared.'),
            'Clear-Site-Data': clearSiteDataHeader(),
          }),
        },
      },
      errors: ['forbidden'],
    },
  },
});
