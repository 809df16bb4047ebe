import { z } from 'zod';
import {
  apiPaths,
  clearSiteDataHeader,
  json,
  locationHeader,
  setSessionCookieHeader,
} from '../openapi/responses';
import { mfaRequiredResponse } from '../mfa/mfa.schemas';
import { userResponse } from '../users/users.schemas';
import {
  changePasswordBody,
  loginBody,
  passwordResetAccepted,
  passwordResetBody,
  passwordResetConfirmBody,
  registerBody,
  verificationMailQueued,
  verifyEmailBody,
} from './auth.schemas';

const MAIL_OFF =
  'Without mail (no `SMTP_URL` outside development) this answers 404 `not_found`, as an unknown path does. ';
const LINK_BUDGET =
  'Shares the hourly per-client budget of the reset routes (`PASSWORD_RESET_MAX_PER_IP_PER_HOUR`; 429 once spent).';
const RESET_BUDGET =
  'Asking for links and using them share one hourly budget per client (`PASSWORD_RESET_MAX_PER_IP_PER_HOUR`; 429 once spent).';

/** The description of auth.routes.ts (src/openapi assembles the document; a test holds the two together). */
export const authPaths = apiPaths({
  '/api/auth/login': {
    post: {
      operationId: 'logIn',
      tags: ['auth'],
      summary: 'Sign in with email and password',
      openToUnverified: true,
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
        202: {
          description:
            'The password is right and the user has a second factor: nobody is signed in yet. The cookie ' +
            'holds a session that only waits, 5 minutes at most, for `POST /api/auth/login/mfa`.',
          headers: z.object({ 'Set-Cookie': setSessionCookieHeader('the session waiting for the code.') }),
          content: json(mfaRequiredResponse),
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
      openToUnverified: true,
      signedIn: true,
      responses: {
        204: {
          description: 'The session is gone and the cookie cleared.',
          headers: z.object({
            'Set-Cookie': setSessionCookieHeader('cleared.'),
            'Clear-Site-Data': clearSiteDataHeader(),
          }),
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
      openToUnverified: true,
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
        'When registration is disabled (`REGISTRATION_ENABLED=false`) this answers 404 `not_found`. ' +
        'The account starts unverified; with mail on, a verification link is mailed to it after the answer.',
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
  '/api/auth/password-reset': {
    post: {
      operationId: 'requestPasswordReset',
      tags: ['auth'],
      summary: 'Mail a link to reset the password',
      description:
        'Answers 202 with the same body whether or not an account uses the address, and after the same ' +
        'work: the account is looked up and the mail queued after the answer. The link (from `PUBLIC_URL`) ' +
        'works once, for 30 minutes; asking again replaces it. At most `MAIL_MAX_PER_ADDRESS_PER_HOUR` ' +
        'links go to one address per hour; beyond, the answer is the same and no mail is sent. ' +
        MAIL_OFF +
        RESET_BUDGET,
      signedIn: false,
      requestBody: { required: true, content: json(passwordResetBody) },
      responses: {
        202: { description: 'Accepted, whatever the address.', content: json(passwordResetAccepted) },
      },
      errors: ['validation_failed', 'not_found'],
    },
  },
  '/api/auth/password-reset/confirm': {
    post: {
      operationId: 'confirmPasswordReset',
      tags: ['auth'],
      summary: "Set a new password with the mailed link's token",
      description:
        'The password is checked against the policy before the token is spent, so a refused password ' +
        'leaves the link working. Every session of the account ends; the owner is mailed that the ' +
        'password changed. No session is started: sign in with the new password. ' +
        MAIL_OFF +
        RESET_BUDGET,
      signedIn: false,
      requestBody: { required: true, content: json(passwordResetConfirmBody) },
      responses: { 204: { description: 'The password is changed.' } },
      errors: ['validation_failed', 'invalid_token', 'password_rejected', 'not_found', 'service_busy'],
    },
  },
  '/api/auth/verify-email': {
    post: {
      operationId: 'verifyEmail',
      tags: ['auth'],
      summary: "Verify the account's address with the mailed link's token",
      description:
        'No session is needed: the link may be opened on another device. The token works once, for 24 ' +
        'hours, and only for the purpose it was mailed for. ' +
        MAIL_OFF +
        LINK_BUDGET,
      signedIn: false,
      openToUnverified: true,
      requestBody: { required: true, content: json(verifyEmailBody) },
      responses: { 204: { description: 'The address is verified.' } },
      errors: ['validation_failed', 'invalid_token', 'not_found'],
    },
  },
  '/api/auth/verify-email/resend': {
    post: {
      operationId: 'resendEmailVerification',
      tags: ['auth'],
      summary: 'Mail the signed-in user a new verification link',
      description:
        'The previous link stops working. At most `MAIL_MAX_PER_ADDRESS_PER_HOUR` mails go to one ' +
        'address per hour; beyond, 429 with `Retry-After`. ' +
        MAIL_OFF +
        LINK_BUDGET,
      signedIn: true,
      openToUnverified: true,
      responses: {
        202: { description: 'A new link is on its way.', content: json(verificationMailQueued) },
      },
      errors: ['email_already_verified', 'not_found'],
    },
  },
});
