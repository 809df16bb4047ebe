import request from 'supertest';
import { MAX_LOGGED_ISSUES, ValidationError } from '../../src/errors';
import { expectError } from '../support/assertions';
import { createBrowser, csrfTokenIn, signInThroughForm } from '../support/browser';
import { createUser, signedIn, uniqueEmail } from '../support/factories';
import { eventsOf, linesOf } from '../support/log-lines';
import { enrolTotp, MFA_ENV } from '../support/mfa';
import type { TestApp } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';

/**
 * ASVS 16.3.3: input refused by validation and requests refused by a business rule are security events,
 * one line per request, naming the route, the fields and the codes and never a submitted value.
 */

/** A value no log line may contain: a password or address a client submitted. */
const marker = (label: string) => `${label}-${Math.random().toString(36).slice(2)}-marker`;

/** The one event of `name` the request logged; it must have logged exactly one. */
function onlyEvent(t: TestApp, res: request.Response, name: string) {
  const events = eventsOf(t, res, name);
  expect(events).toHaveLength(1);
  return events[0]!;
}

/** No line of the request's log contains any of `values`. */
function expectNotLogged(t: TestApp, res: request.Response, values: string[]): void {
  const logged = JSON.stringify(linesOf(t, res));
  for (const value of values)
    expect({ value, logged: logged.includes(value) }).toEqual({ value, logged: false });
}

describe('input validation failures as security events (ASVS 16.3.3)', () => {
  const t = useTestApp();

  test('when a JSON body fails validation, then one request.validation_failed event names the fields and codes, never the values', async () => {
    // Longer than an address (254) and a password (1024) may be: too_big, both.
    const email = marker('email').repeat(12);
    const password = marker('password').repeat(40);

    const res = await request(t.app).post('/api/auth/login').send({ email, password });

    expectError(res, 400, 'validation_failed');
    expect(onlyEvent(t, res, 'request.validation_failed')).toMatchObject({
      level: 'info',
      method: 'POST',
      path: '/api/auth/login',
      clientIp: '127.0.0.1',
      requestId: res.headers['x-request-id'],
      issues: [
        { field: 'body.email', code: 'too_big' },
        { field: 'body.password', code: 'too_big' },
      ],
      issueCount: 2,
    });
    expectNotLogged(t, res, [email.slice(0, 30), password.slice(0, 30)]);
  });

  test('when a body carries a field the route does not take, then the event says so without the field`s value', async () => {
    const role = marker('role');
    const res = await request(t.app)
      .post('/api/auth/login')
      .send({ email: uniqueEmail(), password: 'whatever it is 1', role });

    expectError(res, 400, 'validation_failed');
    expect(onlyEvent(t, res, 'request.validation_failed')).toMatchObject({
      issues: [{ field: 'body', code: 'unrecognized_keys' }],
    });
    expectNotLogged(t, res, [role]);
  });

  test.each([
    ['is not valid JSON', 'application/json', (secret: string) => `{"password": "${secret}"`, 'invalid_json'],
    [
      'is of a type the API does not read',
      'text/plain',
      (secret: string) => `password=${secret}`,
      'unsupported_media_type',
    ],
  ])(
    'when a body %s, then the refusal is logged with its code and not the body',
    async (_what, type, bodyOf, code) => {
      const secret = marker('password');

      const res = await request(t.app).post('/api/auth/login').set('Content-Type', type).send(bodyOf(secret));

      expect(res.body.error.code).toBe(code);
      expect(onlyEvent(t, res, 'request.validation_failed')).toMatchObject({
        issues: [{ field: 'body', code }],
        issueCount: 1,
      });
      expectNotLogged(t, res, [secret]);
    },
  );

  test('when a body is over the size limit, then one event says payload_too_large and the body is not logged', async () => {
    const secret = marker('password');
    const body = JSON.stringify({ email: uniqueEmail(), password: secret, padding: 'x'.repeat(110_000) });

    const res = await request(t.app)
      .post('/api/auth/login')
      .set('Content-Type', 'application/json')
      .send(body);

    expectError(res, 413, 'payload_too_large');
    expect(onlyEvent(t, res, 'request.validation_failed')).toMatchObject({
      path: '/api/auth/login',
      issues: [{ field: 'body', code: 'payload_too_large' }],
      issueCount: 1,
    });
    expectNotLogged(t, res, [secret]);
  });

  test('when a path parameter is not valid percent-encoding, then 400 bad_request is logged as refused input', async () => {
    const admin = await signedIn(t, 'admin');

    const res = await request(t.app).get('/api/users/%E0%A4%A').set('Cookie', admin.cookie);

    expectError(res, 400, 'bad_request');
    expect(onlyEvent(t, res, 'request.validation_failed')).toMatchObject({
      issues: [{ field: 'request', code: 'bad_request' }],
      issueCount: 1,
    });
  });

  test('when an HTML form fails validation, then it logs the same event as the API, without the values', async () => {
    const browser = createBrowser(t.app);
    const page = await browser.get('/login');
    const email = marker('email');

    // The password field left empty: too_small.
    const res = await browser.postForm('/login', {
      _csrf: csrfTokenIn(page.text),
      next: '/',
      email,
      password: '',
    });

    expect(res.status).toBe(400);
    expect(onlyEvent(t, res, 'request.validation_failed')).toMatchObject({
      method: 'POST',
      path: '/login',
      issues: [{ field: 'body.password', code: 'too_small' }],
    });
    expectNotLogged(t, res, [email]);
  });

  test(`when a request has more than ${MAX_LOGGED_ISSUES} problems, then the event lists ${MAX_LOGGED_ISSUES} and counts them all`, () => {
    const details = Array.from({ length: 25 }, (_, i) => ({
      path: `body.f${i}`,
      message: 'bad',
      code: 'too_big',
    }));

    const [event] = new ValidationError(details).events;

    expect(event!.fields).toEqual({
      issues: details.slice(0, MAX_LOGGED_ISSUES).map((d) => ({ field: d.path, code: 'too_big' })),
      issueCount: 25,
    });
  });
});

