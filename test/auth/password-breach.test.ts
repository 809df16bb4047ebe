import request, { type Response } from 'supertest';
import { expectError } from '../support/assertions';
import { createUser, login, signedIn, uniqueEmail } from '../support/factories';
import { eventsOf } from '../support/log-lines';
import type { TestApp } from '../support/test-app';
import {
  askForReset,
  confirmReset,
  expectAccepted,
  mailingThrough,
  nthMailTo,
  RESET_SUBJECT,
  tokenIn,
  useSmtpServer,
} from '../support/password-reset';
import { parseExposition, valueOf } from '../support/prometheus';
import { sha1Hex, startRangeServer, useRangeServer, type RangeMode } from '../support/range-server';
import { countUsersWithEmail } from '../support/users';
import { useTestApp } from '../support/use-test-app';

/**
 * ASVS 6.2.12: a new password is checked against breached passwords through a k-anonymity range API
 * (PASSWORD_BREACH_API_URL), here a local server speaking the Have I Been Pwned format. Only the first
 * five hex characters of the password's SHA-1 leave the app; a lookup that gives no answer accepts the
 * password, logs `password.breach_check_failed` and counts it (fail open: ADR 0025).
 */

const BREACHED = 'correct horse battery staple 1999';
const BREACHED_MESSAGE =
  'The password appears in a known data breach, so attackers try it early. Choose another one.';
/** The client's deadline: short, so the stalled answers cost the suite little, yet long enough for a busy machine. */
const TIMEOUT_MS = 1500;

/**
 * The `password.breach_check_failed` lines written while serving `res`. The policy runs below the
 * request (in the services), yet its lines carry the request's id (src/http/request-log-context.ts).
 */
const breachFailuresOf = (t: TestApp, res: Response) => eventsOf(t, res, 'password.breach_check_failed');

describe('ASVS 6.2.12: breached passwords', () => {
  const range = useRangeServer([BREACHED]);
  beforeEach(() => {
    range.server.mode = 'breached';
  });

  const t = useTestApp(() => ({
    PASSWORD_BREACH_API_URL: range.server.url,
    PASSWORD_BREACH_TIMEOUT_MS: String(TIMEOUT_MS),
    METRICS_PORT: '9464',
  }));

  const register = (password: string, email = uniqueEmail('breach')) =>
    request(t.app).post('/api/auth/register').send({ email, password, name: 'Breach Test' });
  const failures = async (reason: string) =>
    valueOf(
      parseExposition(await t.metrics!.registry.metrics()),
      'app_password_breach_check_failures_total',
      {
        reason,
      },
    );

  describe('the lookup', () => {
    test('when a password is registered, then one GET /range/<first 5 of its SHA-1> with Add-Padding is all that leaves the app', async () => {
      const password = 'otters juggle brass lanterns';
      const hash = sha1Hex(password);
      const before = range.server.requests.length;

      await register(password).expect(201);

      const sent = range.server.requests.slice(before);
      expect(sent).toHaveLength(1);
      expect(sent[0]).toMatchObject({ method: 'GET', url: `/range/${hash.slice(0, 5)}`, body: '' });
      expect(sent[0]!.headers['add-padding']).toBe('true');
      // Neither the rest of the hash nor the password, in any part of the request.
      const everything = JSON.stringify(sent[0]).toUpperCase();
      expect(everything).not.toContain(hash.slice(5, 15));
      expect(everything).not.toContain(password.toUpperCase());
    });

    test('when the password is in the answer with a count, then 400 password_rejected and no account', async () => {
      const email = uniqueEmail('breached');

      const res = await register(BREACHED, email);

      expectError(res, 400, 'password_rejected');
      expect(res.body.error.message).toBe(BREACHED_MESSAGE);
      expect(await countUsersWithEmail(t, email)).toBe(0);
    });

    test('when the answer has lowercase suffixes, then the breached password is still refused', async () => {
      range.server.mode = 'lowercase';

      const res = await register(BREACHED);

      expectError(res, 400, 'password_rejected');
      expect(res.body.error.message).toBe(BREACHED_MESSAGE);
    });

    test('when the password is in the answer only as a padding line (count 0), then it is accepted', async () => {
      const padded = 'a mauve heron hums sea shanties';
      range.server.addBreached(padded, 0);

      await register(padded).expect(201);
    });

    test('when the password breaks a local rule, then it is refused without a lookup', async () => {
      const before = range.server.requests.length;

      const res = await register('password1234');

      expectError(res, 400, 'password_rejected');
      expect(res.body.error.message).toMatch(/too common/);
      expect(range.server.requests.length).toBe(before);
    });
  });

  describe('every path that sets a password', () => {
    test('when an admin creates a user with a breached password, then 400 password_rejected', async () => {
      const admin = await signedIn(t, 'admin');
      const email = uniqueEmail('created');

      const res = await request(t.app)
        .post('/api/users')
        .set('Cookie', admin.cookie)
        .send({ email, password: BREACHED, name: 'Created' });

      expectError(res, 400, 'password_rejected');
      expect(await countUsersWithEmail(t, email)).toBe(0);
    });

    test('when a user changes to a breached password, then 400 password_rejected and the old one still works', async () => {
      const user = await createUser(t);
      const cookie = await login(t, user);

      const res = await request(t.app)
        .put('/api/auth/password')
        .set('Cookie', cookie)
        .send({ currentPassword: user.password, newPassword: BREACHED });

      expectError(res, 400, 'password_rejected');
      expect(res.body.error.message).toBe(BREACHED_MESSAGE);
      await expect(login(t, user)).resolves.toMatch(/^sid=/);
    });
  });

  describe('a lookup that gives no answer fails open', () => {
    test.each<[string, RangeMode, string]>([
      ['answers 500', 'status500', 'status'],
      ['sends no status line before the deadline', 'slowHeaders', 'timeout'],
      ['stalls halfway through the body', 'slowBody', 'timeout'],
      ['answers something other than SUFFIX:COUNT lines', 'malformed', 'malformed'],
      ['answers far more than a range holds', 'oversized', 'malformed'],
    ])(
      'when the server %s, then the password (even a breached one) is accepted, in bounded time, with a warning and a count',
      async (_what, mode, reason) => {
        range.server.mode = mode;
        const before = await failures(reason);
        const started = Date.now();

        const res = await register(BREACHED);

        expect(res.status).toBe(201);
        expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 2000);
        // ASVS 5.0 16.2.1: the line names the request that ran the lookup.
        expect(breachFailuresOf(t, res)).toEqual([
          expect.objectContaining({ level: 'warn', reason, requestId: res.headers['x-request-id'] }),
        ]);
        expect(await failures(reason)).toBe(before + 1);
      },
    );
  });
});

