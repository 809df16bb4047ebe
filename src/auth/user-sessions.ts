import type { AppConfig } from '../../config/config';
import { NotFoundError } from '../errors';
import type { User } from '../users/user';
import type { Reauthentication } from './reauthentication';
import type { SessionIndex } from './sessions';
import type { SessionResponse } from './user-sessions.schemas';

/**
 * A user's own view of their sessions, and ending them by handle (ASVS 5.0 7.5.2): the use cases behind
 * `/api/auth/sessions`, `/api/users/{id}/sessions` and the sessions page. Every lookup starts from the
 * user's own index, so a handle of someone else's session is simply not found: the same 404 as a
 * handle that never existed, and no way to learn which.
 *
 * A user ends their own sessions only with their current password (7.5.2: "having authenticated again
 * with at least one factor"): otherwise whoever stole one session could sign the owner out everywhere
 * else and keep the account to themselves. The check is the one of every password-guarded change, on
 * the same per-user budget (reauthentication.ts). Signing out of the session at hand needs none: that
 * is logout, which must stay one click away (7.4.4). An admin ends anyone's sessions on the role alone.
 * The choices (handles, what is kept of the client, the limit) are in ADR 0028.
 */
export function createUserSessions(deps: {
  config: AppConfig;
  index: SessionIndex;
  reauthentication: Reauthentication;
}) {
  const { config, index, reauthentication } = deps;

  /** The id behind `handle` among the user's sessions, or a 404. */
  async function sidOf(userId: string, handle: string): Promise<string> {
    const sid = (await index.sidsOf(userId)).find((listed) => index.handleOf(listed) === handle);
    if (!sid) throw new NotFoundError('There is no such session.');
    return sid;
  }

  return {
    /**
     * The user's live sessions, newest sign-in first; `currentSid` is flagged. A session that Redis
     * still holds but that no longer serves is left out: expired, or from an older session epoch (a
     * password change or "end every session" moved it; loadSessionUser would refuse it on its next
     * request), so the list never shows a session its owner cannot end because it is over already.
     */
    async list(user: Pick<User, 'id' | 'sessionEpoch'>, currentSid?: string): Promise<SessionResponse[]> {
      const now = Date.now();
      const absoluteMs = config.session.absoluteTimeoutS * 1000;
      return (await index.sessionsOf(user.id))
        .flatMap(({ sid, data }) => {
          if (!data?.authenticatedAt || data.userId !== user.id || data.epoch !== user.sessionEpoch)
            return [];
          const expiresAt = data.authenticatedAt + absoluteMs;
          if (expiresAt <= now) return [];
          return [
            {
              id: index.handleOf(sid),
              createdAt: new Date(data.authenticatedAt).toISOString(),
              lastSeenAt: new Date(data.renewedAt ?? data.authenticatedAt).toISOString(),
              expiresAt: new Date(expiresAt).toISOString(),
              clientAddress: data.clientAddress ?? 'unknown',
              userAgent: data.userAgent ?? 'Unknown browser',
              current: sid === currentSid,
            },
          ];
        })
        .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    },

    /**
     * Ends the user's session named `handle` once `currentPassword` is theirs; returns its id (it may be
     * the caller's own). The handle is looked up first: an unknown one costs no password check.
     */
    async endOwn(userId: string, handle: string, currentPassword: string): Promise<string> {
      const sid = await sidOf(userId, handle);
      await reauthentication.verifyCurrentPassword(userId, currentPassword);
      await index.end(userId, sid);
      return sid;
    },

    /** Ends every session of the user but `keepSid`, once `currentPassword` is theirs; returns how many. */
    async endOwnOthers(userId: string, keepSid: string, currentPassword: string): Promise<number> {
      await reauthentication.verifyCurrentPassword(userId, currentPassword);
      return index.revokeAll(userId, keepSid);
    },

    /** An admin's: ends the user's session named `handle`; returns its id. */
    async endOne(userId: string, handle: string): Promise<string> {
      const sid = await sidOf(userId, handle);
      await index.end(userId, sid);
      return sid;
    },

    /** An admin's: ends every session of the user but `keepSid` (the admin's own); returns how many. */
    endAllBut: (userId: string, keepSid: string): Promise<number> => index.revokeAll(userId, keepSid),
  };
}

export type UserSessions = ReturnType<typeof createUserSessions>;
