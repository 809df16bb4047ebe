import request from 'supertest';
import { expectError } from '../support/assertions';
import { me, signedIn } from '../support/factories';
import { eventsNamed } from '../support/log-lines';
import { awayFromStepEdge, codeAt, codeStep, enrolTotp, MFA_ENV, passwordStep } from '../support/mfa';
import {
  askForReset,
  confirmReset,
  mailingThrough,
  nthMailTo,
  RESET_SUBJECT,
  tokenIn,
  useSmtpServer,
} from '../support/password-reset';
import type { TestApp } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';

/**
 * Living with a second factor: new recovery codes, turning it off, and an admin's reset for a user who
 * lost both the phone and the codes (ASVS 5.0 6.5.6: a lost factor can be revoked).
 */

const status = (t: TestApp, cookie: string) => request(t.app).get('/api/auth/mfa').set('Cookie', cookie);

const disable = (t: TestApp, cookie: string, body: Record<string, string>) =>
  request(t.app).post('/api/auth/mfa/disable').set('Cookie', cookie).send(body);

const regenerate = (t: TestApp, cookie: string, currentPassword: string) =>
  request(t.app).post('/api/auth/mfa/recovery-codes').set('Cookie', cookie).send({ currentPassword });

async function enrolled(t: TestApp, role: 'user' | 'admin' = 'user') {
  const created = await signedIn(t, role);
  return { ...created, ...(await enrolTotp(t, created.cookie, created.password)) };
}

describe('recovery codes and disabling (ASVS 5.0 6.5.1, 6.5.6)', () => {
  const t = useTestApp(MFA_ENV);

  test('when new recovery codes are asked for with the password, then ten new ones come back and the old ones stop working', async () => {
    const { cookie, password, email, recoveryCodes } = await enrolled(t);

    const res = await regenerate(t, cookie, password);

    expect(res.status).toBe(200);
    expect(res.body.recoveryCodes).toHaveLength(10);
    expect(res.body.recoveryCodes).not.toContain(recoveryCodes[0]);
    const old = await codeStep(t, await passwordStep(t, { email, password }), {
      recoveryCode: recoveryCodes[0]!,
    });
    expectError(old, 401, 'invalid_mfa_code');
    const fresh = await codeStep(t, await passwordStep(t, { email, password }), {
      recoveryCode: res.body.recoveryCodes[0],
    });
    expect(fresh.status).toBe(200);
  });

  test('when new recovery codes are asked for with a wrong password, then 403 and the old codes remain', async () => {
    const { cookie } = await enrolled(t);

    expectError(await regenerate(t, cookie, 'wrong password entirely'), 403, 'invalid_current_password');
    expect((await status(t, cookie)).body.recoveryCodesLeft).toBe(10);
  });

  test('when a user without a factor asks for recovery codes, then 409 mfa_not_enabled', async () => {
    const { cookie, password } = await signedIn(t);

    expectError(await regenerate(t, cookie, password), 409, 'mfa_not_enabled');
  });

  test('when disabling gives the password but a wrong code, or a code but a wrong password, then the factor stays on', async () => {
    await awayFromStepEdge();
    const { cookie, password, secret } = await enrolled(t);
    const right = await codeAt(secret, 1);
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, '0');

    expectError(
      await disable(t, cookie, { currentPassword: password, code: wrong }),
      401,
      'invalid_mfa_code',
    );
    expectError(
      await disable(t, cookie, { currentPassword: 'not the password', code: right }),
      403,
      'invalid_current_password',
    );
    expectError(await disable(t, cookie, { currentPassword: password }), 400, 'validation_failed');
    expect((await status(t, cookie)).body.enabled).toBe(true);
  });

  test('when disabling gives the password and a right code, then 204, the factor is off and the login is one step again', async () => {
    await awayFromStepEdge();
    const { cookie, password, email, secret, user } = await enrolled(t);

    const res = await disable(t, cookie, { currentPassword: password, code: await codeAt(secret, 1) });

    expect(res.status).toBe(204);
    expect((await status(t, cookie)).body).toEqual({ enabled: false, recoveryCodesLeft: 0 });
    const login = await request(t.app).post('/api/auth/login').send({ email, password });
    expect(login.status).toBe(200);
    const rows = await t.db.query('SELECT 1 FROM user_recovery_codes WHERE user_id = $1', [user.id]);
    expect(rows).toHaveLength(0);
    expect(eventsNamed(t, 'auth.mfa_disabled').some((line) => line.userId === user.id)).toBe(true);
  });

  test('when disabling gives the password and a recovery code, then 204 (the phone is lost)', async () => {
    const { cookie, password, recoveryCodes } = await enrolled(t);

    const res = await disable(t, cookie, { currentPassword: password, recoveryCode: recoveryCodes[9]! });

    expect(res.status).toBe(204);
  });
});

