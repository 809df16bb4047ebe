import { execFile, spawnSync } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { LOAD_CPU, onCpu } from './processes';

const SCRIPT = path.join(__dirname, 'wrk', 'report.lua');

export interface LoadRequest {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  connections: number;
  /** A new X-Forwarded-For address per request, numbered from `clientOffset`. */
  uniqueClients?: boolean;
  clientOffset?: number;
}

export interface WrkResult {
  requests: number;
  durationUs: number;
  requestsPerS: number;
  latencyUs: { p50: number; p90: number; p99: number; max: number };
  /** Socket-level failures: a refused or reset connection, a timeout. */
  errors: { connect: number; read: number; write: number; timeout: number };
  /** Every answer, counted by status. */
  statuses: Record<string, number>;
  /** CPU seconds wrk itself used: near `durationUs`, it was the bottleneck. */
  cpuS: number;
}

/** The wrk version line, or a message saying how to get wrk. */
export function wrkVersion(): string {
  const probe = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  if (probe.error) {
    throw new Error(
      'npm run bench needs wrk, a load generator written in C (a Node one saturates before the app does).\n' +
        'Install it: apt-get install wrk (Debian, Ubuntu), brew install wrk (macOS), or build it from\n' +
        'https://github.com/wg/wrk.',
    );
  }
  return `${probe.stdout}${probe.stderr}`.split('\n')[0]!.replace(/\s+Copyright.*$/, '');
}

/** `0m1.234s`, as bash's `times` prints it, in seconds. */
const seconds = (time: string) => {
  const [, m, s] = /^(\d+)m([\d.]+)s$/.exec(time) ?? [];
  return Number(m) * 60 + Number(s);
};

/**
 * One wrk run on the load CPU: a single thread (one core), keep-alive connections, fixed duration. It runs
 * under bash so that `times` can report the CPU time wrk used (its user and system time as a child).
 */
export async function runWrk(load: LoadRequest, durationS: number): Promise<WrkResult> {
  const wrk = onCpu(LOAD_CPU, [
    'wrk',
    '--threads',
    '1',
    '--connections',
    String(load.connections),
    '--duration',
    `${durationS}s`,
    '--timeout',
    '10s',
    '--script',
    SCRIPT,
    load.url,
  ]);
  const script = '"$@"; status=$?; times; exit $status';
  const { stdout } = await promisify(execFile)('bash', ['-c', script, 'bash', ...wrk], {
    env: {
      PATH: process.env.PATH ?? '',
      BENCH_METHOD: load.method,
      BENCH_BODY: load.body ?? '',
      BENCH_HEADERS: Object.entries(load.headers)
        .map(([name, value]) => `${name}: ${value}`)
        .join('\n'),
      BENCH_UNIQUE_CLIENT: load.uniqueClients ? '1' : '0',
      BENCH_CLIENT_OFFSET: String(load.clientOffset ?? 0),
    },
    timeout: (durationS + 30) * 1000,
  });
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  if (!line) throw new Error(`wrk printed no result:\n${stdout}`);
  const result = JSON.parse(line.slice('BENCH_RESULT '.length)) as Omit<WrkResult, 'requestsPerS' | 'cpuS'>;
  const children = stdout.trim().split('\n').at(-1)!.split(/\s+/);
  return {
    ...result,
    requestsPerS: result.requests / (result.durationUs / 1e6),
    cpuS: seconds(children[0]!) + seconds(children[1]!),
  };
}
