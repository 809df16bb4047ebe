import request from 'supertest';
import { createAccountTokens, TOKEN_LIFETIME_MS } from '../../src/auth/account-tokens';
import { expectError } from '../support/assertions';
import {
  resendVerification,
  VERIFY_SUBJECT,
  verifyEmail,
  verifyLinkIn,
  verifyTokenMailedTo,
} from '../support/email-verification';
import { createUser, DEFAULT_PASSWORD, login, me, signedIn, uniqueEmail } from '../support/factories';
import { createHeldHasher, until } from '../support/held-hasher';
import { eventOf, eventsNamed, linesOf, waitForEventOf } from '../support/log-lines';
import {
  askForReset,
  mailingThrough,
  mailsTo,
  nthMailTo,
  RESET_SUBJECT,
  tokenIn,
  useSmtpServer,
} from '../support/password-reset';
import type { TestApp } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';

/**
 * Email verification through the API, against real Postgres and Redis, with every link read from a
 * mail that the real outbox and nodemailer delivered to a real SMTP server on loopback. What the
 * setting REQUIRE_VERIFIED_EMAIL does with an unverified user is in require-verified-email.test.ts.
 */

const register = (t: TestApp, email: string, headers: Record<string, string> = {}) =>
  request(t.app)
    .post('/api/auth/register')
    .set(headers)
    .send({ email, password: DEFAULT_PASSWORD, name: 'New Person' });

/** A user with a live verification token read from the mail they got after `resend`. */
async function mailedUser(t: TestApp, smtp: { readonly server: Parameters<typeof verifyTokenMailedTo>[0] }) {
  const user = await signedIn(t);
  expect((await resendVerification(t, user.cookie)).status).toBe(202);
  return { ...user, token: await verifyTokenMailedTo(smtp.server, user.email) };
}

