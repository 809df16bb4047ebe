import { readdirSync, readFileSync } from 'node:fs';
import { CLOCK_TICKS } from './processes';

/**
 * Where the CPU went during a window of the run: how busy each CPU was (/proc/stat), and how much of a
 * server's time went to its main thread (the event loop), libuv's pool (argon2) and the rest (V8's
 * collector and compiler threads). Linux only; elsewhere every figure is empty.
 *
 * Why the bench needs it: under the flood the reads' share depends on who else wants the server's core,
 * and whether the load generator's core ran out (then the figures measure wrk, not the app).
 */

/** Busy and total jiffies of each CPU (`cpu0`, `cpu1`, …) since boot. */
type CpuTimes = Record<string, { busy: number; total: number }>;

function cpuTimes(): CpuTimes {
  const times: CpuTimes = {};
  try {
    for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
      const match = /^(cpu\d+)\s+(.*)$/.exec(line);
      if (!match) continue;
      const values = match[2]!.split(/\s+/).map(Number);
      // user nice system idle iowait irq softirq steal: idle and iowait are the idle part.
      const total = values.slice(0, 8).reduce((a, b) => a + b, 0);
      times[match[1]!] = { busy: total - values[3]! - values[4]!, total };
    }
  } catch {
    // Not Linux: no figures.
  }
  return times;
}

/** CPU jiffies of each of a process's threads by role. */
interface ThreadTimes {
  main: number;
  pool: number;
  other: number;
}

function threadTimes(pid: number): ThreadTimes {
  const times: ThreadTimes = { main: 0, pool: 0, other: 0 };
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const jiffies = Number(fields[11]) + Number(fields[12]);
      if (Number(tid) === pid) times.main += jiffies;
      else if (name === 'libuv-worker') times.pool += jiffies;
      else times.other += jiffies;
    }
  } catch {
    // The process is gone or this is not Linux.
  }
  return times;
}

export interface CpuUse {
  /** Busy share of each CPU over the window, 0–1. */
  cpus: Record<string, number>;
  /** The server's threads, each as a share of one CPU over the window, 0–1. */
  server: ThreadTimes;
}

/** Starts a window; `end()` gives what happened in it. */
export function measureCpuUse(serverPid: number): { end(): CpuUse } {
  const startCpus = cpuTimes();
  const startThreads = threadTimes(serverPid);
  const startedAt = performance.now();
  return {
    end() {
      const endCpus = cpuTimes();
      const endThreads = threadTimes(serverPid);
      const cpus: Record<string, number> = {};
      for (const [cpu, end] of Object.entries(endCpus)) {
        const start = startCpus[cpu];
        if (start && end.total > start.total) cpus[cpu] = (end.busy - start.busy) / (end.total - start.total);
      }
      const ticks = ((performance.now() - startedAt) / 1000) * CLOCK_TICKS;
      const share = (role: keyof ThreadTimes) => (endThreads[role] - startThreads[role]) / ticks;
      return { cpus, server: { main: share('main'), pool: share('pool'), other: share('other') } };
    },
  };
}
