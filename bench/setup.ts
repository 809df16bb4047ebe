import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { SignedIn, Target } from './cases';
import type { CountingProxy } from './counting-proxy';
import { MEMORY_PROBE_ARGS } from './memory';
import { composeMemoryLimitMb, createMemoryCgroup, imageNodeFlags, type MemoryCgroup } from './memory-limit';
import { freePort, run, startServer, stopAll, stopProcess, type Server } from './processes';

/** The account the bench signs in as, created by the app's own seed script. */
const USER = { email: 'bench@example.test', password: 'violet canyon 7741 ledger', name: 'Bench User' };
/**
 * The account the login cases sign in as, made by the first through the API: thousands of logins of
 * one account would otherwise end the reads' session (SESSION_MAX_PER_USER ends a user's oldest).
 */
const LOGIN_USER = {
  email: 'bench-login@example.test',
  password: 'amber harbor 5513 lantern',
  name: 'Bench Login',
};

/**
 * The app's production configuration: https behind one trusted proxy, a strong secret, logs at `info`
 * (one access line per request, as in production). The limits are raised so the bench's traffic is
 * never refused, yet every limiter still counts each request, so its cost is measured.
 */
export function productionEnv(databaseUrl: string, redisUrl: string): Record<string, string> {
  return {
    NODE_ENV: 'production',
    PUBLIC_URL: 'https://bench.example.test',
    TRUST_PROXY: '1',
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: 'bench:',
    SESSION_SECRET: randomBytes(32).toString('base64url'),
    LOG_LEVEL: 'info',
    RATE_LIMIT_PER_MINUTE: '1000000',
    LOGIN_MAX_CONSECUTIVE_FAILS: '1000',
    LOGIN_MAX_FAILS_PER_IP_PER_DAY: '100000',
    // The most a user may hold: the login cases' account stays below it for most of the run, so a login
    // costs what it costs a user under the limit (each still counts its sessions).
    SESSION_MAX_PER_USER: '1000',
  };
}

/** Migrations and the seeded user, with the built scripts, as the image's one-shot services run them. */
export function migrateAndSeed(appDir: string, env: Record<string, string>): void {
  run(process.execPath, ['dist/scripts/migrate.js'], { cwd: appDir, env });
  const seedEnv = { ...env, ADMIN_EMAIL: USER.email, ADMIN_PASSWORD: USER.password, ADMIN_NAME: USER.name };
  run(process.execPath, ['dist/scripts/seed.js'], { cwd: appDir, env: seedEnv });
}

export interface Fleet {
  /** The servers the load runs go to. */
  load: Record<Target, Server>;
  /** Where the counts go: the app and the naive assembly reach Redis and Postgres through the proxies. */
  counted: Record<Target, Server>;
  stopCounted(): Promise<void>;
  /** Where the loaded app writes its memory samples (bench/servers/memory-probe.cjs). */
  memoryFile: string;
  /** The memory each server may use (the app's compose limit), or why the limit could not be applied. */
  memoryLimit: { mb: number; applied: true } | { mb: number; applied: false; why: string };
  /** Removes the servers' cgroups, once the servers have exited. */
  removeCgroups(): void;
}

/**
 * Every server at once (idle ones cost nothing), each on the server CPU. The app and the naive assembly
 * run twice: direct for the load runs, through the counting proxies for the counts, so the proxies never
 * slow a measured run down. The same secret, Redis and database: a session from one is valid on the other.
 * Each server runs in a memory cgroup of its own with the app's compose limit and with the V8 flags of
 * the app's image (bench/memory-limit.ts), as each would run in a container of its own.
 */
