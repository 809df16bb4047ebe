import cookieParser from 'cookie-parser';
import { Router, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import {
  endOwnOthersAndRecord,
  endOwnSessionAndRecord,
  type EndSessionsDeps,
} from '../auth/user-sessions.routes';
import { sessionHandleParams, type SessionResponse } from '../auth/user-sessions.schemas';
import { InvalidCurrentPasswordError, NotFoundError } from '../errors';
import type { RouteKey } from '../http/require-verified-email';
import { logRefusal } from '../http/security-events';
import { CSRF_FIELD, type Csrf } from './csrf';
import { formBody } from './form-body';
import { createFormRenderer } from './form-page';
import type { Views } from './views';

/** Seeing and ending one's sessions stays open to an unverified user, as in the API (user-sessions.routes.ts). */
export const UNVERIFIED_SESSION_PAGES: readonly RouteKey[] = ['GET /sessions', 'POST /sessions/end'];

/** The button pressed: a session's handle, or `others` for every session but this one. */
const OTHERS = 'others';
const endForm = z.strictObject({
  [CSRF_FIELD]: z.string(),
  currentPassword: z.string().min(1).max(1024),
  end: z.union([z.literal(OTHERS), sessionHandleParams.shape.sessionId]),
});

/** `2026-11-30 11:36 UTC`: the page shows one time zone to everyone rather than guess the reader's. */
const minuteOf = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;

const toRow = (s: SessionResponse) => ({
  ...s,
  createdAt: minuteOf(s.createdAt),
  lastSeenAt: minuteOf(s.lastSeenAt),
});

/**
 * GET /sessions lists the signed-in user's sessions; POST /sessions/end ends one of them, or every
 * other one, with the user's password (ASVS 5.0 7.5.2), through the API's use case and events. One
 * form: a required choice of session (radio buttons), the password and one button, so pressing Enter
 * in the password field can only do what was chosen, and no script is needed (the strict CSP holds).
 * The current session is ended by the ordinary logout form, which needs no password.
 */
export function createSessionsPages(deps: EndSessionsDeps & { views: Views; csrf: Csrf }): Router {
  const { views, csrf, userSessions } = deps;
  const cookies = cookieParser();
  const router = Router();
  const render = createFormRenderer(views, csrf);

  const renderSessions = async (req: Request, res: Response, status: number, message = '') => {
    const sessions = await userSessions.list(req.user!, req.sessionID);
    render(req, res, status, 'sessions', { title: 'Your sessions', sessions: sessions.map(toRow), message });
  };

  const signedInOrToLogin: RequestHandler = (req, res, next) =>
    req.user ? next() : res.redirect(303, '/login?next=%2Fsessions');

  router.get('/sessions', cookies, signedInOrToLogin, (req, res) => renderSessions(req, res, 200));

  router.post('/sessions/end', cookies, formBody, signedInOrToLogin, csrf.verify, async (req, res) => {
    const form = endForm.safeParse(req.body);
    if (!form.success) return renderSessions(req, res, 400, 'Enter your password, then choose a session.');
    const { end, currentPassword } = form.data;
    try {
      if (end === OTHERS) {
        await endOwnOthersAndRecord(req, deps, currentPassword);
      } else if (await endOwnSessionAndRecord(req, res, deps, end, currentPassword)) {
        // It was this browser's own session: signed out.
        return res.redirect(303, '/login');
      }
    } catch (error) {
      // A wrong password and a session that ended meanwhile are the user's to read on this page; a
      // spent budget (429) or an outage goes to the error page.
      if (!(error instanceof InvalidCurrentPasswordError || error instanceof NotFoundError)) throw error;
      logRefusal(req, error);
      const message =
        error instanceof NotFoundError ? 'That session has ended already.' : 'The password is incorrect.';
      return renderSessions(req, res, error.status, message);
    }
    // 303: a reload shows the list again instead of posting the password a second time.
    res.redirect(303, '/sessions');
  });

  return router;
}
