import QRCode from 'qrcode';
import type { AppConfig } from '../../config/config';
import type { Reauthentication } from '../auth/reauthentication';
import type { LoginThrottle } from '../auth/login-throttle';
import {
  InvalidMfaCodeError,
  MfaAlreadyEnabledError,
  MfaNotEnabledError,
  MfaUnavailableError,
  NotFoundError,
} from '../errors';
import type { Db } from '../lib/db';
import type { Mailer } from '../mail/mailer';
import type { User } from '../users/user';
import { createMfaRepository } from './mfa.repository';
import { newRecoveryCodes, recoveryCodeHash } from './recovery-codes';
import { createSecretBox, SecretUnavailableError, type SecretBox } from './secret-box';
import { matchingStep, newTotpSecret, otpauthUri } from './totp';

export type MfaService = ReturnType<typeof createMfaService>;

const enrolmentExpired = () =>
  new MfaNotEnabledError('The enrolment expired before its first code. Start again with your password.');

/** What proves the second factor: a code from the authenticator, or one of the recovery codes. */
export type SecondFactorProof = { code: string } | { recoveryCode: string };

/**
 * What a page's single code field holds: six digits (spaces between groups dropped) are the app's
 * code, anything else is tried as a recovery code, whose own check refuses a wrong shape.
 */
export function proofOfTypedCode(typed: string): SecondFactorProof {
  const digits = typed.replace(/\s/g, '');
  return /^\d{6}$/.test(digits) ? { code: digits } : { recoveryCode: typed };
}

/**
 * How long an enrolment waits for its first code (ADR 0038): long enough to install an authenticator
 * app and scan the code, short enough that a secret shown on a screen and abandoned cannot be
 * confirmed later, by whoever photographed it or holds the session, and win the recovery codes.
 */
export const ENROLMENT_LIFETIME_S = 15 * 60;

/** What the user scans (or types) to enrol: shown once, while the enrolment waits for its first code. */
export interface Enrolment {
  otpauthUri: string;
  /** The secret in base32, for typing into an app that cannot scan. */
  secret: string;
  /** The otpauth URI as a QR code, an SVG document made by the server. */
  qrCodeSvg: string;
}

/**
 * The second factor (ASVS 5.0 6.3.3): TOTP enrolment, its recovery codes, the code step of a login,
 * and removing it. Routes and pages call this; nothing here knows about requests.
 */
