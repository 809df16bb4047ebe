import { z } from 'zod';
import { apiPaths, json, locationHeader, setSessionCookieHeader } from '../openapi/responses';
import {
  createUserBody,
  listUsersQuery,
  updateUserBody,
  userIdParams,
  userListResponse,
  userResponse,
} from './users.schemas';

/** The description of users.routes.ts (src/openapi assembles the document; a test holds the two together). */
export const usersPaths = apiPaths({
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
        "anyone's, roles included. A role change ends the user's sessions.",
      signedIn: true,
      requestParams: { path: userIdParams },
      requestBody: { required: true, content: json(updateUserBody) },
      responses: { 200: { description: 'The changed user.', content: json(userResponse) } },
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
          }),
        },
      },
      errors: ['validation_failed', 'not_found', 'last_admin'],
    },
  },
});