describe('a forgotten password and the second factor (ASVS 5.0 6.4.3)', () => {
  const smtp = useSmtpServer();
  const t = useTestApp(mailingThrough(smtp, MFA_ENV));

  test('when a user with a second factor resets the password, then the new password still leads to the code step, not into the account', async () => {
    const target = await enrolled(t);
    const newPassword = 'a brand new passphrase 77';
    expect((await askForReset(t, target.email)).status).toBe(202);
    const mail = await nthMailTo(smtp.server, target.email, RESET_SUBJECT);

    expect((await confirmReset(t, tokenIn(mail), newPassword)).status).toBe(204);

    // The reset signs nobody in, and the password it set is one factor of two, as before.
    const challenge = await passwordStep(t, { email: target.email, password: newPassword });
    expectError(await me(t, challenge), 401, 'unauthenticated');
    // The next time step: the current one was spent by the enrolment (a code is never used twice).
    const signedInAgain = await codeStep(t, challenge, { code: await codeAt(target.secret, 1) });
    expect(signedInAgain.status).toBe(200);
  });
});

// ASVS 5.0 6.4.4: a user who lost the factor and its codes is reset by an admin, after which the user
// enrols again exactly as the first time (a session and the current password).
describe('admin reset of a second factor (ASVS 5.0 6.4.4, 6.5.6)', () => {
  const smtp = useSmtpServer();
  const t = useTestApp(mailingThrough(smtp, MFA_ENV));

  const reset = (cookie: string, userId: string) =>
    request(t.app).delete(`/api/users/${userId}/mfa`).set('Cookie', cookie);

  test("when an admin resets a user's factor, then 204, the user signs in with the password alone, is mailed, and the reset is logged", async () => {
    const admin = await signedIn(t, 'admin');
    const target = await enrolled(t);

    const res = await reset(admin.cookie, target.user.id);

    expect(res.status).toBe(204);
    // Every session of the user ended: the factor it was opened under is gone.
    expectError(await me(t, target.cookie), 401, 'unauthenticated');
    const login = await request(t.app)
      .post('/api/auth/login')
      .send({ email: target.email, password: target.password });
    expect(login.status).toBe(200);
    const mail = await nthMailTo(smtp.server, target.email, 'Your second factor was removed');
    expect(mail.text).toContain('An administrator removed the second factor');
    const logged = eventsNamed(t, 'auth.mfa_reset').find((line) => line.targetUserId === target.user.id);
    expect(logged).toMatchObject({ level: 'warn', userId: admin.user.id });
  });

  test('when a user who is not an admin tries a reset, then 403 and the factor stays', async () => {
    const other = await signedIn(t);
    const target = await enrolled(t);

    expectError(await reset(other.cookie, target.user.id), 403, 'forbidden');
    expect((await status(t, target.cookie)).body.enabled).toBe(true);
  });

  test('when the user has no factor or does not exist, then 404', async () => {
    const admin = await signedIn(t, 'admin');
    const plain = await signedIn(t);

    expectError(await reset(admin.cookie, plain.user.id), 404, 'not_found');
    expectError(await reset(admin.cookie, '00000000-0000-4000-8000-000000000000'), 404, 'not_found');
  });

  test('when an admin tries to reset their own factor, then 403: their own takes the password and a code', async () => {
    const admin = await enrolled(t, 'admin');

    expectError(await reset(admin.cookie, admin.user.id), 403, 'forbidden');
    expect((await status(t, admin.cookie)).body.enabled).toBe(true);
  });
});
