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

/**
 * Sessions as resources (ASVS 5.0 7.5.2): a user lists and ends their own under /api/auth/sessions, an
 * admin those of any user under /api/users/{id}/sessions, and every session of every user with
 * DELETE /api/sessions. Sessions are named by their handle, never by their id. Paths are written in
 * full here (the router is mounted on /api) so the three families read together.
 */
export function createUserSessionsRouter(deps: {
  config: AppConfig;
  index: SessionIndex;
  userSessions: UserSessions;
  usersService: UsersService;
}): Router {
  const { config, index, userSessions, usersService } = deps;
  const router = Router();

  /** After a session named by handle has ended: logged; when it was the caller's, a logout, cookie and all. */
  async function endedOne(req: Request, res: Response, userId: string, handle: string, sid: string) {
    logSecurityEvent(req, 'session.ended', { targetUserId: userId, scope: 'one', endedSessions: [handle] });
    if (sid === req.sessionID) await endSession(req, res, index, config);
    res.status(204).end();
  }

  /** After every session of the user but the caller's has ended: logged, and answered with the count. */
  function endedAllButCurrent(req: Request, res: Response, userId: string, ended: number) {
    logSecurityEvent(req, 'session.ended', { targetUserId: userId, scope: 'all_but_current', ended });
    res.json({ ended });
  }

  router.get('/auth/sessions', requireAuth, async (req, res) => {
    res.json({ data: await userSessions.list(req.user!, req.sessionID) });
  });

  router.delete('/auth/sessions', requireAuth, async (req, res) => {
    const { currentPassword } = validate(endOwnSessionsBody, req.body, 'body');
    const userId = req.user!.id;
    const ended = await userSessions.endOwnOthers(userId, req.sessionID, currentPassword);
    endedAllButCurrent(req, res, userId, ended);
  });

  router.delete('/auth/sessions/:sessionId', requireAuth, async (req, res) => {
    const { sessionId } = validate(sessionHandleParams, req.params, 'params');
    const { currentPassword } = validate(endOwnSessionsBody, req.body, 'body');
    const userId = req.user!.id;
    const sid = await userSessions.endOwn(userId, sessionId, currentPassword);
    await endedOne(req, res, userId, sessionId, sid);
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
    endedAllButCurrent(req, res, user.id, await userSessions.endAllBut(user.id, req.sessionID));
  });

  router.delete('/users/:id/sessions/:sessionId', requireRole('admin'), async (req, res) => {
    const { id, sessionId } = validate(userSessionParams, req.params, 'params');
    const user = await usersService.getUser(req.user!, id);
    await endedOne(req, res, user.id, sessionId, await userSessions.endOne(user.id, sessionId));
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
