import { createHash } from 'node:crypto';
import { generate } from 'otplib';
import request from 'supertest';
import { createMfaRepository } from '../../src/mfa/mfa.repository';
import { ENROLMENT_LIFETIME_S } from '../../src/mfa/mfa.service';
import { createSecretBox } from '../../src/mfa/secret-box';
import { expectError } from '../support/assertions';
import { createBrowser, csrfTokenIn, signInThroughForm } from '../support/browser';
import { createUser, me, sessionCookie, signedIn } from '../support/factories';
import {
  awayFromStepEdge,
  codeAt,
  confirmEnrolment,
  enrolTotp,
  MFA_ENV,
  mfaKey,
  secretOf,
  startEnrolment,
} from '../support/mfa';
import type { TestApp } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';

/**
 * Enrolling TOTP over the API, and what the database keeps of it (ASVS 5.0 6.5.2, 6.5.3, 11.3.2): the
 * secret encrypted and bound to its user, the recovery codes hashed.
 */

interface TotpRow {
  secret_ciphertext: Buffer;
  key_id: string;
  confirmed_at: Date | null;
}

const totpRow = async (t: TestApp, userId: string): Promise<TotpRow | undefined> =>
  (
    await t.db.query<TotpRow>(
      'SELECT secret_ciphertext, key_id, confirmed_at FROM user_totp WHERE user_id = $1',
      [userId],
    )
  )[0];

