import { z } from 'zod';
import { apiPaths, json, setSessionCookieHeader } from '../openapi/responses';
import { userIdParams, userResponse } from '../users/users.schemas';
import { ENROLMENT_LIFETIME_S } from './mfa.service';
import {
  confirmEnrolmentBody,
  disableMfaBody,
  enrolmentResponse,
  mfaLoginBody,
  mfaStatusResponse,
  recoveryCodesResponse,
  regenerateRecoveryCodesBody,
  startEnrolmentBody,
} from './mfa.schemas';

const KEYS_OFF = 'Without `MFA_ENCRYPTION_KEYS` this answers 404 `not_found`, as an unknown path does. ';
const OTHER_SESSIONS_END = "The user's other sessions end; this one goes on. ";

/** The description of mfa.routes.ts and of the code step of the login (auth.routes.ts). */
export const mfaPaths = apiPaths({
  '/api/auth/login/mfa': {
    post: {
      operationId: 'logInSecondFactor',
      tags: ['mfa'],
      summary: 'Finish a login with the second factor',
      openToUnverified: true,
      description:
        'After `POST /api/auth/login` answered 202, with its cookie: the 6-digit code of the authenticator ' +
        'app (one 30-second step early or late is accepted; a step is accepted once) or one of the recovery ' +
        'codes (each works once). Signs in under a new session id. Wrong codes are throttled and locked per ' +
        'account like passwords (`LOGIN_MAX_CONSECUTIVE_FAILS`, then 429 for an hour).',
      signedIn: false,
      requestBody: { required: true, content: json(mfaLoginBody) },
      responses: {
        200: {
          description: 'Signed in: the user, and the session cookie.',
          headers: z.object({ 'Set-Cookie': setSessionCookieHeader('the new session.') }),
          content: json(userResponse),
        },
      },
      errors: ['validation_failed', 'mfa_challenge_expired', 'invalid_mfa_code', 'mfa_unavailable'],
    },
  },
  '/api/auth/mfa': {
    get: {
      operationId: 'getSecondFactor',
      tags: ['mfa'],
      summary: 'Whether a second factor is on, and how many recovery codes are left',
      openWithoutMfa: true,
      signedIn: true,
      responses: { 200: { description: 'The state of the factor.', content: json(mfaStatusResponse) } },
      errors: [],
    },
  },
  '/api/auth/mfa/enrolment': {
    post: {
      operationId: 'startSecondFactorEnrolment',
      tags: ['mfa'],
      summary: 'Start enrolling an authenticator app',
      openWithoutMfa: true,
      description:
        KEYS_OFF +
        'Needs the current password (its checks share the per-user budget of the password change). Returns ' +
        'the secret as an `otpauth://` URI, in base32 and as an SVG QR code: this once, never again. A ' +
        'started enrolment replaces one not yet confirmed.',
      signedIn: true,
      requestBody: { required: true, content: json(startEnrolmentBody) },
      responses: { 201: { description: 'What to scan.', content: json(enrolmentResponse) } },
      errors: ['validation_failed', 'not_found', 'invalid_current_password', 'mfa_already_enabled'],
    },
  },
  '/api/auth/mfa/enrolment/confirm': {
    post: {
      operationId: 'confirmSecondFactorEnrolment',
      tags: ['mfa'],
      summary: 'Turn the factor on with a first code',
      openWithoutMfa: true,
      description:
        KEYS_OFF +
        OTHER_SESSIONS_END +
        'Returns the ten recovery codes, shown this once: only their hashes are kept. An enrolment ' +
        `not confirmed within ${ENROLMENT_LIFETIME_S / 60} minutes is removed: 409 \`mfa_not_enabled\`, start again.`,
      signedIn: true,
      requestBody: { required: true, content: json(confirmEnrolmentBody) },
      responses: { 200: { description: 'The recovery codes.', content: json(recoveryCodesResponse) } },
      errors: [
        'validation_failed',
        'not_found',
        'invalid_mfa_code',
        'mfa_already_enabled',
        'mfa_not_enabled',
      ],
    },
  },
  '/api/auth/mfa/recovery-codes': {
    post: {
      operationId: 'regenerateRecoveryCodes',
      tags: ['mfa'],
      summary: 'Replace the recovery codes',
      description: 'Needs the current password. The old codes stop working; the ten new ones are shown once.',
      signedIn: true,
      requestBody: { required: true, content: json(regenerateRecoveryCodesBody) },
      responses: { 200: { description: 'The new recovery codes.', content: json(recoveryCodesResponse) } },
      errors: ['validation_failed', 'invalid_current_password', 'mfa_not_enabled'],
    },
  },
  '/api/auth/mfa/disable': {
    post: {
      operationId: 'disableSecondFactor',
      tags: ['mfa'],
      summary: 'Turn the second factor off',
      description:
        OTHER_SESSIONS_END +
        'Needs the current password and a code (or a recovery code), throttled like the code step.',
      signedIn: true,
      requestBody: { required: true, content: json(disableMfaBody) },
      responses: { 204: { description: 'The factor and its recovery codes are gone.' } },
      errors: [
        'validation_failed',
        'invalid_current_password',
        'mfa_not_enabled',
        'invalid_mfa_code',
        'mfa_unavailable',
      ],
    },
  },
  '/api/users/{id}/mfa': {
    delete: {
      operationId: 'resetSecondFactor',
      tags: ['mfa'],
      summary: "Remove a user's second factor (admin)",
      description:
        'For a user who lost the authenticator and the recovery codes. Every session of the user ends; the ' +
        'reset is logged and, with mail on, the user is told. Not for your own factor (403: use disable).',
      signedIn: true,
      requestParams: { path: userIdParams },
      responses: { 204: { description: 'The factor is gone.' } },
      errors: ['validation_failed', 'forbidden', 'not_found'],
    },
  },
});
