import type { PasswordHasher } from '../../src/lib/passwords';
import { passwords } from './test-app';

/** The calls that compute (needsRehash only reads a string and is never held). */
type HashCall = Exclude<keyof PasswordHasher, 'needsRehash'>;

export interface HeldHasher {
  /** Give it to the app (`useTestApp(env, { passwords: held.hasher })`). */
  hasher: PasswordHasher;
  /** Every call that reached argon2 (through the app's bound), oldest first: what was hashed. */
  calls: HashCall[];
  /** From now on calls wait at the gate before argon2 runs, so they hold their turn. */
  hold(): void;
  /** Opens the gate: the waiting calls and all later ones run at once. */
  release(): void;
}

/**
 * The real hasher (the worker's shared one) behind a gate the test opens and closes. Not a mock: every
 * call runs real argon2 with the real parameters; the gate only decides when, so a test can keep the
 * app's hashing slots busy for as long as it looks, and count exactly which hashes were computed.
 */
export function createHeldHasher(): HeldHasher {
  let gate: Promise<void> = Promise.resolve();
  let open: () => void = () => undefined;
  const calls: HashCall[] = [];

  const held =
    <A extends unknown[], R>(name: HashCall, run: (real: PasswordHasher, ...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      calls.push(name);
      await gate;
      return run(passwords(), ...args);
    };

  return {
    hasher: {
      hash: held('hash', (real, password: string) => real.hash(password)),
      verify: held('verify', (real, passwordHash: string, password: string) =>
        real.verify(passwordHash, password),
      ),
      verifyAgainstDummy: held('verifyAgainstDummy', (real, password: string) =>
        real.verifyAgainstDummy(password),
      ),
      needsRehash: (passwordHash) => passwords().needsRehash(passwordHash),
    },
    calls,
    hold() {
      gate = new Promise((resolve) => (open = resolve));
    },
    release() {
      open();
      gate = Promise.resolve();
    },
  };
}

/**
 * Resolves once `condition` holds, checked every few milliseconds; fails after `deadlineMs` with
 * `what`, so a request that never comes back fails the test instead of hanging it.
 */
export async function until(condition: () => boolean, what: string, deadlineMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > deadlineMs) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