describe('TOTP enrolment (ASVS 5.0 6.3.3, 6.5.3)', () => {
  const t = useTestApp(MFA_ENV);

  test('when enrolment starts with the current password, then 201 with an otpauth URI, its secret and an SVG QR code', async () => {
    const { cookie, password, email } = await signedIn(t);

    const res = await startEnrolment(t, cookie, password);

    expect(res.status).toBe(201);
    const uri = new URL(res.body.otpauthUri);
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toBe(`/${new URL(t.config.publicOrigin).host}:${email}`);
    // 160 bits in base32 (ASVS 5.0 6.5.3: a seed from a CSPRNG, long enough).
    expect(res.body.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(secretOf(res.body.otpauthUri)).toBe(res.body.secret);
    expect(res.body.qrCodeSvg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*>.*<\/svg>\s*$/s);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  test('when enrolment starts with a wrong password, then 403 invalid_current_password and nothing is stored', async () => {
    const { cookie, user } = await signedIn(t);

    expectError(await startEnrolment(t, cookie, 'not my password at all'), 403, 'invalid_current_password');
    expect(await totpRow(t, user.id)).toBeUndefined();
  });

  test('when nobody is signed in, then every enrolment route answers 401', async () => {
    expectError(await request(t.app).get('/api/auth/mfa'), 401, 'unauthenticated');
    expectError(
      await request(t.app).post('/api/auth/mfa/enrolment').send({ currentPassword: 'x' }),
      401,
      'unauthenticated',
    );
  });

  test('when the first code is right, then ten distinct recovery codes come back once and the factor is on', async () => {
    const { cookie, password, user } = await signedIn(t);
    const start = await startEnrolment(t, cookie, password);

    const res = await confirmEnrolment(t, cookie, await codeAt(secretOf(start.body.otpauthUri)));

    expect(res.status).toBe(200);
    expect(res.body.recoveryCodes).toHaveLength(10);
    expect(new Set(res.body.recoveryCodes).size).toBe(10);
    // ASVS 5.0 6.5.4: 24 base32 characters, 120 bits each (at least 20 asked).
    for (const code of res.body.recoveryCodes) expect(code).toMatch(/^([A-Z2-7]{4}-){5}[A-Z2-7]{4}$/);
    expect((await request(t.app).get('/api/auth/mfa').set('Cookie', cookie)).body).toEqual({
      enabled: true,
      recoveryCodesLeft: 10,
    });
    expect((await totpRow(t, user.id))?.confirmed_at).toBeInstanceOf(Date);
  });

  test('when the first code is wrong, then 401 invalid_mfa_code and the factor stays off', async () => {
    await awayFromStepEdge();
    const { cookie, password } = await signedIn(t);
    const start = await startEnrolment(t, cookie, password);
    const farCode = await codeAt(secretOf(start.body.otpauthUri), 3);

    expectError(await confirmEnrolment(t, cookie, farCode), 401, 'invalid_mfa_code');
    expect((await request(t.app).get('/api/auth/mfa').set('Cookie', cookie)).body.enabled).toBe(false);
  });

  test('when the factor is on, then no route returns the secret again: a new enrolment is 409 and the status has none', async () => {
    const { cookie, password } = await signedIn(t);
    const { secret } = await enrolTotp(t, cookie, password);

    const again = await startEnrolment(t, cookie, password);
    const status = await request(t.app).get('/api/auth/mfa').set('Cookie', cookie);
    const self = await me(t, cookie);

    expectError(again, 409, 'mfa_already_enabled');
    for (const res of [again, status, self]) expect(res.text).not.toContain(secret);
  });

  test('when enrolment is started again before it is confirmed, then the first secret is replaced and no longer confirms', async () => {
    const { cookie, password } = await signedIn(t);
    const first = secretOf((await startEnrolment(t, cookie, password)).body.otpauthUri);
    const second = secretOf((await startEnrolment(t, cookie, password)).body.otpauthUri);
    expect(second).not.toBe(first);

    expectError(await confirmEnrolment(t, cookie, await codeAt(first)), 401, 'invalid_mfa_code');
    expect((await confirmEnrolment(t, cookie, await codeAt(second))).status).toBe(200);
  });

  test('when confirmation comes without a started enrolment, then 409 mfa_not_enabled', async () => {
    const { cookie } = await signedIn(t);

    expectError(await confirmEnrolment(t, cookie, '123456'), 409, 'mfa_not_enabled');
  });

  test("when the factor is confirmed, then the user's other sessions end and this one goes on (ASVS 5.0 7.4.3)", async () => {
    const { cookie, password, email } = await signedIn(t);
    const other = await request(t.app).post('/api/auth/login').send({ email, password });
    const otherCookie = sessionCookie(other)!;

    await enrolTotp(t, cookie, password);

    expect((await me(t, cookie)).status).toBe(200);
    expectError(await me(t, otherCookie), 401, 'unauthenticated');
  });
});

/** Makes the user's enrolment `ageS` seconds old, by the database's clock (no test sleeps for it). */
const ageEnrolment = (t: TestApp, userId: string, ageS: number) =>
  t.db.query('UPDATE user_totp SET created_at = now() - make_interval(secs => $2) WHERE user_id = $1', [
    userId,
    ageS,
  ]);

describe(`an enrolment unconfirmed for ${ENROLMENT_LIFETIME_S / 60} minutes (ADR 0038)`, () => {
  const t = useTestApp(MFA_ENV);

  test('when the first code comes after the lifetime, then 409 mfa_not_enabled, the enrolment is gone, and a new one confirms', async () => {
    const { cookie, password, user } = await signedIn(t);
    const stale = secretOf((await startEnrolment(t, cookie, password)).body.otpauthUri);
    await ageEnrolment(t, user.id, ENROLMENT_LIFETIME_S);

    const late = await confirmEnrolment(t, cookie, await codeAt(stale));

    expectError(late, 409, 'mfa_not_enabled');
    expect(late.body.error.message).toMatch(/expired/);
    expect(await totpRow(t, user.id)).toBeUndefined();
    expect((await request(t.app).get('/api/auth/mfa').set('Cookie', cookie)).body.enabled).toBe(false);
    const fresh = secretOf((await startEnrolment(t, cookie, password)).body.otpauthUri);
    expect((await confirmEnrolment(t, cookie, await codeAt(fresh))).status).toBe(200);
  });

  test('when the first code comes a minute before the lifetime ends, then it confirms', async () => {
    const { cookie, password, user } = await signedIn(t);
    const secret = secretOf((await startEnrolment(t, cookie, password)).body.otpauthUri);
    await ageEnrolment(t, user.id, ENROLMENT_LIFETIME_S - 60);

    expect((await confirmEnrolment(t, cookie, await codeAt(secret))).status).toBe(200);
  });

  test('when an enrolment ages past its lifetime after it was read, then the confirming statement itself refuses it', async () => {
    const { cookie, password, user } = await signedIn(t);
    await startEnrolment(t, cookie, password);
    await ageEnrolment(t, user.id, ENROLMENT_LIFETIME_S);
    const repository = createMfaRepository(t.db);

    expect(await repository.confirm(user.id, 1, ENROLMENT_LIFETIME_S)).toBe(false);
    expect((await totpRow(t, user.id))?.confirmed_at).toBeNull();
  });

  test('when the first code is typed on the page after the lifetime, then the page says to start again', async () => {
    const creds = await createUser(t);
    const browser = createBrowser(t.app);
    await signInThroughForm(browser, creds);
    const secret = secretOf(
      (await startEnrolment(t, browser.cookieHeader(), creds.password)).body.otpauthUri,
    );
    await ageEnrolment(t, creds.user.id, ENROLMENT_LIFETIME_S + 1);
    const page = await browser.get('/mfa');

    const res = await browser.postForm('/mfa/enrolment/confirm', {
      _csrf: csrfTokenIn(page.text),
      code: await codeAt(secret),
    });

    expect(res.status).toBe(409);
    expect(res.text).toContain('The enrolment expired before its first code.');
    expect(await totpRow(t, creds.user.id)).toBeUndefined();
  });
});

describe('the TOTP secret at rest (ASVS 5.0 11.3.2, 6.5.2)', () => {
  const oldKey = mfaKey('2025-old');
  const newKey = mfaKey('2026-new');
  const before = useTestApp({ MFA_ENCRYPTION_KEYS: oldKey });
  const after = useTestApp({ MFA_ENCRYPTION_KEYS: `${newKey},${oldKey}` });

  test('when a secret is stored, then the row holds no plain secret and opens with the key and the user id', async () => {
    const { cookie, password, user } = await signedIn(before);
    const { secret } = await enrolTotp(before, cookie, password);

    const row = (await totpRow(before, user.id))!;

    expect(row.key_id).toBe('2025-old');
    expect(row.secret_ciphertext.toString('latin1')).not.toContain(secret);
    expect(row.secret_ciphertext.toString('base64')).not.toContain(secret);
    const box = createSecretBox(before.config.mfaKeys!);
    expect(box.open(user.id, { keyId: row.key_id, ciphertext: row.secret_ciphertext })).toBe(secret);
  });

  test("when a sealed secret is copied onto another user's row, then it does not open there and that user cannot sign in with it", async () => {
    await awayFromStepEdge();
    const attacker = await signedIn(before);
    const { secret } = await enrolTotp(before, attacker.cookie, attacker.password);
    const victim = await signedIn(before);
    await enrolTotp(before, victim.cookie, victim.password);
    const sealed = (await totpRow(before, attacker.user.id))!;
    await before.db.query('UPDATE user_totp SET secret_ciphertext = $2, key_id = $3 WHERE user_id = $1', [
      victim.user.id,
      sealed.secret_ciphertext,
      sealed.key_id,
    ]);

    const box = createSecretBox(before.config.mfaKeys!);
    expect(() =>
      box.open(victim.user.id, { keyId: sealed.key_id, ciphertext: sealed.secret_ciphertext }),
    ).toThrow(/cannot be opened/);
    const pending = await request(before.app)
      .post('/api/auth/login')
      .send({ email: victim.email, password: victim.password });
    const res = await request(before.app)
      .post('/api/auth/login/mfa')
      .set('Cookie', sessionCookie(pending)!)
      .send({ code: await codeAt(secret, 1) });
    // Refused, never let through: the secret cannot be checked, so no code is right.
    expectError(res, 503, 'mfa_unavailable');
  });

  test('when a new key is put first, then old secrets still open with the old key and new enrolments use the new one', async () => {
    await awayFromStepEdge();
    const early = await signedIn(before);
    const { secret } = await enrolTotp(before, early.cookie, early.password);

    const late = await signedIn(after);
    await enrolTotp(after, late.cookie, late.password);

    expect((await totpRow(after, late.user.id))?.key_id).toBe('2026-new');
    expect((await totpRow(after, early.user.id))?.key_id).toBe('2025-old');
    const pending = await request(after.app)
      .post('/api/auth/login')
      .send({ email: early.email, password: early.password });
    const res = await request(after.app)
      .post('/api/auth/login/mfa')
      .set('Cookie', sessionCookie(pending)!)
      .send({ code: await generate({ secret, epoch: Math.floor(Date.now() / 1000) + 30 }) });
    expect(res.status).toBe(200);
  });

  test('when recovery codes are stored, then the table holds their SHA-256 only, never a code', async () => {
    const { cookie, password, user } = await signedIn(before);
    const { recoveryCodes } = await enrolTotp(before, cookie, password);

    const rows = await before.db.query<{ code_hash: Buffer }>(
      'SELECT code_hash FROM user_recovery_codes WHERE user_id = $1',
      [user.id],
    );

    expect(rows).toHaveLength(10);
    const stored = rows.map((r) => r.code_hash.toString('hex')).sort();
    const expected = recoveryCodes
      .map((c) => createHash('sha256').update(c.replaceAll('-', '')).digest('hex'))
      .sort();
    expect(stored).toEqual(expected);
  });
});

describe('without MFA_ENCRYPTION_KEYS', () => {
  const t = useTestApp();

  test('when someone tries to enrol, then 404: enrolment does not exist', async () => {
    const { cookie, password } = await signedIn(t);

    expectError(await startEnrolment(t, cookie, password), 404, 'not_found');
  });

  test('when a user enrolled earlier signs in, then the code is still asked for: no silent fall-back to the password', async () => {
    const created = await createUser(t);
    // A row sealed under a key this app does not hold (the keys were removed from the configuration).
    const box = createSecretBox([{ id: 'gone', key: Buffer.alloc(32, 7) }]);
    const sealed = box.seal(created.user.id, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
    await t.db.query(
      'INSERT INTO user_totp (user_id, secret_ciphertext, key_id, confirmed_at) VALUES ($1, $2, $3, now())',
      [created.user.id, sealed.ciphertext, sealed.keyId],
    );

    const res = await request(t.app)
      .post('/api/auth/login')
      .send({ email: created.email, password: created.password });

    expect(res.status).toBe(202);
    const code = await request(t.app)
      .post('/api/auth/login/mfa')
      .set('Cookie', sessionCookie(res)!)
      .send({ code: '123456' });
    expectError(code, 503, 'mfa_unavailable');
  });
});
