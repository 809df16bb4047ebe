import request from 'supertest';
import { expectError } from '../support/assertions';
import { login, me, signedIn } from '../support/factories';
import { eventOf } from '../support/log-lines';
import { sessionKey, sidOf, userSessionsKey } from '../support/sessions';
import { useTestApp } from '../support/use-test-app';

interface SessionJson {
  id: string;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  clientAddress: string;
  userAgent: string;
  current: boolean;
}

const FIREFOX_LINUX = 'Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0';
const SAFARI_IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1';

// ASVS 5.0 7.5.2: a user sees their active sessions and ends any of them, themselves.
describe('a user lists and ends their own sessions (ASVS 7.5.2)', () => {
  // One proxy hop is trusted, so each login can come from the address the test gives it.
  const t = useTestApp({ TRUST_PROXY: '1' });

  const listWith = async (cookie: string) => {
    const res = await request(t.app).get('/api/auth/sessions').set('Cookie', cookie);
    expect(res.status).toBe(200);
    return res;
  };

  /** A user signed in twice: on a laptop (IPv4) and on a phone (IPv6). */
  async function twoDevices() {
    const creds = await signedIn(t);
    const laptop = await login(t, creds, { 'X-Forwarded-For': '203.0.113.77', 'User-Agent': FIREFOX_LINUX });
    const phone = await login(t, creds, {
      'X-Forwarded-For': '2001:db8:1234:5678::abcd',
      'User-Agent': SAFARI_IPHONE,
    });
    return { ...creds, laptop, phone };
  }

  test('when a user lists their sessions, then each shows its sign-in time, last renewal, truncated network and browser, and only the current one is flagged', async () => {
    const { laptop } = await twoDevices();

    const res = await listWith(laptop);

    const sessions = res.body.data as SessionJson[];
    expect(sessions).toHaveLength(3);
    const [newest, middle] = sessions;
    expect(newest).toMatchObject({
      clientAddress: '2001:db8:1234::/48',
      userAgent: 'Safari on iOS',
      current: false,
    });
    expect(middle).toMatchObject({
      clientAddress: '203.0.113.0/24',
      userAgent: 'Firefox on Linux',
      current: true,
    });
    expect(sessions.filter((s) => s.current)).toHaveLength(1);
    for (const s of sessions) {
      expect(Object.keys(s).sort()).toEqual(
        ['clientAddress', 'createdAt', 'current', 'expiresAt', 'id', 'lastSeenAt', 'userAgent'].sort(),
      );
      expect(s.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(Date.parse(s.lastSeenAt)).toBeGreaterThanOrEqual(Date.parse(s.createdAt));
      expect(Date.parse(s.expiresAt) - Date.parse(s.createdAt)).toBe(
        t.config.session.absoluteTimeoutS * 1000,
      );
    }
    // Newest sign-in first.
    expect(sessions.map((s) => s.createdAt)).toEqual(
      sessions
        .map((s) => s.createdAt)
        .sort()
        .reverse(),
    );
    // The whole address never leaves the session data, let alone the answer.
    expect(res.text).not.toContain('203.0.113.77');
    expect(res.text).not.toContain('abcd');
    expect(JSON.stringify(await t.redis.get(sessionKey(t, sidOf(laptop))))).not.toContain('203.0.113.77');
  });

  test('when sessions are listed, then no session id appears in the answer or in the log: they are bearer credentials', async () => {
    const { laptop, phone, cookie } = await twoDevices();

    const res = await listWith(phone);

    for (const sid of [laptop, phone, cookie].map(sidOf)) {
      expect(res.text).not.toContain(sid);
      expect(t.rawLogs()).not.toContain(sid);
    }
  });

  test('when a user ends one of their other sessions, then exactly that one is over (its next request is 401) and the rest continue', async () => {
    const { user, password, laptop, phone, cookie } = await twoDevices();
    const phoneHandle = (await listWith(phone)).body.data.find((s: SessionJson) => s.current).id as string;

    const res = await request(t.app)
      .delete(`/api/auth/sessions/${phoneHandle}`)
      .set('Cookie', laptop)
      .send({ currentPassword: password });

    expect(res.status).toBe(204);
    expectError(await me(t, phone), 401, 'unauthenticated');
    expect((await me(t, laptop)).status).toBe(200);
    expect((await me(t, cookie)).status).toBe(200);
    expect(await t.redis.exists(sessionKey(t, sidOf(phone)))).toBe(0);
    expect(await t.redis.zScore(userSessionsKey(t, user.id), sidOf(phone))).toBeNull();
    // The other session's cookie is not touched: only the one that asked could be cleared.
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(eventOf(t, res, 'session.ended')).toMatchObject({
      level: 'info',
      targetUserId: user.id,
      scope: 'one',
      endedSessions: [phoneHandle],
    });
  });

  test('when a user ends their current session by its handle, then it is a logout: the cookie is cleared with Clear-Site-Data', async () => {
    const { password, laptop, phone } = await twoDevices();
    const own = (await listWith(laptop)).body.data.find((s: SessionJson) => s.current).id as string;

    const res = await request(t.app)
      .delete(`/api/auth/sessions/${own}`)
      .set('Cookie', laptop)
      .send({ currentPassword: password });

    expect(res.status).toBe(204);
    expect(res.headers['clear-site-data']).toBe('"cache", "storage"');
    expect(res.headers['set-cookie']?.[0]).toMatch(/^sid=;/);
    expectError(await me(t, laptop), 401, 'unauthenticated');
    expect((await me(t, phone)).status).toBe(200);
  });

  test('when a user ends all their other sessions, then every one but the current is over', async () => {
    const { user, password, laptop, phone, cookie } = await twoDevices();

    const res = await request(t.app)
      .delete('/api/auth/sessions')
      .set('Cookie', phone)
      .send({ currentPassword: password });

    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ended: 2 });
    expect((await me(t, phone)).status).toBe(200);
    expectError(await me(t, laptop), 401, 'unauthenticated');
    expectError(await me(t, cookie), 401, 'unauthenticated');
    expect(await t.redis.zRange(userSessionsKey(t, user.id), 0, -1)).toEqual([sidOf(phone)]);
    expect(eventOf(t, res, 'session.ended')).toMatchObject({ scope: 'all_but_current', ended: 2 });
  });

  test("when a user names another user's session, then 404 exactly as for a handle that never existed, and that session lives on", async () => {
    const mine = await signedIn(t);
    const theirs = await signedIn(t);
    const theirHandle = (await listWith(theirs.cookie)).body.data[0].id as string;

    const foreign = await request(t.app)
      .delete(`/api/auth/sessions/${theirHandle}`)
      .set('Cookie', mine.cookie)
      .send({ currentPassword: mine.password });
    const unknown = await request(t.app)
      .delete(`/api/auth/sessions/${'A'.repeat(22)}`)
      .set('Cookie', mine.cookie)
      .send({ currentPassword: mine.password });

    expectError(foreign, 404, 'not_found');
    expectError(unknown, 404, 'not_found');
    expect(foreign.body.error.message).toBe(unknown.body.error.message);
    expect((await me(t, theirs.cookie)).status).toBe(200);
  });

  test('when the handle is not of the handle shape (a raw session id, say), then 400 before any lookup', async () => {
    const { cookie } = await signedIn(t);

    const res = await request(t.app)
      .delete(`/api/auth/sessions/${sidOf(cookie)}`)
      .set('Cookie', cookie)
      .send({ currentPassword: 'irrelevant' });

    expectError(res, 400, 'validation_failed');
    expect((await me(t, cookie)).status).toBe(200);
  });

  // ASVS 5.0 7.5.2: "having authenticated again with at least one factor".
  test.each([
    ['one other session', (handle: string) => `/api/auth/sessions/${handle}`],
    ['every other session', () => '/api/auth/sessions'],
  ])(
    'when a user ends %s without their current password, or with a wrong one, then it is refused and every session continues',
    async (_what, path) => {
      const { laptop, phone } = await twoDevices();
      const phoneHandle = (await listWith(phone)).body.data.find((s: SessionJson) => s.current).id as string;

      const missing = await request(t.app).delete(path(phoneHandle)).set('Cookie', laptop);
      const wrong = await request(t.app)
        .delete(path(phoneHandle))
        .set('Cookie', laptop)
        .send({ currentPassword: 'not the password at all' });

      expectError(missing, 400, 'validation_failed');
      expectError(wrong, 403, 'invalid_current_password');
      expect(eventOf(t, wrong, 'auth.reauth_failed')).toBeDefined();
      expect((await me(t, phone)).status).toBe(200);
      expect((await me(t, laptop)).status).toBe(200);
    },
  );

  test('when nobody is signed in, then listing and ending answer 401', async () => {
    expectError(await request(t.app).get('/api/auth/sessions'), 401, 'unauthenticated');
    expectError(await request(t.app).delete('/api/auth/sessions'), 401, 'unauthenticated');
  });

  test('when a session from before a password change is still in Redis, then the list leaves it out', async () => {
    const creds = await signedIn(t);
    const other = await login(t, creds);
    // The other session is refused from now on (loadSessionUser compares epochs), whatever Redis holds.
    await t.db.query('UPDATE users SET session_epoch = session_epoch + 1 WHERE id = $1', [creds.user.id]);
    const fresh = await login(t, creds);

    const listed = (await listWith(fresh)).body.data as SessionJson[];

    expect(listed).toHaveLength(1);
    expect(listed[0]!.current).toBe(true);
    expect(await t.redis.exists(sessionKey(t, sidOf(other)))).toBe(1);
  });
});