describe('business-rule refusals as security events (ASVS 16.3.3)', () => {
  const t = useTestApp();

  test('when an admin creates a user with a taken email, then business_rule.refused says email_taken, without the email', async () => {
    const admin = await signedIn(t, 'admin');
    const { email } = await createUser(t);

    const res = await request(t.app)
      .post('/api/users')
      .set('Cookie', admin.cookie)
      .send({ email, name: 'Second', password: 'a fresh long passphrase 7', role: 'user' });

    expectError(res, 409, 'email_taken');
    expect(onlyEvent(t, res, 'business_rule.refused')).toMatchObject({
      level: 'info',
      method: 'POST',
      path: '/api/users',
      userId: admin.user.id,
      rule: 'email_taken',
    });
    expectNotLogged(t, res, [email]);
  });

  test('when a new password breaks the policy, then business_rule.refused says password_rejected, without either password', async () => {
    const { cookie, password } = await signedIn(t);
    const weak = 'password';

    const res = await request(t.app)
      .put('/api/auth/password')
      .set('Cookie', cookie)
      .send({ currentPassword: password, newPassword: `${weak}${weak}12` });

    expectError(res, 400, 'password_rejected');
    expect(onlyEvent(t, res, 'business_rule.refused')).toMatchObject({ rule: 'password_rejected' });
    expectNotLogged(t, res, [password, `${weak}${weak}12`]);
  });
});

describe('the last admin refusal as a security event (ASVS 16.3.3)', () => {
  // "The last admin" exists only in a database of its own (see test/users/last-admin.test.ts).
  const t = useTestApp({}, { isolatedDatabase: 'refusal_events_lastadmin' });

  test('when the only admin demotes themselves, then business_rule.refused says last_admin', async () => {
    const admin = await signedIn(t, 'admin');

    const res = await request(t.app)
      .patch(`/api/users/${admin.user.id}`)
      .set('Cookie', admin.cookie)
      .send({ role: 'user' });

    expectError(res, 409, 'last_admin');
    expect(onlyEvent(t, res, 'business_rule.refused')).toMatchObject({
      path: `/api/users/${admin.user.id}`,
      userId: admin.user.id,
      rule: 'last_admin',
    });
  });
});

describe('the second factor`s refusals as security events (ASVS 16.3.3)', () => {
  const t = useTestApp(MFA_ENV);

  test.each([
    ['/mfa/enrolment', { currentPassword: '' }, [{ field: 'body.currentPassword', code: 'too_small' }]],
    ['/mfa/enrolment/confirm', { code: 'x'.repeat(21) }, [{ field: 'body.code', code: 'too_big' }]],
    ['/mfa/recovery-codes', { currentPassword: '' }, [{ field: 'body.currentPassword', code: 'too_small' }]],
    [
      '/mfa/disable',
      { currentPassword: '', code: '' },
      [
        { field: 'body.currentPassword', code: 'too_small' },
        { field: 'body.code', code: 'too_small' },
      ],
    ],
  ])(
    'when the form %s fails validation, then it logs request.validation_failed like the API',
    async (path, fields, issues) => {
      const creds = await createUser(t);
      const browser = createBrowser(t.app);
      await signInThroughForm(browser, creds);
      const page = await browser.get('/mfa');

      const res = await browser.postForm(path, { _csrf: csrfTokenIn(page.text), ...fields });

      // The enrolment's code form sends the browser back to the password form; the others re-render.
      expect([400, 303]).toContain(res.status);
      expect(onlyEvent(t, res, 'request.validation_failed')).toMatchObject({ method: 'POST', path, issues });
    },
  );

  test('when the code form of a login fails validation, then it logs request.validation_failed like the API', async () => {
    const created = await signedIn(t);
    await enrolTotp(t, created.cookie, created.password);
    const browser = createBrowser(t.app);
    await signInThroughForm(browser, created);
    const page = await browser.get('/login/mfa');

    const res = await browser.postForm('/login/mfa', { _csrf: csrfTokenIn(page.text), next: '/', code: '' });

    expect(res.status).toBe(400);
    expect(onlyEvent(t, res, 'request.validation_failed')).toMatchObject({
      method: 'POST',
      path: '/login/mfa',
      issues: [{ field: 'body.code', code: 'too_small' }],
    });
  });

  test.each([
    ['enrolment starts while the factor is on', true, '/api/auth/mfa/enrolment', 'mfa_already_enabled'],
    [
      'new recovery codes are asked without a factor',
      false,
      '/api/auth/mfa/recovery-codes',
      'mfa_not_enabled',
    ],
  ])('when %s, then 409 and business_rule.refused names the rule', async (_what, enrolled, path, rule) => {
    const { cookie, password, user } = await signedIn(t);
    if (enrolled) await enrolTotp(t, cookie, password);

    const res = await request(t.app).post(path).set('Cookie', cookie).send({ currentPassword: password });

    expectError(res, 409, rule);
    expect(onlyEvent(t, res, 'business_rule.refused')).toMatchObject({
      level: 'info',
      method: 'POST',
      path,
      userId: user.id,
      rule,
    });
    expectNotLogged(t, res, [password]);
  });
});
