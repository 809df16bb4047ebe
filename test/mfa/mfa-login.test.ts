import request from 'supertest';
import { expectError } from '../support/assertions';
import { createUser, login, me, sessionCookie, signedIn } from '../support/factories';
import { eventOf, eventsNamed } from '../support/log-lines';
import {
  awayFromStepEdge,
  codeAt,
  codeStep,
  confirmEnrolment,
  enrolTotp,
  MFA_ENV,
  passwordStep,
  secretOf,
  startEnrolment,
  type Enrolled,
} from '../support/mfa';
import { readStoredSession, sessionKey, sidOf } from '../support/sessions';
import type { TestApp } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';

/**
 * The two-step login of a user with a second factor (ASVS 5.0 6.3.3), through the real app: the
 * password step grants nothing, the code step is checked against codes computed from the secret by
 * the library, with the time given explicitly.
 */

/** A user with a confirmed TOTP factor, signed out again; returns the credentials and the secret. */
async function enrolledUser(t: TestApp, role: 'user' | 'admin' = 'user') {
  const created = await signedIn(t, role);
  const enrolled: Enrolled = await enrolTotp(t, created.cookie, created.password);
  return { ...created, ...enrolled };
}

describe('two-step login (ASVS 5.0 6.3.3)', () => {
  const t = useTestApp(MFA_ENV);

  test('when an enrolled user gives the right password, then 202 mfaRequired and a new session that is not signed in', async () => {
    const { email, password } = await enrolledUser(t);

    const res = await request(t.app).post('/api/auth/login').send({ email, password });

    expect(res.status).toBe(202);
    expect(res.body).toEqual({ mfaRequired: true });
    const cookie = sessionCookie(res)!;
    const stored = await readStoredSession(t, sidOf(cookie));
    expect(stored?.userId).toBeUndefined();
  });

  test('when a signed-in session logs in as a user with a second factor, then the rest of that request acts for nobody', async () => {
    const before = await signedIn(t);
    const { user, email, password } = await enrolledUser(t);

    const res = await request(t.app)
      .post('/api/auth/login')
      .set('Cookie', before.cookie)
      .send({ email, password });

    expect(res.status).toBe(202);
    // The session that was signed in has ended: the challenge's event must not name its user as the actor.
    expect(eventOf(t, res, 'auth.mfa_challenged')).toMatchObject({ userId: null, targetUserId: user.id });
    expectError(await me(t, before.cookie), 401, 'unauthenticated');
  });

  test('when the password step is done, then the pending session grants nothing: me and users answer 401 (ASVS 5.0 6.3.3)', async () => {
    const { email, password } = await enrolledUser(t, 'admin');
    const pending = await passwordStep(t, { email, password });

    expectError(await me(t, pending), 401, 'unauthenticated');
    expectError(await request(t.app).get('/api/users').set('Cookie', pending), 401, 'unauthenticated');
  });

  test('when the right code follows, then 200 with the user under a new session id, and me answers', async () => {
    await awayFromStepEdge();
    const { user, email, password, secret } = await enrolledUser(t);
    const pending = await passwordStep(t, { email, password });

    // The next step's code: the current one was spent by the enrolment.
    const res = await codeStep(t, pending, { code: await codeAt(secret, 1) });

    expect(res.status).toBe(200);
    expect(res.body.id).toBe(user.id);
    const signedInCookie = sessionCookie(res)!;
    expect(sidOf(signedInCookie)).not.toBe(sidOf(pending));
    expect((await me(t, signedInCookie)).body.id).toBe(user.id);
    // The challenge's session is gone: its id cannot be replayed into a signed-in one.
    expect(await t.redis.exists(sessionKey(t, sidOf(pending)))).toBe(0);
  });

  test('when the code is one step ahead, then it is accepted; two steps either way, refused (clock drift, ASVS 5.0 6.5.5)', async () => {
    await awayFromStepEdge();
    const late = await enrolledUser(t);
    const early = await enrolledUser(t);
    const farLate = await enrolledUser(t);
    const farEarly = await enrolledUser(t);

    const oneBehind = await codeStep(t, await passwordStep(t, late), { code: await codeAt(late.secret, -1) });
    const oneAhead = await codeStep(t, await passwordStep(t, early), { code: await codeAt(early.secret, 1) });
    const twoBehind = await codeStep(t, await passwordStep(t, farLate), {
      code: await codeAt(farLate.secret, -2),
    });
    const twoAhead = await codeStep(t, await passwordStep(t, farEarly), {
      code: await codeAt(farEarly.secret, 2),
    });

    // One step behind the enrolment's own step is a step already used: it is refused as a replay.
    expectError(oneBehind, 401, 'invalid_mfa_code');
    expect(oneAhead.status).toBe(200);
    expectError(twoBehind, 401, 'invalid_mfa_code');
    expectError(twoAhead, 401, 'invalid_mfa_code');
  });

  test('when the code is one step behind and no later step was used, then it is accepted (clock drift, ASVS 5.0 6.5.5)', async () => {
    await awayFromStepEdge();
    const created = await signedIn(t);
    const { secret } = await enrolTotp(t, created.cookie, created.password);
    // The enrolment spent the current step; as if it had been spent long ago, so the step behind is unused.
    await t.db.query('UPDATE user_totp SET last_used_step = last_used_step - 2 WHERE user_id = $1', [
      created.user.id,
    ]);

    const res = await codeStep(t, await passwordStep(t, created), { code: await codeAt(secret, -1) });

    expect(res.status).toBe(200);
  });

  test('when a code is used twice, then the second use is refused, even in a new login (replay, ASVS 5.0 6.5.1)', async () => {
    await awayFromStepEdge();
    const { email, password, secret } = await enrolledUser(t);
    const code = await codeAt(secret, 1);
    expect((await codeStep(t, await passwordStep(t, { email, password }), { code })).status).toBe(200);

    const again = await codeStep(t, await passwordStep(t, { email, password }), { code });
    const earlier = await codeStep(t, await passwordStep(t, { email, password }), {
      code: await codeAt(secret, 0),
    });

    expectError(again, 401, 'invalid_mfa_code');
    expectError(earlier, 401, 'invalid_mfa_code');
  });

  test('when the same code is sent twice at once, then exactly one login succeeds (the step is spent atomically)', async () => {
    await awayFromStepEdge();
    const { email, password, secret } = await enrolledUser(t);
    const [a, b] = [await passwordStep(t, { email, password }), await passwordStep(t, { email, password })];
    const code = await codeAt(secret, 1);

    const answers = await Promise.all([codeStep(t, a, { code }), codeStep(t, b, { code })]);

    expect(answers.map((r) => r.status).sort()).toEqual([200, 401]);
  });

  test('when a recovery code is given instead, then it signs in once and never again (ASVS 5.0 6.5.1)', async () => {
    const { email, password, recoveryCodes } = await enrolledUser(t);
    const recoveryCode = recoveryCodes[3]!;

    const first = await codeStep(t, await passwordStep(t, { email, password }), {
      // As typed by a person: lower case, spaces for hyphens.
      recoveryCode: recoveryCode.toLowerCase().replaceAll('-', ' '),
    });
    const second = await codeStep(t, await passwordStep(t, { email, password }), { recoveryCode });

    expect(first.status).toBe(200);
    expectError(second, 401, 'invalid_mfa_code');
    expect(eventsNamed(t, 'auth.recovery_code_used').length).toBeGreaterThanOrEqual(1);
  });

  test('when the code is wrong, then 401 invalid_mfa_code and the session is still waiting, not signed in', async () => {
    const { user, email, password, secret } = await enrolledUser(t);
    const pending = await passwordStep(t, { email, password });
    const right = await codeAt(secret, 1);
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, '0');

    const res = await codeStep(t, pending, { code: wrong });

    expectError(res, 401, 'invalid_mfa_code');
    expectError(await me(t, pending), 401, 'unauthenticated');
    const failed = eventsNamed(t, 'auth.mfa_failed').find((line) => line.targetUserId === user.id);
    expect(failed).toMatchObject({ level: 'warn' });
  });

  test('when no password step came first, then the code step answers 401 mfa_challenge_expired', async () => {
    const { cookie } = await signedIn(t);

    expectError(
      await request(t.app).post('/api/auth/login/mfa').send({ code: '123456' }),
      401,
      'mfa_challenge_expired',
    );
    // A signed-in session is no challenge either.
    expectError(await codeStep(t, cookie, { code: '123456' }), 401, 'mfa_challenge_expired');
  });

  test('when a login waiting for its code is logged out, then 204 and the right code no longer signs in', async () => {
    await awayFromStepEdge();
    const { email, password, secret } = await enrolledUser(t);
    const pending = await passwordStep(t, { email, password });

    const out = await request(t.app).post('/api/auth/logout').set('Cookie', pending);

    expect(out.status).toBe(204);
    expectError(await codeStep(t, pending, { code: await codeAt(secret, 1) }), 401, 'mfa_challenge_expired');
  });

  test('when the challenge has expired, then the right code is refused and the session grants nothing', async () => {
    await awayFromStepEdge();
    const { email, password, secret } = await enrolledUser(t);
    const pending = await passwordStep(t, { email, password });
    const key = sessionKey(t, sidOf(pending));
    // Redis forgets the challenge after five minutes at most.
    const ttl = await t.redis.ttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(300);
    // Five minutes pass: the challenge's own deadline is checked too, not only Redis's TTL.
    const stored = JSON.parse((await t.redis.get(key))!);
    stored.mfaChallenge.expiresAt = Date.now() - 1;
    await t.redis.set(key, JSON.stringify(stored), { EX: 60 });

    const res = await codeStep(t, pending, { code: await codeAt(secret, 1) });

    expectError(res, 401, 'mfa_challenge_expired');
    expectError(await me(t, pending), 401, 'unauthenticated');
  });

  test('when the password changed after the password step, then the challenge is over', async () => {
    await awayFromStepEdge();
    const { email, password, secret, cookie } = await enrolledUser(t);
    const pending = await passwordStep(t, { email, password });
    await request(t.app)
      .put('/api/auth/password')
      .set('Cookie', cookie)
      .send({ currentPassword: password, newPassword: 'another fine passphrase 77' })
      .expect(204);

    const res = await codeStep(t, pending, { code: await codeAt(secret, 1) });

    expectError(res, 401, 'mfa_challenge_expired');
  });

  test('when a user without a second factor signs in, then the login is one step as before', async () => {
    const created = await createUser(t);

    const cookie = await login(t, created);

    expect((await me(t, cookie)).body.id).toBe(created.user.id);
  });

  test('when the body is neither a code nor a recovery code, then 400 validation_failed', async () => {
    const { email, password } = await enrolledUser(t);
    const pending = await passwordStep(t, { email, password });

    for (const body of [{ code: '12345' }, { code: 'abcdef' }, { code: '123456', recoveryCode: 'x' }, {}]) {
      expectError(await codeStep(t, pending, body as Record<string, string>), 400, 'validation_failed');
    }
  });
});

