import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { LOGIN_OUTCOMES, type LoginOutcome } from '../auth/auth.service';
import { CODE_STEP_OUTCOMES, type CodeStepOutcome } from '../auth/login';
import { BREACH_CHECK_FAILURES, type BreachCheckFailure } from '../auth/breached-passwords';
import type { LoginLockout } from '../auth/login-throttle';
import type { PoolStats } from '../lib/db';
import type { QueueStats } from '../lib/password-queue';
import { createHttpMetrics, type HttpMetrics } from './http-metrics';

/** The parts of the app the gauges read when scraped: nothing is sampled between scrapes. */
export interface MetricSources {
  db: { poolStats(): PoolStats };
  redis: { readonly isReady: boolean };
  passwords: { stats(): QueueStats };
}

export interface Metrics {
  /** What the metrics listener serves (src/metrics/metrics-server.ts). */
  readonly registry: Registry;
  readonly http: HttpMetrics;
  loginAttempt(outcome: LoginOutcome): void;
  /** A failed login that started a lock (of the email from this client, or of the client for a day). */
  lockout(reason: LoginLockout): void;
  /** How a login's code step ended (after a password step counted as `mfa_required`). */
  codeStepAttempt(outcome: CodeStepOutcome): void;
  /** A wrong code that started a lock of the account's code step (or of the client for a day). */
  codeStepLockout(reason: LoginLockout): void;
  /** A request refused with 429 by any limiter (per client, registration, reset, login lock, mail). */
  rateLimited(): void;
  /** A password hash refused with 503 because the line was full or the wait ran out. */
  hashRefused(reason: 'queue_full' | 'wait_exceeded'): void;
  /** A breached-password lookup that gave no answer, so the password was accepted unchecked. */
  breachCheckFailed(reason: BreachCheckFailure): void;
  /** Points the gauges at the app's pool, Redis client and hashing line; buildApp calls it. */
  watch(sources: MetricSources): void;
}

/**
 * One registry per call, never prom-client's global one: the process makes one (src/main.ts, when
 * METRICS_PORT is set) and tests make as many as they build apps. No label carries user input: every
 * label value comes from a fixed set written here or in the route table.
 */
export function createMetrics(): Metrics {
  const registry = new Registry();
  // Event-loop delay (nodejs_eventloop_lag_*), process memory (process_resident_memory_bytes,
  // nodejs_heap_*), CPU, handles, GC: read when scraped, from perf_hooks and process.
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  let sources: MetricSources | undefined;

  /** A counter of one label whose every value is there from the start: zeros, not missing series. */
  function countedBy<V extends string>(name: string, help: string, label: string, values: readonly V[]) {
    const counter = new Counter({ name, help, labelNames: [label], registers });
    for (const value of values) counter.inc({ [label]: value }, 0);
    return (value: V) => counter.inc({ [label]: value });
  }
  const loginAttempt = countedBy(
    'app_login_attempts_total',
    'Login attempts (API and form) by outcome.',
    'outcome',
    LOGIN_OUTCOMES,
  );
  const lockReasons = ['consecutive_failures', 'daily_failures'] as const;
  const lockout = countedBy(
    'app_login_lockouts_total',
    'Locks started by a failed login, by which counter ran out.',
    'reason',
    lockReasons,
  );
  const codeStepAttempt = countedBy(
    'app_login_mfa_attempts_total',
    'Code steps of logins (API and form) by outcome.',
    'outcome',
    CODE_STEP_OUTCOMES,
  );
  const codeStepLockout = countedBy(
    'app_login_mfa_lockouts_total',
    'Locks started by a wrong second-factor code at login, by which counter ran out.',
    'reason',
    lockReasons,
  );
  const hashRefused = countedBy(
    'app_password_hash_refusals_total',
    'Password hashes refused with 503 (the line was full, or the wait for a turn ran out).',
    'reason',
    ['queue_full', 'wait_exceeded'] as const,
  );
  const breachCheckFailed = countedBy(
    'app_password_breach_check_failures_total',
    'Breached-password lookups that gave no answer (the password was accepted unchecked), by why.',
    'reason',
    BREACH_CHECK_FAILURES,
  );
  const rateLimited = new Counter({
    name: 'app_rate_limit_refusals_total',
    help: 'Requests refused with 429 by a rate limit or a login lock.',
    registers,
  });

  /** A gauge with a `state` label per count `read` gives, read when scraped. */
  const countsByState = (name: string, help: string, read: (from: MetricSources) => object) =>
    new Gauge({
      name,
      help,
      labelNames: ['state'] as const,
      registers,
      collect() {
        if (!sources) return;
        for (const [state, value] of Object.entries(read(sources))) this.set({ state }, value as number);
      },
    });
  countsByState(
    'app_password_hash_queue',
    'Password hashes running and waiting for a turn, and requests holding a place in line.',
    (from) => from.passwords.stats(),
  );
  countsByState(
    'app_pg_pool_clients',
    'Postgres pool connections (total, idle) and queries waiting for a connection.',
    (from) => from.db.poolStats(),
  );
  new Gauge({
    name: 'app_redis_ready',
    help: '1 while the Redis client is connected and ready for commands, 0 otherwise.',
    registers,
    collect() {
      if (sources) this.set(sources.redis.isReady ? 1 : 0);
    },
  });

  return {
    registry,
    http: createHttpMetrics(registry),
    loginAttempt,
    lockout,
    codeStepAttempt,
    codeStepLockout,
    rateLimited: () => rateLimited.inc(),
    hashRefused,
    breachCheckFailed,
    watch(next) {
      sources = next;
    },
  };
}
