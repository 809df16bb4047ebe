import { randomBytes } from 'node:crypto';
import { createAccountTokens, TOKEN_LIFETIME_MS } from '../../src/auth/account-tokens';
import { startSweeps, type Sweep } from '../../src/lib/sweeps';
import { createMfaRepository, SWEEP_EXPIRED_ENROLMENTS } from '../../src/mfa/mfa.repository';
import { ENROLMENT_LIFETIME_S } from '../../src/mfa/mfa.service';
import { createCapturedLogger, type LogLine } from '../support/captured-logger';
import { createUser, sleep } from '../support/factories';
import { useTestApp } from '../support/use-test-app';

/** Polls `check` until it holds or `timeoutMs` passes; returns whether it held. */
async function within(timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(10);
  }
  return check();
}

describe('the periodic sweeps', () => {
  // A database of its own: the sweeps delete every expired token and enrolment, so in the shared one
  // they would delete what the tests of another worker are looking at.
  const t = useTestApp({}, { isolatedDatabase: 'sweeps' });

  test('when a token has expired, then the periodic sweep deletes it and logs how many it deleted', async () => {
    const { user } = await createUser(t);
    const anHourAgo = () => new Date(Date.now() - 3_600_000 - TOKEN_LIFETIME_MS.password_reset);
    await createAccountTokens({ db: t.db, clock: anHourAgo }).issue(user, 'password_reset');
    const { logger, logs } = createCapturedLogger();
    const countRows = async () =>
      (await t.db.query('SELECT 1 FROM account_tokens WHERE user_id = $1', [user.id])).length;
    const tokens = createAccountTokens({ db: t.db });

    const sweeps = startSweeps({
      sweeps: [{ what: 'expired and used account tokens', sweep: () => tokens.sweep() }],
      logger,
      intervalMs: 20,
    });
    // The row gone and the sweep's line written (it logs after its DELETE returns).
    const deleted = await within(
      5000,
      async () => (await countRows()) === 0 && logs.some((l) => l.msg?.endsWith(' deleted')),
    );
    sweeps.stop();

    expect(deleted).toBe(true);
    expect(logs).toContainEqual(
      expect.objectContaining({
        msg: 'expired and used account tokens deleted',
        deleted: expect.any(Number),
      }),
    );
  });

  test('when a second-factor enrolment was left unconfirmed past its lifetime, then the sweep deletes it and no other factor', async () => {
    const mfa = createMfaRepository(t.db);
    // A sealed secret of a valid shape: the sweep never opens it.
    const sealed = () => ({ keyId: 'test-key', ciphertext: randomBytes(64) });
    const enrol = async (ageS: number, confirmed: boolean) => {
      const { user } = await createUser(t);
      expect(await mfa.startEnrolment(user.id, sealed())).toBe(true);
      await t.db.query(
        `UPDATE user_totp SET created_at = now() - make_interval(secs => $2),
           confirmed_at = CASE WHEN $3::boolean THEN now() END WHERE user_id = $1`,
        [user.id, ageS, confirmed],
      );
      return user.id;
    };
    const abandoned = await enrol(ENROLMENT_LIFETIME_S + 60, false);
    const waiting = await enrol(ENROLMENT_LIFETIME_S - 60, false);
    const confirmedLongAgo = await enrol(30 * 86_400, true);
    const rowsOf = async (userId: string) =>
      (await t.db.query('SELECT 1 FROM user_totp WHERE user_id = $1', [userId])).length;
    const { logger, logs } = createCapturedLogger();

    const sweeps = startSweeps({
      sweeps: [
        {
          what: 'second-factor enrolments never confirmed',
          sweep: () => mfa.sweepExpiredEnrolments(ENROLMENT_LIFETIME_S),
        },
      ],
      logger,
      intervalMs: 20,
    });
    const deleted = await within(
      5000,
      async () => (await rowsOf(abandoned)) === 0 && logs.some((l) => l.msg?.endsWith(' deleted')),
    );
    sweeps.stop();

    expect(deleted).toBe(true);
    expect(await rowsOf(waiting)).toBe(1);
    expect(await rowsOf(confirmedLongAgo)).toBe(1);
    expect(logs).toContainEqual(
      expect.objectContaining({ msg: 'second-factor enrolments never confirmed deleted', deleted: 1 }),
    );
  });

  test('when the sweep of unconfirmed enrolments runs, then it reads them through their partial index', async () => {
    // The plan of the sweep's DELETE, with sequential scans priced out so that even a small table shows
    // which index Postgres can use: without migration 0007's index it can only scan the table.
    const plan = await t.db.withTransaction(async (client) => {
      await client.query('SET LOCAL enable_seqscan = off');
      const rows = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${SWEEP_EXPIRED_ENROLMENTS}`, [
        ENROLMENT_LIFETIME_S,
      ]);
      return rows.map((row) => row['QUERY PLAN']).join('\n');
    });
    expect(plan).toContain('user_totp_unconfirmed_created_at');
  });

  test('when a sweep fails, then it is logged, the next tick tries it again, and the other sweeps still run', async () => {
    const { logger, logs } = createCapturedLogger();
    let calls = 0;
    let otherCalls = 0;
    const failingOnce: Sweep = {
      what: 'rows of one kind',
      sweep: async () => {
        calls++;
        if (calls === 1) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        return 0;
      },
    };
    const other: Sweep = { what: 'rows of another kind', sweep: async () => (otherCalls++, 0) };

    const sweeps = startSweeps({ sweeps: [failingOnce, other], logger, intervalMs: 20 });
    const triedAgain = await within(5000, () => calls >= 2 && otherCalls >= 2);
    sweeps.stop();

    expect(triedAgain).toBe(true);
    expect(logs.filter((l: LogLine) => l.level === 'warn').map((l) => l.msg)).toEqual([
      'rows of one kind: sweep failed, trying again later',
    ]);
  });
});
