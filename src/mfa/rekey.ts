import type { MfaKey } from '../../config/config';
import type { Queryable } from '../lib/db';
import { createMfaRepository } from './mfa.repository';
import { createSecretBox, SecretUnavailableError } from './secret-box';

/** Rows read and rewritten per round trip: a bounded read, and short work between statements. */
export const REKEY_BATCH = 200;

/** What a re-encryption did, in counts and key ids only: never a secret. */
export interface RekeyReport {
  /** The key every secret should now be sealed with (the first of MFA_ENCRYPTION_KEYS). */
  currentKeyId: string;
  /** Rows now sealed under the current key. */
  rekeyed: number;
  /** Rows changed by the app between the read and the write (a new enrolment, a removal): left as they are. */
  changedMeanwhile: number;
  /** Rows that could not be opened, by key id: their key is missing from the ring, or wrong. */
  unreadable: Record<string, number>;
  /** How many secrets each key seals after the run: a key no longer listed here can be dropped. */
  remainingByKey: Record<string, number>;
}

const BEFORE_EVERY_UUID = '00000000-0000-0000-0000-000000000000';

/**
 * Re-encrypts every stored TOTP secret under the first key of the ring (ADR 0033), so an older key can
 * then leave MFA_ENCRYPTION_KEYS. Safe while the app serves: each row is rewritten by a conditional
 * UPDATE on the ciphertext that was opened, so a row the app changed meanwhile keeps the app's write.
 * Idempotent: rows already under the current key are never read, and a second run finds nothing to do.
 */
export async function rekeyTotpSecrets(
  db: Queryable,
  keys: readonly MfaKey[],
  batchSize = REKEY_BATCH,
): Promise<RekeyReport> {
  const box = createSecretBox(keys);
  const currentKeyId = keys[0]!.id;
  const repository = createMfaRepository(db);
  const report: RekeyReport = {
    currentKeyId,
    rekeyed: 0,
    changedMeanwhile: 0,
    unreadable: {},
    remainingByKey: {},
  };
  let after = BEFORE_EVERY_UUID;
  for (;;) {
    const batch = await repository.sealedUnderOtherKeys(currentKeyId, after, batchSize);
    for (const { userId, sealed } of batch) {
      let secret: string;
      try {
        secret = box.open(userId, sealed);
      } catch (error) {
        if (!(error instanceof SecretUnavailableError)) throw error;
        report.unreadable[sealed.keyId] = (report.unreadable[sealed.keyId] ?? 0) + 1;
        continue;
      }
      const moved = await repository.reseal(userId, sealed, box.seal(userId, secret));
      if (moved) report.rekeyed++;
      else report.changedMeanwhile++;
    }
    if (batch.length < batchSize) break;
    after = batch[batch.length - 1]!.userId;
  }
  report.remainingByKey = await repository.countByKey();
  return report;
}
