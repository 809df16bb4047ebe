import request from 'supertest';
import { createAccountTokens, TOKEN_LIFETIME_MS } from '../../src/auth/account-tokens';
import { recipientOf } from '../../src/mail/recipient';
import { expectError } from '../support/assertions';
import {
  askForEmailChange,
  CONFIRM_PAGE,
  CONFIRM_SUBJECT,
  confirmEmailChange,
  confirmLinkIn,
  confirmTokenIn,
  liveTokenPurposes,
  markVerified,
  NOTICE_SUBJECT,
} from '../support/email-change';
import { verifyEmail, verifyTokenMailedTo } from '../support/email-verification';
import { createUser, me, signedIn, uniqueEmail, type TestUser } from '../support/factories';
import { eventOf, eventsNamed, eventsOf, linesOf, waitForEventOf } from '../support/log-lines';
import {
  alterationsOf,
  askForReset,
  confirmReset,
  expectAccepted,
  loginStatus,
  MAIL_FROM,
  mailingThrough,
  mailsTo,
  nthMailTo,
  RESET_SUBJECT,
  tokenIn,
  tokenOf,
  useSmtpServer,
} from '../support/password-reset';
import { freePort } from '../support/ports';
import { strongPassword } from '../support/rate-limit';
import { userRow } from '../support/users';
import { useTestApp, withTestApp } from '../support/use-test-app';

/**
 * A signed-in user's change of their own email, confirmed from the new address, through the API
 * against real Postgres and Redis, with mail sent by the real outbox to a real SMTP server on
 * loopback: every token a test uses is read from a mail (or issued with a clock, for expiry). The
 * page that a link opens is in test/web/email-change-pages.test.ts, the browser in test/e2e.
 */

type SignedIn = TestUser & { cookie: string };

const emailOf = async (t: Parameters<typeof userRow>[0], id: string) => (await userRow(t, id))!.email;

