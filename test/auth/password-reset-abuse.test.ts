import request, { type Response } from 'supertest';
import { addressDigest } from '../../src/mail/recipient';
import { expectError } from '../support/assertions';
import { createUser, sleep, uniqueEmail } from '../support/factories';
import { listen } from '../support/listen';
import { eventOf, waitForEventOf } from '../support/log-lines';
import {
  askForReset,
  confirmReset,
  expectAccepted,
  MAIL_FROM,
  mailingThrough,
  mailsTo,
  nthMailTo,
  RESET_SUBJECT,
  useSmtpServer,
} from '../support/password-reset';
import { freePort } from '../support/ports';
import { expectRateLimited, fromIp, scanKeys, strongPassword, uniqueIp } from '../support/rate-limit';
import { unknownToKnownTimeRatio } from '../support/timing';
import { useTestApp, withTestApp } from '../support/use-test-app';

/**
 * What password reset gives away, or costs, to an attacker and under an outage: its limits per client
 * and per address, what its answers say about which accounts exist, and how it answers when the relay
 * is down or mail is off. Real Postgres, Redis and SMTP, as in password-reset.test.ts.
 */

// ASVS 5.0 2.3.2: the documented per-address and per-client limits.
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
    // Counted under the address's SHA-256: Redis holds no key with the address in it.
    const counters = await scanKeys(t, `${t.config.redisKeyPrefix}rl:mail-address:*`);
    expect(counters.filter((key) => key.endsWith(addressDigest(user.email)))).toHaveLength(1);
    expect(await scanKeys(t, `*${user.email}*`)).toEqual([]);
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
