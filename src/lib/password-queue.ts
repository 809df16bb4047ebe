import type { AppConfig } from '../../config/config';
import { ServiceBusyError } from '../errors';
import type { PasswordHasher } from './passwords';

/**
 * A password hasher that can also hold a place across several steps. `withPlace` takes a place at once
 * (or refuses with 503) and keeps it while `work` runs; the hasher `work` receives computes on that
 * place, and its own `withPlace` reuses it, so nested steps never take a second place.
 */
export interface PasswordHashing extends PasswordHasher {
  withPlace<T>(work: (hashing: PasswordHashing) => Promise<T>): Promise<T>;
  /**
   * Throws the refusal `withPlace` would throw now, without taking a place: lets a route refuse before
   * it spends anything on a request it could not serve (src/auth/login.ts).
   */
  refuseIfFull(): void;
  /** The line's counts, read by the metrics when scraped. */
  stats(): QueueStats;
}

/** Hashes computing now, hashes waiting for a turn, and requests holding a place (both, and more). */
export interface QueueStats {
  running: number;
  waiting: number;
  places: number;
}

/**
 * The bound in front of argon2, one per process (buildApp makes it). What it saves: a hash holds
 * 19 MiB and a core for ~10 ms on libuv's thread pool. Without a bound a login flood queues there
 * without limit: every pool thread hashes (taking the cores the event loop needs for every other
 * request), file reads and DNS lookups wait behind the hashes, and a real user's login waits behind
 * the whole backlog for as long as the flood lasts. With it, at most `concurrency` hashes run (memory
 * at most concurrency x 19 MiB), at most `queueMax` more are admitted to wait, none waits longer than
 * `maxWaitMs`, and everything beyond is refused with 503 `service_busy` without hashing or waiting for
 * a turn (the error handler sends it after HASH_REFUSAL_DELAY_MS, ADR 0042).
 *
 * Places and turns are counted apart. A place is taken when a request starts its password step (a login
 * takes it before the throttle and the database lookup, so a refusal costs neither) and held until the
 * step ends; a turn is a running hash. With at most concurrency + queueMax places, at most queueMax
 * requests ever wait for a turn. Turns are handed over in arrival order, so a newcomer never overtakes
 * a request already in line.
 *
 * What it keeps: every kind of hash (a real verification, the dummy one for an unknown email, a new
 * hash) waits in the same line for the same turns, so neither the answer nor its timing tells an
 * unknown email from a known one (ASVS 6.3.8). The refusal is logged once per burst: a burst starts with
 * a refusal and ends when no place is held, so a sustained flood is one `hash.busy` line, not one per
 * refused request.
 *
 * Hand-written rather than p-limit and the like: those queue without a bound and without a wait limit,
 * which are the two things needed here.
 */
export function createPasswordQueue(
  hasher: PasswordHasher,
  limits: AppConfig['hashing'],
  /** Told of every refusal (the metrics count them; the log has one line per burst). */
  onRefused: (reason: 'queue_full' | 'wait_exceeded') => void = () => undefined,
): PasswordHashing {
  let places = 0;
  let turns = 0;
  /** Who waits for a turn, oldest first: calling one hands it the turn of a finished hash. */
  const line: Array<() => void> = [];
  let inBurst = false;

  function refusal(reason: 'queue_full' | 'wait_exceeded'): ServiceBusyError {
    const first = !inBurst;
    inBurst = true;
    onRefused(reason);
    return new ServiceBusyError(
      reason,
      first ? { name: 'hash.busy', fields: { reason, ...limits } } : undefined,
    );
  }

  function takeTurn(): Promise<void> {
    if (turns < limits.concurrency) {
      turns++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        line.splice(line.indexOf(grant), 1);
        reject(refusal('wait_exceeded'));
      }, limits.maxWaitMs);
      line.push(grant);
    });
  }

  function endTurn(): void {
    const next = line.shift();
    // The turn passes straight to the oldest waiter, so the count of running hashes stays the same.
    if (next) next();
    else turns--;
  }

  async function onTurn<T>(compute: () => Promise<T>): Promise<T> {
    await takeTurn();
    try {
      return await compute();
    } finally {
      endTurn();
    }
  }

  // A place is a count, not an identity: one hasher serves every holder. The calls read `hasher` at the
  // time of the call, so a test's spy on the shared hasher sees them.
  const onPlace: PasswordHashing = {
    hash: (password) => onTurn(() => hasher.hash(password)),
    verify: (passwordHash, password) => onTurn(() => hasher.verify(passwordHash, password)),
    verifyAgainstDummy: (password) => onTurn(() => hasher.verifyAgainstDummy(password)),
    // Reads the hash's parameters only: no turn, no place.
    needsRehash: (passwordHash) => hasher.needsRehash(passwordHash),
    withPlace: (work) => work(onPlace),
    // Whoever holds a place has already been admitted.
    refuseIfFull: () => undefined,
    stats,
  };

  function stats(): QueueStats {
    return { running: turns, waiting: line.length, places };
  }

  function refuseIfFull(): void {
    if (places >= limits.concurrency + limits.queueMax) throw refusal('queue_full');
  }

  async function withPlace<T>(work: (hashing: PasswordHashing) => Promise<T>): Promise<T> {
    refuseIfFull();
    places++;
    try {
      return await work(onPlace);
    } finally {
      places--;
      if (places === 0) inBurst = false;
    }
  }

  return {
    hash: (password) => withPlace((hashing) => hashing.hash(password)),
    verify: (passwordHash, password) => withPlace((hashing) => hashing.verify(passwordHash, password)),
    verifyAgainstDummy: (password) => withPlace((hashing) => hashing.verifyAgainstDummy(password)),
    needsRehash: (passwordHash) => hasher.needsRehash(passwordHash),
    withPlace,
    refuseIfFull,
    stats,
  };
}
