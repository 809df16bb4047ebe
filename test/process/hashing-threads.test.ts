import { readdirSync, readFileSync } from 'node:fs';
import { killServers, serverEnv, startServer } from '../support/server-process';

/**
 * The threads argon2 runs on yield their core to the event loop (src/lib/thread-pool.ts): checked on a
 * real server process, in the kernel's own view of its threads (Linux /proc).
 */

/** The nice value of each thread of `pid` named `name` (field 19 of /proc/<pid>/task/<tid>/stat). */
function nicesOf(pid: number, name: string): number[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
    const dir = `/proc/${pid}/task/${tid}`;
    if (readFileSync(`${dir}/comm`, 'utf8').trim() !== name) return [];
    const stat = readFileSync(`${dir}/stat`, 'utf8');
    // The fields after the command name (in parentheses, which may hold spaces) start at field 3.
    return [Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19 - 3])];
  });
}

describe('the priority of the password hashing threads', () => {
  afterEach(killServers);

  test('when the server starts, then every libuv worker runs at nice 10 (HASH_THREAD_NICE) and the event loop at 0', async () => {
    const server = await startServer(serverEnv());
    const line = await server.waitForLog('password hashing threads deprioritized', 10_000);
    const pid = server.child.pid!;

    const workers = nicesOf(pid, 'libuv-worker');

    expect(line).toMatchObject({ nice: 10, threads: workers.length });
    // libuv's pool: UV_THREADPOOL_SIZE threads, 4 unless set.
    expect(workers).toEqual([10, 10, 10, 10]);
    expect(nicesOf(pid, 'MainThread')).toEqual([0]);
  });

  test('when HASH_THREAD_NICE is 0, then the threads keep the priority they started with', async () => {
    const server = await startServer(serverEnv({ HASH_THREAD_NICE: '0', UV_THREADPOOL_SIZE: '2' }));
    // Starts the pool if nothing has yet: a file read runs on it.
    readFileSync(`/proc/${server.child.pid!}/status`);
    await fetch(`http://127.0.0.1:${server.port}/readyz`);

    const workers = nicesOf(server.child.pid!, 'libuv-worker');

    expect(workers.every((nice) => nice === 0)).toBe(true);
    expect(server.logs.some((l) => String(l.msg).startsWith('password hashing threads'))).toBe(false);
  });
});
