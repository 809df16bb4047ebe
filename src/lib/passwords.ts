import { randomBytes } from 'node:crypto';
import { hash, hashSync, parseOptions, verify, type Options } from '@node-rs/argon2';

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
  /**
   * True when `passwordHash` was made with other parameters (algorithm, version, m, t, p, output or
   * salt length) than this hasher uses: after a successful verification the caller hashes the password
   * again (ASVS 11.2.2).
   */
  needsRehash(passwordHash: string): boolean;
}

/** What `parseOptions` reads from a hash (its PHC string) that must match how hashes are made now. */
const COMPARED_PARAMETERS = [
  'algorithm',
  'version',
  'memoryCost',
  'timeCost',
  'parallelism',
  'outputLen',
  'saltLen',
] as const;

export function createPasswordHasher(options: Options = ARGON2_OPTIONS): PasswordHasher {
  // Same parameters as real hashes, so verifying against it costs the same. Computed once at start.
  const dummyHash = hashSync(randomBytes(32).toString('base64url'), options);
  // How a hash made now looks, read back by the library itself (defaults such as the version filled in).
  const current = parseOptions(dummyHash);
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
    needsRehash: (passwordHash) => {
      try {
        const stored = parseOptions(passwordHash);
        return COMPARED_PARAMETERS.some((name) => stored[name] !== current[name]);
      } catch {
        return true; // unreadable: a hash in the current form can only be better
      }
    },
  };
}
