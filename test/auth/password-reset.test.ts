import type { ParsedMail } from 'mailparser';
import request, { type Response } from 'supertest';
import { createAccountTokens } from '../../src/auth/account-tokens';
import { PASSWORD_RESET_ACCEPTED } from '../../src/auth/auth.schemas';
import { expectError } from '../support/assertions';
import { createUser, login, me, sleep, uniqueEmail, type TestUser } from '../support/factories';
import { listen } from '../support/listen';
import { eventOf, linesOf, waitForEventOf } from '../support/log-lines';
import { freePort } from '../support/ports';
import { expectRateLimited, fromIp, strongPassword, uniqueIp } from '../support/rate-limit';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp';
import type { TestApp } from '../support/test-app';
import { unknownToKnownTimeRatio } from '../support/timing';
import { useTestApp, withTestApp } from '../support/use-test-app';

/**
 * Password reset through the API, against real Postgres and Redis, with mail sent by the real outbox
 * and nodemailer to a real SMTP server on loopback: every token a test uses is read from a mail.
 */

const MAIL_FROM = 'Example App <no-reply@example.test>';
const RESET_SUBJECT = 'Reset your password';
const CHANGED_SUBJECT = 'Your password was changed';

/** The environment of an app that mails through `smtp`, with `extra` settings. */
const mailingThrough =
  (smtp: { readonly server: TestSmtpServer }, extra: Record<string, string> = {}) =>
  () => ({ SMTP_URL: smtp.server.url, MAIL_FROM, ...extra });

/** A real SMTP server for the describe block, started before its apps (whose env reads its URL). */
function useSmtpServer(): { readonly server: TestSmtpServer } {
  let server: TestSmtpServer | undefined;
  beforeAll(async () => {
    server = await startSmtpServer();
  });
  afterAll(() => server?.stop());
  return {
    get server() {
      if (!server) throw new Error('the SMTP server exists inside tests only');
      return server;
    },
  };
}

const addressesOf = (mail: ParsedMail): string[] =>
  [mail.to ?? []].flat().flatMap((to) => to.value.map((mailbox) => mailbox.address ?? ''));

const mailsTo = (smtp: TestSmtpServer, email: string, subject: string): ParsedMail[] =>
  smtp.mails.filter((mail) => mail.subject === subject && addressesOf(mail).includes(email));

/** The `nth` mail with `subject` that `email` received (1 is the first), once it has arrived. */
async function nthMailTo(smtp: TestSmtpServer, email: string, subject: string, nth = 1): Promise<ParsedMail> {
  await smtp.waitForMail(() => mailsTo(smtp, email, subject).length >= nth);
  return mailsTo(smtp, email, subject)[nth - 1]!;
}

/** The reset link of a mail's text body, as the user would click it. */
function linkIn(mail: ParsedMail): URL {
  const match = /(\S+\/reset-password\?token=\S+)/.exec(mail.text ?? '');
  if (!match) throw new Error(`no reset link in:\n${mail.text}`);
  return new URL(match[1]!);
}

const tokenIn = (mail: ParsedMail): string => linkIn(mail).searchParams.get('token')!;

const askForReset = (t: TestApp, email: string, headers: Record<string, string> = {}) =>
  request(t.app).post('/api/auth/password-reset').set(headers).send({ email });

const confirmReset = (t: TestApp, token: string, newPassword: string, headers: Record<string, string> = {}) =>
  request(t.app).post('/api/auth/password-reset/confirm').set(headers).send({ token, newPassword });

const loginStatus = async (t: TestApp, email: string, password: string) =>
  (await request(t.app).post('/api/auth/login').send({ email, password })).status;

