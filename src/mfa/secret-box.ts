import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { MfaKey } from '../../config/config';

/** A TOTP secret as stored: the ciphertext and the id of the key that sealed it. */
export interface SealedSecret {
  keyId: string;
  /** IV (12 bytes) || GCM tag (16 bytes) || ciphertext. */
  ciphertext: Buffer;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Thrown when a sealed secret cannot be opened: an unknown key id, a wrong key, or altered bytes. */
export class SecretUnavailableError extends Error {
  constructor(readonly keyId: string) {
    super(`the TOTP secret sealed with key "${keyId}" cannot be opened`);
    this.name = 'SecretUnavailableError';
  }
}

/**
 * Encrypts TOTP secrets at rest with AES-256-GCM (ASVS 5.0 11.3.2: an approved authenticated mode;
 * 11.7.x: data protected at rest), so a copy of the database alone opens no authenticator.
 *
 * - A random 96-bit IV per seal, the size GCM is specified for (NIST SP 800-38D 8.2.2): with random
 *   IVs a key may seal 2^32 messages, far more secrets than a user table holds.
 * - The user id is the associated data: a ciphertext copied onto another user's row fails its tag,
 *   so someone who can write the table but holds no key cannot give their own secret to a victim.
 * - A key ring (MFA_ENCRYPTION_KEYS): the first key seals, each key opens what carries its id, so a
 *   key is rotated without re-encrypting everything at once (docs/decisions, TOTP secrets encrypted
 *   with a key ring).
 */
export function createSecretBox(keys: readonly MfaKey[]) {
  const current = keys[0];
  if (!current) throw new Error('createSecretBox needs at least one key');
  const byId = new Map(keys.map((k) => [k.id, k.key]));
  const associatedData = (userId: string) => Buffer.from(`user_totp:${userId}`, 'utf8');

  return {
    seal(userId: string, secret: string): SealedSecret {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', current.key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(associatedData(userId));
      const body = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
      return { keyId: current.id, ciphertext: Buffer.concat([iv, cipher.getAuthTag(), body]) };
    },

    open(userId: string, sealed: SealedSecret): string {
      const key = byId.get(sealed.keyId);
      if (!key || sealed.ciphertext.length <= IV_BYTES + TAG_BYTES) {
        throw new SecretUnavailableError(sealed.keyId);
      }
      const iv = sealed.ciphertext.subarray(0, IV_BYTES);
      const tag = sealed.ciphertext.subarray(IV_BYTES, IV_BYTES + TAG_BYTES);
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(associatedData(userId));
      decipher.setAuthTag(tag);
      try {
        const body = sealed.ciphertext.subarray(IV_BYTES + TAG_BYTES);
        return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
      } catch {
        // The tag did not match: another user's row, another key under this id, or altered bytes.
        throw new SecretUnavailableError(sealed.keyId);
      }
    },
  };
}

export type SecretBox = ReturnType<typeof createSecretBox>;