export function createMfaService(deps: {
  config: AppConfig;
  db: Db;
  reauthentication: Reauthentication;
  /** The code step's own counters (createLoginThrottle(…, 'second_factor')). */
  throttle: LoginThrottle;
  /** null when mail is off: an admin's reset is then only logged. */
  mailer: Mailer | null;
}) {
  const { config, db, reauthentication, throttle, mailer } = deps;
  const repository = createMfaRepository(db);
  const box = config.mfaKeys && createSecretBox(config.mfaKeys);
  // The issuer an authenticator app lists the account under: the host users know the app by.
  const issuer = new URL(config.publicOrigin).host;

  /** The secret box, or the 404 of routes that do not exist (MFA_ENCRYPTION_KEYS is unset). */
  const requireBox = (): SecretBox => {
    if (!box) throw new NotFoundError('There is nothing at this address.');
    return box;
  };

  const openSecret = (userId: string, sealed: Parameters<SecretBox['open']>[1]): string => {
    try {
      if (!box) throw new SecretUnavailableError(sealed.keyId);
      return box.open(userId, sealed);
    } catch (error) {
      if (error instanceof SecretUnavailableError) throw new MfaUnavailableError(userId, sealed.keyId, error);
      throw error;
    }
  };

  /** Stores fresh recovery codes (hashed) in place of any earlier ones, and returns them in the clear, once. */
  const issueRecoveryCodes = async (userId: string, tx = repository): Promise<string[]> => {
    const codes = newRecoveryCodes();
    await tx.replaceRecoveryCodes(
      userId,
      codes.map((code) => recoveryCodeHash(code)!),
    );
    return codes;
  };

  /** true when `proof` is the user's, spending it (the code's time step, or the recovery code). */
  const checkProof = async (userId: string, proof: SecondFactorProof): Promise<boolean> => {
    if ('recoveryCode' in proof) {
      const hash = recoveryCodeHash(proof.recoveryCode);
      return hash !== null && (await repository.useRecoveryCode(userId, hash));
    }
    const totp = await repository.findTotp(userId);
    if (!totp?.confirmed) return false;
    const step = await matchingStep(openSecret(userId, totp.sealed), proof.code);
    return step !== null && (await repository.useStep(userId, step));
  };

  /**
   * The code step of a login, and the code asked for by disabling: throttled and locked like the
   * password (ASVS 5.0 6.3.1), one point spent before the code is checked. Throws 401
   * invalid_mfa_code for a wrong, replayed or out-of-window code and an unknown or used recovery code.
   */
  const verifySecondFactor = async (
    userId: string,
    proof: SecondFactorProof,
    clientIp: string,
  ): Promise<void> => {
    const attempt = await throttle.beginAttempt(userId, clientIp);
    const valid = await checkProof(userId, proof).catch(async (error: unknown) => {
      // The code could not be checked (no key for the secret): no guess was made.
      if (error instanceof MfaUnavailableError) await attempt.withdrawn();
      throw error;
    });
    if (!valid) throw new InvalidMfaCodeError(userId, await attempt.failed());
    await attempt.succeeded();
  };

  return {
    /** Whether enrolment exists at all (MFA_ENCRYPTION_KEYS is set). */
    available: box !== null,

    async status(userId: string): Promise<{ enabled: boolean; recoveryCodesLeft: number }> {
      const totp = await repository.findTotp(userId);
      const enabled = totp?.confirmed ?? false;
      return { enabled, recoveryCodesLeft: enabled ? await repository.countRecoveryCodes(userId) : 0 };
    },

    /**
     * Starts (or restarts) an enrolment, after the current password (a stolen session alone cannot
     * bind the attacker's authenticator to the account). The secret is sealed before it is stored and
     * returned this once; after confirmation nothing ever returns it again.
     */
    async startEnrolment(user: User, currentPassword: string): Promise<Enrolment> {
      const secretBox = requireBox();
      await reauthentication.verifyCurrentPassword(user.id, currentPassword);
      if (user.mfaEnabled) throw new MfaAlreadyEnabledError();
      const secret = newTotpSecret();
      if (!(await repository.startEnrolment(user.id, secretBox.seal(user.id, secret)))) {
        throw new MfaAlreadyEnabledError();
      }
      const uri = otpauthUri(issuer, user.email, secret);
      // Error correction M (15%): a phone camera reads it off a screen; the margin is the quiet zone
      // scanners need around the code.
      const qrCodeSvg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
      return { otpauthUri: uri, secret, qrCodeSvg };
    },

    /**
     * The first code proves the user's app holds the secret: the factor is on from now, that code's
     * step is spent, and the ten recovery codes are returned, the only time they are shown.
     */
    async confirmEnrolment(userId: string, code: string, clientIp: string): Promise<string[]> {
      requireBox();
      const totp = await repository.findTotp(userId);
      if (!totp) throw new MfaNotEnabledError('Start the enrolment first.');
      if (totp.confirmed) throw new MfaAlreadyEnabledError();
      // Expired: removed here, before any code is tried (no guess is possible, so none is counted).
      if (await repository.removeExpiredEnrolment(userId, ENROLMENT_LIFETIME_S)) throw enrolmentExpired();
      // Counted and locked like the code step (ASVS 6.3.1): whoever holds only a stolen session must not
      // guess the first code of an enrolment the owner abandoned, and with it the recovery codes.
      const attempt = await throttle.beginAttempt(userId, clientIp);
      const step = await matchingStep(openSecret(userId, totp.sealed), code);
      if (step === null) throw new InvalidMfaCodeError(userId, await attempt.failed());
      await attempt.succeeded();
      return db.withTransaction(async (tx) => {
        const inTx = createMfaRepository(tx);
        if (!(await inTx.confirm(userId, step, ENROLMENT_LIFETIME_S))) {
          // Confirmed meanwhile by a parallel request (that one returned the codes), or expired since.
          if ((await inTx.findTotp(userId))?.confirmed) throw new MfaAlreadyEnabledError();
          throw enrolmentExpired();
        }
        return issueRecoveryCodes(userId, inTx);
      });
    },

    verifySecondFactor,

    /** New recovery codes in place of the old ones, after the current password. */

    async regenerateRecoveryCodes(userId: string, currentPassword: string): Promise<string[]> {
      await reauthentication.verifyCurrentPassword(userId, currentPassword);
      return db.withTransaction(async (tx) => {
        const inTx = createMfaRepository(tx);
        if (!(await inTx.findTotp(userId))?.confirmed) throw new MfaNotEnabledError();
        return issueRecoveryCodes(userId, inTx);
      });
    },

    /** Turns the factor off: the current password and a code (or a recovery code) first. */
    async disable(userId: string, currentPassword: string, proof: SecondFactorProof, clientIp: string) {
      await reauthentication.verifyCurrentPassword(userId, currentPassword);
      const totp = await repository.findTotp(userId);
      if (!totp?.confirmed) throw new MfaNotEnabledError();
      await verifySecondFactor(userId, proof, clientIp);
      await db.withTransaction((tx) => createMfaRepository(tx).remove(userId));
    },

    /**
     * An admin removes a user's factor (a lost phone and lost recovery codes). false: the user had
     * none. The owner is told by mail when mail is on: a reset they did not ask for is an attack.
     */
    async reset(target: User): Promise<boolean> {
      const removed = await db.withTransaction((tx) => createMfaRepository(tx).remove(target.id));
      if (removed)
        mailer?.send(target.email, { kind: 'mfa_reset', name: target.name }, { userId: target.id });
      return removed;
    },
  };
}
