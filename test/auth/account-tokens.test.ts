import { createHash } from 'node:crypto';
import { createAccountTokens, TOKEN_LIFETIME_MS, type TokenPurpose } from '../../src/auth/account-tokens';
import type { Queryable } from '../../src/lib/db';
import { createUser, uniqueEmail } from '../support/factories';
import type { TestApp } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';

/**
 * The single-use tokens behind mailed links, against the real schema: what is stored, who wins a
 * race, when a token stops working, and what the sweep removes.
 */

/** A clock the test moves by hand. */
function manualClock(start = new Date()) {
  let now = start.getTime();
  return { now: () => new Date(now), advance: (ms: number) => (now += ms) };
}

/** The user's token rows as Postgres holds them, each also as one line of text. */
const rowsOf = (t: TestApp, userId: string) =>
  t.db.query<{ purpose: TokenPurpose; token_hash: Buffer; used_at: Date | null; row: string }>(
    'SELECT purpose, token_hash, used_at, account_tokens::text AS row FROM account_tokens WHERE user_id = $1',
    [userId],
  );

describe('account tokens', () => {
  const t = useTestApp();

  /** A new user, a token of `purpose` issued to them, and the service that issued it. */
  async function userWithToken(purpose: TokenPurpose) {
    const { user } = await createUser(t);
    const tokens = createAccountTokens({ db: t.db });
    const { token } = (await tokens.issue(user, purpose))!;
    return { user, tokens, token };
  }

  // ASVS 5.0 6.4.1, 11.4.3, 11.5.1, 14.2.4: 256 random bits from the CSPRNG, stored only as SHA-256.
  test('when a token is issued, then it carries 256 random bits and Postgres holds only its SHA-256', async () => {
    const { user } = await createUser(t);
    const tokens = createAccountTokens({ db: t.db });

    const issued = await tokens.issue(user, 'password_reset');

    expect(issued!.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(issued!.token, 'base64url')).toHaveLength(32);
    const [row, ...others] = await rowsOf(t, user.id);
    expect(others).toEqual([]);
    expect(row!.token_hash.equals(createHash('sha256').update(issued!.token).digest())).toBe(true);
    expect(row!.row).not.toContain(issued!.token);
  });

  test('when a token is consumed twice, then the first use returns its user and the second is refused as used', async () => {
    const { user, tokens, token } = await userWithToken('password_reset');

    const first = await tokens.consume(token, 'password_reset');
    const second = await tokens.consume(token, 'password_reset');

    expect(first).toEqual({ ok: true, userId: user.id, newEmail: null });
    expect(second).toEqual({ ok: false, reason: 'used' });
  });

  // ASVS 5.0 2.3.4: one conditional UPDATE: one winner.
  test('when one token is consumed by two requests at once, then exactly one of them wins', async () => {
    const { user, tokens, token } = await userWithToken('password_reset');

    const results = await Promise.all([
      tokens.consume(token, 'password_reset'),
      tokens.consume(token, 'password_reset'),
    ]);

    expect(results.filter((r) => r.ok)).toEqual([{ ok: true, userId: user.id, newEmail: null }]);
    expect(results.filter((r) => !r.ok)).toEqual([{ ok: false, reason: 'used' }]);
  });

  test.each(Object.entries(TOKEN_LIFETIME_MS) as [TokenPurpose, number][])(
    'when a %s token reaches its lifetime, then it is refused as expired, and a moment before it works',
    async (purpose, lifetimeMs) => {
      const { user } = await createUser(t);
      const clock = manualClock();
      const tokens = createAccountTokens({ db: t.db, clock: clock.now });
      const newEmail = purpose === 'change_email' ? uniqueEmail('new') : null;

      const early = (await tokens.issue(user, purpose, { newEmail }))!;
      clock.advance(lifetimeMs - 1000);
      const inTime = await tokens.consume(early.token, purpose);
      const late = (await tokens.issue(user, purpose, { newEmail }))!;
      clock.advance(lifetimeMs);
      const expired = await tokens.consume(late.token, purpose);

      expect(inTime).toEqual({ ok: true, userId: user.id, newEmail });
      expect(expired).toEqual({ ok: false, reason: 'expired' });
    },
  );

  test('when a token is presented for another purpose, then it is refused and still works for its own', async () => {
    const { user, tokens, token } = await userWithToken('verify_email');

    const misused = await tokens.consume(token, 'password_reset');
    const used = await tokens.consume(token, 'verify_email');

    expect(misused).toEqual({ ok: false, reason: 'wrong_purpose' });
    expect(used).toMatchObject({ ok: true, userId: user.id });
  });

  const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

  test('when one character of a token is changed, then it is refused as unknown', async () => {
    const { tokens, token } = await userWithToken('password_reset');

    const result = await tokens.consume(`${token[0] === 'A' ? 'B' : 'A'}${token.slice(1)}`, 'password_reset');

    expect(result).toEqual({ ok: false, reason: 'unknown' });
  });

  test('when a token is respelled to decode to the same bytes, then it is refused as unknown', async () => {
    const { tokens, token } = await userWithToken('password_reset');
    // The last character of 32 bytes in base64url carries 2 spare bits, which an encoder leaves at
    // zero: the next character of the alphabet sets one and decodes to the same bytes.
    const twin = `${token.slice(0, -1)}${BASE64URL[BASE64URL.indexOf(token.at(-1)!) + 1]}`;

    const result = await tokens.consume(twin, 'password_reset');

    expect(Buffer.from(twin, 'base64url').equals(Buffer.from(token, 'base64url'))).toBe(true);
    expect(result).toEqual({ ok: false, reason: 'unknown' });
  });

  test.each([
    ['empty', ''],
    ['too short', 'abc'],
    ['padded', `${'A'.repeat(43)}=`],
    ['standard base64', `${'A'.repeat(42)}+`],
    ['with a quote', `${'A'.repeat(42)}'`],
    ['too long', 'A'.repeat(10_000)],
  ])('when a token is malformed (%s), then it is refused before any query', async (_what, token) => {
    let queries = 0;
    const counting: Queryable = {
      query: (text, params, options) => {
        queries++;
        return t.db.query(text, params, options);
      },
    };

    const result = await createAccountTokens({ db: counting }).consume(token, 'password_reset');

    expect(result).toEqual({ ok: false, reason: 'malformed' });
    expect(queries).toBe(0);
  });

  test('when a new token of the same purpose is issued, then the older one stops working and other purposes keep theirs', async () => {
    const { user } = await createUser(t);
    const tokens = createAccountTokens({ db: t.db });
    const older = (await tokens.issue(user, 'password_reset'))!;
    const verification = (await tokens.issue(user, 'verify_email'))!;

    const newer = (await tokens.issue(user, 'password_reset'))!;

    expect(await tokens.consume(older.token, 'password_reset')).toMatchObject({
      ok: false,
      reason: 'unknown',
    });
    expect(await tokens.consume(newer.token, 'password_reset')).toMatchObject({ ok: true });
    expect(await tokens.consume(verification.token, 'verify_email')).toMatchObject({ ok: true });
  });

  test('when two tokens of one purpose are issued at once, then only one of them works', async () => {
    const { user } = await createUser(t);
    const tokens = createAccountTokens({ db: t.db });

    const issued = await Promise.all([
      tokens.issue(user, 'password_reset'),
      tokens.issue(user, 'password_reset'),
    ]);
    const results = await Promise.all(issued.map((i) => tokens.consume(i!.token, 'password_reset')));

    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(await rowsOf(t, user.id)).toHaveLength(1);
  });

  test('when an email change token is issued, then consuming it returns the new address', async () => {
    const { user } = await createUser(t);
    const tokens = createAccountTokens({ db: t.db });
    const newEmail = uniqueEmail('moved');
    const { token } = (await tokens.issue(user, 'change_email', { newEmail }))!;

    expect(await tokens.consume(token, 'change_email')).toEqual({ ok: true, userId: user.id, newEmail });
  });

  test('when live tokens of some purposes are revoked, then those stop working, spent ones stay for the log, and other purposes keep theirs', async () => {
    const { user } = await createUser(t);
    const tokens = createAccountTokens({ db: t.db });
    const spent = (await tokens.issue(user, 'verify_email'))!.token;
    await tokens.consume(spent, 'verify_email');
    const verify = (await tokens.issue(user, 'verify_email'))!.token;
    const change = (await tokens.issue(user, 'change_email', { newEmail: uniqueEmail('next') }))!.token;
    const reset = (await tokens.issue(user, 'password_reset'))!.token;

    await tokens.revoke(user.id, ['verify_email', 'change_email']);

    expect(await tokens.peek(verify, 'verify_email')).toEqual({ ok: false, reason: 'unknown' });
    expect(await tokens.peek(change, 'change_email')).toEqual({ ok: false, reason: 'unknown' });
    expect(await tokens.consume(spent, 'verify_email')).toEqual({ ok: false, reason: 'used' });
    expect(await tokens.peek(reset, 'password_reset')).toMatchObject({ ok: true, userId: user.id });
  });

  test.each<TokenPurpose>(['password_reset', 'verify_email', 'change_email'])(
    'when the account moves to another address after a %s link was mailed, then the link is refused, and peeking finds nothing',
    async (purpose) => {
      const { user } = await createUser(t);
      const tokens = createAccountTokens({ db: t.db });
      const newEmail = purpose === 'change_email' ? uniqueEmail('next') : null;
      const { token } = (await tokens.issue(user, purpose, { newEmail }))!;

      // Moved by a path that forgets to revoke the user's links: the binding alone must hold.
      await t.db.query('UPDATE users SET email = $2 WHERE id = $1', [user.id, uniqueEmail('moved')]);

      expect(await tokens.peek(token, purpose)).toEqual({ ok: false, reason: 'address_changed' });
      expect(await tokens.consume(token, purpose)).toEqual({ ok: false, reason: 'address_changed' });
      const [row] = await rowsOf(t, user.id);
      expect(row!.used_at).toBeNull();
    },
  );

  test('when a link is issued for an address the account no longer has, then none is issued', async () => {
    const { user } = await createUser(t);
    const tokens = createAccountTokens({ db: t.db });

    // The caller read the user, then the address changed before the token was stored.
    const issued = await tokens.issue({ id: user.id, email: uniqueEmail('left') }, 'verify_email');

    expect(issued).toBeNull();
    expect(await rowsOf(t, user.id)).toEqual([]);
  });

  test('when the account changes address while a link is being consumed, then the consuming statement waits for the change and refuses the link', async () => {
    const { user, tokens, token } = await userWithToken('password_reset');

    // A change of address holds the user row, uncommitted, while the link is used.
    const moved = uniqueEmail('moving');
    const { pending } = await t.db.withTransaction(async (tx) => {
      await tx.query('UPDATE users SET email = $2 WHERE id = $1', [user.id, moved]);
      const pending = tokens.consume(token, 'password_reset');
      // The consume waits on the row lock instead of answering from the address it saw before.
      const early = await Promise.race([pending, new Promise((r) => setTimeout(() => r('waiting'), 300))]);
      expect(early).toBe('waiting');
      // Handed out in an object: returning the promise itself would wait for it before the commit.
      return { pending };
    });

    expect(await pending).toEqual({ ok: false, reason: 'address_changed' });
  });

  test('when the user is gone, then no token is issued, and deleting a user deletes their tokens', async () => {
    const { user } = await createUser(t);
    const tokens = createAccountTokens({ db: t.db });
    await tokens.issue(user, 'verify_email');

    await t.db.query('DELETE FROM users WHERE id = $1', [user.id]);

    expect(await rowsOf(t, user.id)).toEqual([]);
    expect(await tokens.issue(user, 'verify_email')).toBeNull();
  });
});

describe('the account token sweep', () => {
  // A database of its own: the sweep deletes every expired and used token, so in the shared one it
  // would delete what other tests of the run are looking at, and its count would include theirs.
  const t = useTestApp({}, { isolatedDatabase: 'account_tokens_sweep' });

  test('when the sweep runs, then expired and used tokens are deleted and live ones stay', async () => {
    const { user } = await createUser(t);
    const clock = manualClock();
    const tokens = createAccountTokens({ db: t.db, clock: clock.now });
    const used = (await tokens.issue(user, 'verify_email'))!;
    await tokens.consume(used.token, 'verify_email');
    await tokens.issue(user, 'password_reset');
    clock.advance(TOKEN_LIFETIME_MS.password_reset);
    const live = (await tokens.issue(user, 'verify_email'))!;

    const swept = await tokens.sweep();

    expect(swept).toBe(2);
    expect((await rowsOf(t, user.id)).map((r) => ({ purpose: r.purpose, used: r.used_at !== null }))).toEqual(
      [{ purpose: 'verify_email', used: false }],
    );
    expect(await tokens.consume(live.token, 'verify_email')).toMatchObject({ ok: true });
  });
});
