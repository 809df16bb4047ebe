import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { execForm, parseDockerfile } from '../test/support/dockerfile';
import { ROOT } from './processes';

/**
 * The memory the app is given where it ships: `mem_limit` of the app service in docker-compose.yml.
 *
 * Why the bench needs it: V8 sizes its heap from the memory the process may use (Node passes it the
 * cgroup's limit when there is one, else the machine's RAM). On this bench's 24 GiB machine, without a
 * limit, the heap may grow to 4 GB and V8 keeps hundreds of MB of heap pages committed between
 * collections: the RSS then shows V8's appetite, not the app's needs. Under the compose limit the heap
 * limit is about half of it and the same app, under the same load, stays far smaller. Measuring every
 * server under that limit measures them as they would run in production, all on equal terms.
 */
export function composeMemoryLimitMb(): number {
  const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as {
    services: { app: { mem_limit?: string } };
  };
  const limit = /^(\d+)([mg])$/i.exec(compose.services.app.mem_limit ?? '');
  if (!limit) throw new Error('docker-compose.yml: the app service has no mem_limit in m or g');
  return Number(limit[1]) * (limit[2]!.toLowerCase() === 'g' ? 1024 : 1);
}

/**
 * The V8 flags the image starts the app with (the runtime stage's CMD, between `node` and the script):
 * they size the young generation, which the memory limit alone would make tiny (ADR 0014). Every Node
 * server of the bench gets them, so the comparisons stay like with like.
 */
export function imageNodeFlags(): string[] {
  const dockerfile = parseDockerfile(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
  const runtime = dockerfile.stages.find((stage) => stage.name === 'runtime');
  const cmd = runtime?.instructions.filter((i) => i.keyword === 'CMD').at(-1);
  const command = cmd && execForm(cmd.args);
  const script = command?.indexOf('dist/src/main.js') ?? -1;
  if (!command || command[0] !== 'node' || script < 0) {
    throw new Error('Dockerfile: the runtime stage does not start node dist/src/main.js in exec form');
  }
  return command.slice(1, script);
}

export interface MemoryCgroup {
  /** The cgroup's directory: a process joins it by writing its pid to cgroup.procs. */
  dir: string;
  remove(): void;
}

const CGROUP_V1 = '/sys/fs/cgroup/memory';
const CGROUP_V2 = '/sys/fs/cgroup';

/**
 * A memory cgroup of `limitMb` (cgroup v1 or v2; needs root), or why there is none: the bench then
 * runs the servers without a limit and says so in its report.
 */
export function createMemoryCgroup(name: string, limitMb: number): MemoryCgroup | { unavailable: string } {
  const bytes = String(limitMb * 1024 * 1024);
  const v2 = existsSync(path.join(CGROUP_V2, 'cgroup.controllers'));
  const base = v2 ? CGROUP_V2 : CGROUP_V1;
  const dir = path.join(base, name);
  try {
    if (v2 && !readFileSync(path.join(base, 'cgroup.subtree_control'), 'utf8').includes('memory')) {
      return { unavailable: 'the cgroup v2 root does not delegate the memory controller' };
    }
    mkdirSync(dir);
    writeFileSync(path.join(dir, v2 ? 'memory.max' : 'memory.limit_in_bytes'), bytes);
  } catch (error) {
    return { unavailable: `no memory cgroup under ${base} (${(error as Error).message})` };
  }
  return {
    dir,
    // Possible once every process in it has exited.
    remove: () => rmdirSync(dir),
  };
}
