import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as prettier from 'prettier';
import { FLOOD_CONNECTIONS, FLOOD_S } from './flood';
import { HEADROOM_FACTOR } from './headroom';
import { MEMORY_READS, SETTLED_GROWTH } from './memory';
import type { Report, Row } from './summary';

const integer = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => n.toFixed(n < 10 ? 2 : 1);
/** Two decimals, or two significant digits below 0.1 (a login is a few thousandths of a hello). */
const ratio = (n: number) => (Number.isFinite(n) ? `${n < 0.1 ? n.toPrecision(2) : n.toFixed(2)}×` : '–');
/** Counts are exact for most rows; a fraction means the work varies between requests. */
const count = (n: number) => String(Math.round(n * 100) / 100);
const percent = (n: number | undefined) => (n === undefined ? '–' : `${Math.round(n * 100)} %`);

function mainTable(rows: Row[]): string {
  const lines = [
    '| Case | req/s | p50 ms | p99 ms | × bare Express | × naive | Redis cmds/req | Redis round trips/req | SQL/req |',
    '| --- | --: | --: | --: | --: | --: | --: | --: | --: |',
  ];
  for (const r of rows) {
    const rps = r.ok ? integer(r.requestsPerS) : `**failed** (${integer(r.requestsPerS)})`;
    lines.push(
      `| ${r.label} | ${rps} | ${ms(r.latencyMs.p50)} | ${ms(r.latencyMs.p99)} | ${ratio(r.vsBareExpress)} | ` +
        `${ratio(r.vsNaive)} | ${count(r.work.redisCommands)} | ${count(r.work.redisRoundTrips)} | ` +
        `${count(r.work.sqlStatements)} |`,
    );
  }
  return lines.join('\n');
}

/** `{ get: 1, eval: 1 }` as `eval 1, get 1`. */
const calls = (byName: Record<string, number>) =>
  Object.entries(byName)
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, n]) => `${name.replaceAll('|', '\\|')} ${count(n)}`)
    .join(', ') || '–';

function detailTable(rows: Row[]): string {
  const lines = [
    '| Case | Redis commands sent/req | Redis executed/req (with what scripts ran) | SQL round trips/req | req/s spread | server CPU | wrk CPU |',
    '| --- | --- | --- | --: | --: | --: | --: |',
  ];
  for (const r of rows) {
    const w = r.work;
    lines.push(
      `| ${r.label} | ${calls(w.redisSent)} | ${count(w.redisExecutedTotal)}: ${calls(w.redisExecuted)} | ` +
        `${count(w.sqlRoundTrips)} | ${percent(r.spread)} | ${percent(r.serverCpuBusy)} | ${percent(r.wrkCpuBusy)} |`,
    );
  }
  return lines.join('\n');
}

/** Where the CPU went while the reads ran under the flood, or nothing where /proc cannot tell. */
function cpuSentence(f: Report['flood']): string {
  const cpus = Object.entries(f.cpu.cpus);
  if (cpus.length === 0) return '';
  const busy = cpus.map(([cpu, share]) => `${cpu} ${percent(share)}`).join(', ');
  const s = f.cpu.server;
  return (
    `While the reads ran the CPUs were busy: ${busy}; the server's event loop used ${percent(s.main)} of a ` +
    `core, its thread pool (argon2) ${percent(s.pool)}, its other threads (V8) ${percent(s.other)}; ` +
    `wrk used ${f.wrkCpuS.flood.toFixed(1)} CPU s for the flood and ${f.wrkCpuS.reads.toFixed(1)} for the reads.`
  );
}

function floodSection(report: Report): string {
  const f = report.flood;
  const statuses = Object.entries(f.login.statuses)
    .map(([status, n]) => `${integer(n)}× ${status}`)
    .join(', ');
  const targets = f.targets.map(
    (t) => `| ${t.name} | ${t.figure || '–'} | ${t.met ? 'met' : '**not met**'} |`,
  );
  return [
    `**Under a login flood**: ${FLOOD_CONNECTIONS} connections of wrong passwords for ${FLOOD_S} s, each ` +
      `request from a new address through the trusted proxy header; meanwhile signed-in \`GET /api/auth/me\` ` +
      `at full speed and \`/healthz\` probed one request at a time. Login: ${integer(f.login.requestsPerS)} ` +
      `req/s (${statuses}), p50 ${ms(f.login.p50Ms)} ms. Reads: ${integer(f.reads.requestsPerS)} req/s ` +
      `against ${integer(f.reads.unloadedRequestsPerS)} unloaded. \`/healthz\`: ${f.healthz.probes} probes, ` +
      `p50 ${ms(f.healthz.p50Ms)} ms, max ${ms(f.healthz.maxMs)} ms. RSS ${Math.round(f.rssMb.before)} MB ` +
      `before, ${Math.round(f.rssMb.max)} MB at most. ${cpuSentence(f)}`,
    ['| Target | Figure | |', '| --- | --: | --- |', ...targets].join('\n'),
  ].join('\n\n');
}