describe('email change confirmed by mail, over real SMTP', () => {
  const smtp = useSmtpServer();
  const t = useTestApp(mailingThrough(smtp, { TRUST_PROXY: '1' }));

  /** Asks for a change of `user` to a new address and returns it with the mailed token. */
  async function mailedChange(user: SignedIn, nth = 1): Promise<{ newEmail: string; token: string }> {
    const newEmail = uniqueEmail('moved');
    expect((await askForEmailChange(t, user, newEmail)).status).toBe(202);
    return { newEmail, token: confirmTokenIn(await nthMailTo(smtp.server, newEmail, CONFIRM_SUBJECT, nth)) };
  }

  // ASVS 5.0 2.3.1: the address changes only after the mailed link, in that order.
  test('when users ask to change their own email, then 202 with pendingEmail, the address is unchanged, the new one gets the link and the old one a notice without it', async () => {
    const user = await signedIn(t);
    const newEmail = uniqueEmail('moved');

    const res = await askForEmailChange(t, user, newEmail);

    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ id: user.user.id, email: user.email, pendingEmail: newEmail });
    expect(await emailOf(t, user.user.id)).toBe(user.email);
    const link = confirmLinkIn(await nthMailTo(smtp.server, newEmail, CONFIRM_SUBJECT));
    expect(`${link.origin}${link.pathname}${link.search}`).toBe(`${t.config.publicOrigin}${CONFIRM_PAGE}`);
    expect(tokenOf(link)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const notice = await nthMailTo(smtp.server, user.email, NOTICE_SUBJECT);
    expect(notice.text).toContain(`m***@example.test`);
    expect(notice.text).toContain(`${t.config.publicOrigin}/forgot-password`);
    expect(`${notice.text}${String(notice.html)}`).not.toContain(tokenOf(link));
    expect(`${notice.text}${String(notice.html)}`).not.toContain('#token=');
    expect(mailsTo(smtp.server, user.email, CONFIRM_SUBJECT)).toEqual([]);
    // Only the new address's own mail names it in full.
    expect(`${notice.text}${String(notice.html)}`).not.toContain(newEmail);
    expect(eventOf(t, res, 'email_change.requested')).toMatchObject({
      level: 'info',
      targetUserId: user.user.id,
      recipient: recipientOf(newEmail),
      previousRecipient: recipientOf(user.email),
    });
    expect(eventsOf(t, res, 'user.updated')).toEqual([]);
    await waitForEventOf(t, res, 'mail.sent');
    const logged = JSON.stringify(linesOf(t, res));
    expect(logged).not.toContain(tokenOf(link));
    expect(logged).not.toContain(newEmail);
    expect(logged).not.toContain(user.email);
  });

  test('when the mailed link is followed, then 204, the account has the new address verified, it signs in with it and no longer with the old one', async () => {
    const user = await signedIn(t);
    const { newEmail, token } = await mailedChange(user);

    const done = await confirmEmailChange(t, token);

    expect(done.status).toBe(204);
    const now = await me(t, user.cookie);
    expect(now.body).toMatchObject({ email: newEmail, emailVerifiedAt: expect.any(String) });
    expect(Date.now() - Date.parse(now.body.emailVerifiedAt)).toBeLessThan(60_000);
    expect(await loginStatus(t, newEmail, user.password)).toBe(200);
    expect(await loginStatus(t, user.email, user.password)).toBe(401);
    expect(eventOf(t, done, 'email_change.completed')).toMatchObject({
      targetUserId: user.user.id,
      recipient: recipientOf(newEmail),
    });
    const logged = JSON.stringify(linesOf(t, done));
    expect(logged).not.toContain(token);
    expect(logged).not.toContain(newEmail);
  });

  test('when a name and an email are sent together, then the name changes at once and the email waits', async () => {
    const user = await signedIn(t);
    const newEmail = uniqueEmail('moved');

    const res = await askForEmailChange(t, user, newEmail, { name: 'Renamed At Once' });

    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ name: 'Renamed At Once', email: user.email, pendingEmail: newEmail });
    expect(await userRow(t, user.user.id)).toMatchObject({ name: 'Renamed At Once', email: user.email });
    expect(eventOf(t, res, 'user.updated')).toMatchObject({ fields: ['name'] });
  });

  test('when a link is used a second time, then 400 invalid_token logged as used, and the address stays the first one', async () => {
    const user = await signedIn(t);
    const { newEmail, token } = await mailedChange(user);
    expect((await confirmEmailChange(t, token)).status).toBe(204);

    const again = await confirmEmailChange(t, token);

    expectError(again, 400, 'invalid_token');
    expect(eventOf(t, again, 'account_token.refused')).toMatchObject({
      level: 'warn',
      purpose: 'change_email',
      reason: 'used',
    });
    expect(JSON.stringify(linesOf(t, again))).not.toContain(token);
    expect(await emailOf(t, user.user.id)).toBe(newEmail);
  });

  test('when one link is used by two requests at once, then exactly one 204', async () => {
    const user = await signedIn(t);
    const { newEmail, token } = await mailedChange(user);

    const answers = await Promise.all([confirmEmailChange(t, token), confirmEmailChange(t, token)]);

    expect(answers.map((res) => res.status).sort()).toEqual([204, 400]);
    expect(await emailOf(t, user.user.id)).toBe(newEmail);
    expect(
      eventsNamed(t, 'email_change.completed').filter((e) => e.targetUserId === user.user.id),
    ).toHaveLength(1);
  });

  test('when the link has outlived its 24 hours, then 400 invalid_token logged as expired and nothing changes', async () => {
    const user = await createUser(t);
    const newEmail = uniqueEmail('late');
    // Issued by a clock a moment more than a lifetime ago: its expiry has passed by the app's clock.
    const then = new Date(Date.now() - TOKEN_LIFETIME_MS.change_email - 1000);
    const issued = await createAccountTokens({ db: t.db, clock: () => then }).issue(
      user.user,
      'change_email',
      { newEmail },
    );

    const res = await confirmEmailChange(t, issued!.token);

    expectError(res, 400, 'invalid_token');
    expect(eventOf(t, res, 'account_token.refused')).toMatchObject({ reason: 'expired' });
    expect(await emailOf(t, user.user.id)).toBe(user.email);
  });

  test('when a token of another purpose is used, then 400 invalid_token either way and nothing changes', async () => {
    const user = await signedIn(t);
    const reset = await createAccountTokens({ db: t.db }).issue(user.user, 'password_reset');
    const verify = await createAccountTokens({ db: t.db }).issue(user.user, 'verify_email');
    const { token } = await mailedChange(user);

    for (const other of [reset!.token, verify!.token]) {
      const res = await confirmEmailChange(t, other);
      expectError(res, 400, 'invalid_token');
      expect(eventOf(t, res, 'account_token.refused')).toMatchObject({ reason: 'wrong_purpose' });
    }
    // And the other way round: a change link does not reset a password.
    const asReset = await confirmReset(t, token, strongPassword());
    expectError(asReset, 400, 'invalid_token');
    expect(eventOf(t, asReset, 'account_token.refused')).toMatchObject({ reason: 'wrong_purpose' });
    expect(await emailOf(t, user.user.id)).toBe(user.email);
    expect(await loginStatus(t, user.email, user.password)).toBe(200);
  });

  test('when a token is altered, then 400 invalid_token whether it keeps the shape or not, and the real one still works', async () => {
    const user = await signedIn(t);
    const { newEmail, token } = await mailedChange(user);
    for (const [forged, reason] of alterationsOf(token)) {
      const res = await confirmEmailChange(t, forged);
      expectError(res, 400, 'invalid_token');
      expect(eventOf(t, res, 'account_token.refused')).toMatchObject({ reason });
    }
    expect(await emailOf(t, user.user.id)).toBe(user.email);
    expect((await confirmEmailChange(t, token)).status).toBe(204);
    expect(await emailOf(t, user.user.id)).toBe(newEmail);
  });

  test('when another account takes the address before the link is followed, then 409 email_taken, nothing changes and the token stays unspent', async () => {
    const user = await signedIn(t);
    const { newEmail, token } = await mailedChange(user);
    await createUser(t, { email: newEmail });

    const res = await confirmEmailChange(t, token);

    expectError(res, 409, 'email_taken');
    expect(await me(t, user.cookie)).toMatchObject({ body: { email: user.email } });
    expect(await liveTokenPurposes(t, user.user.id)).toEqual(['change_email']);
    expect(eventsOf(t, res, 'email_change.completed')).toEqual([]);
  });

  test('when the new address is already in use, then 409 email_taken at once, no token and no mail', async () => {
    const user = await signedIn(t);
    const taken = await createUser(t);

    const res = await askForEmailChange(t, user, taken.email.toUpperCase());

    expectError(res, 409, 'email_taken');
    expect(await liveTokenPurposes(t, user.user.id)).toEqual([]);
    expect(eventsOf(t, res, 'email_change.requested')).toEqual([]);
    await waitForEventOf(t, await askForEmailChange(t, user, uniqueEmail('then')), 'mail.sent');
    expect(mailsTo(smtp.server, taken.email, CONFIRM_SUBJECT)).toEqual([]);
    expect(mailsTo(smtp.server, user.email, NOTICE_SUBJECT)).toHaveLength(1);
  });

  test('when the current password is wrong or missing, then the answers of today, no token and no mail', async () => {
    const user = await signedIn(t);
    const newEmail = uniqueEmail('never');

    const wrong = await askForEmailChange(t, user, newEmail, { password: 'not my password at all' });
    const missing = await request(t.app)
      .patch(`/api/users/${user.user.id}`)
      .set('Cookie', user.cookie)
      .send({ email: newEmail });

    expectError(wrong, 403, 'invalid_current_password');
    expectError(missing, 400, 'validation_failed');
    expect(await liveTokenPurposes(t, user.user.id)).toEqual([]);
    expect(smtp.server.mails.filter((mail) => JSON.stringify(mail.to).includes(newEmail))).toEqual([]);
  });

  test('when the user gives the address they already have, then 200 and nothing is mailed', async () => {
    const user = await signedIn(t);
    await markVerified(t, user.user.id);

    const res = await askForEmailChange(t, user, user.email);

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ email: user.email, emailVerifiedAt: expect.any(String) });
    expect(res.body).not.toHaveProperty('pendingEmail');
    expect(await liveTokenPurposes(t, user.user.id)).toEqual([]);
  });

  test('when a second change is asked for, then only the latest link works', async () => {
    const user = await signedIn(t);
    const first = await mailedChange(user, 1);
    const second = await mailedChange(user, 1);

    expectError(await confirmEmailChange(t, first.token), 400, 'invalid_token');
    expect((await confirmEmailChange(t, second.token)).status).toBe(204);
    expect(await emailOf(t, user.user.id)).toBe(second.newEmail);
  });

  test('when the change is confirmed, then the live verification link of the old address dies with it', async () => {
    const user = await signedIn(t);
    await createAccountTokens({ db: t.db }).issue(user.user, 'verify_email');
    const { token } = await mailedChange(user);

    expect((await confirmEmailChange(t, token)).status).toBe(204);

    expect(await liveTokenPurposes(t, user.user.id)).toEqual([]);
  });

  test('when the change is confirmed, then a reset link mailed to the old address no longer sets the password', async () => {
    // Whoever reads the old mailbox (the reason to move away from it) asked for a reset there first.
    const user = await signedIn(t);
    expectAccepted(await askForReset(t, user.email));
    const resetToken = tokenIn(await nthMailTo(smtp.server, user.email, RESET_SUBJECT));
    const { token } = await mailedChange(user);

    expect((await confirmEmailChange(t, token)).status).toBe(204);
    expect(await liveTokenPurposes(t, user.user.id)).not.toContain('password_reset');
    const res = await confirmReset(t, resetToken, strongPassword());

    expectError(res, 400, 'invalid_token');
    expect(await loginStatus(t, (await emailOf(t, user.user.id))!, user.password)).toBe(200);
  });

  test('when an admin moves the account to another address, then a reset link mailed to the old one no longer sets the password', async () => {
    const admin = await signedIn(t, 'admin');
    const user = await createUser(t);
    expectAccepted(await askForReset(t, user.email));
    const resetToken = tokenIn(await nthMailTo(smtp.server, user.email, RESET_SUBJECT));
    const newEmail = uniqueEmail('admin-moved');

    const moved = await request(t.app)
      .patch(`/api/users/${user.user.id}`)
      .set('Cookie', admin.cookie)
      .send({ email: newEmail });
    expect(moved.status).toBe(200);
    expect(await liveTokenPurposes(t, user.user.id)).not.toContain('password_reset');
    const res = await confirmReset(t, resetToken, strongPassword());

    expectError(res, 400, 'invalid_token');
    expect(await loginStatus(t, newEmail, user.password)).toBe(200);
  });

  test('when the owner follows the notice and resets the password, then the pending link stops working', async () => {
    const user = await signedIn(t);
    const { token } = await mailedChange(user);
    expectAccepted(await askForReset(t, user.email));
    const resetToken = tokenIn(await nthMailTo(smtp.server, user.email, RESET_SUBJECT));

    expect((await confirmReset(t, resetToken, strongPassword())).status).toBe(204);
    const res = await confirmEmailChange(t, token);

    expectError(res, 400, 'invalid_token');
    expect(await emailOf(t, user.user.id)).toBe(user.email);
  });

  test('when the signed-in user changes the password, then a pending link stops working too', async () => {
    const user = await signedIn(t);
    const { token } = await mailedChange(user);
    const changed = await request(t.app)
      .put('/api/auth/password')
      .set('Cookie', user.cookie)
      .send({ currentPassword: user.password, newPassword: strongPassword() });
    expect(changed.status).toBe(204);

    expectError(await confirmEmailChange(t, token), 400, 'invalid_token');
    expect(await emailOf(t, user.user.id)).toBe(user.email);
  });

  test('when the request carries a forged Host and X-Forwarded-Host, then both mails still point at PUBLIC_URL', async () => {
    const user = await signedIn(t);
    const newEmail = uniqueEmail('forged');
    const forged = { Host: 'evil.example.test', 'X-Forwarded-Host': 'evil.example.test' };

    expect((await askForEmailChange(t, user, newEmail, { headers: forged })).status).toBe(202);
    const confirm = await nthMailTo(smtp.server, newEmail, CONFIRM_SUBJECT);
    const notice = await nthMailTo(smtp.server, user.email, NOTICE_SUBJECT);

    expect(confirmLinkIn(confirm).origin).toBe(t.config.publicOrigin);
    for (const mail of [confirm, notice]) {
      expect(`${mail.text}${String(mail.html)}`).not.toContain('evil.example.test');
    }
  });

  test("when an admin changes another user's email, then it switches at once, unverified, the user's pending links die, the old address is told and the new one is sent a verification link", async () => {
    const admin = await signedIn(t, 'admin');
    const user = await signedIn(t);
    await markVerified(t, user.user.id);
    const pending = await mailedChange(user);
    const newEmail = uniqueEmail('admin-set');

    const res = await request(t.app)
      .patch(`/api/users/${user.user.id}`)
      .set('Cookie', admin.cookie)
      .send({ email: newEmail });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ email: newEmail, emailVerifiedAt: null });
    expect(res.body).not.toHaveProperty('pendingEmail');
    expectError(await confirmEmailChange(t, pending.token), 400, 'invalid_token');
    // The notice of the user's own request came first; the admin's change is the second.
    const notice = await nthMailTo(smtp.server, user.email, NOTICE_SUBJECT, 2);
    expect(notice.text).toContain('a***@example.test');
    expect(mailsTo(smtp.server, newEmail, CONFIRM_SUBJECT)).toEqual([]);
    expect(eventOf(t, res, 'user.updated')).toMatchObject({ fields: ['email'] });
    expect(await loginStatus(t, newEmail, user.password)).toBe(200);
    // The address an admin set is proven by its owner, with the verification link mailed to it.
    const verification = await verifyTokenMailedTo(smtp.server, newEmail);
    // Issued after the answer, for the new address: it is the user's only live link.
    expect(await liveTokenPurposes(t, user.user.id)).toEqual(['verify_email']);
    expect((await verifyEmail(t, verification)).status).toBe(204);
    expect((await me(t, user.cookie)).body).toMatchObject({
      email: newEmail,
      emailVerifiedAt: expect.any(String),
    });
  });

  test('when an admin changes only the name, then the verification of the address stays', async () => {
    const admin = await signedIn(t, 'admin');
    const user = await createUser(t);
    await markVerified(t, user.user.id);

    const res = await request(t.app)
      .patch(`/api/users/${user.user.id}`)
      .set('Cookie', admin.cookie)
      .send({ name: 'Only Renamed', email: user.email });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'Only Renamed', emailVerifiedAt: expect.any(String) });
  });

  test('when the confirm body is not a token, then 400 validation_failed', async () => {
    expectError(
      await request(t.app).post('/api/auth/email-change/confirm').send({}),
      400,
      'validation_failed',
    );
    expectError(
      await request(t.app)
        .post('/api/auth/email-change/confirm')
        .send({ token: 'x'.repeat(101) }),
      400,
      'validation_failed',
    );
  });
});

