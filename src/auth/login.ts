import type { Request, RequestHandler } from 'express';
import {
  InvalidMfaCodeError,
  MfaChallengeExpiredError,
  MfaUnavailableError,
  RateLimitedError,
} from '../errors';
import type { PasswordHashing } from '../lib/password-queue';
import type { LoginLockout } from './login-throttle';
import { logSecurityEvent } from '../http/security-events';
import type { MfaService, SecondFactorProof } from '../mfa/mfa.service';
import type { User } from '../users/user';
import type { AuthService, LoginObserver, RehashOutcome } from './auth.service';
import { pendingMfaChallenge, startMfaChallenge, startSession, type SessionIndex } from './sessions';

/** How the password step ends: signed in, or waiting for the second factor. */
export type PasswordStepResult = { user: User; mfaRequired?: never } | { mfaRequired: true };

/**
 * The one login flow behind both the API and the HTML form: the same throttling, the same new session
 * and the same security events, so neither pathway is weaker than the other (ASVS 6.3.3). A failure
 * is thrown as InvalidCredentialsError, which carries its own `auth.login_failed` (and `auth.locked`)
 * events for whoever answers it.
 *
 * A user with a second factor is not signed in by the password: the session only holds the challenge
 * (startMfaChallenge), which grants nothing, and completeMfaLogin finishes the login.
 */
export async function logIn(
  req: Request,
  deps: { authService: AuthService; sessions: SessionIndex },
  email: string,
  password: string,
): Promise<PasswordStepResult> {
  const { user, rehash } = await deps.authService.authenticate(email, password, req.clientIp);
  if (user.mfaEnabled) {
    await startMfaChallenge(req, deps.sessions, user);
    logSecurityEvent(req, 'auth.mfa_challenged', { targetUserId: user.id });
    logRehash(req, rehash, user.id);
    return { mfaRequired: true };
  }
  await startSession(req, deps.sessions, user);
  req.user = user;
  logSecurityEvent(req, 'auth.login_succeeded');
  logRehash(req, rehash, user.id);
  return { user };
}

/** The password was right: a hash under outdated parameters was replaced by now, or could not be. */
function logRehash(req: Request, rehash: RehashOutcome, targetUserId: string): void {
  if (rehash.outcome === 'rehashed') logSecurityEvent(req, 'auth.password_rehashed', { targetUserId });
  // The old hash stays and the next login tries again; an operator sees hashes that never move on.
  if (rehash.outcome === 'failed')
    logSecurityEvent(req, 'auth.password_rehash_failed', { targetUserId, err: rehash.error });
}

/**
 * How the code step of a login can end: signed in, a wrong (or used) code, the code step locked,
 * no live challenge (none, timed out, or ended by a password change), the secret's key missing
 * (503 mfa_unavailable), or anything else.
 */
export const CODE_STEP_OUTCOMES = [
  'success',
  'invalid_code',
  'locked',
  'expired',
  'unavailable',
  'error',
] as const;
export type CodeStepOutcome = (typeof CODE_STEP_OUTCOMES)[number];

/** Who counts the code step's outcomes and the locks its failures start (src/metrics, when it is on). */
export interface CodeStepObserver {
  codeStepAttempt(outcome: CodeStepOutcome): void;
  codeStepLockout(reason: LoginLockout): void;
}

function codeStepOutcomeOf(error: unknown): CodeStepOutcome {
  if (error instanceof InvalidMfaCodeError) return 'invalid_code';
  // The only 429 of the code step is its throttle's lock.
  if (error instanceof RateLimitedError) return 'locked';
  if (error instanceof MfaChallengeExpiredError) return 'expired';
  if (error instanceof MfaUnavailableError) return 'unavailable';
  return 'error';
}

/** What the code step needs; `observer` counts how each attempt ends (absent: nothing is counted). */
export interface CodeStepDeps {
  mfa: MfaService;
  sessions: SessionIndex;
  findUser: (id: string) => Promise<User | null>;
  observer?: CodeStepObserver;
}

/**
 * The code step, behind both the API and the form, counted here, where a two-step login really ends
 * (the password step counted `mfa_required`): the session must hold a live challenge from the
 * password step, the user must still be in the epoch the password was checked in (a password change
 * since then ends the challenge), and the code (or a recovery code) must be right and unused. Only
 * then is the user signed in, under a new session id.
 */
export async function completeMfaLogin(
  req: Request,
  deps: CodeStepDeps,
  proof: SecondFactorProof,
): Promise<User> {
  const { observer } = deps;
  if (!observer) return finishCodeStep(req, deps, proof);
  try {
    const user = await finishCodeStep(req, deps, proof);
    observer.codeStepAttempt('success');
    return user;
  } catch (error) {
    observer.codeStepAttempt(codeStepOutcomeOf(error));
    if (error instanceof InvalidMfaCodeError && error.lockout) observer.codeStepLockout(error.lockout);
    throw error;
  }
}

async function finishCodeStep(req: Request, deps: CodeStepDeps, proof: SecondFactorProof): Promise<User> {
  const challenge = pendingMfaChallenge(req);
  if (!challenge) throw new MfaChallengeExpiredError();
  const user = await deps.findUser(challenge.userId);
  if (!user || user.sessionEpoch !== challenge.epoch || !user.mfaEnabled)
    throw new MfaChallengeExpiredError();
  await deps.mfa.verifySecondFactor(user.id, proof, req.clientIp);
  await startSession(req, deps.sessions, user);
  req.user = user;
  const factor = 'recoveryCode' in proof ? 'recovery_code' : 'totp';
  if (factor === 'recovery_code') logSecurityEvent(req, 'auth.recovery_code_used');
  logSecurityEvent(req, 'auth.login_succeeded', { secondFactor: factor });
  return user;
}

/** The login pathways (API and form): what an attacker floods, and the only anonymous hashing routes. */
export const LOGIN_PATHS = ['/api/auth/login', '/login'];

/**
 * Mounted on LOGIN_PATHS ahead of the request limiter, the session and the body parser: while the
 * password line is full, a login is refused here with the same 503 `service_busy` the line itself
 * would give, before anything is spent on it. What it saves, per refused request under a flood: the
 * limiter's Redis round trip, reading and parsing the body, validation, the cross-origin guard; the
 * event loop keeps that time for the requests it can serve (signed-in reads keep their pace). What it
 * keeps: a refusal was never counted by the login throttle (it is not a guess), so skipping the
 * per-client limit changes no lockout; an admitted login still takes its place in the line, which
 * still refuses when a burst fills it in between. Every refusal is still answered and logged (the
 * access log runs before this; `hash.busy` once per burst).
 */
export const refuseLoginWhileHashingIsFull =
  (
    passwords: Pick<PasswordHashing, 'refuseIfFull'>,
    loginObserver?: Pick<LoginObserver, 'loginAttempt'>,
  ): RequestHandler =>
  (_req, _res, next) => {
    try {
      passwords.refuseIfFull();
    } catch (error) {
      // Refused before authenticate() runs: counted here, as the busy login it is.
      loginObserver?.loginAttempt('busy');
      throw error;
    }
    next();
  };
