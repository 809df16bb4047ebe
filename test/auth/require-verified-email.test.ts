import type { Router } from 'express';
import request from 'supertest';
import { expectError } from '../support/assertions';
import { createBrowser, csrfTokenIn, signInThroughForm } from '../support/browser';
import { resendVerification, verifyEmail, verifyTokenMailedTo } from '../support/email-verification';
import { createUser, login, me, sessionCookie, signedIn, uniqueEmail } from '../support/factories';
import { eventOf } from '../support/log-lines';
import { mountedRouter, routerStack } from '../support/openapi';
import { mailingThrough, useSmtpServer } from '../support/password-reset';
import type { TestApp } from '../support/test-app';
import { useTestApp, withTestApp } from '../support/use-test-app';

/**
 * REQUIRE_VERIFIED_EMAIL through the real app: what a signed-in user whose address is not verified may
 * still do, what they are refused, and that nobody else notices the setting.
 */

const NEW_PASSWORD = 'a brand new passphrase for 2027';

/** Every request the allow-list does not name, as an unverified user would send it. */
function blockedRequests(t: TestApp, userId: string, cookie: string) {
  const api = () => request(t.app);
  return {
    'GET /api/users/:id (self)': api().get(`/api/users/${userId}`).set('Cookie', cookie),
    'PATCH /api/users/:id (own name)': api()
      .patch(`/api/users/${userId}`)
      .set('Cookie', cookie)
      .send({ name: 'Renamed' }),
    'DELETE /api/users/:id (self)': api().delete(`/api/users/${userId}`).set('Cookie', cookie),
    'GET /api/users': api().get('/api/users').set('Cookie', cookie),
    'PUT /api/auth/password': api()
      .put('/api/auth/password')
      .set('Cookie', cookie)
      .send({ currentPassword: 'x', newPassword: NEW_PASSWORD }),
    'POST /api/auth/password-reset': api()
      .post('/api/auth/password-reset')
      .set('Cookie', cookie)
      .send({ email: uniqueEmail() }),
    'GET /API/users/:id/ (another spelling)': api().get(`/API/users/${userId}/`).set('Cookie', cookie),
    'GET /api/no-such-route': api().get('/api/no-such-route').set('Cookie', cookie),
    // The allow-listed `DELETE /api/auth/sessions/{sessionId}` stands for one segment, never more.
    'DELETE /api/auth/sessions/{sessionId}/more': api()
      .delete(`/api/auth/sessions/${'A'.repeat(22)}/more`)
      .set('Cookie', cookie),
    'GET /api/users/:id/sessions (own, admin path)': api()
      .get(`/api/users/${userId}/sessions`)
      .set('Cookie', cookie),
  };
}