describe('email change, mail limit per address', () => {
  const smtp = useSmtpServer();
  const t = useTestApp(mailingThrough(smtp, { MAIL_MAX_PER_ADDRESS_PER_HOUR: '2' }));

  test('when changes to one address are asked for beyond the hourly limit, then 429 rate_limited, nothing changes and no mail goes to it', async () => {
    const users = [await signedIn(t), await signedIn(t), await signedIn(t), await signedIn(t)];
    const target = uniqueEmail('bombed');

    const answers = [];
    for (const user of users) answers.push(await askForEmailChange(t, user, target, { name: 'Not Applied' }));

    expect(answers.slice(0, 2).map((res) => res.status)).toEqual([202, 202]);
    expectError(answers[2]!, 429, 'rate_limited');
    expectError(answers[3]!, 429, 'rate_limited');
    expect(Number(answers[2]!.headers['retry-after'])).toBeGreaterThan(0);
    expect(eventOf(t, answers[2]!, 'email_change.address_limited')).toMatchObject({
      level: 'warn',
      recipient: recipientOf(target),
    });
    // One line per address and hour, not one per refusal.
    expect(eventsOf(t, answers[3]!, 'email_change.address_limited')).toEqual([]);
    expect((await userRow(t, users[2]!.user.id))!.name).toBe('Test User');
    expect(await liveTokenPurposes(t, users[2]!.user.id)).toEqual([]);
    await nthMailTo(smtp.server, target, CONFIRM_SUBJECT, 2);
    await waitForEventOf(t, answers[1]!, 'mail.sent');
    expect(mailsTo(smtp.server, target, CONFIRM_SUBJECT)).toHaveLength(2);
    expect(mailsTo(smtp.server, users[2]!.email, NOTICE_SUBJECT)).toEqual([]);
  });
});

