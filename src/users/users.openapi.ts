import { z } from 'zod';
import {
  apiPaths,
  clearSiteDataHeader,
  json,
  locationHeader,
  setSessionCookieHeader,
} from '../openapi/responses';
import {
  createUserBody,
  emailChangeConfirmBody,
  pendingEmailUserResponse,
  listUsersQuery,
  updateUserBody,
  userIdParams,
  userListResponse,
  userResponse,
} from './users.schemas';

/** The description of users.routes.ts (src/openapi assembles the document; a test holds the two together). */
export const usersPaths = apiPaths({
  '/api/auth/email-change/confirm': {
    post: {
      operationId: 'confirmEmailChange',
      tags: ['auth'],
      summary: "Switch to the new email with the mailed link's token",
      description:
        'The token comes from the link mailed to the new address by `PATCH /api/users/{id}`; it works ' +
        'once, for 24 hours; only the latest change asked for can be confirmed, and a new password (reset ' +
        'or change) cancels it. No session is needed. ' +
        'The address becomes the sign-in address, verified. If another account took the address since ' +
        'the change was asked for, the answer is 409 `email_taken` and nothing changes (the link stays ' +
        'unused but cannot succeed while the address is taken). Without mail (no `SMTP_URL` outside ' +
        'development) this answers 404 `not_found`. Uses the hourly per-client budget of the password ' +
        'reset routes (`PASSWORD_RESET_MAX_PER_IP_PER_HOUR`; 429 once spent).',
      signedIn: false,
      requestBody: { required: true, content: json(emailChangeConfirmBody) },
      responses: { 204: { description: 'The email is changed.' } },
      errors: ['validation_failed', 'invalid_token', 'email_taken', 'not_found'],
    },
  },
  '/api/users': {
    get: {
      operationId: 'listUsers',
      tags: ['users'],
      summary: 'List users, newest first (admin)',
      signedIn: true,
      requestParams: { query: listUsersQuery },
      responses: { 200: { description: 'One page of users.', content: json(userListResponse) } },
      errors: ['validation_failed', 'forbidden'],
    },
    post: {
      operationId: 'createUser',
      tags: ['users'],
      summary: 'Create a user of any role (admin)',
      signedIn: true,
      requestBody: { required: true, content: json(createUserBody) },
      responses: {
        201: {
          description: 'The new user.',
          headers: z.object({ Location: locationHeader }),
          content: json(userResponse),
        },
      },
      errors: ['validation_failed', 'password_rejected', 'forbidden', 'email_taken', 'service_busy'],
    },
  },
  '/api/users/{id}': {
    get: {
      operationId: 'getUser',
      tags: ['users'],
      summary: 'One user (yourself, or anyone for an admin)',
      description: "Another user's id answers 404, exactly like an id that does not exist.",
      signedIn: true,
      requestParams: { path: userIdParams },
      responses: { 200: { description: 'The user.', content: json(userResponse) } },
      errors: ['validation_failed', 'not_found'],
    },
    patch: {
      operationId: 'updateUser',
      tags: ['users'],
      summary: 'Change name, email or role',
      description:
        'Give at least one of `name`, `email`, `role`. Users change their own name, and their own email ' +
        'with `currentPassword` (checks share the per-user budget of the password change); admins change ' +
        "anyone's, roles included. A role change ends the user's sessions.\n\n" +
        'With mail on, a change of your own email does not take effect at once: the other fields change, ' +
        'a link is mailed to the new address and a notice (without the link) to the current one, and the ' +
        'answer is 202 with `pendingEmail`. Following the link (`POST /api/auth/email-change/confirm`) ' +
        'switches the address and marks it verified. An address in use is refused at once (409); at most ' +
        '`MAIL_MAX_PER_ADDRESS_PER_HOUR` mails go to one address per hour (429 beyond). Giving your ' +
        "current address changes nothing. An admin's change of another user's email, and any change " +
        'while mail is off, takes effect at once and leaves the address unverified (`emailVerifiedAt` ' +
        'null); with mail on, the old address is told.',
      signedIn: true,
      requestParams: { path: userIdParams },
      requestBody: { required: true, content: json(updateUserBody) },
      responses: {
        200: { description: 'The changed user.', content: json(userResponse) },
        202: {
          description:
            'Your own new email awaits confirmation from the link mailed to it; other fields changed.',
          content: json(pendingEmailUserResponse),
        },
      },
      errors: [
        'validation_failed',
        'forbidden',
        'invalid_current_password',
        'not_found',
        'email_taken',
        'last_admin',
        'service_busy',
      ],
    },
    delete: {
      operationId: 'deleteUser',
      tags: ['users'],
      summary: 'Delete a user (yourself, or anyone for an admin)',
      description: "The user's sessions end; deleting yourself also clears your cookie.",
      signedIn: true,
      requestParams: { path: userIdParams },
      responses: {
        204: {
          description: 'Deleted.',
          headers: z.object({
            'Set-Cookie': setSessionCookieHeader('cleared, when you deleted yourself.', true),
            'Clear-Site-Data': clearSiteDataHeader(true),
          }),
        },
      },
      errors: ['validation_failed', 'not_found', 'last_admin'],
    },
  },
});
