import { createAccountTokens, TOKEN_LIFETIME_MS } from '../../src/auth/account-tokens';
import { startTokenSweep } from '../../src/auth/token-sweep';
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

describe('the token sweep', () => {
  // A database of its own: the sweep deletes every expired and used token, so in the shared one it
  // would delete what the token tests of another worker are looking at.
  const t = useTestApp({}, { isolatedDatabase: 'token_sweep' });

  test('when a token has expired, then the periodic sweep deletes it and logs how many it deleted', async () => {
    const { user } = await createUser(t);
    const anHourAgo = () => new Date(Date.now() - 3_600_000 - TOKEN_LIFETIME_MS.password_reset);
    await createAccountTokens({ db: t.db, clock: anHourAgo }).issue(user, 'password_reset');
    const { logger, logs } = createCapturedLogger();
    const countRows = async () =>
      (await t.db.query('SELECT 1 FROM account_tokens WHERE user_id = $1', [user.id])).length;

    const sweep = startTokenSweep({ tokens: createAccountTokens({ db: t.db }), logger, intervalMs: 20 });
    const deleted = await within(5000, async () => (await countRows()) === 0);
    sweep.stop();

    expect(deleted).toBe(true);
    expect(logs).toContainEqual(
      expect.objectContaining({
        msg: 'expired and used account tokens deleted',
        deleted: expect.any(Number),
      }),
    );
  });

  test('when a sweep fails, then it is logged and the next tick tries again', async () => {
    const { logger, logs } = createCapturedLogger();
    let calls = 0;
    const tokens = {
      sweep: async () => {
        calls++;
        if (calls === 1) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        return 0;
      },
    };

    const sweep = startTokenSweep({ tokens, logger, intervalMs: 20 });
    const triedAgain = await within(5000, () => calls >= 2);
    sweep.stop();

    expect(triedAgain).toBe(true);
    expect(logs.filter((l: LogLine) => l.level === 'warn').map((l) => l.msg)).toEqual([
      'account token sweep failed: trying again later',
    ]);
  });
});
