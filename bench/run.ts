import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createClient } from 'redis';
import { benchCases, type Case } from './cases';
import { startCountingProxy } from './counting-proxy';
import { countWork, type WorkPerRequest } from './counts';
import { buildApp, createDatabase, startPrivateRedis, stopPrivateRedis } from './environment';
import { headroomOf } from './headroom';
import { FLOOD_CONNECTIONS, FLOOD_S, runFlood } from './flood';
import { describeMachine } from './machine';
import { MEMORY_READS, runMemory } from './memory';
import { SMOKE } from './mode';
import { cpuSeconds, LOAD_CPU, PINNED, run, stopAll } from './processes';
import { writeReport } from './report';
import { migrateAndSeed, productionEnv, signIn, startFleet, userEmail, type Fleet } from './setup';
import { median, summarize, type Report, type Round } from './summary';
import { runWrk, wrkVersion, type LoadRequest } from './wrk';

/**
 * `npm run bench`: req/s and latency of the app's main requests, next to bare node:http, bare Express
 * and a naive assembly of the same libraries, all measured in the same run on the same machine, and
 * the Redis and SQL work each request costs. Writes bench/results/latest.md and latest.json.
 * Needs wrk, Postgres (TEST_DATABASE_URL, as the tests) and redis-server (run privately).
 * Not under scripts/: everything there is compiled into the image (tsconfig.build.json, .dockerignore),
 * and a benchmark is a development tool. Its results sit beside it, where the next run overwrites them.
 */
const setting = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback);
  if (!(value > 0)) throw new Error(`${name} must be a positive number`);
  return value;
};
const DURATION_S = setting('BENCH_DURATION_S', SMOKE ? 2 : 5);
const ROUNDS = setting('BENCH_ROUNDS', SMOKE ? 1 : 3);
/**
 * Load before the measured rounds, per case: the app's JIT kept speeding its signed-in read up for
 * about 13 s of load (from ~3,000 to ~3,900 req/s), so with a 2 s warm-up the first round
 * measured code V8 had not optimized yet, more so for the app than for the smaller servers.
 */
const WARMUP_S = setting('BENCH_WARMUP_S', SMOKE ? 1 : 10);
const RESULTS = path.join(__dirname, 'results');
/**
 * `BENCH_ONLY=me,naive-read,flood` (case ids of bench/cases.ts, and `flood`): those and nothing else,
 * printed and not written to the results, a quick check while working on one figure. The flood needs
 * the unloaded signed-in read, so `flood` runs `me` too.
 */
const ONLY = process.env.BENCH_ONLY?.split(',').map((id) => id.trim());
/** `BENCH_PROFILE=dir`: the loaded app writes a V8 CPU profile there when it stops (node --cpu-prof). */
const PROFILE_DIR = process.env.BENCH_PROFILE;

/** What a smoke run needs and the machine lacks: wrk, and redis-server for the bench's private Redis. */
const missingTools = (): string[] =>
  ['wrk', 'redis-server'].filter((tool) => spawnSync(tool, ['--version'], { stdio: 'ignore' }).error);

/** The last lines of a log file, on the bench's output; nothing if there is none. */
function printTail(file: string, lines = 40): void {
  if (!existsSync(file)) return;
  const tail = readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines);
  say(`the last ${tail.length} lines of ${path.basename(file)}:`);
  process.stderr.write(`${tail.join('\n')}\n`);
}

const say = (line: string) => process.stderr.write(`bench: ${line}\n`);

/** The load of one case in one round; each round numbers its unique clients from a fresh offset. */
const loadOf = (c: Case, fleet: Fleet, round: number): LoadRequest => ({
  url: fleet.load[c.target].url + c.path,
  method: c.method,
  headers: c.headers,
  body: c.body,
  connections: c.connections,
  uniqueClients: c.uniqueClients,
  clientOffset: round * 500_000,
});

/** Below this 1-minute load average the machine counts as quiet (the report warns above it). */
const QUIET_LOAD = 0.5;
const QUIET_WAIT_S = 300;

/**
 * Waits, up to QUIET_WAIT_S, for the 1-minute load average to fall below QUIET_LOAD: right after a
 * build or a test run it takes a few minutes to decay, and a run started meanwhile shares the CPUs with
 * whatever ran. Returns the load average it starts with.
 */
async function waitForQuiet(): Promise<number> {
  const deadline = Date.now() + QUIET_WAIT_S * 1000;
  let load = os.loadavg()[0]!;
  if (load >= QUIET_LOAD) say(`waiting for a quiet machine (load average ${load.toFixed(2)})`);
  while (load >= QUIET_LOAD && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5000));
    load = os.loadavg()[0]!;
  }
  return load;
}