describe('email verification over real SMTP', () => {
  const smtp = useSmtpServer();
  const t = useTestApp(mailingThrough(smtp, { TRUST_PROXY: '1' }));

  test('when a user registers and follows the mailed link, then the address is verified and me shows when', async () => {
    const email = uniqueEmail('register');

    const created = await register(t, email);
    const cookie = created.headers['set-cookie']![0]!.split(';')[0]!;
    const link = verifyLinkIn(await nthMailTo(smtp.server, email, VERIFY_SUBJECT));
    const token = new URLSearchParams(link.hash.slice(1)).get('token')!;
    const before = await me(t, cookie);
    const verified = await verifyEmail(t, token);
    const after = await me(t, cookie);

    expect(created.status).toBe(201);
    expect(created.body.emailVerifiedAt).toBeNull();
    expect(link.origin + link.pathname).toBe(`${t.config.publicOrigin}/verify-email`);
    expect(link.search).toBe('');
    expect(before.body.emailVerifiedAt).toBeNull();
    expect(verified.status).toBe(204);
    expect(new Date(after.body.emailVerifiedAt).getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(await waitForEventOf(t, created, 'email_verification.requested')).toMatchObject({
      level: 'info',
      via: 'registration',
      outcome: 'mail_queued',
      targetUserId: created.body.id,
      recipient: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
    expect(eventOf(t, verified, 'email_verification.completed')).toMatchObject({
      targetUserId: created.body.id,
    });
    await waitForEventOf(t, created, 'mail.sent');
    // Neither the token nor the address is written by anything these requests logged.
    const logged = JSON.stringify([...linesOf(t, created), ...linesOf(t, verified)]);
    expect(logged).not.toContain(token);
    expect(logged).not.toContain(email);
  });

  test('when the mail names the link, then both bodies carry the same link and say how long it works', async () => {
    const email = uniqueEmail('bodies');

    await register(t, email);
    const mail = await nthMailTo(smtp.server, email, VERIFY_SUBJECT);

    const link = verifyLinkIn(mail).toString();
    expect(mail.html).toContain(`href="${link}"`);
    expect(mail.text).toContain('24 hours');
  });

  test('when an admin creates a user, then that user is mailed a link that verifies them', async () => {
    const admin = await signedIn(t, 'admin');
    const email = uniqueEmail('by-admin');

    const created = await request(t.app)
      .post('/api/users')
      .set('Cookie', admin.cookie)
      .send({ email, name: 'Made By Admin', password: DEFAULT_PASSWORD, role: 'user' });
    const token = await verifyTokenMailedTo(smtp.server, email);

    expect(created.status).toBe(201);
    expect(created.body.emailVerifiedAt).toBeNull();
    expect(await waitForEventOf(t, created, 'email_verification.requested')).toMatchObject({
      via: 'admin',
      targetUserId: created.body.id,
    });
    expect((await verifyEmail(t, token)).status).toBe(204);
    const read = await request(t.app).get(`/api/users/${created.body.id}`).set('Cookie', admin.cookie);
    expect(read.body.emailVerifiedAt).toEqual(expect.any(String));
  });

  test('when a link is used a second time, then 400 invalid_token and the refusal is logged as used, without the token', async () => {
    const { token } = await mailedUser(t, smtp);

    expect((await verifyEmail(t, token)).status).toBe(204);
    const again = await verifyEmail(t, token);

    expectError(again, 400, 'invalid_token');
    expect(eventOf(t, again, 'account_token.refused')).toMatchObject({
      level: 'warn',
      purpose: 'verify_email',
      reason: 'used',
    });
    expect(JSON.stringify(linesOf(t, again))).not.toContain(token);
  });

  test('when one link is used by several requests at once, then exactly one verifies', async () => {
    const { token } = await mailedUser(t, smtp);

    const answers = await Promise.all(Array.from({ length: 5 }, () => verifyEmail(t, token)));

    expect(answers.map((res) => res.status).sort()).toEqual([204, 400, 400, 400, 400]);
    expect(
      answers.flatMap((res) =>
        eventsNamed(t, 'email_verification.completed').filter(
          (line) => line.requestId === res.headers['x-request-id'],
        ),
      ),
    ).toHaveLength(1);
  });

  // ASVS 5.0 6.4.1: activation links expire and are single-use.
  test('when a link is older than 24 hours by the clock that issued it, then 400 invalid_token (expired); a minute younger, it works', async () => {
    const lifetime = TOKEN_LIFETIME_MS.verify_email;
    const stale = await createUser(t);
    const fresh = await createUser(t);
    const issuedAt = (msAgo: number) => () => new Date(Date.now() - msAgo);

    const expired = await createAccountTokens({ db: t.db, clock: issuedAt(lifetime + 1000) }).issue(
      stale.user,
      'verify_email',
    );
    const live = await createAccountTokens({ db: t.db, clock: issuedAt(lifetime - 60_000) }).issue(
      fresh.user,
      'verify_email',
    );
    const refused = await verifyEmail(t, expired!.token);
    const accepted = await verifyEmail(t, live!.token);

    expectError(refused, 400, 'invalid_token');
    expect(eventOf(t, refused, 'account_token.refused')).toMatchObject({ reason: 'expired' });
    expect(accepted.status).toBe(204);
    expect((await me(t, await login(t, stale))).body.emailVerifiedAt).toBeNull();
  });

  test('when a password reset link is used to verify, then 400 invalid_token (wrong purpose) and the reset link still works', async () => {
    const user = await createUser(t);
    await askForReset(t, user.email);
    const resetToken = tokenIn(await nthMailTo(smtp.server, user.email, RESET_SUBJECT));

    const refused = await verifyEmail(t, resetToken);

    expectError(refused, 400, 'invalid_token');
    expect(eventOf(t, refused, 'account_token.refused')).toMatchObject({ reason: 'wrong_purpose' });
    expect((await me(t, await login(t, user))).body.emailVerifiedAt).toBeNull();
    const reset = await request(t.app)
      .post('/api/auth/password-reset/confirm')
      .send({ token: resetToken, newPassword: 'a fresh passphrase for 2027' });
    expect(reset.status).toBe(204);
  });

  test('when a verification link is used to reset a password, then 400 invalid_token and the link still verifies', async () => {
    const { token } = await mailedUser(t, smtp);

    const reset = await request(t.app)
      .post('/api/auth/password-reset/confirm')
      .send({ token, newPassword: 'a fresh passphrase for 2027' });

    expectError(reset, 400, 'invalid_token');
    expect((await verifyEmail(t, token)).status).toBe(204);
  });

  test('when a token is tampered with, then 400 invalid_token and the real one still works', async () => {
    const { token } = await mailedUser(t, smtp);
    const flip = (c: string) => (c === 'A' ? 'B' : 'A');
    const tampered = [
      flip(token[0]!) + token.slice(1),
      token.slice(0, -1) + flip(token.at(-1)!),
      token.slice(0, -1),
      `${token}A`,
      token.toUpperCase() === token ? token.toLowerCase() : token.toUpperCase(),
      '',
    ];

    for (const forged of tampered) expectError(await verifyEmail(t, forged), 400, 'invalid_token');
    expectError(await verifyEmail(t, 'x'.repeat(101)), 400, 'validation_failed');
    expectError(await verifyEmail(t, { token }), 400, 'validation_failed');
    expect((await verifyEmail(t, token)).status).toBe(204);
  });

  test('when a signed-in user asks for a new link, then 202, a mail arrives and the older link stops working', async () => {
    const { cookie, email, token: first } = await mailedUser(t, smtp);

    const again = await resendVerification(t, cookie);
    const second = await verifyTokenMailedTo(smtp.server, email, 2);

    expect({ status: again.status, body: again.body }).toEqual({
      status: 202,
      body: { message: expect.any(String) },
    });
    expect(eventOf(t, again, 'email_verification.requested')).toMatchObject({
      via: 'resend',
      outcome: 'mail_queued',
    });
    expectError(await verifyEmail(t, first), 400, 'invalid_token');
    expect((await verifyEmail(t, second)).status).toBe(204);
  });

  test('when a verified user asks for a new link, then 409 email_already_verified and no mail is sent', async () => {
    const user = await createUser(t, { verified: true });
    const cookie = await login(t, user);

    expectError(await resendVerification(t, cookie), 409, 'email_already_verified');
    expectError(await resendVerification(t), 401, 'unauthenticated');
    expect(mailsTo(smtp.server, user.email, VERIFY_SUBJECT)).toEqual([]);
  });

  test('when the request carries a forged Host or X-Forwarded-Host, then the mailed link still points at PUBLIC_URL', async () => {
    const email = uniqueEmail('host');

    const created = await register(t, email, { Host: 'evil.example', 'X-Forwarded-Host': 'evil.example' });
    const link = verifyLinkIn(await nthMailTo(smtp.server, email, VERIFY_SUBJECT));

    expect(created.status).toBe(201);
    expect(link.origin).toBe(t.config.publicOrigin);
  });
});

describe('email verification past the per-address mail limit', () => {
  const smtp = useSmtpServer();
  const t = useTestApp(mailingThrough(smtp, { MAIL_MAX_PER_ADDRESS_PER_HOUR: '2' }));

  test('when a user asks for more links than the hourly allowance, then 429 with Retry-After, no more mail, and one warning', async () => {
    const { cookie, email } = await signedIn(t);

    const allowed = [await resendVerification(t, cookie), await resendVerification(t, cookie)];
    const refused = [await resendVerification(t, cookie), await resendVerification(t, cookie)];

    expect(allowed.map((res) => res.status)).toEqual([202, 202]);
    for (const res of refused) {
      expectError(res, 429, 'rate_limited');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    }
    expect(eventOf(t, refused[0]!, 'email_verification.resend_limited')).toMatchObject({
      level: 'warn',
      recipient: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
    expect(eventOf(t, refused[1]!, 'email_verification.resend_limited')).toBeUndefined();
    await smtp.server.waitForMail(() => mailsTo(smtp.server, email, VERIFY_SUBJECT).length === 2);
    expect(JSON.stringify(linesOf(t, refused[0]!))).not.toContain(email);
  });

  test("when an address's allowance is spent before it registers, then the account is still created, unmailed, and the log says why", async () => {
    const email = uniqueEmail('spent');
    // Reset requests spend the address's allowance whether or not an account uses it.
    await askForReset(t, email);
    await askForReset(t, email);

    const created = await register(t, email);

    expect(created.status).toBe(201);
    expect(await waitForEventOf(t, created, 'email_verification.requested')).toMatchObject({
      outcome: 'address_limited',
      targetUserId: created.body.id,
    });
    expect(mailsTo(smtp.server, email, VERIFY_SUBJECT)).toEqual([]);
  });
});

describe('email verification without password hashing', () => {
  const smtp = useSmtpServer();
  const held = createHeldHasher();
  const t = useTestApp(mailingThrough(smtp, { HASH_CONCURRENCY: '1', HASH_QUEUE_MAX: '0' }), {
    passwords: held.hasher,
  });

  test('when every hashing slot is taken, then a link still verifies and nothing is hashed for it', async () => {
    const { token } = await mailedUser(t, smtp);
    // The sign-in that made the user hashed already: wait for a call beyond it.
    const callsBefore = held.calls.length;
    held.hold();
    const signingIn = request(t.app)
      .post('/api/auth/login')
      .send({ email: uniqueEmail(), password: 'whatever' })
      .then((res) => res);
    await until(() => held.calls.length > callsBefore, 'the login to take the only hashing slot');
    const callsHeld = held.calls.length;

    let verified;
    try {
      verified = await verifyEmail(t, token);
    } finally {
      held.release();
    }

    expect(verified.status).toBe(204);
    expect(held.calls.length).toBe(callsHeld);
    expect((await signingIn).status).toBe(401);
  });
});

describe('email verification with mail off', () => {
  const t = useTestApp();

  test('when mail is off, then both routes answer 404 and registration still succeeds, unverified', async () => {
    const { cookie } = await signedIn(t);
    const created = await register(t, uniqueEmail('no-mail'));

    expectError(await verifyEmail(t, 'x'.repeat(43)), 404, 'not_found');
    expectError(await resendVerification(t, cookie), 404, 'not_found');
    expectError(await resendVerification(t), 404, 'not_found');
    expect(created.status).toBe(201);
    expect(created.body.emailVerifiedAt).toBeNull();
  });
});