export async function startFleet(options: {
  appDir: string;
  env: Record<string, string>;
  proxies: { redis: CountingProxy; postgres: CountingProxy };
  /** Where the loaded app writes a V8 CPU profile when it stops, if anywhere. */
  profileDir?: string;
}): Promise<Fleet> {
  const { appDir, env, proxies, profileDir } = options;
  const logs = path.join(appDir, 'logs');
  mkdirSync(logs, { recursive: true });
  const viaProxies = {
    REDIS_URL: `redis://127.0.0.1:${proxies.redis.port}`,
    DATABASE_URL: Object.assign(new URL(env.DATABASE_URL!), {
      port: String(proxies.postgres.port),
    }).toString(),
  };
  const flags = imageNodeFlags();
  const tsx = (file: string) => [...flags, '--import', 'tsx', `bench/servers/${file}`];
  const limitMb = composeMemoryLimitMb();
  const cgroups: MemoryCgroup[] = [];
  let unavailable: string | undefined;
  const start = async (name: string, args: string[], extra: Record<string, string>, cwd?: string) => {
    const logFile = path.join(logs, `${name}.log`);
    const serverEnv = { ...env, LOG_FILE: logFile, ...extra };
    const readyPath = name.startsWith('app') ? '/readyz' : '/';
    const cgroup = createMemoryCgroup(`bench-${process.pid}-${name}`, limitMb);
    if ('unavailable' in cgroup) unavailable = cgroup.unavailable;
    else cgroups.push(cgroup);
    const cgroupDir = 'dir' in cgroup ? cgroup.dir : undefined;
    const port = await freePort();
    return startServer({ name, args, env: serverEnv, port, logFile, readyPath, cwd, cgroupDir });
  };
  const app = (name: string, extra: Record<string, string> = {}, nodeArgs: string[] = []) =>
    start(name, [...flags, ...nodeArgs, 'dist/src/main.js'], extra, appDir);
  const memoryFile = path.join(logs, 'memory.json');

  const removeCgroups = () => {
    for (const cgroup of cgroups.splice(0)) cgroup.remove();
  };
  const starting = await Promise.allSettled([
    start('bare-http', tsx('bare-http.ts'), {}),
    start('bare-express', tsx('bare-express.ts'), {}),
    start('naive', tsx('naive.ts'), {}),
    start('naive-counted', tsx('naive.ts'), viaProxies),
    // The loaded app carries the memory probe (a SIGUSR2 listener); the counted one needs none.
    app('app', { BENCH_MEMORY_FILE: memoryFile }, [
      ...MEMORY_PROBE_ARGS,
      ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(profileDir)}`] : []),
    ]),
    app('app-counted', viaProxies),
  ]);
  const failed = starting.find((s) => s.status === 'rejected');
  if (failed) {
    // The caller has nothing to clean up yet: stop what did start and leave no cgroup behind.
    await stopAll();
    removeCgroups();
    throw failed.reason;
  }
  const [bareHttp, bareExpress, naive, naiveCounted, appLoad, appCounted] = starting.map(
    (s) => (s as PromiseFulfilledResult<Server>).value,
  ) as [Server, Server, Server, Server, Server, Server];
  return {
    load: { bareHttp, bareExpress, naive, app: appLoad },
    counted: { bareHttp, bareExpress, naive: naiveCounted, app: appCounted },
    memoryFile,
    memoryLimit: unavailable
      ? { mb: limitMb, applied: false, why: unavailable }
      : { mb: limitMb, applied: true },
    removeCgroups,
    stopCounted: async () => {
      await Promise.all([stopProcess(naiveCounted.child), stopProcess(appCounted.child)]);
    },
  };
}

/** Signs in once on each of the app and the naive assembly; the sessions serve every signed-in case. */
export async function signIn(fleet: Fleet, userId: string): Promise<SignedIn> {
  const login = await fetch(`${fleet.load.app.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Forwarded-Proto': 'https' },
    body: JSON.stringify({ email: USER.email, password: USER.password }),
  });
  const appCookie = login.headers.getSetCookie().find((c) => c.startsWith('__Host-sid='));
  if (login.status !== 200 || !appCookie) throw new Error(`app login answered ${login.status}`);

  const appSession = appCookie.split(';')[0]!;
  const created = await fetch(`${fleet.load.app.url}/api/users`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Forwarded-Proto': 'https', Cookie: appSession },
    body: JSON.stringify({ ...LOGIN_USER, role: 'user' }),
  });
  if (created.status !== 201) throw new Error(`creating the login cases' account answered ${created.status}`);

  const naive = await fetch(`${fleet.load.naive.url}/session`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ userId }),
  });
  const naiveCookie = naive.headers.getSetCookie().find((c) => c.startsWith('connect.sid='));
  if (naive.status !== 204 || !naiveCookie) throw new Error(`naive sign-in answered ${naive.status}`);

  return {
    appCookie: appSession,
    naiveCookie: naiveCookie.split(';')[0]!,
    userId,
    email: LOGIN_USER.email,
    password: LOGIN_USER.password,
  };
}

export const userEmail = USER.email;
