import { randomBytes } from 'node:crypto';
import { hash, hashSync, verify, type Options } from '@node-rs/argon2';

/**
 * argon2id with OWASP's minimum parameters (Password Storage Cheat Sheet: m=19 MiB, t=2, p=1).
 * `algorithm: 2` is Argon2id: the package exposes it as a const enum, which per-file transpilers
 * (SWC in tests) cannot inline, so the number is written out.
 */
const ARGON2_OPTIONS: Options = { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 };

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(passwordHash: string, password: string): Promise<boolean>;
  /**
   * Spends the same work as a real verification and always fails. Used when no account matches, so
   * response time does not reveal which emails are registered (ASVS V6, OWASP Authentication Cheat Sheet).
   */
  verifyAgainstDummy(password: string): Promise<false>;
}

export function createPasswordHasher(options: Options = ARGON2_OPTIONS): PasswordHasher {
  // Same parameters as real hashes, so verifying against it costs the same. Computed once at start.
  const dummyHash = hashSync(randomBytes(32).toString('base64url'), options);
  return {
    hash: (password) => hash(password, options),
    verify: async (passwordHash, password) => {
      try {
        return await verify(passwordHash, password);
      } catch {
        return false; // a malformed stored hash never authenticates
      }
    },
    verifyAgainstDummy: async (password) => {
      await verify(dummyHash, password);
      return false;
    },
  };
}
