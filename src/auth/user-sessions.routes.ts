import { Router, type Request, type Response } from 'express';
import type { AppConfig } from '../../config/config';
import type { RouteKey } from '../http/require-verified-email';
import { requireAuth, requireRole } from '../http/require-auth';
import { logSecurityEvent } from '../http/security-events';
import { validate } from '../http/validate';
import { userIdParams } from '../users/users.schemas';
import type { UsersService } from '../users/users.service';
import { endSession, type SessionIndex } from './sessions';
import type { UserSessions } from './user-sessions';
import { endOwnSessionsBody, sessionHandleParams, userSessionParams } from './user-sessions.schemas';

/**
 * Ending one's own sessions is what someone does who fears their account is in use elsewhere, and a
 * user whose address is not verified yet may be that someone (their password leaked before they found
 * the mail): REQUIRE_VERIFIED_EMAIL leaves them their list and the means to end sessions.
 */
export const UNVERIFIED_SESSION_ROUTES: readonly RouteKey[] = [
  'GET /api/auth/sessions',
  'DELETE /api/auth/sessions',
  'DELETE /api/auth/sessions/{sessionId}',
];

/** What ending sessions needs, for the API routes here and the sessions page (src/web). */
export interface EndSessionsDeps {
  config: AppConfig;
  index: SessionIndex;
  userSessions: UserSessions;
}

/** Logs that a session named by handle ended; when it was the caller's own, ends it as a logout does. */
async function recordEndedOne(
  req: Request,
  res: Response,
  deps: EndSessionsDeps,
  ended: { userId: string; handle: string; sid: string },
): Promise<void> {
  const { userId, handle, sid } = ended;
  logSecurityEvent(req, 'session.ended', { targetUserId: userId, scope: 'one', endedSessions: [handle] });
  if (sid === req.sessionID) await endSession(req, res, deps.index, deps.config);
}

/**
 * The signed-in user ends one of their sessions, proving their password (the API and the page share
 * this, so both log alike); true when it was the session making the request, which is then over.
 */
export async function endOwnSessionAndRecord(
  req: Request,
  res: Response,
  deps: EndSessionsDeps,
  handle: string,
  currentPassword: string,
): Promise<boolean> {
  const userId = req.user!.id;
  const sid = await deps.userSessions.endOwn(userId, handle, currentPassword);
  await recordEndedOne(req, res, deps, { userId, handle, sid });
  return sid === req.sessionID;
}

/** Logs that every session of a user but the caller's ended, and how many. */
function recordEndedAllButCurrent(req: Request, userId: string, ended: number): void {
  logSecurityEvent(req, 'session.ended', { targetUserId: userId, scope: 'all_but_current', ended });
}

/** The signed-in user ends every other session of theirs, proving their password; returns how many. */
export async function endOwnOthersAndRecord(
  req: Request,
  deps: EndSessionsDeps,
  currentPassword: string,
): Promise<number> {
  const userId = req.user!.id;
  const ended = await deps.userSessions.endOwnOthers(userId, req.sessionID, currentPassword);
  recordEndedAllButCurrent(req, userId, ended);
  return ended;
}

/**
 * Sessions as resources (ASVS 5.0 7.5.2): a user lists and ends their own under /api/auth/sessions, an
 * admin those of any user under /api/users/{id}/sessions, and every session of every user with
 * DELETE /api/sessions. Sessions are named by their handle, never by their id. Paths are written in
 * full here (the router is mounted on /api) so the three families read together.
 */
export function createUserSessionsRouter(deps: EndSessionsDeps & { usersService: UsersService }): Router {
  const { config, index, userSessions, usersService } = deps;
  const router = Router();

  router.get('/auth/sessions', requireAuth, async (req, res) => {
    res.json({ data: await userSessions.list(req.user!, req.sessionID) });
  });

  router.delete('/auth/sessions', requireAuth, async (req, res) => {
    const { currentPassword } = validate(endOwnSessionsBody, req.body, 'body');
    res.json({ ended: await endOwnOthersAndRecord(req, deps, currentPassword) });
  });

  router.delete('/auth/sessions/:sessionId', requireAuth, async (req, res) => {
    const { sessionId } = validate(sessionHandleParams, req.params, 'params');
    const { currentPassword } = validate(endOwnSessionsBody, req.body, 'body');
    await endOwnSessionAndRecord(req, res, deps, sessionId, currentPassword);
    res.status(204).end();
  });

  // An admin's view of anyone's sessions. The user is read first, so an unknown id is a 404 rather
  // than an empty list that looks like a user without sessions.
  router.get('/users/:id/sessions', requireRole('admin'), async (req, res) => {
    const { id } = validate(userIdParams, req.params, 'params');
    const user = await usersService.getUser(req.user!, id);
    res.json({ data: await userSessions.list(user, req.sessionID) });
  });

  router.delete('/users/:id/sessions', requireRole('admin'), async (req, res) => {
    const { id } = validate(userIdParams, req.params, 'params');
    const user = await usersService.getUser(req.user!, id);
    const ended = await userSessions.endAllBut(user.id, req.sessionID);
    recordEndedAllButCurrent(req, user.id, ended);
    res.json({ ended });
  });

  router.delete('/users/:id/sessions/:sessionId', requireRole('admin'), async (req, res) => {
    const { id, sessionId } = validate(userSessionParams, req.params, 'params');
    const user = await usersService.getUser(req.user!, id);
    const sid = await userSessions.endOne(user.id, sessionId);
    await recordEndedOne(req, res, deps, { userId: user.id, handle: sessionId, sid });
    res.status(204).end();
  });

  // Every session of every user, the caller's included: after a suspected breach (a leaked session
  // secret, a compromised admin), everyone signs in again. Logged at warn level.
  router.delete('/sessions', requireRole('admin'), async (req, res) => {
    const users = await usersService.endEverySession();
    logSecurityEvent(req, 'session.every_user_ended', { users });
    await endSession(req, res, index, config);
    res.status(204).end();
  });

  return router;
}
