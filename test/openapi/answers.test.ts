import request, { type Response } from 'supertest';
import { createOpenApiDocument } from '../../src/openapi/openapi';
import { createSecretBox } from '../../src/mfa/secret-box';
import {
  createUser,
  DEFAULT_PASSWORD,
  login,
  sessionCookie,
  signedIn,
  uniqueEmail,
} from '../support/factories';
import { createHeldHasher, until } from '../support/held-hasher';
import { awayFromStepEdge, codeAt, enrolTotp, MFA_ENV, secretOf } from '../support/mfa';
import { createResponseChecker, errorCodesOf, operationsOf } from '../support/openapi';
import { askForEmailChange, CONFIRM_SUBJECT, confirmTokenIn } from '../support/email-change';
import { resendVerification, verifyEmail, verifyTokenMailedTo } from '../support/email-verification';
import { mailingThrough, nthMailTo, useSmtpServer } from '../support/password-reset';
import { createTestApp } from '../support/test-app';
import { useTestApp, withTestApp } from '../support/use-test-app';

/**
 * Every operation, through the real app, for its success and its main failures: each answer must have
 * the status the scenario expects, and that status, body and headers must be what the description
 * (the one docs/openapi.json holds) says the operation answers.
 */
const doc = createOpenApiDocument();
const described = createResponseChecker(doc);

function expectAnswer(operation: string, res: Response, status: number): void {
  // One comparison, so a wrong status shows the body that came with it.
  expect({ operation, status: res.status, body: res.body as unknown }).toMatchObject({ operation, status });
  described.check(operation, res);
}

const NEW_PASSWORD = 'violet kettles hum beneath seven bridges';

