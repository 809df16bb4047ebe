import request from 'supertest';
import { expectError } from '../support/assertions';
import { signedIn } from '../support/factories';
import { sidOf, signedSessionCookie } from '../support/sessions';
import { TEST_SESSION_SECRET } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';

describe('GET /api/auth/me', () => {
  const t = useTestApp();

  test('when signed in, then 200 with exactly the public user fields and no password hash', async () => {
    const { user, email, cookie } = await signedIn(t);

    const res = await request(t.app).get('/api/auth/me').set('Cookie', cookie);

    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      id: user.id,
      email,
      name: user.name,
      role: 'user',
      createdAt: user.createdAt.toISOString(),
      updatedAt: user.updatedAt.toISOString(),
      emailVerifiedAt: null,
    });
    expect(res.text).not.toMatch(/argon2|password|hash/i);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  test('when no cookie is sent, then 401 unauthenticated', async () => {
    const res = await request(t.app).get('/api/auth/me');
    expect(res.status).toBe(401);
    expect(res.body.error).toEqual({
      code: 'unauthenticated',
      message: expect.any(String),
      requestId: res.headers['x-request-id'],
    });
  });

  test.each([
    ['garbage', 'sid=garbage'],
    ['an unsigned session id', 'sid=s%3Aabcdefghijklmnop'],
    ['an empty value', 'sid='],
  ])('when the cookie is %s, then 401 unauthenticated', async (_case, cookie) => {
    const res = await request(t.app).get('/api/auth/me').set('Cookie', cookie);
    expectError(res, 401, 'unauthenticated');
  });

  // ASVS 5.0 7.2.1: the server verifies every session token.
  test('when the signature of a real session cookie is tampered with, then 401 and the session itself survives', async () => {
    const { cookie } = await signedIn(t);
    const lastChar = cookie.at(-1)!;
    const tampered = cookie.slice(0, -1) + (lastChar === 'A' ? 'B' : 'A');

    const res = await request(t.app).get('/api/auth/me').set('Cookie', tampered);

    expectError(res, 401, 'unauthenticated');
    expect((await request(t.app).get('/api/auth/me').set('Cookie', cookie)).status).toBe(200);
  });

  test('when a real session id is signed with another secret, then 401', async () => {
    const { cookie } = await signedIn(t);
    const forged = signedSessionCookie('sid', sidOf(cookie), `${TEST_SESSION_SECRET}-not`);

    const res = await request(t.app).get('/api/auth/me').set('Cookie', forged);

    expectError(res, 401, 'unauthenticated');
  });

  test('when the session id part of a real cookie is changed, then 401', async () => {
    const { cookie } = await signedIn(t);
    const sid = sidOf(cookie);
    const otherSid = (sid[0] === 'a' ? 'b' : 'a') + sid.slice(1);
    const tampered = cookie.replace(sid, otherSid);

    const res = await request(t.app).get('/api/auth/me').set('Cookie', tampered);

    expectError(res, 401, 'unauthenticated');
  });
});
