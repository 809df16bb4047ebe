import type { Logger } from './logger';

/** Often enough that spent rows do not pile up, rarely enough to cost nothing: one indexed DELETE each. */
export const SWEEP_INTERVAL_MS = 15 * 60_000;

/** One kind of row past its use, and the DELETE that removes them all, returning how many it removed. */
export interface Sweep {
  /** What the rows are, for the log: "<what> deleted", "<what>: sweep failed". */
  what: string;
  sweep(): Promise<number>;
}

/**
 * Runs every sweep every `intervalMs`, from the app process itself (main.ts starts it): no cron job or
 * worker to deploy. With several instances each one sweeps; each DELETE is idempotent, so they only
 * repeat each other's cheap work. A failed sweep (Postgres down) is logged and simply tried again at
 * the next tick; the others run regardless. The timer does not keep the process alive.
 */
export function startSweeps({
  sweeps,
  logger,
  intervalMs = SWEEP_INTERVAL_MS,
}: {
  sweeps: readonly Sweep[];
  logger: Logger;
  intervalMs?: number;
}): { stop(): void } {
  const running = new Set<Sweep>();
  const timer = setInterval(() => {
    for (const job of sweeps) {
      // A sweep slower than the interval (a locked table) is not stacked with another of its kind.
      if (running.has(job)) continue;
      running.add(job);
      // Through a promise from the start: a sweep that throws before returning one is a failed sweep too.
      Promise.resolve()
        .then(() => job.sweep())
        .then((deleted) => {
          if (deleted > 0) logger.info({ deleted }, `${job.what} deleted`);
        })
        .catch((err: unknown) => logger.warn({ err }, `${job.what}: sweep failed, trying again later`))
        .finally(() => running.delete(job));
    }
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