describe('code step lockout (ASVS 5.0 6.3.1)', () => {
  const t = useTestApp({ ...MFA_ENV, LOGIN_MAX_CONSECUTIVE_FAILS: '3' });

  test('when wrong codes reach the limit, then even the right code is refused with 429 and the lock is logged', async () => {
    await awayFromStepEdge();
    const created = await signedIn(t);
    const { secret } = await enrolTotp(t, created.cookie, created.password);
    const pending = await passwordStep(t, created);
    const right = await codeAt(secret, 1);
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, '0');

    for (let i = 0; i < 3; i++)
      expectError(await codeStep(t, pending, { code: wrong }), 401, 'invalid_mfa_code');
    const locked = await codeStep(t, pending, { code: right });
    // The lock is the account's, not the address's nor the session's: a new challenge meets it too.
    const fromNewChallenge = await codeStep(t, await passwordStep(t, created), { code: right });

    expectError(locked, 429, 'rate_limited');
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(3000);
    expectError(fromNewChallenge, 429, 'rate_limited');
    expect(eventsNamed(t, 'auth.locked').some((line) => line.targetUserId === created.user.id)).toBe(true);
    // The refusals while locked name the account too: whose code step someone keeps trying.
    expect(eventOf(t, locked, 'auth.locked')).toMatchObject({
      level: 'warn',
      reason: 'consecutive_failures',
      targetUserId: created.user.id,
    });
  });

  test('when the first code of an enrolment is guessed up to the limit, then even the right one is refused with 429 and the factor stays off', async () => {
    await awayFromStepEdge();
    const created = await signedIn(t);
    const start = await startEnrolment(t, created.cookie, created.password);
    const right = await codeAt(secretOf(start.body.otpauthUri as string));
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, '0');
    const confirm = (code: string) => confirmEnrolment(t, created.cookie, code);

    for (let i = 0; i < 3; i++) expectError(await confirm(wrong), 401, 'invalid_mfa_code');

    // A stolen session alone must not win the recovery codes of an enrolment its owner left unfinished.
    expectError(await confirm(right), 429, 'rate_limited');
    expect((await request(t.app).get('/api/auth/mfa').set('Cookie', created.cookie)).body.enabled).toBe(
      false,
    );
  });

  test('when a right code comes before the limit, then the count of failures starts again', async () => {
    await awayFromStepEdge();
    const created = await signedIn(t);
    const { secret } = await enrolTotp(t, created.cookie, created.password);
    const wrongFor = async (steps: number) => {
      const right = await codeAt(secret, steps);
      return String((Number(right) + 1) % 1_000_000).padStart(6, '0');
    };
    const pending = await passwordStep(t, created);
    for (let i = 0; i < 2; i++) await codeStep(t, pending, { code: await wrongFor(1) });
    expect((await codeStep(t, pending, { code: await codeAt(secret, 1) })).status).toBe(200);

    const next = await passwordStep(t, created);
    for (let i = 0; i < 2; i++) await codeStep(t, next, { code: await wrongFor(1) });
    const recovery = await codeStep(t, next, { recoveryCode: 'AAAA-AAAA-AAAA-AAAA-AAAA-AAAA' });

    expectError(recovery, 401, 'invalid_mfa_code');
  });
});