describe('REQUIRE_VERIFIED_EMAIL on', () => {
  const smtp = useSmtpServer();
  const t = useTestApp(mailingThrough(smtp, { REQUIRE_VERIFIED_EMAIL: 'true' }));

  test('when an unverified user calls any route off the allow-list, then 403 email_unverified, logged as a refused authorization', async () => {
    const { user, cookie } = await signedIn(t);

    const answers = blockedRequests(t, user.id, cookie);

    for (const [name, pending] of Object.entries(answers)) {
      const res = await pending;
      expect({ name, status: res.status, code: res.body?.error?.code }).toEqual({
        name,
        status: 403,
        code: 'email_unverified',
      });
      expectError(res, 403, 'email_unverified');
      expect(eventOf(t, res, 'authz.denied')).toMatchObject({ reason: 'email_unverified' });
    }
    // Nothing was done: the account still exists under its old name.
    expect((await me(t, cookie)).body).toMatchObject({ id: user.id, name: user.name });
  });

  test('when an unverified user uses the allow-listed routes, then each answers as usual', async () => {
    const account = await createUser(t);
    const cookie = await login(t, account);

    const whoAmI = await me(t, cookie);
    const head = await request(t.app).head('/api/auth/me').set('Cookie', cookie);
    const resend = await resendVerification(t, cookie);
    const againLogin = await request(t.app)
      .post('/api/auth/login')
      .set('Cookie', cookie)
      .send({ email: account.email, password: account.password });
    // Signing in again starts a new session under a new id: that one signs out.
    const newCookie = sessionCookie(againLogin)!;
    const logout = await request(t.app).post('/api/auth/logout').set('Cookie', newCookie);

    expect(whoAmI.status).toBe(200);
    expect(whoAmI.body.emailVerifiedAt).toBeNull();
    expect(head.status).toBe(200);
    expect(resend.status).toBe(202);
    expect(againLogin.status).toBe(200);
    expect(logout.status).toBe(204);
  });

  // Ending sessions is what someone does who fears their account is used elsewhere: a safety action.
  test('when an unverified user lists their sessions and ends them, through the API and the page, then each answers as usual', async () => {
    const account = await createUser(t);
    const browser = createBrowser(t.app);
    await signInThroughForm(browser, account);
    const cookie = await login(t, account);
    const other = await login(t, account);

    const listed = await request(t.app).get('/api/auth/sessions').set('Cookie', cookie);
    // Newest first: the session `other`, then this one, then the browser's.
    const handle = (listed.body.data as { id: string; current: boolean }[])[0]!.id;
    const endOne = await request(t.app)
      .delete(`/api/auth/sessions/${handle}`)
      .set('Cookie', cookie)
      .send({ currentPassword: account.password });
    const page = await browser.get('/sessions');
    const endOthers = await browser.postForm('/sessions/end', {
      _csrf: csrfTokenIn(page.text),
      end: 'others',
      currentPassword: account.password,
    });
    const endOthersApi = await request(t.app)
      .delete('/api/auth/sessions')
      .set('Cookie', browser.cookieHeader())
      .send({ currentPassword: account.password });

    expect(listed.status).toBe(200);
    expect(endOne.status).toBe(204);
    expect(page.status).toBe(200);
    expect(endOthers.status).toBe(303);
    expect(endOthersApi.status).toBe(200);
    expect((await me(t, other)).status).toBe(401);
  });

  test('when an unverified user follows the mailed link, then the same session is let through at once', async () => {
    const { user, email, cookie } = await signedIn(t);
    await resendVerification(t, cookie);
    const token = await verifyTokenMailedTo(smtp.server, email);

    const before = await request(t.app).get(`/api/users/${user.id}`).set('Cookie', cookie);
    const verified = await verifyEmail(t, token).set('Cookie', cookie);
    const after = await request(t.app).get(`/api/users/${user.id}`).set('Cookie', cookie);

    expectError(before, 403, 'email_unverified');
    expect(verified.status).toBe(204);
    expect(after.status).toBe(200);
  });

  test('when a verified user calls the same routes, then none is refused for the address', async () => {
    const verified = await createUser(t, { verified: true });
    const cookie = await login(t, verified);

    const read = await request(t.app).get(`/api/users/${verified.user.id}`).set('Cookie', cookie);
    const renamed = await request(t.app)
      .patch(`/api/users/${verified.user.id}`)
      .set('Cookie', cookie)
      .send({ name: 'Renamed' });

    expect(read.status).toBe(200);
    expect(renamed.status).toBe(200);
    expect(renamed.body.name).toBe('Renamed');
  });

  test('when an anonymous client calls those routes, then it meets the usual 401, 404 and login page', async () => {
    const { user } = await createUser(t);

    expectError(await request(t.app).get(`/api/users/${user.id}`), 401, 'unauthenticated');
    expectError(await request(t.app).get('/api/no-such-route'), 404, 'not_found');
    const home = await request(t.app).get('/');
    expect(home.status).toBe(303);
    expect(home.headers.location).toBe('/login?next=%2F');
  });

  test('when an unverified user browses, then home shows the notice, sign-out works, and other pages are a 403 HTML page', async () => {
    const { email, password } = await createUser(t);
    const browser = createBrowser(t.app);
    expect((await signInThroughForm(browser, { email, password })).status).toBe(303);

    const home = await browser.get('/');
    const forgot = await browser.get('/forgot-password');
    const login = await browser.get('/login');
    const logout = await browser.postForm('/logout', { _csrf: csrfTokenIn(home.text) });

    expect(home.status).toBe(200);
    expect(home.text).toContain('action="/verify-email/resend"');
    expect(forgot.status).toBe(403);
    expect(forgot.headers['content-type']).toMatch(/^text\/html/);
    expect(forgot.text).toContain('Confirm your email address first');
    expect(login.status).toBe(303);
    expect(logout.status).toBe(303);
    expect(logout.headers.location).toBe('/login');
  });

  test('when a route is added to the app later, then an unverified user is refused it without anyone listing it', async () => {
    await withTestApp(
      { SMTP_URL: smtp.server.url, MAIL_FROM: 'a@example.test', REQUIRE_VERIFIED_EMAIL: 'true' },
      async (spare) => {
        const users = mountedRouter(mountedRouter(routerStack(spare.app), '/api').stack, '/users');
        (users as unknown as Router).get('/:id/avatar', (_req, res) => {
          res.json({ avatar: 'a picture' });
        });
        const unverified = await signedIn(spare);
        const verified = await createUser(spare, { verified: true });
        const verifiedCookie = await login(spare, verified);

        const refused = await request(spare.app)
          .get(`/api/users/${unverified.user.id}/avatar`)
          .set('Cookie', unverified.cookie);
        const served = await request(spare.app)
          .get(`/api/users/${verified.user.id}/avatar`)
          .set('Cookie', verifiedCookie);

        expectError(refused, 403, 'email_unverified');
        expect(served.status).toBe(200);
      },
    );
  });
});

describe('REQUIRE_VERIFIED_EMAIL off', () => {
  const smtp = useSmtpServer();
  const t = useTestApp(mailingThrough(smtp, { REQUIRE_VERIFIED_EMAIL: 'false' }));

  test('when an unverified user calls any route, then nothing is refused for the address', async () => {
    const { user, cookie } = await signedIn(t);

    const read = await request(t.app).get(`/api/users/${user.id}`).set('Cookie', cookie);
    const renamed = await request(t.app)
      .patch(`/api/users/${user.id}`)
      .set('Cookie', cookie)
      .send({ name: 'Renamed' });

    expect(t.config.requireVerifiedEmail).toBe(false);
    expect(read.status).toBe(200);
    expect(read.body.emailVerifiedAt).toBeNull();
    expect(renamed.status).toBe(200);
  });

  test('when an unverified user opens home, then the notice offers a new link even so', async () => {
    const { email, password } = await createUser(t);
    const browser = createBrowser(t.app);
    await signInThroughForm(browser, { email, password });

    const home = await browser.get('/');

    expect(home.text).toContain('action="/verify-email/resend"');
  });
});

describe('REQUIRE_VERIFIED_EMAIL unset in the test environment', () => {
  const t = useTestApp();

  test('when the test environment runs with its defaults, then the setting is off and home has no notice without mail', async () => {
    const { email, password } = await createUser(t);
    const browser = createBrowser(t.app);
    await signInThroughForm(browser, { email, password });

    const home = await browser.get('/');

    expect(t.config.requireVerifiedEmail).toBe(false);
    expect(home.text).not.toContain('/verify-email/resend');
  });
});