describe('the answers of the API, checked against its description', () => {
  const t = useTestApp();

  test('when logging in, then each answer is one POST /api/auth/login describes', async () => {
    const op = 'POST /api/auth/login';
    const { email, password } = await createUser(t);
    const post = () => request(t.app).post('/api/auth/login');

    expectAnswer(op, await post().send({ email, password }), 200);
    expectAnswer(op, await post().send({ email, password: 'not the password' }), 401);
    expectAnswer(op, await post().send({ email, password, extra: true }), 400);
    expectAnswer(op, await post().set('Content-Type', 'application/json').send('{"email":'), 400);
    expectAnswer(op, await post().set('Content-Type', 'text/plain').send('email and password'), 415);
    expectAnswer(op, await post().send({ email, password: 'x'.repeat(110 * 1024) }), 413);
    expectAnswer(op, await post().set('Sec-Fetch-Site', 'cross-site').send({ email, password }), 403);
  });

  test('when logging out or asking who is signed in, then each answer is one their descriptions allow', async () => {
    const { cookie } = await signedIn(t);

    expectAnswer('GET /api/auth/me', await request(t.app).get('/api/auth/me').set('Cookie', cookie), 200);
    expectAnswer('GET /api/auth/me', await request(t.app).get('/api/auth/me'), 401);
    expectAnswer(
      'POST /api/auth/logout',
      await request(t.app).post('/api/auth/logout').set('Cookie', cookie),
      204,
    );
    expectAnswer(
      'POST /api/auth/logout',
      await request(t.app).post('/api/auth/logout').set('Cookie', cookie),
      401,
    );
  });

  test('when registering, then each answer is one POST /api/auth/register describes', async () => {
    const op = 'POST /api/auth/register';
    const taken = await createUser(t);
    const post = (body: object) => request(t.app).post('/api/auth/register').send(body);
    const account = { email: uniqueEmail('registered'), password: DEFAULT_PASSWORD, name: 'New Person' };

    const created = await post(account);
    expectAnswer(op, created, 201);
    expect(created.headers.location).toBe(`/api/users/${created.body.id}`);
    expectAnswer(op, await post({ ...account, email: uniqueEmail(), name: undefined }), 400);
    expectAnswer(op, await post({ ...account, email: uniqueEmail(), password: 'short' }), 400);
    expectAnswer(op, await post({ ...account, email: taken.email }), 409);
  });

  test('when changing the password, then each answer is one PUT /api/auth/password describes', async () => {
    const op = 'PUT /api/auth/password';
    const { cookie, password } = await signedIn(t);
    const put = (body: object) => request(t.app).put('/api/auth/password').set('Cookie', cookie).send(body);

    expectAnswer(op, await put({ currentPassword: 'not the password', newPassword: NEW_PASSWORD }), 403);
    expectAnswer(op, await put({ currentPassword: password, newPassword: 'short' }), 400);
    expectAnswer(op, await put({ currentPassword: password, newPassword: NEW_PASSWORD }), 204);
    expectAnswer(op, await request(t.app).put('/api/auth/password').send({}), 401);
  });

  test('when mail is off, then the 404s of the mailed-link routes are described answers', async () => {
    const ask = await request(t.app).post('/api/auth/password-reset').send({ email: uniqueEmail() });
    const confirm = await request(t.app)
      .post('/api/auth/password-reset/confirm')
      .send({ token: 'x'.repeat(43), newPassword: NEW_PASSWORD });

    const confirmChange = await request(t.app)
      .post('/api/auth/email-change/confirm')
      .send({ token: 'x'.repeat(43) });

    expectAnswer('POST /api/auth/password-reset', ask, 404);
    expectAnswer('POST /api/auth/password-reset/confirm', confirm, 404);
    expectAnswer('POST /api/auth/email-change/confirm', confirmChange, 404);
  });

  test('when mail is off, then the 404s of the verification routes are described answers', async () => {
    const { cookie } = await signedIn(t);

    expectAnswer('POST /api/auth/verify-email', await verifyEmail(t, 'x'.repeat(43)), 404);
    expectAnswer('POST /api/auth/verify-email/resend', await resendVerification(t, cookie), 404);
  });

  test('when listing users, then each answer is one GET /api/users describes', async () => {
    const op = 'GET /api/users';
    const admin = await signedIn(t, 'admin');
    const user = await signedIn(t);
    const get = (query: string, cookie?: string) =>
      request(t.app)
        .get(`/api/users${query}`)
        .set(cookie ? { Cookie: cookie } : {});

    const page = await get('?limit=1', admin.cookie);
    expectAnswer(op, page, 200);
    expectAnswer(op, await get(`?limit=1&cursor=${page.body.nextCursor}`, admin.cookie), 200);
    expectAnswer(op, await get('?limit=0', admin.cookie), 400);
    expectAnswer(op, await get('', user.cookie), 403);
    expectAnswer(op, await get(''), 401);
  });

  test('when creating users, then each answer is one POST /api/users describes', async () => {
    const op = 'POST /api/users';
    const admin = await signedIn(t, 'admin');
    const user = await signedIn(t);
    const post = (cookie: string, body: object) =>
      request(t.app).post('/api/users').set('Cookie', cookie).send(body);
    const account = { email: uniqueEmail('created'), password: DEFAULT_PASSWORD, name: 'Made By Admin' };

    const created = await post(admin.cookie, { ...account, role: 'admin' });
    expectAnswer(op, created, 201);
    expect(created.headers.location).toBe(`/api/users/${created.body.id}`);
    expectAnswer(op, await post(admin.cookie, { ...account, email: uniqueEmail(), role: 'root' }), 400);
    expectAnswer(op, await post(admin.cookie, { ...account }), 409);
    expectAnswer(op, await post(user.cookie, { ...account, email: uniqueEmail() }), 403);
  });

  test('when reading a user, then each answer is one GET /api/users/{id} describes', async () => {
    const op = 'GET /api/users/{id}';
    const user = await signedIn(t);
    const other = await createUser(t);
    const get = (id: string, cookie?: string) =>
      request(t.app)
        .get(`/api/users/${id}`)
        .set(cookie ? { Cookie: cookie } : {});

    expectAnswer(op, await get(user.user.id, user.cookie), 200);
    expectAnswer(op, await get(other.user.id, user.cookie), 404);
    expectAnswer(op, await get('not-a-user-id', user.cookie), 400);
    expectAnswer(op, await get('%E0%A4%A', user.cookie), 400);
    expectAnswer(op, await get(user.user.id), 401);
  });

  test('when changing a user, then each answer is one PATCH /api/users/{id} describes', async () => {
    const op = 'PATCH /api/users/{id}';
    const admin = await signedIn(t, 'admin');
    const user = await signedIn(t);
    const other = await createUser(t);
    const patch = (id: string, cookie: string, body: object) =>
      request(t.app).patch(`/api/users/${id}`).set('Cookie', cookie).send(body);

    expectAnswer(op, await patch(user.user.id, user.cookie, { name: 'Renamed' }), 200);
    expectAnswer(op, await patch(user.user.id, user.cookie, {}), 400);
    expectAnswer(op, await patch(user.user.id, user.cookie, { role: 'admin' }), 403);
    const wrongPassword = { email: uniqueEmail(), currentPassword: 'not the password' };
    expectAnswer(op, await patch(user.user.id, user.cookie, wrongPassword), 403);
    expectAnswer(op, await patch(other.user.id, user.cookie, { name: 'Not Mine' }), 404);
    expectAnswer(op, await patch(other.user.id, admin.cookie, { email: user.email }), 409);
    expectAnswer(op, await request(t.app).patch(`/api/users/${user.user.id}`).send({ name: 'Anyone' }), 401);
  });

  test('when deleting users, then each answer is one DELETE /api/users/{id} describes', async () => {
    const op = 'DELETE /api/users/{id}';
    const admin = await signedIn(t, 'admin');
    const user = await signedIn(t);
    const other = await createUser(t);
    const del = (id: string, cookie?: string) =>
      request(t.app)
        .delete(`/api/users/${id}`)
        .set(cookie ? { Cookie: cookie } : {});

    expectAnswer(op, await del(other.user.id, user.cookie), 404);
    expectAnswer(op, await del('not-a-user-id', user.cookie), 400);
    expectAnswer(op, await del(other.user.id), 401);
    expectAnswer(op, await del(other.user.id, admin.cookie), 204);
    const self = await del(user.user.id, user.cookie);
    expectAnswer(op, self, 204);
    expect(self.headers['set-cookie']).toBeDefined();
  });

  test("when listing and ending one's own sessions, then each answer is one the /api/auth/sessions routes describe", async () => {
    const creds = await signedIn(t);
    const { cookie, password } = creds;
    // Two more sessions: one to end by its handle, one left for "every other".
    await login(t, creds);
    await login(t, creds);
    const list = () => request(t.app).get('/api/auth/sessions').set('Cookie', cookie);
    const endOne = (handle: string, body: object) =>
      request(t.app).delete(`/api/auth/sessions/${handle}`).set('Cookie', cookie).send(body);
    const listed = await list();
    expectAnswer('GET /api/auth/sessions', listed, 200);
    expectAnswer('GET /api/auth/sessions', await request(t.app).get('/api/auth/sessions'), 401);
    const handle = (listed.body.data as { id: string; current: boolean }[]).find((s) => !s.current)!.id;

    const one = 'DELETE /api/auth/sessions/{sessionId}';
    expectAnswer(one, await endOne(handle, { currentPassword: 'not the password' }), 403);
    expectAnswer(one, await endOne('not-a-handle', { currentPassword: password }), 400);
    expectAnswer(one, await endOne('A'.repeat(22), { currentPassword: password }), 404);
    expectAnswer(one, await endOne(handle, { currentPassword: password }), 204);
    const others = () => request(t.app).delete('/api/auth/sessions').set('Cookie', cookie);
    expectAnswer('DELETE /api/auth/sessions', await others().send({}), 400);
    expectAnswer('DELETE /api/auth/sessions', await others().send({ currentPassword: password }), 200);
  });

  test("when an admin lists and ends a user's sessions, then each answer is one the /api/users/{id}/sessions routes describe", async () => {
    const admin = await signedIn(t, 'admin');
    const user = await signedIn(t);
    const path = (id: string) => `/api/users/${id}/sessions`;
    const as = (cookie: string) => ({ Cookie: cookie });

    const listed = await request(t.app).get(path(user.user.id)).set(as(admin.cookie));
    expectAnswer('GET /api/users/{id}/sessions', listed, 200);
    expectAnswer(
      'GET /api/users/{id}/sessions',
      await request(t.app).get(path(admin.user.id)).set(as(user.cookie)),
      403,
    );
    expectAnswer(
      'GET /api/users/{id}/sessions',
      await request(t.app).get(path('nope')).set(as(admin.cookie)),
      400,
    );
    expectAnswer(
      'DELETE /api/sessions',
      await request(t.app).delete('/api/sessions').set(as(user.cookie)),
      403,
    );
    const handle = (listed.body.data as { id: string }[])[0]!.id;
    const one = 'DELETE /api/users/{id}/sessions/{sessionId}';
    expectAnswer(
      one,
      await request(t.app)
        .delete(`${path(admin.user.id)}/${handle}`)
        .set(as(admin.cookie)),
      404,
    );
    expectAnswer(
      one,
      await request(t.app)
        .delete(`${path(user.user.id)}/${handle}`)
        .set(as(admin.cookie)),
      204,
    );
    expectAnswer(
      'DELETE /api/users/{id}/sessions',
      await request(t.app).delete(path(user.user.id)).set(as(admin.cookie)),
      200,
    );
  });

  test('when the probes are asked, then each answer is one the description of /healthz and /readyz allows', async () => {
    expectAnswer('GET /healthz', await request(t.app).get('/healthz'), 200);
    expectAnswer('GET /readyz', await request(t.app).get('/readyz'), 200);
    t.lifecycle.shuttingDown = true;
    try {
      expectAnswer('GET /readyz', await request(t.app).get('/readyz'), 503);
    } finally {
      t.lifecycle.shuttingDown = false;
    }
  });

  describe('with a small request limit and registration closed', () => {
    const limited = useTestApp({ RATE_LIMIT_PER_MINUTE: '2', REGISTRATION_ENABLED: 'false' });

    test('when registering or exceeding the limit, then the 404 and the 429 are described answers', async () => {
      const account = { email: uniqueEmail(), password: DEFAULT_PASSWORD, name: 'Nobody' };

      expectAnswer(
        'POST /api/auth/register',
        await request(limited.app).post('/api/auth/register').send(account),
        404,
      );
      expectAnswer('GET /api/auth/me', await request(limited.app).get('/api/auth/me'), 401);
      const refused = await request(limited.app).get('/api/auth/me');
      expectAnswer('GET /api/auth/me', refused, 429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    });
  });

  describe('with mail to a real SMTP server', () => {
    const smtp = useSmtpServer();
    const mailing = useTestApp(mailingThrough(smtp));

    test('when asking for a reset link and using it, then each answer is one the reset routes describe', async () => {
      const ask = 'POST /api/auth/password-reset';
      const confirm = 'POST /api/auth/password-reset/confirm';
      const { email } = await createUser(mailing);
      const post = (path: string, body: object) => request(mailing.app).post(path).send(body);

      expectAnswer(ask, await post('/api/auth/password-reset', { email }), 202);
      expectAnswer(ask, await post('/api/auth/password-reset', { email: 'not an address' }), 400);
      const [mail] = await smtp.server.waitForMails(1);
      const token = /token=([A-Za-z0-9_-]{43})/.exec(mail!.text ?? '')![1]!;
      const use = (body: object) => post('/api/auth/password-reset/confirm', body);
      expectAnswer(confirm, await use({ token, newPassword: 'short' }), 400);
      expectAnswer(confirm, await use({ token: 'x'.repeat(43), newPassword: NEW_PASSWORD }), 400);
      expectAnswer(confirm, await use({ token }), 400);
      expectAnswer(confirm, await use({ token, newPassword: NEW_PASSWORD }), 204);
    });

    test('when asking for an email change and confirming it, then each answer is one PATCH and the confirm route describe', async () => {
      const confirm = 'POST /api/auth/email-change/confirm';
      const user = await signedIn(mailing);
      const newEmail = uniqueEmail('moved');

      const asked = await askForEmailChange(mailing, user, newEmail);
      expectAnswer('PATCH /api/users/{id}', asked, 202);
      const token = confirmTokenIn(await nthMailTo(smtp.server, newEmail, CONFIRM_SUBJECT));
      const use = (body: object) => request(mailing.app).post('/api/auth/email-change/confirm').send(body);
      expectAnswer(confirm, await use({}), 400);
      expectAnswer(confirm, await use({ token: 'x'.repeat(43) }), 400);
      await createUser(mailing, { email: newEmail });
      expectAnswer(confirm, await use({ token }), 409);
      await mailing.db.query('DELETE FROM users WHERE email = $1', [newEmail]);
      expectAnswer(confirm, await use({ token }), 204);
    });
  });

  describe('with mail and REQUIRE_VERIFIED_EMAIL on', () => {
    const smtp = useSmtpServer();
    const strict = useTestApp(
      mailingThrough(smtp, { REQUIRE_VERIFIED_EMAIL: 'true', MAIL_MAX_PER_ADDRESS_PER_HOUR: '1' }),
    );

    test('when an unverified user asks for a link, uses it and asks again, then each answer is one the verification routes describe', async () => {
      const resend = 'POST /api/auth/verify-email/resend';
      const verify = 'POST /api/auth/verify-email';
      const user = await createUser(strict);
      const cookie = await login(strict, user);

      expectAnswer(resend, await resendVerification(strict), 401);
      expectAnswer(
        'GET /api/users/{id}',
        await request(strict.app).get(`/api/users/${user.user.id}`).set('Cookie', cookie),
        403,
      );
      expectAnswer(resend, await resendVerification(strict, cookie), 202);
      expectAnswer(resend, await resendVerification(strict, cookie), 429);
      const token = await verifyTokenMailedTo(smtp.server, user.email);
      expectAnswer(verify, await verifyEmail(strict, 'x'.repeat(43)), 400);
      expectAnswer(verify, await verifyEmail(strict, 42), 400);
      expectAnswer(verify, await verifyEmail(strict, token), 204);
      expectAnswer(resend, await resendVerification(strict, cookie), 409);
    });
  });

  describe('with second factors and REQUIRE_MFA_FOR_ADMINS on', () => {
    const mfa = useTestApp({ ...MFA_ENV, REQUIRE_MFA_FOR_ADMINS: 'true' });
    const post = (path: string, cookie: string, body: object) =>
      request(mfa.app).post(path).set('Cookie', cookie).send(body);

    test('when enrolling, signing in with codes, replacing codes, disabling and resetting, then each answer is one the MFA routes describe', async () => {
      await awayFromStepEdge();
      const status = 'GET /api/auth/mfa';
      const start = 'POST /api/auth/mfa/enrolment';
      const confirm = 'POST /api/auth/mfa/enrolment/confirm';
      const codes = 'POST /api/auth/mfa/recovery-codes';
      const disable = 'POST /api/auth/mfa/disable';
      const step = 'POST /api/auth/login/mfa';
      const reset = 'DELETE /api/users/{id}/mfa';
      const user = await signedIn(mfa);
      const admin = await signedIn(mfa, 'admin');

      expectAnswer(
        'GET /api/users',
        await request(mfa.app).get('/api/users').set('Cookie', admin.cookie),
        403,
      );
      expectAnswer(status, await request(mfa.app).get('/api/auth/mfa').set('Cookie', user.cookie), 200);
      expectAnswer(
        confirm,
        await post('/api/auth/mfa/enrolment/confirm', user.cookie, { code: '123456' }),
        409,
      );
      expectAnswer(
        codes,
        await post('/api/auth/mfa/recovery-codes', user.cookie, { currentPassword: user.password }),
        409,
      );
      const started = await post('/api/auth/mfa/enrolment', user.cookie, { currentPassword: user.password });
      expectAnswer(start, started, 201);
      expectAnswer(
        confirm,
        await post('/api/auth/mfa/enrolment/confirm', user.cookie, {
          code: await codeAt(secretOf(started.body.otpauthUri), 3),
        }),
        401,
      );
      const confirmed = await post('/api/auth/mfa/enrolment/confirm', user.cookie, {
        code: await codeAt(secretOf(started.body.otpauthUri)),
      });
      expectAnswer(confirm, confirmed, 200);
      const secret = secretOf(started.body.otpauthUri);
      expectAnswer(
        start,
        await post('/api/auth/mfa/enrolment', user.cookie, { currentPassword: user.password }),
        409,
      );
      expectAnswer(
        start,
        await post('/api/auth/mfa/enrolment', user.cookie, { currentPassword: 'wrong one' }),
        403,
      );

      const passwordStep = await request(mfa.app)
        .post('/api/auth/login')
        .send({ email: user.email, password: user.password });
      expectAnswer('POST /api/auth/login', passwordStep, 202);
      const pending = sessionCookie(passwordStep)!;
      expectAnswer(step, await request(mfa.app).post('/api/auth/login/mfa').send({ code: '123456' }), 401);
      expectAnswer(step, await post('/api/auth/login/mfa', pending, { code: 'twelve' }), 400);
      expectAnswer(step, await post('/api/auth/login/mfa', pending, { recoveryCode: 'AAAA' }), 401);
      expectAnswer(step, await post('/api/auth/login/mfa', pending, { code: await codeAt(secret, 1) }), 200);

      const renewed = await post('/api/auth/mfa/recovery-codes', user.cookie, {
        currentPassword: user.password,
      });
      expectAnswer(codes, renewed, 200);
      expectAnswer(
        disable,
        await post('/api/auth/mfa/disable', user.cookie, { currentPassword: user.password }),
        400,
      );
      expectAnswer(
        disable,
        await post('/api/auth/mfa/disable', user.cookie, {
          currentPassword: user.password,
          recoveryCode: renewed.body.recoveryCodes[0],
        }),
        204,
      );
      expectAnswer(
        disable,
        await post('/api/auth/mfa/disable', user.cookie, { currentPassword: user.password, code: '123456' }),
        409,
      );

      await enrolTotp(mfa, admin.cookie, admin.password);
      const target = await signedIn(mfa);
      await enrolTotp(mfa, target.cookie, target.password);
      const del = (id: string, cookie: string) =>
        request(mfa.app).delete(`/api/users/${id}/mfa`).set('Cookie', cookie);
      expectAnswer(reset, await del(target.user.id, user.cookie), 403);
      expectAnswer(reset, await del('not-an-id', admin.cookie), 400);
      expectAnswer(reset, await del(target.user.id, admin.cookie), 204);
      expectAnswer(reset, await del(target.user.id, admin.cookie), 404);
    });

    test('when a secret was sealed under a key the app no longer holds, then the 503 mfa_unavailable is a described answer', async () => {
      const { user, email, password } = await createUser(mfa);
      const sealed = createSecretBox([{ id: 'gone', key: Buffer.alloc(32, 9) }]).seal(
        user.id,
        'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
      );
      await mfa.db.query(
        'INSERT INTO user_totp (user_id, secret_ciphertext, key_id, confirmed_at) VALUES ($1, $2, $3, now())',
        [user.id, sealed.ciphertext, sealed.keyId],
      );
      const pending = sessionCookie(
        await request(mfa.app).post('/api/auth/login').send({ email, password }),
      )!;

      expectAnswer(
        'POST /api/auth/login/mfa',
        await post('/api/auth/login/mfa', pending, { code: '123456' }),
        503,
      );
    });
  });

  describe('with the only admin of a database of its own', () => {
    const lonely = useTestApp({}, { isolatedDatabase: 'openapi_answers' });

    test('when the last admin would be demoted or deleted, then the 409s are described answers', async () => {
      const admin = await signedIn(lonely, 'admin');
      const self = `/api/users/${admin.user.id}`;

      const demote = await request(lonely.app).patch(self).set('Cookie', admin.cookie).send({ role: 'user' });
      expectAnswer('PATCH /api/users/{id}', demote, 409);
      expectAnswer(
        'DELETE /api/users/{id}',
        await request(lonely.app).delete(self).set('Cookie', admin.cookie),
        409,
      );
    });
  });

  describe('with a database of its own, whose every session may end', () => {
    // Ending every session moves every user's epoch: never in the database other files share.
    const own = useTestApp({}, { isolatedDatabase: 'openapi_answers_sessions' });

    test('when an admin ends every session, then the answer is one DELETE /api/sessions describes', async () => {
      const admin = await signedIn(own, 'admin');

      const res = await request(own.app).delete('/api/sessions').set('Cookie', admin.cookie);

      expectAnswer('DELETE /api/sessions', res, 204);
    });
  });

  describe('when a backing service fails', () => {
    test('when Redis is gone, then the 503 is a described answer', () =>
      withTestApp({}, async (outage) => {
        const { cookie } = await signedIn(outage);
        await outage.redis.close();

        const res = await request(outage.app).get('/api/auth/me').set('Cookie', cookie);

        expectAnswer('GET /api/auth/me', res, 503);
      }));

    test('when Postgres fails in a way that is not an outage, then the 500 is a described answer', async () => {
      const broken = await createTestApp();
      // A real failure, not a mock: the pool is ended, so the login query throws a plain Error.
      await broken.db.close();
      try {
        const res = await request(broken.app)
          .post('/api/auth/login')
          .send({ email: uniqueEmail(), password: 'whatever it is' });

        expectAnswer('POST /api/auth/login', res, 500);
      } finally {
        await broken.redis.close();
        await broken.userCache?.close();
      }
    });
  });

  describe('with one hashing slot and no line', () => {
    // The real hasher behind a gate (test/support/held-hasher.ts): a held login keeps the only place.
    const held = createHeldHasher();
    const busy = useTestApp(
      { HASH_CONCURRENCY: '1', HASH_QUEUE_MAX: '0', HASH_QUEUE_WAIT_MS: '60000' },
      { passwords: held.hasher },
    );
    afterEach(() => held.release());

    test('when password hashing is at capacity, then the 503 service_busy is a described answer', async () => {
      const login = () =>
        request(busy.app).post('/api/auth/login').send({ email: uniqueEmail(), password: 'some password' });
      held.hold();
      const occupying = login().then((res) => res);
      await until(() => held.calls.length === 1, 'the only hashing slot is taken');

      const refused = await login();
      held.release();

      expectAnswer('POST /api/auth/login', refused, 503);
      expect(refused.body.error.code).toBe('service_busy');
      expectAnswer('POST /api/auth/login', await occupying, 401);
    });
  });

  // Runs after the tests above (jest runs a file's tests in order): what they never reached is listed.
  test('when the tests above have run, then every operation answered its success and every described code was seen', () => {
    const withoutSuccess = operationsOf(doc).filter(
      (op) => ![...(described.statuses.get(op) ?? [])].some((status) => status >= 200 && status < 300),
    );
    const neverSeen = [...errorCodesOf(doc)].filter((code) => !described.codes.has(code));

    expect(withoutSuccess).toEqual([]);
    expect(neverSeen.sort()).toEqual([]);
  });
});
