import { generateSecret, generateURI, verify } from 'otplib';

/**
 * TOTP as every authenticator app speaks it (RFC 6238 with its defaults: HMAC-SHA1, 6 digits, 30 s
 * steps), through otplib. Apps ignore other algorithms or periods in the otpauth URI, often silently,
 * so anything else would give users codes that never work. A 6-digit code is guessable one time in
 * 10^6; the login throttle bounds the guesses (src/auth/login-throttle.ts).
 */
export const TOTP_PERIOD_S = 30;

/** 160 bits, the HMAC-SHA1 output size RFC 4226 recommends, from a CSPRNG (ASVS 5.0 6.5.3). */
const SECRET_BYTES = 20;

/**
 * One step either way (ASVS 5.0 6.5.5 bounds a code's life; RFC 6238 5.2 recommends at most one step
 * of delay): the phone's clock may be a little off, and a code typed in the last seconds of its step
 * arrives in the next one. otplib takes the tolerance in seconds and checks every step it reaches.
 */
const DRIFT_S = TOTP_PERIOD_S;

export const newTotpSecret = (): string => generateSecret({ length: SECRET_BYTES });

/** The otpauth:// URI an authenticator app reads from the QR code: the secret, the issuer, the account. */
export const otpauthUri = (issuer: string, account: string, secret: string): string =>
  generateURI({ issuer, label: account, secret, period: TOTP_PERIOD_S });

/**
 * The time step `code` belongs to, within one step of now (the server's clock, never the client's:
 * ASVS 5.0 6.5.8), or null when it matches none of them. Whether that step was already used is not
 * this function's question: the caller spends the step in one conditional UPDATE (mfa.repository.ts
 * USE_STEP), the only check two requests carrying the same code cannot both pass (ASVS 5.0 6.5.1).
 */
export async function matchingStep(secret: string, code: string): Promise<number | null> {
  const result = await verify({
    secret,
    token: code,
    epoch: Math.floor(Date.now() / 1000),
    epochTolerance: DRIFT_S,
  });
  // otplib types the result for TOTP and HOTP alike; a TOTP match always carries its step.
  return result.valid && 'timeStep' in result ? result.timeStep : null;
}
