import { z } from 'zod';
import { userIdParams } from '../users/users.schemas';

/**
 * The body of the routes that end a user's own sessions: their current password, as every other
 * password-guarded change asks (ASVS 5.0 7.5.2).
 */
export const endOwnSessionsBody = z.strictObject({ currentPassword: z.string().max(1024) });

/** A session's public handle (SessionIndex.handleOf): 128 bits, base64url, never the session id. */
const sessionHandle = z
  .string()
  .regex(/^[A-Za-z0-9_-]{22}$/, 'must be a session id from the list of sessions')
  .meta({ description: 'The handle of a session, from the list of sessions.' });

export const sessionHandleParams = z.strictObject({ sessionId: sessionHandle });

/** `/api/users/{id}/sessions/{sessionId}`: whose session, and which. */
export const userSessionParams = userIdParams.extend({ sessionId: sessionHandle });

/** One session as its owner (or an admin) sees it: nothing in it is a credential. */
export const sessionResponse = z.strictObject({
  id: sessionHandle.meta({
    description:
      'A handle for this session, to end it by; not the session cookie, which no answer ever shows.',
  }),
  createdAt: z.iso.datetime().meta({ description: 'When it signed in.' }),
  lastSeenAt: z.iso.datetime().meta({
    description:
      'When it was last renewed: a session in use is renewed at most once a minute (every min(60 s, ' +
      '`SESSION_IDLE_TIMEOUT_S` / 10)), so this trails its last request by up to that interval.',
  }),
  expiresAt: z.iso.datetime().meta({
    description:
      'When it ends at the latest (`SESSION_ABSOLUTE_TIMEOUT_S` after sign-in); idleness ends it sooner.',
  }),
  clientAddress: z.string().meta({
    description: 'The network it signed in from: IPv4 cut to /24, IPv6 to /48; `unknown` when none was seen.',
  }),
  userAgent: z.string().meta({
    description:
      'The browser and system it signed in with, in short (`Firefox on Linux`), or `Unknown browser`.',
  }),
  current: z.boolean().meta({ description: 'True for the session that made this request.' }),
});
export type SessionResponse = z.output<typeof sessionResponse>;

/** Newest sign-in first. */
export const sessionListResponse = z.strictObject({ data: z.array(sessionResponse) });

export const endedSessionsResponse = z.strictObject({
  ended: z.int().min(0).meta({ description: 'How many sessions this ended.' }),
});
