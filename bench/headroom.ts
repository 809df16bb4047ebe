import type { Row } from './summary';

/** Bare node:http must answer at least this many times the best row that goes through a stack. */
export const HEADROOM_FACTOR = 5;
/** wrk busier than this (of its one core) in a run may have set that run's pace. */
const WRK_BUSY_LIMIT = 0.9;
/**
 * A bare server does nothing but answer, so under load it should use its whole core; less means its
 * core was shared with other processes (or wrk could not keep it busy).
 */
const SERVER_BUSY_FLOOR = 0.9;

export interface Headroom {
  /** The busiest wrk got, as a share of its core, in any run of any row. */
  wrkBusiest: number;
  bareHttpRequestsPerS: number;
  /** The best naive or app row that goes through the middleware stack (not the /healthz probe). */
  bestStackRequestsPerS: number;
  factor: number;
  required: number;
  /** The least the bare node:http server used of its core in a run. */
  bareServerCpuBusy: number | undefined;
  ok: boolean;
  /** Why the figures may not be the servers' own, when they may not. */
  doubts: string[];
}

/**
 * Could wrk, rather than the server, have set a figure? Three checks:
 * - wrk's own CPU: busy near its whole core in a run, it was the limit of that run;
 * - bare node:http, the least work per request, must answer far above every row that goes through a
 *   stack (the naive assembly, the app's requests). /healthz is left to the CPU check: it is answered
 *   before the stack, so it is meant to come close to bare Express, and so to node:http;
 * - the bare node:http server must keep its core busy, or something else ran on that core.
 */
export function headroomOf(rows: Row[]): Headroom {
  const bareHttp = rows.find((r) => r.id === 'bare-http')!;
  const stackRows = rows.filter((r) => (r.target === 'app' || r.target === 'naive') && !r.beforeStack);
  const bestStackRequestsPerS = Math.max(...stackRows.map((r) => r.requestsPerS));
  const factor = bareHttp.requestsPerS / bestStackRequestsPerS;
  const wrkBusiest = Math.max(...rows.map((r) => r.wrkCpuBusy));
  const percent = (share: number) => `${Math.round(share * 100)} %`;
  const doubts: string[] = [];
  if (wrkBusiest >= WRK_BUSY_LIMIT) doubts.push(`wrk used ${percent(wrkBusiest)} of its core in a run`);
  if (factor < HEADROOM_FACTOR) {
    doubts.push(
      `bare node:http answered only ${factor.toFixed(1)}× the best row through a stack (${HEADROOM_FACTOR}× wanted)`,
    );
  }
  if (bareHttp.serverCpuBusy !== undefined && bareHttp.serverCpuBusy < SERVER_BUSY_FLOOR) {
    doubts.push(
      `the bare node:http server used only ${percent(bareHttp.serverCpuBusy)} of its core: ` +
        'other processes ran there',
    );
  }
  return {
    wrkBusiest,
    bareHttpRequestsPerS: bareHttp.requestsPerS,
    bestStackRequestsPerS,
    factor,
    required: HEADROOM_FACTOR,
    bareServerCpuBusy: bareHttp.serverCpuBusy,
    ok: doubts.length === 0,
    doubts,
  };
}
