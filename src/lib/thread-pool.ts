import { access, readdir, readFile } from 'node:fs/promises';
import { setPriority } from 'node:os';

/** What a Linux thread of libuv's pool is called (/proc/self/task/<tid>/comm). */
const WORKER_NAME = 'libuv-worker';

export type PoolPriority = { threads: number; nice: number } | { skipped: string };

/**
 * Gives libuv's worker threads, where argon2 computes password hashes, the scheduling priority `nice`.
 *
 * Why: a hash is ~10 ms of pure CPU on a pool thread. When a hash and the event loop want the same core
 * (a login flood on a server with one core, or more hashes than spare cores), Linux shares the core
 * evenly between the two threads, so every read, health probe and refusal waits behind the hashes.
 * At nice 10 a worker gets about a tenth of a contended core and the event loop the rest; a core with
 * nothing else to do still hashes at full speed, so an idle server's login is as fast as before. The
 * bounded queue in front of argon2 (password-queue.ts) then refuses what cannot be hashed in time.
 * Measured with the flood of `npm run bench` (ADR 0012).
 *
 * How: the pool starts all its threads on first use, so a file access starts it; then each worker's
 * thread id gets the priority (setpriority on a thread id sets that thread's nice on Linux). Raising a
 * nice value needs no privilege. Elsewhere (no /proc), nothing happens and the result says why.
 */
export async function setPoolPriority(nice: number): Promise<PoolPriority> {
  try {
    await access('.');
    const tasks = await readdir('/proc/self/task');
    const workers: number[] = [];
    for (const tid of tasks) {
      const name = await readFile(`/proc/self/task/${tid}/comm`, 'utf8').catch(() => '');
      if (name.trim() === WORKER_NAME) workers.push(Number(tid));
    }
    if (workers.length === 0) return { skipped: `no ${WORKER_NAME} thread found` };
    for (const tid of workers) setPriority(tid, nice);
    return { threads: workers.length, nice };
  } catch (error) {
    return { skipped: error instanceof Error ? error.message : String(error) };
  }
}