async function main(): Promise<number> {
  const missing = SMOKE ? missingTools() : [];
  if (missing.length > 0) {
    const message = `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not installed (apt-get install wrk redis-server)`;
    // As for every test that needs an outside program (test/support/tools.ts): CI installs them all.
    if (process.env.CI === 'true') throw new Error(`${message}: CI must provide it`);
    say(`skipping the bench's smoke run: ${message}`);
    return 0;
  }
  // The bench's own process probes /healthz and samples the server: it is load, so it keeps off the
  // server's CPU like wrk (every thread of it, -a; threads started later inherit the affinity).
  if (PINNED) run('taskset', ['-a', '-p', '-c', LOAD_CPU, String(process.pid)]);
  const wrk = wrkVersion();
  // A smoke run's figures are not read, so it does not wait for the machine to settle.
  const loadAtStart = SMOKE ? os.loadavg()[0]! : await waitForQuiet();
  const undo: (() => unknown)[] = [];
  /** Where the app's log is, once built; a failed smoke run prints its end before it is removed. */
  let appLog: string | undefined;
  let passed = false;
  try {
    // A smoke run's report is printed, and written only to a directory of its own, removed after it.
    const resultsDir = SMOKE ? mkdtempSync(path.join(os.tmpdir(), 'bench-smoke-')) : RESULTS;
    if (SMOKE) undo.push(() => rmSync(resultsDir, { recursive: true, force: true }));
    say('building the app with tsc');
    const build = buildApp();
    undo.push(build.remove);
    appLog = path.join(build.dir, 'logs', 'app.log');
    const redis = await startPrivateRedis();
    undo.push(() => stopPrivateRedis(redis));
    const db = await createDatabase();
    undo.push(db.drop);
    const env = productionEnv(db.url, redis.url);
    migrateAndSeed(build.dir, env);
    const { rows } = await db.client.query<{ id: string }>('SELECT id FROM users WHERE email = $1', [
      userEmail,
    ]);

    const postgres = new URL(db.url);
    const proxies = {
      redis: await startCountingProxy({ host: '127.0.0.1', port: Number(new URL(redis.url).port) }, 'redis'),
      postgres: await startCountingProxy(
        { host: postgres.hostname, port: Number(postgres.port || 5432) },
        'postgres',
      ),
    };
    undo.push(proxies.redis.close, proxies.postgres.close);
    say('starting the servers');
    const fleet = await startFleet({ appDir: build.dir, env, proxies, profileDir: PROFILE_DIR });
    undo.push(fleet.removeCgroups, stopAll);
    const admin = await createClient({ url: redis.url }).connect();
    undo.push(() => admin.close());
    const allCases = benchCases(await signIn(fleet, rows[0]!.id));
    const wanted = ONLY && new Set(ONLY.flatMap((id) => (id === 'flood' ? ['me'] : [id])));
    const unknown = ONLY?.filter((id) => id !== 'flood' && !allCases.some((c) => c.id === id)) ?? [];
    if (unknown.length > 0) throw new Error(`BENCH_ONLY: no case ${unknown.join(', ')}`);
    const cases = wanted ? allCases.filter((c) => wanted.has(c.id)) : allCases;

    say('counting Redis and SQL work per request');
    const work = new Map<string, WorkPerRequest>();
    for (const c of cases) {
      const counts = { redis: admin, redisProxy: proxies.redis, postgresProxy: proxies.postgres };
      work.set(c.id, await countWork(c, fleet.counted[c.target].url, counts));
    }
    await fleet.stopCounted();

    say(
      `warming up (${WARMUP_S} s per case), then ${ROUNDS} round${ROUNDS === 1 ? '' : 's'} of ${DURATION_S} s per case`,
    );
    for (const c of cases) await runWrk(loadOf(c, fleet, 0), WARMUP_S);
    const rounds = new Map<string, Round[]>(cases.map((c) => [c.id, []]));
    for (let round = 1; round <= ROUNDS; round++) {
      for (const c of cases) {
        const server = fleet.load[c.target].child;
        const before = cpuSeconds(server);
        const result = await runWrk(loadOf(c, fleet, round), DURATION_S);
        const after = cpuSeconds(server);
        const serverCpuS = before === undefined || after === undefined ? undefined : after - before;
        rounds.get(c.id)!.push({ ...result, serverCpuS });
        // The server's own CPU per request (all its threads): steadier than req/s between runs on a
        // shared machine, where Postgres and other processes take the server's CPU some of the time.
        const cpuUs =
          serverCpuS === undefined ? '' : `, ${Math.round((serverCpuS / result.requests) * 1e6)} µs CPU/req`;
        say(`round ${round} ${c.id}: ${Math.round(result.requestsPerS)} req/s${cpuUs}`);
      }
    }

    const caseOf = (id: string) => allCases.find((c) => c.id === id)!;
    const unloadedReadsPerS = median(rounds.get('me')!.map((r) => r.requestsPerS));
    const floodNow = () => {
      say(`login flood: ${FLOOD_CONNECTIONS} connections of wrong passwords for ${FLOOD_S} s`);
      return runFlood({
        server: fleet.load.app,
        loginFailure: caseOf('login-fail'),
        read: caseOf('me'),
        healthz: caseOf('healthz'),
        unloadedReadsPerS,
        clientOffset: (ROUNDS + 1) * 500_000,
      });
    };
    if (ONLY) {
      for (const c of cases) {
        const perS = median(rounds.get(c.id)!.map((r) => r.requestsPerS));
        process.stdout.write(`${c.id}: ${Math.round(perS)} req/s, ${JSON.stringify(work.get(c.id))}\n`);
      }
      if (!ONLY.includes('flood')) return 0;
      await runWrk(loadOf(caseOf('login-fail'), fleet, 0), WARMUP_S);
      const flood = await floodNow();
      process.stdout.write(`${JSON.stringify(flood, null, 2)}\n`);
      return flood.failures.length > 0 ? 1 : 0;
    }
    say(`memory: ${MEMORY_READS.toLocaleString('en-US')} signed-in reads, sampled along the way`);
    const memory = await runMemory({
      server: fleet.load.app,
      read: caseOf('me'),
      readsPerS: unloadedReadsPerS,
      memoryFile: fleet.memoryFile,
    });
    const flood = await floodNow();

    const summary = summarize(cases.map((c) => ({ c, work: work.get(c.id)!, rounds: rounds.get(c.id)! })));
    const headroom = headroomOf(summary);
    const loadAverage = { start: loadAtStart, end: os.loadavg()[0]! };
    const warnings: string[] = [];
    if (!PINNED)
      warnings.push('wrk and the servers were not pinned to separate CPUs: the figures are unreliable.');
    if (!fleet.memoryLimit.applied) {
      warnings.push(
        `the servers ran without the app's ${fleet.memoryLimit.mb} MB memory limit (${fleet.memoryLimit.why}): ` +
          'V8 sized its heap from the whole machine, so the RSS figures overstate what the app needs.',
      );
    }
    if (SMOKE)
      warnings.push(
        'a smoke run (npm run test:bench): seconds of load per case, figures not comparable with a full run.',
      );
    if (PROFILE_DIR)
      warnings.push(
        'the app ran with a CPU profiler attached (BENCH_PROFILE): its figures are lower than without.',
      );
    if (!headroom.ok)
      warnings.push(`these figures may not be the servers' own: ${headroom.doubts.join('; ')}.`);
    if (loadAverage.start >= QUIET_LOAD) {
      const load = loadAverage.start.toFixed(2);
      warnings.push(
        `the machine was not idle when the run started (load average ${load}): rerun on a quiet one.`,
      );
    }
    for (const [target, server] of Object.entries(fleet.load)) {
      if (server.child.exitCode !== null) warnings.push(`the ${target} server exited during the run.`);
    }
    const report: Report = {
      generatedAt: new Date().toISOString(),
      settings: { durationS: DURATION_S, rounds: ROUNDS, warmupS: WARMUP_S },
      machine: describeMachine({
        redis: (await admin.info('server')).match(/redis_version:(\S+)/)?.[1] ?? 'unknown',
        postgres: (await db.client.query<{ v: string }>("SELECT current_setting('server_version') AS v"))
          .rows[0]!.v,
        wrk,
      }),
      loadAverage,
      headroom,
      warnings,
      rows: summary,
      memoryLimit: { mb: fleet.memoryLimit.mb, applied: fleet.memoryLimit.applied },
      memory,
      flood,
    };
    process.stdout.write(await writeReport(report, resultsDir));
    const failed = summary.filter((r) => !r.ok);
    for (const row of failed) say(`FAILED ${row.label}: ${row.failures.join('; ')}`);
    for (const failure of flood.failures) say(`FAILED login flood: ${failure}`);
    if (!SMOKE) say(`wrote ${path.relative(process.cwd(), RESULTS)}/latest.md and latest.json`);
    passed = failed.length === 0 && flood.failures.length === 0;
    return passed ? 0 : 1;
  } finally {
    // CI keeps nothing of the run's directory: the app's own account of a failure goes to the output.
    if (SMOKE && !passed && appLog) printTail(appLog);
    for (const step of undo.reverse()) {
      await Promise.resolve()
        .then(step)
        .catch((error: unknown) => say(`cleanup: ${String(error)}`));
    }
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    say(error instanceof Error ? error.message : String(error));
    process.exit(1);
  },
);
