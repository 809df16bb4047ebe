import type { FloodResult } from './flood';
import type { MemoryResult } from './memory';
import type { Case } from './cases';
import type { WorkPerRequest } from './counts';
import type { Headroom } from './headroom';
import type { Machine } from './machine';
import type { WrkResult } from './wrk';

export interface Round extends WrkResult {
  /** CPU seconds the server process used during the run (all its threads). */
  serverCpuS: number | undefined;
}

export interface Row {
  id: string;
  label: string;
  target: Case['target'];
  /** Answered before the middleware stack (the health probe). */
  beforeStack: boolean;
  request: string;
  connections: number;
  expectedStatus: number;
  ok: boolean;
  failures: string[];
  requestsPerS: number;
  latencyMs: { p50: number; p99: number };
  vsBareExpress: number;
  vsNaive: number;
  /** (max - min) / median of the rounds' req/s. */
  spread: number;
  /** The share of one core the server used (the least busy round) and wrk used (the busiest round). */
  serverCpuBusy: number | undefined;
  wrkCpuBusy: number;
  work: WorkPerRequest;
  rounds: Round[];
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** What went wrong in a row: answers of another status, socket errors. */
function failuresOf(c: Case, work: WorkPerRequest, rounds: Round[]): string[] {
  const failures: string[] = [];
  const unexpected = (statuses: Record<string, number>) =>
    Object.entries(statuses)
      .filter(([status]) => Number(status) !== c.expectedStatus)
      .map(([status, n]) => `${n}× ${status}`);
  const counted = unexpected(work.statuses);
  if (counted.length > 0) failures.push(`count: ${counted.join(', ')} (expected ${c.expectedStatus})`);
  rounds.forEach((round, i) => {
    const wrong = unexpected(round.statuses);
    if (wrong.length > 0) failures.push(`round ${i + 1}: ${wrong.join(', ')} (expected ${c.expectedStatus})`);
    const errors = Object.entries(round.errors).filter(([, n]) => n > 0);
    if (errors.length > 0)
      failures.push(`round ${i + 1}: socket errors ${JSON.stringify(Object.fromEntries(errors))}`);
  });
  return failures;
}

export function summarize(input: { c: Case; work: WorkPerRequest; rounds: Round[] }[]): Row[] {
  const share = (cpuS: number | undefined, r: Round) =>
    cpuS === undefined ? NaN : cpuS / (r.durationUs / 1e6);
  const rows = input.map(({ c, work, rounds }) => {
    const rps = rounds.map((r) => r.requestsPerS);
    const requestsPerS = median(rps);
    const failures = failuresOf(c, work, rounds);
    const serverCpu = rounds.map((r) => share(r.serverCpuS, r)).filter((s) => !Number.isNaN(s));
    return {
      id: c.id,
      label: c.label,
      target: c.target,
      beforeStack: c.beforeStack ?? false,
      request: `${c.method} ${c.path}`,
      connections: c.connections,
      expectedStatus: c.expectedStatus,
      ok: failures.length === 0,
      failures,
      requestsPerS,
      latencyMs: {
        p50: median(rounds.map((r) => r.latencyUs.p50)) / 1000,
        p99: median(rounds.map((r) => r.latencyUs.p99)) / 1000,
      },
      vsBareExpress: 0,
      vsNaive: 0,
      spread: (Math.max(...rps) - Math.min(...rps)) / requestsPerS,
      serverCpuBusy: serverCpu.length > 0 ? Math.min(...serverCpu) : undefined,
      wrkCpuBusy: Math.max(...rounds.map((r) => share(r.cpuS, r))),
      work,
      rounds,
    };
  });
  const rpsOf = (id: string) => rows.find((r) => r.id === id)?.requestsPerS ?? NaN;
  for (const row of rows) {
    row.vsBareExpress = row.requestsPerS / rpsOf('bare-express');
    row.vsNaive = row.requestsPerS / rpsOf('naive-read');
  }
  return rows;
}

export interface Report {
  generatedAt: string;
  settings: { durationS: number; rounds: number; warmupS: number };
  machine: Machine;
  loadAverage: { start: number; end: number };
  headroom: Headroom;
  warnings: string[];
  rows: Row[];
  /** The memory each server could use: the app's compose limit, when a cgroup could apply it. */
  memoryLimit: { mb: number; applied: boolean };
  memory: MemoryResult;
  flood: FloodResult;
}