function memorySection(report: Report): string {
  const m = report.memory;
  const last = m.samples.at(-1)!;
  const mb = (n: number) => `${Math.round(n)} MB`;
  const growth = (n: number) => `${n >= 0 ? '+' : ''}${(n * 100).toFixed(1)} %`;
  const anonymous = last.rssMb - last.rssFileMb - last.heapTotalMb - last.externalMb;
  const limit = report.memoryLimit.applied
    ? `under the ${report.memoryLimit.mb} MB the compose file gives the app, from which V8 set a heap limit of ` +
      `${mb(last.heapLimitMb)}`
    : `without a memory limit, so V8 set a heap limit of ${mb(last.heapLimitMb)} from the whole machine`;
  return (
    `**Memory**: ${integer(m.reads)} signed-in reads (${MEMORY_READS.toLocaleString('en-US')} asked), ` +
    `${limit}; sampled after a full collection before and after each run of load: RSS ` +
    `${mb(m.samples[0]!.rssMb)} → ${mb(last.rssMb)}, live heap ${mb(m.samples[0]!.heapUsedMb)} → ` +
    `${mb(last.heapUsedMb)}; over the second half RSS ${growth(m.growth.rss)}, heap ` +
    `${growth(m.growth.heapUsed)} (${m.settled ? 'settled' : '**not settled**'}: under ` +
    `${SETTLED_GROWTH * 100} % wanted). Of the last RSS: ${mb(last.heapTotalMb)} is the V8 heap V8 keeps ` +
    `committed (${mb(last.heapUsedMb)} of it live), ${mb(last.rssFileMb)} the code of node and its native ` +
    `addons (mapped files), ${mb(last.externalMb)} buffers outside the heap, and ${mb(anonymous)} other ` +
    `native memory (the allocator's arenas, thread stacks, V8's own tables). argon2 adds 19 MiB per hash ` +
    `in progress while it runs, which the flood's figure above includes. Without a limit V8 lets the heap ` +
    `grow toward a limit sized from the machine's RAM and keeps hundreds of MB of pages committed between ` +
    `collections: that, not the app, is what a large RSS shows on a big machine.`
  );
}

/** The part the README shows: the table, the verdict on the load generator, the machine. */
export function summaryMarkdown(report: Report): string {
  const { machine: m, headroom: h, settings: s } = report;
  const verdict = h.ok
    ? `Load generator: wrk used at most ${percent(h.wrkBusiest)} of its core in any run; bare \`node:http\` ` +
      `answered ${integer(h.bareHttpRequestsPerS)} req/s with its server at ${percent(h.bareServerCpuBusy)} of ` +
      `its core, ${h.factor.toFixed(1)}× the best row through a middleware stack (at least ${h.required}× ` +
      `wanted): the servers' cores, not wrk, set these figures.`
    : `**Warning: these figures may not be the servers' own:** ${h.doubts.join('; ')}.`;
  const connections = [...new Set(report.rows.map((r) => r.connections))].sort((a, b) => b - a);
  return [
    `Each row: ${s.rounds === 1 ? 'one run' : `the median of ${s.rounds} runs`} of ${s.durationS} s (after a ${s.warmupS} s warm-up), wrk with ` +
      `one thread and ${connections.join(' or ')} connections; ratios against bare Express and the naive ` +
      `assembly measured in the same run (${report.generatedAt.slice(0, 10)}).`,
    mainTable(report.rows),
    verdict,
    floodSection(report),
    memorySection(report),
    `Machine: ${m.cpuModel}, ${m.logicalCpus} logical CPUs, ${m.memoryGiB} GiB, ${m.os}; Node ${m.node}, ` +
      `Express ${m.express}, Redis ${m.redis}, PostgreSQL ${m.postgres}; ${m.loadGenerator}; ${m.pinning}.`,
  ].join('\n\n');
}