/** The reset request's answer, which must be the same for every address. */
function expectAccepted(res: Response): void {
  expect({ status: res.status, body: res.body as unknown }).toEqual({
    status: 202,
    body: PASSWORD_RESET_ACCEPTED,
  });
}

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
    const done = await confirmReset(t, link.searchParams.get('token')!, newPassword);

    expectAccepted(asked);
    expect(link.origin + link.pathname).toBe(`${t.config.publicOrigin}/reset-password`);
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
    expect(logged).not.toContain(link.searchParams.get('token')!);
    expect(logged).not.toContain(user.email);
  });

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
    const altered = [
      [`${token[0] === 'A' ? 'B' : 'A'}${token.slice(1)}`, 'unknown'],
      [`${token}A`, 'malformed'],
      ['', 'malformed'],
    ] as const;

    for (const [forged, reason] of altered) {
      const res = await confirmReset(t, forged, strongPassword());
      expectError(res, 400, 'invalid_token');
      expect(eventOf(t, res, 'account_token.refused')).toMatchObject({ reason });
    }
    expect((await confirmReset(t, token, strongPassword())).status).toBe(204);
  });

  test('when a token of another purpose is used, then 400 invalid_token', async () => {
    const user = await createUser(t);
    const issued = await createAccountTokens({ db: t.db }).issue(user.user.id, 'verify_email');

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

describe('password reset limits', () => {
  const smtp = useSmtpServer();
  const t = useTestApp(
    mailingThrough(smtp, {
      TRUST_PROXY: '1',
      MAIL_MAX_PER_ADDRESS_PER_HOUR: '2',
      PASSWORD_RESET_MAX_PER_IP_PER_HOUR: '3',
    }),
  );

  test('when one address is asked for more often than the hourly limit, then every answer is the same 202, only the limit is mailed, and the excess is logged', async () => {
    const user = await createUser(t);

    // From a new address each time, as an attacker spreading out past the per-client limit would.
    const answers: Response[] = [];
    for (let i = 0; i < 3; i++) answers.push(await askForReset(t, user.email, fromIp(uniqueIp())));

    for (const res of answers) expectAccepted(res);
    for (const res of answers.slice(0, 2)) await waitForEventOf(t, res, 'mail.sent');
    expect(await waitForEventOf(t, answers[2]!, 'password_reset.address_limited')).toMatchObject({
      level: 'warn',
      recipient: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
    // The refused request queued nothing: no mail arrives after the two, however long one waits.
    await sleep(300);
    expect(mailsTo(smtp.server, user.email, RESET_SUBJECT)).toHaveLength(2);
    expect(eventOf(t, answers[2]!, 'password_reset.requested')).toBeUndefined();
  });

  test('when one client asks and confirms more often than the hourly limit, then 429 before anything is done', async () => {
    const ip = uniqueIp();
    for (let i = 0; i < 2; i++) expectAccepted(await askForReset(t, uniqueEmail('spread'), fromIp(ip)));
    expectError(await confirmReset(t, 'x'.repeat(43), strongPassword(), fromIp(ip)), 400, 'invalid_token');

    const asked = await askForReset(t, uniqueEmail('spread'), fromIp(ip));
    const confirmed = await confirmReset(t, 'x'.repeat(43), strongPassword(), fromIp(ip));

    expectRateLimited(asked, { min: 3000, max: 3600 });
    expectRateLimited(confirmed, { min: 3000, max: 3600 });
    expect(eventOf(t, asked, 'password_reset.requested')).toBeUndefined();
    expectAccepted(await askForReset(t, uniqueEmail('spread'), fromIp(uniqueIp())));
  });
});

describe('password reset and account enumeration', () => {
  const smtp = useSmtpServer();
  // Every attempt on the known address must go the whole way (token, mail), not stop at the limit.
  const t = useTestApp(mailingThrough(smtp, { MAIL_MAX_PER_ADDRESS_PER_HOUR: '1000' }));

  test('when an address has no account, then the answer is the same status and body as for one that has', async () => {
    const user = await createUser(t);

    const known = await askForReset(t, user.email);
    const unknown = await askForReset(t, uniqueEmail('nobody'));

    expectAccepted(known);
    expectAccepted(unknown);
    expect(Object.keys(unknown.headers).sort()).toEqual(Object.keys(known.headers).sort());
    expect(await waitForEventOf(t, unknown, 'password_reset.requested')).toMatchObject({
      outcome: 'unknown_email',
    });
    expect(await waitForEventOf(t, known, 'password_reset.requested')).toMatchObject({
      outcome: 'mail_queued',
    });
  });

  // The proof that the answer does not wait for the account-dependent work: that work is held up,
  // and the answer comes all the same. (The timing comparison below is too coarse to show it alone:
  // with the lookup, the token and the mail before the answer, its ratio measured 0.53-0.61 here.)
  test('when the token of a known address cannot be written yet, then the answer comes without waiting for it', async () => {
    const user = await createUser(t);

    const answered = await t.db.withTransaction(async (tx) => {
      // FOR UPDATE conflicts with the key-share lock the token's INSERT takes on its user (the
      // foreign key): until this transaction ends, no token can be written for this user.
      await tx.query('SELECT id FROM users WHERE id = $1 FOR UPDATE', [user.user.id]);
      const res = await askForReset(t, user.email).timeout(3000);
      expect(mailsTo(smtp.server, user.email, RESET_SUBJECT)).toEqual([]);
      return res;
    });

    expectAccepted(answered);
    // Released, the work after the answer goes through.
    await nthMailTo(smtp.server, user.email, RESET_SUBJECT);
  });

  // Both kinds do the same work until the answer is sent. Same measurement as login's test: medians of
  // interleaved attempts, within 2x of each other.
  test('when an address has no account, then the answer takes as long as for one that has', async () => {
    const user = await createUser(t);
    const server = await listen(t.app);
    try {
      const ratio = await unknownToKnownTimeRatio({
        send: async (email) => {
          const res = await request(server.url).post('/api/auth/password-reset').send({ email });
          expect(res.status).toBe(202);
        },
        knownEmail: user.email,
        unknownEmail: () => uniqueEmail('nobody'),
        // What a known address does after its answer (lookup, token, mail) runs in this process too:
        // let it finish, so the next measurement times an answer and not that leftover work.
        between: async () => {
          await sleep(30);
        },
      });

      expect(ratio).toBeGreaterThanOrEqual(0.5);
      expect(ratio).toBeLessThanOrEqual(2);
    } finally {
      await server.close();
    }
  });
});

describe('password reset when mail fails or is off', () => {
  test('when the SMTP server is down, then the same 202 and a mail.send_failed event', async () => {
    const closedPort = await freePort();
    await withTestApp({ SMTP_URL: `smtp://127.0.0.1:${closedPort}`, MAIL_FROM }, async (down) => {
      const user = await createUser(down);

      const res = await askForReset(down, user.email);

      expectAccepted(res);
      expect(await waitForEventOf(down, res, 'mail.send_failed')).toMatchObject({
        kind: 'password_reset',
        userId: user.user.id,
        attempts: 3,
        reason: 'smtp',
      });
    });
  });

  test('when mail is off, then both routes answer 404 like an unknown path', async () => {
    await withTestApp({}, async (off) => {
      const user = await createUser(off);
      const unknown = await request(off.app).post('/api/auth/no-such-route').send({});

      const asked = await askForReset(off, user.email);
      const confirmed = await confirmReset(off, 'x'.repeat(43), strongPassword());

      expect(off.config.mail.transport).toBe('off');
      for (const res of [asked, confirmed]) {
        expectError(res, 404, 'not_found');
        expect(res.body.error.message).toBe(unknown.body.error.message);
      }
    });
  });
});