describe('ASVS 6.2.12: a password reset to a breached password', () => {
  const range = useRangeServer([BREACHED]);
  const smtp = useSmtpServer();
  const t = useTestApp(() => ({
    ...mailingThrough(smtp)(),
    PASSWORD_BREACH_API_URL: range.server.url,
    PASSWORD_BREACH_TIMEOUT_MS: String(TIMEOUT_MS),
  }));

  test('when the new password is breached, then 400 password_rejected and the link still sets another', async () => {
    const user = await createUser(t);
    expectAccepted(await askForReset(t, user.email));
    const token = tokenIn(await nthMailTo(smtp.server, user.email, RESET_SUBJECT));

    const refused = await confirmReset(t, token, BREACHED);

    expectError(refused, 400, 'password_rejected');
    expect(refused.body.error.message).toBe(BREACHED_MESSAGE);
    expect((await confirmReset(t, token, 'seven amber kites over the harbour')).status).toBe(204);
  });
});

describe('ASVS 6.2.12: a breach API that cannot be reached', () => {
  let url: string;
  beforeAll(async () => {
    // A port that was just free: nothing listens there any more.
    const closed = await startRangeServer();
    url = closed.url;
    await closed.close();
  });
  const t = useTestApp(() => ({
    PASSWORD_BREACH_API_URL: url,
    PASSWORD_BREACH_TIMEOUT_MS: String(TIMEOUT_MS),
  }));

  test('when the connection is refused, then the password is accepted and the failure logged as unreachable', async () => {
    const res = await request(t.app)
      .post('/api/auth/register')
      .send({ email: uniqueEmail('unreachable'), password: BREACHED, name: 'Unreachable' });

    expect(res.status).toBe(201);
    expect(breachFailuresOf(t, res)).toEqual([
      expect.objectContaining({ level: 'warn', reason: 'unreachable' }),
    ]);
  });
});

describe('ASVS 6.2.12: PASSWORD_BREACH_API_URL unset (the default)', () => {
  const t = useTestApp();

  test('when a password is registered, then no lookup is made and the local rules alone decide', async () => {
    expect(t.config.passwordBreachApi).toBeNull();

    const res = await request(t.app)
      .post('/api/auth/register')
      .send({ email: uniqueEmail('nolookup'), password: BREACHED, name: 'No Lookup' });

    expect(res.status).toBe(201);
  });
});