const METHOD = `## How it is measured

- **req/s, p50, p99**: wrk (C, one thread) against each server for a fixed time over keep-alive
  connections, answers tallied by status in a Lua script (\`bench/wrk/report.lua\`). A row fails if
  any answer has another status than the case expects or a socket error occurs. wrk keeps a fixed number
  of requests in flight, so its latencies are those of a saturated server, not of an open arrival rate.
- **The app** runs as it ships: compiled by \`tsc\` like \`npm run build\`, \`node dist/src/main.js\` with the image's flags,
  \`NODE_ENV=production\`, https behind one trusted proxy (\`X-Forwarded-Proto\`, \`X-Forwarded-For\`),
  logs at \`info\` to a file. The limits are raised so nothing is refused, but every limiter still counts.
  Its user cache is on, as by default (ADR 0044): a signed-in read's user comes from memory in the steady
  state, and the first read of a user after a change of it (or after \`USER_CACHE_TTL_S\`, 60 s) runs the
  one SQL lookup the naive assembly runs on every request.
- **The naive assembly** (\`bench/servers/naive.ts\`): helmet, \`express.json\`, pino-http to a file, a
  rate-limiter-flexible Redis limiter, express-session with connect-redis, one \`pg\` SELECT by id.
- **Redis cmds/req**: 200 requests (40 for login) sent one after the other to a second instance of the
  same server, which reaches Redis through a TCP proxy that reads the commands off the wire: an EVAL is
  one command, MULTI and EXEC are one each. The details also give what Redis executed (\`INFO
  commandstats\` of a redis-server of the run's own, so nothing else is counted), scripts' commands
  included.
- **Redis round trips/req**: the same proxy counts turns of the conversation: the client writes, then
  waits for the server. Commands written together (a pipeline, MULTI/EXEC, one EVAL) are one round
  trip; each command awaited before the next is one more.
- **SQL/req**: the same instance reaches Postgres through such a proxy, which reads the protocol and
  counts Query and Execute messages: one per statement run (BEGIN and COMMIT included).
- **Load generator check**: wrk must stay below 90 % of its core in every run; bare \`node:http\` must
  answer at least ${HEADROOM_FACTOR}× the best row that goes through a middleware stack (\`/healthz\`, answered before the
  stack and meant to come close to bare Express, is left to the CPU check); the bare server must keep its
  core at least 90 % busy, or something else ran on it. Any miss prints a warning at the top.
- **Login flood**: wrk (on the load CPU) sends wrong passwords for the bench's account over
  ${FLOOD_CONNECTIONS} connections for ${FLOOD_S} s, each request with a new \`X-Forwarded-For\`; after 2 s
  a second wrk reads \`/api/auth/me\` signed in (20 connections) and the bench process probes
  \`/healthz\` one request at a time every 20 ms, both for the middle ${FLOOD_S - 4} s. A login may answer
  401 or 503 (\`service_busy\`); anything else, a failed probe or a socket error fails the run. RSS is
  read from \`/proc\` every 100 ms. The app's hashing limits are its defaults for the one CPU it has.
- **Memory**: the loaded app is started with \`--expose-gc\` and a preload
  (\`bench/servers/memory-probe.cjs\`) that, on SIGUSR2, runs a full collection and writes
  \`process.memoryUsage()\`; the bench asks for a sample before the reads and after each of ten runs.
  Settled means RSS and live heap grew less than ${SETTLED_GROWTH * 100} % from the sample at half the reads
  to the last.
- **Memory limit**: every server runs in a memory cgroup of its own with the app's \`mem_limit\` from
  \`docker-compose.yml\` (\`bench/memory-limit.ts\`), as in a container: V8 sizes its heap from that limit.
  Every Node server also gets the V8 flags of the image's \`CMD\` (the young generation's size, which
  the limit alone would shrink). Where no cgroup can be made (not root), the servers run without one
  and the report warns.
- **Redis** is the bench's own \`redis-server\`, pinned to the load CPU like wrk; Postgres is the
  machine's, not pinned.
- **server CPU / wrk CPU**: the share of one core the server used in its least busy round and wrk in its
  busiest (\`/proc\`, bash's \`times\`). A bare server near 100 % and wrk well below it mean the
  server's core, not the load generator, set the pace.
`;

export function fullMarkdown(report: Report): string {
  const warnings = report.warnings.map((w) => `> **Warning:** ${w}`).join('\n>\n');
  const failures = report.rows
    .filter((r) => !r.ok)
    .map((r) => `- ${r.label}: ${r.failures.join('; ')}`)
    .join('\n');
  return [
    '# Benchmark: latest run',
    'Written by `npm run bench` (`bench/run.ts`); the same data as JSON in `latest.json`.',
    warnings,
    summaryMarkdown(report),
    failures && `## Failed rows\n\n${failures}`,
    `## Details\n\n${detailTable(report.rows)}`,
    `Load average (1 min) at start ${report.loadAverage.start.toFixed(2)}, at end ${report.loadAverage.end.toFixed(2)}.`,
    METHOD,
  ]
    .filter(Boolean)
    .join('\n\n');
}

/** Writes latest.md and latest.json, formatted as the repository's Prettier settings want them. */
export async function writeReport(report: Report, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const write = async (name: string, text: string) => {
    const file = path.join(dir, name);
    const options = (await prettier.resolveConfig(file)) ?? {};
    const formatted = await prettier.format(text, { ...options, filepath: file });
    writeFileSync(file, formatted);
    return formatted;
  };
  await write('latest.json', JSON.stringify(report, null, 2));
  return write('latest.md', fullMarkdown(report));
}
