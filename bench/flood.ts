import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Case } from './cases';
import { measureCpuUse, type CpuUse } from './cpu-use';
import { SMOKE } from './mode';
import { runWrk, type LoadRequest, type WrkResult } from './wrk';

/** The attack: this many connections of wrong passwords, each request from an address of its own. */
export const FLOOD_CONNECTIONS = 64;
/** The issue's 15 s; a smoke run floods for 6 s, enough for 2 s measured between the ramps. */
export const FLOOD_S = SMOKE ? 6 : 15;
/** The reads and the probes start once the flood is under way, and end before it does. */
const RAMP_S = 2;
const MEASURED_S = FLOOD_S - 2 * RAMP_S;
/** One /healthz probe at a time, this often: an orchestrator's pace, not a second load. */
const PROBE_EVERY_MS = 20;

/** The issue's targets for the app under the flood. */
export const FLOOD_TARGETS = {
  readsShareMin: 0.5,
  healthzP99MsMax: 50,
  loginP99MsMax: 1000,
  rssMbMax: 250,
};

/** What a login may answer under the flood: a wrong password, or "busy" from the bounded hashing queue. */
const LOGIN_STATUSES = new Set(['401', '503']);

export interface FloodResult {
  connections: number;
  durationS: number;
  login: { requestsPerS: number; p50Ms: number; p99Ms: number; statuses: Record<string, number> };
  reads: { requestsPerS: number; unloadedRequestsPerS: number; share: number; p99Ms: number };
  healthz: { probes: number; p50Ms: number; p99Ms: number; maxMs: number; failed: number };
  rssMb: { before: number; max: number };
  /** Where the CPU went while the reads ran: each CPU's busy share, the server's threads by role. */
  cpu: CpuUse;
  /** CPU seconds each wrk used over its own run (the flood's ran longer than the reads'). */
  wrkCpuS: { flood: number; reads: number };
  /** Each target of FLOOD_TARGETS: met or not, with the figure. */
  targets: { name: string; met: boolean; figure: string }[];
  /** Answers or errors that must not happen (a 500, a reset connection): the bench fails on these. */
  failures: string[];
}

