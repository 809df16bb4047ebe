import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, escapeIdentifier } from 'pg';
import { freePort, LOAD_CPU, onCpu, ROOT, run, stopProcess } from './processes';

/**
 * What the bench runs against: the app built as the image builds it, a Redis of its own, and a database
 * of its own on the shared Postgres. Each piece returns how to undo it.
 */

/**
 * `npm run build`'s steps into a directory of the bench's own (a shared dist/ may be in use), laid out
 * like the runtime image: dist/, migrations/ and package.json side by side, and the dependencies.
 */
export function buildApp(): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-app-'));
  // --noCheck: the same JavaScript, without the type check (`npm run typecheck` does that) and its minute.
  const tsc = path.join(ROOT, 'node_modules/.bin/tsc');
  run(tsc, ['-p', 'tsconfig.build.json', '--outDir', `${dir}/dist`, '--noCheck']);
  for (const folder of ['views', 'static']) {
    cpSync(path.join(ROOT, 'src/web', folder), path.join(dir, 'dist/src/web', folder), { recursive: true });
  }
  for (const entry of ['node_modules', 'migrations', 'package.json']) {
    symlinkSync(path.join(ROOT, entry), path.join(dir, entry));
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface PrivateRedis {
  url: string;
  child: ChildProcess;
}

/**
 * A redis-server of the bench's own: INFO commandstats then counts only the bench's servers (the
 * machine's Redis may serve others), and nothing needs cleaning afterwards. Nothing is kept on disk.
 */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  // On the load generator's CPU, not the servers': Redis's work would otherwise be counted against
  // whichever server's core the scheduler woke it on.
  const command = onCpu(LOAD_CPU, ['redis-server', ...args]);
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 10_000);
    child.once('error', (error) => reject(new Error(`cannot run redis-server: ${error.message}`)));
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code}):\n${output}`)));
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (!output.includes('Ready to accept connections')) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.stdout!.resume();
      resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  });
  return { url: `redis://127.0.0.1:${port}`, child };
}

export const stopPrivateRedis = (redis: PrivateRedis) => stopProcess(redis.child);

export interface BenchDatabase {
  url: string;
  /** A connection to it, for the bench's own reads (a user's id, the server version). */
  client: Client;
  drop(): Promise<void>;
}

/** A fresh database on the shared server (TEST_DATABASE_URL, as the tests), dropped at the end. */
export async function createDatabase(): Promise<BenchDatabase> {
  const serverUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `app_bench_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${escapeIdentifier(name)}`);
  const url = Object.assign(new URL(serverUrl), { pathname: `/${name}` }).toString();
  const client = new Client({ connectionString: url });
  await client.connect();
  return {
    url,
    client,
    async drop() {
      await client.end().catch(() => {});
      await admin.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(name)} WITH (FORCE)`);
      await admin.end();
    },
  };
}
