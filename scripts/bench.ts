import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import autocannon from 'autocannon';
import { Client, escapeIdentifier } from 'pg';
import { createClient } from 'redis';

/**
 * `npm run bench`: what each layer of the stack costs, as throughput ratios against a bare node:http
 * server measured in the same run on the same machine (absolute numbers mean little across machines).
 * Needs Postgres and Redis like the tests (TEST_DATABASE_URL, TEST_REDIS_URL); it creates and drops
 * a database of its own. With taskset available, servers run on CPU 1 and the load generator on CPU 0.
 */
const ROOT = path.resolve(__dirname, '..');
const SERVER_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const CONNECTIONS = 20;
const pinned = spawnSync('sh', ['-c', 'command -v taskset'], { stdio: 'ignore' }).status === 0;

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** Starts a server process (its output discarded) and resolves once `url` answers. */
async function startServer(args: string[], env: Record<string, string>, url: string): Promise<ChildProcess> {
  const command = pinned ? ['taskset', '-c', '1', ...args] : args;
  const child = spawn(command[0]!, command.slice(1), {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', DOTENV_PATH: '/dev/null', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let waited = 0; waited < 20_000; waited += 100) {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited with ${child.exitCode}`);
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return child;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`${args.join(' ')} did not answer ${url} within 20 s`);
}

async function measure(url: string, headers: Record<string, string> = {}): Promise<number> {
  const result = await autocannon({ url, connections: CONNECTIONS, duration: DURATION_S, headers });
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(`${url}: ${result.non2xx} non-2xx answers and ${result.errors} errors`);
  }
  return result.requests.average;
}

async function main(): Promise<void> {
  const database = `app_bench_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: SERVER_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${escapeIdentifier(database)}`);
  const databaseUrl = Object.assign(new URL(SERVER_URL), { pathname: `/${database}` }).toString();
  const servers: ChildProcess[] = [];
  const keyPrefix = `bench:${randomBytes(4).toString('hex')}:`;
  try {
    const tsx = path.join(ROOT, 'node_modules', '.bin', 'tsx');
    const appEnv = {
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PUBLIC_URL: 'https://bench.example.test',
      TRUST_PROXY: '1',
      DATABASE_URL: databaseUrl,
      REDIS_URL,
      REDIS_KEY_PREFIX: keyPrefix,
      SESSION_SECRET: randomBytes(32).toString('base64url'),
      LOG_LEVEL: 'info', // as in production: one access line per request
      RATE_LIMIT_PER_MINUTE: '1000000',
      ADMIN_EMAIL: 'bench@example.test',
      ADMIN_PASSWORD: 'violet canyon 7741 ledger',
    };
    for (const script of ['scripts/migrate.ts', 'scripts/seed.ts']) {
      const run = spawnSync(tsx, [script], { cwd: ROOT, env: { ...process.env, ...appEnv } });
      if (run.status !== 0) throw new Error(`${script} failed: ${run.stderr.toString()}`);
    }

    const [basePort, appPort] = [await freePort(), await freePort()];
    servers.push(
      await startServer(
        [
          process.execPath,
          '-e',
          "require('node:http').createServer((q, r) => r.end('{\"status\":\"ok\"}')).listen(Number(process.env.PORT), '127.0.0.1');",
        ],
        { PORT: String(basePort) },
        `http://127.0.0.1:${basePort}/`,
      ),
    );
    servers.push(
      await startServer(
        [process.execPath, '--import', 'tsx', 'src/main.ts'],
        { ...appEnv, PORT: String(appPort) },
        `http://127.0.0.1:${appPort}/healthz`,
      ),
    );
    const baseline = { port: basePort };
    const app = { port: appPort };

    const login = await fetch(`http://127.0.0.1:${app.port}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' },
      body: JSON.stringify({ email: appEnv.ADMIN_EMAIL, password: appEnv.ADMIN_PASSWORD }),
    });
    const cookie = login.headers.getSetCookie()[0]?.split(';')[0];
    if (!login.ok || !cookie) throw new Error(`login failed: ${login.status}`);
    const session = { cookie, 'x-forwarded-proto': 'https' };

    const cases: [string, string, Record<string, string>?][] = [
      ['node:http hello (baseline)', `http://127.0.0.1:${baseline.port}/`],
      ['app /healthz (headers, logging)', `http://127.0.0.1:${app.port}/healthz`],
      ['app /api/auth/me anonymous 401 (+ rate limit in Redis)', `http://127.0.0.1:${app.port}/api/auth/me`],
      [
        'app /api/auth/me signed in (+ session, index, user row)',
        `http://127.0.0.1:${app.port}/api/auth/me`,
        session,
      ],
    ];
    console.log(`${DURATION_S} s per case, ${CONNECTIONS} connections${pinned ? ', server on CPU 1' : ''}\n`);
    let base = 0;
    for (const [name, url, headers] of cases) {
      // The anonymous case answers 401 by design: count it as success for this measurement.
      const rps = name.includes('401')
        ? (await autocannon({ url, connections: CONNECTIONS, duration: DURATION_S })).requests.average
        : await measure(url, headers);
      base ||= rps;
      console.log(`${name.padEnd(58)} ${(rps / base).toFixed(3)} x baseline  (${Math.round(rps)} req/s)`);
    }
  } finally {
    for (const child of servers) {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    }
    await admin.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(database)} WITH (FORCE)`);
    await admin.end();
    const redis = await createClient({ url: REDIS_URL }).connect();
    for await (const keys of redis.scanIterator({ MATCH: `${keyPrefix}*`, COUNT: 500 })) {
      if (keys.length > 0) await redis.del(keys);
    }
    await redis.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