/** Resident set size of a process in MB (VmRSS of /proc/PID/status, Linux), undefined once it is gone. */
export function rssMb(child: ChildProcess): number | undefined {
  try {
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

/** Sequential probes of `url` until `untilMs` (performance.now()): their latencies, and how many failed. */
async function probe(
  url: string,
  headers: Record<string, string>,
  untilMs: number,
): Promise<{ latenciesMs: number[]; failed: number }> {
  const latenciesMs: number[] = [];
  let failed = 0;
  while (performance.now() < untilMs) {
    const start = performance.now();
    const ok = await fetch(url, { headers }).then(
      async (res) => {
        await res.arrayBuffer();
        return res.status === 200;
      },
      () => false,
    );
    latenciesMs.push(performance.now() - start);
    if (!ok) failed += 1;
    await sleep(PROBE_EVERY_MS);
  }
  return { latenciesMs, failed };
}

const socketErrors = (r: WrkResult) => Object.values(r.errors).reduce((a, b) => a + b, 0);

/**
 * A distributed login flood (every request a wrong password from a new address, through the trusted
 * proxy header) against the app, and meanwhile: signed-in reads at full speed, compared with the same
 * reads unloaded in the same run; `/healthz` probed one request at a time; the server's RSS sampled.
 */
export async function runFlood(options: {
  server: { url: string; child: ChildProcess };
  loginFailure: Case;
  read: Case;
  unloadedReadsPerS: number;
  healthz: Case;
  clientOffset: number;
}): Promise<FloodResult> {
  const { server, loginFailure, read } = options;
  const load = (c: Case, connections: number, clientOffset = 0): LoadRequest => ({
    url: server.url + c.path,
    method: c.method,
    headers: c.headers,
    body: c.body,
    connections,
    uniqueClients: c.uniqueClients,
    clientOffset,
  });

  const before = rssMb(server.child) ?? NaN;
  let max = before;
  const sampler = setInterval(() => (max = Math.max(max, rssMb(server.child) ?? max)), 100);
  try {
    const flood = runWrk(load(loginFailure, FLOOD_CONNECTIONS, options.clientOffset), FLOOD_S);
    await sleep(RAMP_S * 1000);
    const window = measureCpuUse(server.child.pid!);
    const [reads, probes] = await Promise.all([
      runWrk(load(read, read.connections), MEASURED_S),
      probe(
        server.url + options.healthz.path,
        options.healthz.headers,
        performance.now() + MEASURED_S * 1000,
      ),
    ]);
    const cpu = window.end();
    const login = await flood;
    max = Math.max(max, rssMb(server.child) ?? max);

    const failures: string[] = [];
    const unexpectedLogin = Object.entries(login.statuses).filter(([s]) => !LOGIN_STATUSES.has(s));
    if (unexpectedLogin.length > 0)
      failures.push(`login answered ${unexpectedLogin.map(([s, n]) => `${n}× ${s}`).join(', ')}`);
    const unexpectedReads = Object.entries(reads.statuses).filter(([s]) => s !== String(read.expectedStatus));
    if (unexpectedReads.length > 0)
      failures.push(`reads answered ${unexpectedReads.map(([s, n]) => `${n}× ${s}`).join(', ')}`);
    for (const [what, r] of [
      ['login', login],
      ['reads', reads],
    ] as const) {
      if (socketErrors(r) > 0) failures.push(`${what}: socket errors ${JSON.stringify(r.errors)}`);
    }
    if (probes.failed > 0) failures.push(`${probes.failed} /healthz probes failed`);

    const share = reads.requestsPerS / options.unloadedReadsPerS;
    const healthzP99 = percentile(probes.latenciesMs, 99);
    const loginP99 = login.latencyUs.p99 / 1000;
    const t = FLOOD_TARGETS;
    return {
      connections: FLOOD_CONNECTIONS,
      durationS: FLOOD_S,
      login: {
        requestsPerS: login.requestsPerS,
        p50Ms: login.latencyUs.p50 / 1000,
        p99Ms: loginP99,
        statuses: login.statuses,
      },
      reads: {
        requestsPerS: reads.requestsPerS,
        unloadedRequestsPerS: options.unloadedReadsPerS,
        share,
        p99Ms: reads.latencyUs.p99 / 1000,
      },
      healthz: {
        probes: probes.latenciesMs.length,
        p50Ms: percentile(probes.latenciesMs, 50),
        p99Ms: healthzP99,
        maxMs: Math.max(...probes.latenciesMs),
        failed: probes.failed,
      },
      rssMb: { before, max },
      cpu,
      wrkCpuS: { flood: login.cpuS, reads: reads.cpuS },
      targets: [
        {
          name: `signed-in reads keep ≥ ${t.readsShareMin * 100} % of their unloaded req/s`,
          met: share >= t.readsShareMin,
          figure: `${Math.round(share * 100)} %`,
        },
        {
          name: `/healthz p99 < ${t.healthzP99MsMax} ms`,
          met: healthzP99 < t.healthzP99MsMax,
          figure: `${healthzP99.toFixed(1)} ms`,
        },
        {
          name: `login p99 < ${t.loginP99MsMax} ms`,
          met: loginP99 < t.loginP99MsMax,
          figure: `${Math.round(loginP99)} ms`,
        },
        { name: 'no 500', met: !login.statuses['500'] && !reads.statuses['500'], figure: '' },
        { name: `RSS < ${t.rssMbMax} MB`, met: max < t.rssMbMax, figure: `${Math.round(max)} MB` },
      ],
      failures,
    };
  } finally {
    clearInterval(sampler);
  }
}
