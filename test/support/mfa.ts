import { randomBytes } from 'node:crypto';
import { generate } from 'otplib';
import request, { type Response, type Test } from 'supertest';
import { sessionCookie, sleep } from './factories';
import type { TestApp } from './test-app';

/** A key ring for MFA_ENCRYPTION_KEYS: `id:base64`, a fresh random key per call. */
export const mfaKey = (id: string): string => `${id}:${randomBytes(32).toString('base64')}`;

/** The environment of an app that can enrol second factors. */
export const MFA_ENV: Readonly<Record<string, string>> = { MFA_ENCRYPTION_KEYS: mfaKey('test-1') };

const PERIOD_S = 30;

/**
 * The code the authenticator app would show `steps` time steps from now, computed from the secret by
 * the library, with the time given explicitly (no clock is mocked: the app runs on its own).
 */
export const codeAt = (secret: string, steps = 0): Promise<string> =>
  generate({ secret, epoch: Math.floor(Date.now() / 1000) + steps * PERIOD_S });

/**
 * Waits out the last seconds of a time step, so "now" in the test and "now" in the app (a few
 * milliseconds later) fall in the same step, and "one step away" means exactly that to both.
 */
export async function awayFromStepEdge(): Promise<void> {
  const intoStepMs = Date.now() % (PERIOD_S * 1000);
  if (intoStepMs > (PERIOD_S - 3) * 1000) await sleep(PERIOD_S * 1000 - intoStepMs + 100);
}

/** The secret of an otpauth:// URI, as an authenticator app reads it from the QR code. */
export const secretOf = (otpauthUri: string): string => new URL(otpauthUri).searchParams.get('secret')!;

export interface Enrolled {
  secret: string;
  recoveryCodes: string[];
}

/** The enrolment's two API steps: start (201, the otpauth URI) and confirm (200, the recovery codes). */
const ENROLMENT = { start: '/api/auth/mfa/enrolment', confirm: '/api/auth/mfa/enrolment/confirm' };

/** Starts (or restarts) an enrolment over the API: 201 with the otpauth URI, the secret and the QR code. */
export const startEnrolment = (t: TestApp, cookie: string, currentPassword: string): Test =>
  request(t.app).post(ENROLMENT.start).set('Cookie', cookie).send({ currentPassword });

/** Confirms the waiting enrolment with its first code over the API: 200 with the recovery codes. */
export const confirmEnrolment = (t: TestApp, cookie: string, code: string): Test =>
  request(t.app).post(ENROLMENT.confirm).set('Cookie', cookie).send({ code });

/**
 * A JSON POST as the signed-in user, by whatever client reaches the app: supertest in-process, or an
 * HTTPS request through the edge (test/compose). The answer's body is parsed.
 */
export type PostAsUser = (
  path: string,
  body: Record<string, string>,
) => Promise<{ status: number; body: Record<string, unknown> }>;

/**
 * Enrols TOTP over the API as an authenticator app user does: start with the current password, read
 * the secret from the otpauth:// URI, confirm with the code `steps` from now.
 */
export async function enrolTotpThrough(
  post: PostAsUser,
  currentPassword: string,
  steps = 0,
): Promise<Enrolled> {
  const start = await post(ENROLMENT.start, { currentPassword });
  if (start.status !== 201)
    throw new Error(`enrolment failed: ${start.status} ${JSON.stringify(start.body)}`);
  const secret = secretOf(start.body.otpauthUri as string);
  const confirm = await post(ENROLMENT.confirm, { code: await codeAt(secret, steps) });
  if (confirm.status !== 200)
    throw new Error(`confirm failed: ${confirm.status} ${JSON.stringify(confirm.body)}`);
  return { secret, recoveryCodes: confirm.body.recoveryCodes as string[] };
}

/** Enrols TOTP for the signed-in `cookie` over the API of an in-process app, confirming `steps` from now. */
export const enrolTotp = (
  t: TestApp,
  cookie: string,
  currentPassword: string,
  steps = 0,
): Promise<Enrolled> =>
  enrolTotpThrough(
    (path, body) => request(t.app).post(path).set('Cookie', cookie).send(body),
    currentPassword,
    steps,
  );

/** The password step: 202 and the cookie of the session that waits for the code. */
export async function passwordStep(
  t: TestApp,
  { email, password }: { email: string; password: string },
): Promise<string> {
  const res = await request(t.app).post('/api/auth/login').send({ email, password });
  if (res.status !== 202) throw new Error(`password step: ${res.status} ${JSON.stringify(res.body)}`);
  return sessionCookie(res, t.config.session.cookieName)!;
}

/** The code step with the challenge's cookie. */
export const codeStep = (t: TestApp, cookie: string, body: Record<string, string>): Promise<Response> =>
  request(t.app).post('/api/auth/login/mfa').set('Cookie', cookie).send(body);
