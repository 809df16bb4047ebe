import { performance } from 'node:perf_hooks';

/**
 * The middle value: one slow outlier (a garbage collection, the scheduler giving the core to another
 * process) moves a mean but not a median, so comparing medians of interleaved attempts compares the
 * work each kind of request does.
 */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * How long requests for unknown emails take against requests for a known one: the ratio of their
 * median times (1 is the same). `send` makes one request for an email and checks its answer; it is
 * timed from call to resolution. `between` runs untimed after each request. The first rounds warm up
 * (JIT compilation, pool connections) and are not counted; then the two kinds alternate which goes
 * first, so neither always follows the other.
 */
export async function unknownToKnownTimeRatio({
  send,
  knownEmail,
  unknownEmail,
  between = async () => {},
  rounds = 15,
}: {
  send: (email: string) => Promise<void>;
  knownEmail: string;
  unknownEmail: () => string;
  between?: () => Promise<void>;
  rounds?: number;
}): Promise<number> {
  const timed = async (email: string) => {
    const started = performance.now();
    await send(email);
    const elapsed = performance.now() - started;
    await between();
    return elapsed;
  };
  for (let i = 0; i < 3; i++) {
    await timed(unknownEmail());
    await timed(knownEmail);
  }
  const unknownTimes: number[] = [];
  const knownTimes: number[] = [];
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) unknownTimes.push(await timed(unknownEmail()));
    knownTimes.push(await timed(knownEmail));
    if (i % 2 === 1) unknownTimes.push(await timed(unknownEmail()));
  }
  return median(unknownTimes) / median(knownTimes);
}
