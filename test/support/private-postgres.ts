import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, chown, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runCommand, startBackground, describeResult } from './commands';
import { freePort } from './ports';

/** A Postgres server of the test's own, started from a fresh `initdb`; the shared server is never touched. */
export interface PrivatePostgres {
  port: number;
  /** A fast shutdown; resolves once the server is gone. */
  stop(): Promise<void>;
}

/**
 * Where the server programs are: `pg_config --bindir`, else the newest of Debian's and Ubuntu's
 * /usr/lib/postgresql/N/bin; undefined without a Postgres server installed.
 */
export function postgresBinDir(): string | undefined {
  const versions = existsSync(DEBIAN_LAYOUT)
    ? readdirSync(DEBIAN_LAYOUT)
        .filter((name) => /^\d+$/.test(name))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const candidates = [pgConfigBinDir(), ...versions.map((v) => path.join(DEBIAN_LAYOUT, v, 'bin'))];
  return candidates.find((dir) => dir !== undefined && existsSync(path.join(dir, 'initdb')));
}

const DEBIAN_LAYOUT = '/usr/lib/postgresql';

function pgConfigBinDir(): string | undefined {
  try {
    return execFileSync('pg_config', ['--bindir'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

/** Postgres refuses to run as root: as root, the server runs as the `postgres` user. */
const asServerUser = (command: string, args: string[]): [string, string[]] =>
  process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];

/**
 * Starts Postgres in `dir` (which it takes over: as root, `dir` is given to the postgres user) on a free
 * loopback port, with TLS only: pg_hba.conf has `hostssl` lines and no `host` one, so a plain
 * connection is refused too. Everyone may connect as `postgres` without a password (`trust`): the
 * test is about the server's certificate, not about logging in. With `clientCaFile`, the login is the
 * client certificate instead (`cert`), as in the compose stack (ADR 0035).
 */
export async function startTlsPostgres(
  dir: string,
  tls: { certFile: string; keyFile: string; clientCaFile?: string },
): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  if (bin === undefined) throw new Error('no Postgres server installed (pg_config --bindir)');
  const data = path.join(dir, 'data');
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
    for (const file of [dir, tls.certFile, tls.keyFile]) await chown(file, uid, gid);
  }
  // Postgres refuses a key that anyone else can read.
  await chmod(tls.keyFile, 0o600);

  const initdb = await runCommand(
    ...asServerUser(path.join(bin, 'initdb'), [
      ...['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8'],
      ...['--no-sync', '--no-instructions'],
    ]),
    { timeoutMs: 60_000 },
  );
  if (initdb.code !== 0) throw new Error(`initdb failed: ${describeResult(initdb)}`);
  // With clientCaFile, `cert` instead of `trust`: a client certificate from that CA whose CN is the role.
  const method = tls.clientCaFile === undefined ? 'trust' : 'cert';
  await writeFile(
    path.join(data, 'pg_hba.conf'),
    `hostssl all all 127.0.0.1/32 ${method}\nhostssl all all ::1/128 ${method}\n`,
  );
  const clientCa = tls.clientCaFile === undefined ? [] : ['-c', `ssl_ca_file=${tls.clientCaFile}`];

  const port = await freePort();
  const server = startBackground(
    ...asServerUser(path.join(bin, 'postgres'), [
      ...['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1'],
      ...['-c', 'unix_socket_directories=', '-c', 'fsync=off', '-c', 'ssl=on'],
      ...['-c', `ssl_cert_file=${tls.certFile}`, '-c', `ssl_key_file=${tls.keyFile}`],
      ...clientCa,
    ]),
  );
  try {
    await server.waitForOutput(/database system is ready to accept connections/, 30_000);
  } catch (error) {
    await server.stop(1000);
    throw error;
  }
  return {
    port,
    async stop() {
      // SIGTERM would wait for clients to leave; a test that failed may have left one.
      if (server.child.pid !== undefined) {
        try {
          process.kill(-server.child.pid, 'SIGINT');
        } catch {
          // Already gone.
        }
      }
      await server.stop(5000);
    },
  };
}
