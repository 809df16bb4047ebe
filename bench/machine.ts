import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AVAILABLE_CPUS, LOAD_CPU, PINNED, ROOT, SERVER_CPU } from './processes';

export interface Machine {
  cpuModel: string;
  logicalCpus: number;
  memoryGiB: number;
  os: string;
  node: string;
  express: string;
  redis: string;
  postgres: string;
  loadGenerator: string;
  pinning: string;
}

const packageVersion = (name: string): string =>
  (
    JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;

/** What a reader needs to compare a figure with one taken elsewhere. */
export function describeMachine(versions: { redis: string; postgres: string; wrk: string }): Machine {
  return {
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    // As the run started: the bench keeps itself on the load CPU afterwards.
    logicalCpus: AVAILABLE_CPUS,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    express: packageVersion('express'),
    redis: versions.redis,
    postgres: versions.postgres,
    loadGenerator: versions.wrk,
    pinning: PINNED
      ? `wrk on CPU ${LOAD_CPU}, each server on CPU ${SERVER_CPU} (taskset); the bench's Redis and its own process (the /healthz probe) on CPU ${LOAD_CPU}, Postgres not pinned`
      : 'none (fewer than 2 CPUs or no taskset): wrk and the server share the CPUs',
  };
}
