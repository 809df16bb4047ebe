import request from 'supertest';
import { expectError } from '../support/assertions';
import { login, signedIn } from '../support/factories';
import { parseSetCookie, setCookies, sessionKey, sidOf, userSessionsKey } from '../support/sessions';
import { useTestApp } from '../support/use-test-app';

describe('POST /api/auth/logout', () => {
  const t = useTestApp();

  // ASVS 5.0 7.4.1: a logged-out session cannot be used.
  test('when signed in, then 204, the cookie is cleared and dead, and Redis forgets the session', async () => {
    const { user, cookie } = await signedIn(t);
    const sid = sidOf(cookie);
    expect(await t.redis.exists(sessionKey(t, sid))).toBe(1);

    const res = await request(t.app).post('/api/auth/logout').set('Cookie', cookie);

    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    const lines = setCookies(res);
    expect(lines).toHaveLength(1);
    const cleared = parseSetCookie(lines[0]!);
    expect(cleared.name).toBe('sid');
    expect(cleared.value).toBe('');
    expect(cleared.attributes.get('path')).toBe('/');
    expect(new Date(cleared.attributes.get('expires')!).getTime()).toBeLessThan(Date.now());
    expect(await t.redis.exists(sessionKey(t, sid))).toBe(0);
    expect(await t.redis.zScore(userSessionsKey(t, user.id), sid)).toBeNull();
    const after = await request(t.app).get('/api/auth/me').set('Cookie', cookie);
    expectError(after, 401, 'unauthenticated');
  });

  // ASVS 5.0 14.3.1: data the browser holds for the site is cleared when the session ends.
  test('when signed in, then the logout tells the browser to clear the cache and storage of the site (ASVS 14.3.1)', async () => {
    const { cookie } = await signedIn(t);

    const res = await request(t.app).post('/api/auth/logout').set('Cookie', cookie);

    expect(res.status).toBe(204);
    expect(res.headers['clear-site-data']).toBe('"cache", "storage"');
  });

  test('when there is no session to end, then no Clear-Site-Data is sent: nothing of a user was there', async () => {
    const res = await request(t.app).post('/api/auth/logout');

    expect(res.headers['clear-site-data']).toBeUndefined();
  });

  test('when a user logs out of one session, then their other sessions continue', async () => {
    const first = await signedIn(t);
    const second = await login(t, first);

    await request(t.app).post('/api/auth/logout').set('Cookie', first.cookie).expect(204);

    expect((await request(t.app).get('/api/auth/me').set('Cookie', second)).status).toBe(200);
  });

  test('when there is no session, then 401 unauthenticated and no cookie is set', async () => {
    const res = await request(t.app).post('/api/auth/logout');
    expectError(res, 401, 'unauthenticated');
    expect(setCookies(res)).toEqual([]);
  });

  test('when the session was already logged out, then a second logout with the same cookie is 401', async () => {
    const { cookie } = await signedIn(t);
    await request(t.app).post('/api/auth/logout').set('Cookie', cookie).expect(204);

    const res = await request(t.app).post('/api/auth/logout').set('Cookie', cookie);

    expectError(res, 401, 'unauthenticated');
  });
});
