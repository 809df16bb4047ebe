import request from 'supertest';
import { createAccountTokens } from '../../src/auth/account-tokens';
import { expectError } from '../support/assertions';
import { createUser, login, me, type TestUser } from '../support/factories';
import { eventOf, linesOf, waitForEventOf } from '../support/log-lines';
import {
  alterationsOf,
  askForReset,
  CHANGED_SUBJECT,
  confirmReset,
  expectAccepted,
  linkIn,
  loginStatus,
  mailingThrough,
  nthMailTo,
  RESET_SUBJECT,
  tokenIn,
  tokenOf,
  useSmtpServer,
} from '../support/password-reset';
import { strongPassword } from '../support/rate-limit';
import { useTestApp } from '../support/use-test-app';

/**
 * Password reset through the API, against real Postgres and Redis, with mail sent by the real outbox
 * and nodemailer to a real SMTP server on loopback: every token a test uses is read from a mail. What
 * an attacker or an outage gets from these routes is in password-reset-abuse.test.ts.
 */

describe('password reset over real SMTP', () => {
  const smtp = useSmtpServer();
  const t = useTestApp(mailingThrough(smtp, { TRUST_PROXY: '1' }));

  /** Asks for a reset for `user` and returns the token of the `nth` reset mail they received. */
  async function mailedToken(user: TestUser, nth = 1): Promise<string> {
    expectAccepted(await askForReset(t, user.email));
    return tokenIn(await nthMailTo(smtp.server, user.email, RESET_SUBJECT, nth));
  }

  test('when a user asks for a reset and follows the mailed link, then the new password works, the old one does not, and the owner is told by mail', async () => {
    const user = await createUser(t);

    const asked = await askForReset(t, user.email);
    const link = linkIn(await nthMailTo(smtp.server, user.email, RESET_SUBJECT));
    const newPassword = strongPassword();
    const done = await confirmReset(t, tokenOf(link), newPassword);

    expectAccepted(asked);
    expect(link.origin + link.pathname).toBe(`${t.config.publicOrigin}/reset-password`);
    expect(link.search).toBe('');
    expect(done.status).toBe(204);
    expect(await loginStatus(t, user.email, newPassword)).toBe(200);
    expect(await loginStatus(t, user.email, user.password)).toBe(401);
    const notice = await nthMailTo(smtp.server, user.email, CHANGED_SUBJECT);
    expect(notice.text).toContain(`${t.config.publicOrigin}/forgot-password`);
    expect(await waitForEventOf(t, asked, 'password_reset.requested')).toMatchObject({
      level: 'info',
      outcome: 'mail_queued',
      targetUserId: user.user.id,
      recipient: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
    expect(eventOf(t, done, 'password_reset.completed')).toMatchObject({ targetUserId: user.user.id });
    await waitForEventOf(t, done, 'mail.sent');
    // Neither the token nor the address is written by anything these two requests logged.
    const logged = JSON.stringify([...linesOf(t, asked), ...linesOf(t, done)]);
    expect(logged).not.toContain(tokenOf(link));
    expect(logged).not.toContain(user.email);
  });

  // ASVS 5.0 7.4.3: a reset ends every session.
  test('when a password is reset, then every session signed in before ends', async () => {
    const user = await createUser(t);
    const sessions = [await login(t, user), await login(t, user)];
    const token = await mailedToken(user);

    const done = await confirmReset(t, token, strongPassword());

    expect(done.status).toBe(204);
    for (const cookie of sessions) expectError(await me(t, cookie), 401, 'unauthenticated');
    expect(eventOf(t, done, 'password_reset.completed')).toMatchObject({ sessionsEnded: 2 });
  });

  test('when a link is used a second time, then 400 invalid_token, the first password stays and the reason is logged without the token', async () => {
    const user = await createUser(t);
    const token = await mailedToken(user);
    const first = strongPassword();

    expect((await confirmReset(t, token, first)).status).toBe(204);
    const again = await confirmReset(t, token, strongPassword());

    expectError(again, 400, 'invalid_token');
    expect(await loginStatus(t, user.email, first)).toBe(200);
    expect(eventOf(t, again, 'account_token.refused')).toMatchObject({
      level: 'warn',
      purpose: 'password_reset',
      reason: 'used',
    });
    expect(JSON.stringify(linesOf(t, again))).not.toContain(token);
  });

  // ASVS 5.0 2.3.1, 2.3.3: the token is spent and the password stored in one transaction, after the mailed step.
  test('when one link is used by two requests at once, then exactly one changes the password', async () => {
    const user = await createUser(t);
    const token = await mailedToken(user);
    const passwords = [strongPassword(), strongPassword()];

    const answers = await Promise.all(passwords.map((password) => confirmReset(t, token, password)));

    expect(answers.map((res) => res.status).sort()).toEqual([204, 400]);
    const winner = passwords[answers.findIndex((res) => res.status === 204)]!;
    const loser = passwords.find((password) => password !== winner)!;
    expect(await loginStatus(t, user.email, winner)).toBe(200);
    expect(await loginStatus(t, user.email, loser)).toBe(401);
  });

  test('when a link has expired, then 400 invalid_token and the password is unchanged', async () => {
    const user = await createUser(t);
    const token = await mailedToken(user);
    // The 30 minutes have passed (the lifetime itself is tested with a clock in account-tokens.test.ts).
    await t.db.query(
      "UPDATE account_tokens SET expires_at = now() - interval '1 second' WHERE user_id = $1",
      [user.user.id],
    );

    const res = await confirmReset(t, token, strongPassword());

    expectError(res, 400, 'invalid_token');
    expect(eventOf(t, res, 'account_token.refused')).toMatchObject({ reason: 'expired' });
    expect(await loginStatus(t, user.email, user.password)).toBe(200);
  });

  test('when a token is altered, then 400 invalid_token whether it keeps the shape or not', async () => {
    const user = await createUser(t);
    const token = await mailedToken(user);
    for (const [forged, reason] of alterationsOf(token)) {
      const res = await confirmReset(t, forged, strongPassword());
      expectError(res, 400, 'invalid_token');
      expect(eventOf(t, res, 'account_token.refused')).toMatchObject({ reason });
    }
    expect((await confirmReset(t, token, strongPassword())).status).toBe(204);
  });

  test('when a token of another purpose is used, then 400 invalid_token', async () => {
    const user = await createUser(t);
    const issued = await createAccountTokens({ db: t.db }).issue(user.user, 'verify_email');

    const res = await confirmReset(t, issued!.token, strongPassword());

    expectError(res, 400, 'invalid_token');
    expect(eventOf(t, res, 'account_token.refused')).toMatchObject({ reason: 'wrong_purpose' });
    expect(await loginStatus(t, user.email, user.password)).toBe(200);
  });

  test('when a second reset is asked for, then the first link stops working and the second works', async () => {
    const user = await createUser(t);
    const older = await mailedToken(user, 1);
    const newer = await mailedToken(user, 2);

    expectError(await confirmReset(t, older, strongPassword()), 400, 'invalid_token');
    expect((await confirmReset(t, newer, strongPassword())).status).toBe(204);
  });

  test('when the new password breaks the policy, then 400 password_rejected and the link still works', async () => {
    const user = await createUser(t);
    const token = await mailedToken(user);

    expectError(await confirmReset(t, token, 'short'), 400, 'password_rejected');
    expect((await confirmReset(t, token, strongPassword())).status).toBe(204);
  });

  test('when the request carries a forged Host and X-Forwarded-Host, then the mailed link still points at PUBLIC_URL', async () => {
    const user = await createUser(t);
    const forged = { Host: 'evil.example.test', 'X-Forwarded-Host': 'evil.example.test' };

    expectAccepted(await askForReset(t, user.email, forged));
    const mail = await nthMailTo(smtp.server, user.email, RESET_SUBJECT);

    expect(linkIn(mail).origin).toBe(t.config.publicOrigin);
    expect(`${mail.text}${String(mail.html)}`).not.toContain('evil.example.test');
  });

  test('when the body is not an address, then 400 validation_failed', async () => {
    expectError(await askForReset(t, 'not an address'), 400, 'validation_failed');
    expectError(
      await request(t.app).post('/api/auth/password-reset/confirm').send({ token: 'x' }),
      400,
      'validation_failed',
    );
  });
});
