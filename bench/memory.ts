import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Case } from './cases';
import { SMOKE } from './mode';
import { runWrk } from './wrk';

/** The check: after this many signed-in reads, memory has settled (a smoke run: a few). */
export const MEMORY_READS = SMOKE ? 10_000 : 200_000;
/** Growth over the second half of the reads below this share counts as settled. */
export const SETTLED_GROWTH = 0.1;
/** Samples along the way (one after each run of load). */
const STEPS = 10;

/** Node flags and the preload that let the bench read the app's live heap (bench/servers/memory-probe.cjs). */
export const MEMORY_PROBE_ARGS = [
  '--expose-gc',
  '--require',
  path.join(__dirname, 'servers', 'memory-probe.cjs'),
];

const MB = 1024 * 1024;

export interface MemorySample {
  reads: number;
  rssMb: number;
  /** After a full collection: the live heap. */
  heapUsedMb: number;
  heapTotalMb: number;
  /** Memory of JavaScript objects held outside the heap (Buffers and their backing stores included). */
  externalMb: number;
  /** How far V8 lets the heap grow, from the memory the process may use. */
  heapLimitMb: number;
  /** Resident pages of mapped files: the code of node and of native addons. */
  rssFileMb: number;
}

export interface MemoryResult {
  reads: number;
  samples: MemorySample[];
  /** Growth from the sample at half the reads to the last one. */
  growth: { rss: number; heapUsed: number };
  settled: boolean;
}

/** Asks the probe for a sample and waits until it has written it. */
async function sampleOf(child: ChildProcess, file: string, reads: number, expected: number) {
  child.kill('SIGUSR2');
  for (let waited = 0; waited < 10_000; waited += 20) {
    try {
      const m = JSON.parse(readFileSync(file, 'utf8')) as NodeJS.MemoryUsage & {
        sample: number;
        heapSizeLimit: number;
        rssFile: number;
      };
      if (m.sample === expected) {
        return {
          reads,
          rssMb: m.rss / MB,
          heapUsedMb: m.heapUsed / MB,
          heapTotalMb: m.heapTotal / MB,
          externalMb: m.external / MB,
          heapLimitMb: m.heapSizeLimit / MB,
          rssFileMb: m.rssFile / MB,
        };
      }
    } catch {
      // Not written yet, or being written.
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('the memory probe wrote no sample within 10 s');
}

/**
 * MEMORY_READS signed-in reads at full speed, in STEPS runs, with a sample of RSS and live heap before
 * the first and after each: memory that keeps growing through the second half is a leak, not a cache.
 */
export async function runMemory(options: {
  server: { url: string; child: ChildProcess };
  read: Case;
  readsPerS: number;
  memoryFile: string;
}): Promise<MemoryResult> {
  const { server, read, memoryFile } = options;
  const stepS = Math.max(1, Math.ceil(MEMORY_READS / STEPS / options.readsPerS));
  const samples: MemorySample[] = [await sampleOf(server.child, memoryFile, 0, 1)];
  let reads = 0;
  while (reads < MEMORY_READS) {
    const run = await runWrk(
      {
        url: server.url + read.path,
        method: read.method,
        headers: read.headers,
        connections: read.connections,
      },
      stepS,
    );
    const failed = Object.entries(run.statuses).filter(([s]) => s !== String(read.expectedStatus));
    if (failed.length > 0) throw new Error(`memory run: reads answered ${JSON.stringify(run.statuses)}`);
    if (Object.values(run.errors).some((n) => n > 0))
      throw new Error(`memory run: socket errors ${JSON.stringify(run.errors)}`);
    reads += run.requests;
    samples.push(await sampleOf(server.child, memoryFile, reads, samples.length + 1));
  }
  const mid = samples.find((s) => s.reads >= reads / 2)!;
  const last = samples.at(-1)!;
  const growth = {
    rss: last.rssMb / mid.rssMb - 1,
    heapUsed: last.heapUsedMb / mid.heapUsedMb - 1,
  };
  return { reads, samples, growth, settled: growth.rss < SETTLED_GROWTH && growth.heapUsed < SETTLED_GROWTH };
}