describe('email change confirmation, per-client budget', () => {
  const smtp = useSmtpServer();
  const t = useTestApp(mailingThrough(smtp, { PASSWORD_RESET_MAX_PER_IP_PER_HOUR: '2' }));

  test("when a client has spent the mailed links' hourly budget (shared with password reset), then confirming answers 429 before the token is looked at", async () => {
    expectAccepted(await askForReset(t, uniqueEmail('reset')));
    expectError(await confirmEmailChange(t, 'x'.repeat(43)), 400, 'invalid_token');

    const res = await confirmEmailChange(t, 'y'.repeat(43));

    expectError(res, 429, 'rate_limited');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(eventsOf(t, res, 'account_token.refused')).toEqual([]);
  });
});

describe('email change when mail fails or is off', () => {
  test('when the SMTP server is down, then the same 202 and a mail.send_failed event, never a 500', async () => {
    const closedPort = await freePort();
    await withTestApp({ SMTP_URL: `smtp://127.0.0.1:${closedPort}`, MAIL_FROM }, async (down) => {
      const user = await signedIn(down);
      const newEmail = uniqueEmail('unreachable');

      const res = await askForEmailChange(down, user, newEmail);

      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({ email: user.email, pendingEmail: newEmail });
      expect(await waitForEventOf(down, res, 'mail.send_failed')).toMatchObject({
        kind: expect.stringMatching(/^email_change_(confirm|notice)$/),
        userId: user.user.id,
        reason: 'smtp',
      });
    });
  });

  test("when mail is off, then a change of one's own email switches at once after the password, unverified, and the confirm route answers 404", async () => {
    await withTestApp({}, async (off) => {
      const user = await signedIn(off);
      await markVerified(off, user.user.id);
      const newEmail = uniqueEmail('mail-off');

      const res = await askForEmailChange(off, user, newEmail);
      const confirm = await confirmEmailChange(off, 'x'.repeat(43));

      expect(off.config.mail.transport).toBe('off');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ email: newEmail, emailVerifiedAt: null });
      expect(await loginStatus(off, newEmail, user.password)).toBe(200);
      expectError(confirm, 404, 'not_found');
      expect((await request(off.app).get(CONFIRM_PAGE)).status).toBe(404);
    });
  });
});
