import type { Logger } from '../lib/logger';
import type { AccountTokens } from './account-tokens';

/** Often enough that spent links do not pile up, rarely enough to cost nothing: one indexed DELETE. */
export const TOKEN_SWEEP_INTERVAL_MS = 15 * 60_000;

/**
 * Deletes expired and used account tokens every `intervalMs`, from the app process itself (main.ts
 * starts it): no cron job or worker to deploy. With several instances each one sweeps; the DELETE
 * is idempotent, so they only repeat each other's cheap work. A failed sweep (Postgres down) is
 * logged and simply tried again at the next tick. The timer does not keep the process alive.
 */
export function startTokenSweep({
  tokens,
  logger,
  intervalMs = TOKEN_SWEEP_INTERVAL_MS,
}: {
  tokens: Pick<AccountTokens, 'sweep'>;
  logger: Logger;
  intervalMs?: number;
}): { stop(): void } {
  let running = false;
  const timer = setInterval(() => {
    // A sweep slower than the interval (a locked table) is not stacked with another.
    if (running) return;
    running = true;
    tokens
      .sweep()
      .then((deleted) => {
        if (deleted > 0) logger.info({ deleted }, 'expired and used account tokens deleted');
      })
      .catch((err: unknown) => logger.warn({ err }, 'account token sweep failed: trying again later'))
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
