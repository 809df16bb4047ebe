import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createIsolatedDatabase } from '../support/databases';
import { envOf, execForm, parseDockerfile, type Instruction } from '../support/dockerfile';
import { runEnv, TEST_REDIS_URL } from '../support/env';
import { runCommand } from '../support/commands';
import { IGNORE_DOTENV, ROOT } from '../support/run-script';
import { killServers, startServer } from '../support/server-process';

/**
 * The Dockerfile's runtime stage, played natively: the same files copied, the same `npm ci`, the same
 * environment, command and health check, in a directory of its own. It proves that production needs no
 * dev dependency (no tsx, no typescript), that the built migrate, seed and server run from dist/, and
 * that the health check one-liner works. Only the base image itself is not exercised (no Docker here);
 * this machine is Debian with glibc, like the image, so the same argon2 binary is the one loaded.
 */

const dockerfile = parseDockerfile(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
const runtime = dockerfile.stages.find((s) => s.name === 'runtime')!;
const of = (keyword: string): Instruction[] => runtime.instructions.filter((i) => i.keyword === keyword);
const imageEnv = Object.assign({}, ...of('ENV').map((i) => envOf(i.args))) as Record<string, string>;

/** A command with exactly `env` (plus PATH, HOME and no `.env`), as the image's processes get. */
const run = (
  args: readonly string[],
  { cwd = ROOT, env, timeoutMs }: { cwd?: string; env: Record<string, string>; timeoutMs?: number },
) => runCommand(args[0]!, args.slice(1), { cwd, env: { ...IGNORE_DOTENV, ...env }, timeoutMs });

/** `node` in the image is this Node; so the exec-form commands run with it. */
const nodeArgs = (command: string[]): string[] =>
  command[0] === 'node' ? [process.execPath, ...command.slice(1)] : command;

describe('the runtime stage, run natively', () => {
  let app: string;
  let productionEnv: Record<string, string>;

  beforeAll(async () => {
    app = mkdtempSync(path.join(tmpdir(), 'runtime-stage-'));

    // COPY from the build context, as the runtime stage lists it.
    for (const copy of of('COPY').filter((i) => !i.args.startsWith('--from'))) {
      const parts = copy.args.split(/\s+/);
      const destination = parts.pop()!;
      for (const source of parts) {
        const target = destination.endsWith('/')
          ? path.join(app, destination, source)
          : path.join(app, destination);
        cpSync(path.join(ROOT, source), target, { recursive: true });
      }
    }
    // COPY --from=build /app/dist ./dist: the build stage's `npm run build`, into this directory.
    expect(of('COPY').find((i) => i.args.startsWith('--from'))!.args).toBe('--from=build /app/dist ./dist');
    const compiled = await run(
      [
        path.join(ROOT, 'node_modules/.bin/tsc'),
        '-p',
        'tsconfig.build.json',
        '--outDir',
        path.join(app, 'dist'),
      ],
      { cwd: ROOT, env: {}, timeoutMs: 60_000 },
    );
    expect(compiled).toMatchObject({ code: 0 });
    for (const folder of ['views', 'static']) {
      cpSync(path.join(ROOT, 'src/web', folder), path.join(app, 'dist/src/web', folder), { recursive: true });
    }

    // The stage's npm ci, word for word (without the cache cleaning that follows it in the image, which
    // here would empty the developer's own npm cache).
    const install = of('RUN')
      .flatMap((i) => i.args.split('&&'))
      .map((command) => command.trim())
      .find((command) => command.startsWith('npm ci'))!;
    // npm gets this machine's whole environment (registry, proxy and CA settings), then the image's.
    const npmEnv = { ...(process.env as Record<string, string>), ...imageEnv };
    const installed = await run(install.split(/\s+/), { cwd: app, env: npmEnv, timeoutMs: 90_000 });
    expect(installed).toMatchObject({ code: 0 });

    mkdirSync(path.join(app, 'secrets'));
    writeFileSync(
      path.join(app, 'secrets/session_secret'),
      'runtime-stage-session-secret-0123456789-abcdefghij\n',
    );
    writeFileSync(path.join(app, 'secrets/admin_password'), 'a runtime stage passphrase nobody guesses 7\n');
    const testRun = runEnv();
    productionEnv = {
      ...imageEnv,
      // Where the container would listen on 0.0.0.0:3000, the test listens on a free loopback port.
      HOST: '127.0.0.1',
      PORT: '0',
      PUBLIC_URL: 'https://app.example.test',
      TRUST_PROXY: '1',
      SESSION_SECRET_FILE: path.join(app, 'secrets/session_secret'),
      DATABASE_URL: await createIsolatedDatabase('runtime_stage', { migrate: false }),
      REDIS_URL: TEST_REDIS_URL,
      REDIS_KEY_PREFIX: `${testRun.keyPrefix}runtime:`,
      LOG_LEVEL: 'info',
    };
  }, 180_000);

  afterEach(() => killServers());
  afterAll(() => rmSync(app, { recursive: true, force: true }));

  test('when production dependencies are installed, then no dev dependency is there, and the glibc argon2 binary is', () => {
    expect(imageEnv.NODE_ENV).toBe('production');
    // The lockfile marks what only development needs (`dev`): none of it is installed, and everything
    // production needs (not dev, not an optional platform binary) is. (@types/pg and @types/node are
    // production dependencies of node-pg-migrate, so they are not `dev` even though we list them too.)
    const lock = JSON.parse(readFileSync(path.join(app, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; optional?: boolean; devOptional?: boolean }>;
    };
    const entries = Object.entries(lock.packages).filter(([key]) => key !== '');
    expect(entries.filter(([, meta]) => meta.dev).length).toBeGreaterThan(100);
    for (const [key, meta] of entries) {
      const installed = existsSync(path.join(app, key));
      if (meta.dev) expect({ key, installed }).toEqual({ key, installed: false });
      else if (!meta.optional && !meta.devOptional)
        expect({ key, installed }).toEqual({ key, installed: true });
    }
    for (const name of ['jest', 'typescript', 'tsx', 'eslint', '@swc/core', 'supertest', 'playwright-core']) {
      expect({ name, installed: existsSync(path.join(app, 'node_modules', name)) }).toEqual({
        name,
        installed: false,
      });
    }
    // Neither the TypeScript runner nor the compiler: production runs plain node on dist/.
    expect(existsSync(path.join(app, 'node_modules/.bin/tsx'))).toBe(false);
    expect(existsSync(path.join(app, 'node_modules/.bin/tsc'))).toBe(false);
    // @node-rs/argon2 picks its binary by libc: the glibc one (the image is Debian), not the musl one.
    const binary = `@node-rs/argon2-linux-${process.arch}-gnu`;
    expect(existsSync(path.join(app, 'node_modules', binary))).toBe(true);
    expect(existsSync(path.join(app, 'node_modules', `@node-rs/argon2-linux-${process.arch}-musl`))).toBe(
      false,
    );
  });

  test('when the built migrate and seed run against an empty database in production, then the tables and the first admin exist', async () => {
    const migrated = await run([process.execPath, 'dist/scripts/migrate.js'], {
      cwd: app,
      env: productionEnv,
    });
    expect(migrated).toMatchObject({ code: 0, stdout: expect.stringMatching(/applied 0001_create-users/) });

    const seeded = await run([process.execPath, 'dist/scripts/seed.js'], {
      cwd: app,
      env: {
        ...productionEnv,
        ADMIN_EMAIL: 'runtime-stage-admin@example.test',
        ADMIN_PASSWORD_FILE: path.join(app, 'secrets/admin_password'),
      },
    });
    expect(seeded).toMatchObject({ code: 0, stdout: expect.stringContaining('created admin') });
  });

  test('when the image`s command starts the server in production, then it is live and ready, the health check passes, and SIGTERM exits 0', async () => {
    const command = execForm(of('CMD')[0]!.args)!;
    expect(command).toEqual(['node', '--max-semi-space-size=16', 'dist/src/main.js']);
    const server = await startServer(productionEnv, 20_000, { args: command.slice(1), cwd: app });
    const base = `http://127.0.0.1:${server.port}`;

    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    // The server listens before its Redis client has connected (readiness says so meanwhile): on a
    // busy machine that takes a moment, so readiness is asked until it says ready, within 10 s.
    let ready = await fetch(`${base}/readyz`);
    for (const until = Date.now() + 10_000; ready.status !== 200 && Date.now() < until;) {
      await ready.body?.cancel();
      await new Promise((resolve) => setTimeout(resolve, 100));
      ready = await fetch(`${base}/readyz`);
    }
    expect({ status: ready.status, body: await ready.json() }).toMatchObject({
      status: 200,
      body: { checks: { database: 'ok', redis: 'ok' } },
    });
    // The templates and the stylesheet made it into dist/.
    const login = await fetch(`${base}/login`, { headers: { 'X-Forwarded-Proto': 'https' } });
    expect({ status: login.status, html: await login.text() }).toMatchObject({
      status: 200,
      html: expect.stringContaining('<form'),
    });
    expect((await fetch(`${base}/static/app.css`)).status).toBe(200);

    // The Dockerfile's HEALTHCHECK command, as Docker would run it inside the container.
    const healthcheck = /CMD\s+(.*)$/s.exec(of('HEALTHCHECK')[0]!.args)![1]!;
    const check = await run(nodeArgs(execForm(healthcheck)!), {
      cwd: app,
      env: { PORT: String(server.port) },
    });
    expect(check).toMatchObject({ code: 0 });

    server.child.kill('SIGTERM');
    expect(await server.waitForExit(15_000)).toEqual({ code: 0, signal: null });

    // ...and it fails once nothing answers, so a dead app turns unhealthy.
    const dead = await run(nodeArgs(execForm(healthcheck)!), {
      cwd: app,
      env: { PORT: String(server.port) },
    });
    expect(dead.code).not.toBe(0);
    // Start (20 s), readiness (10 s) and exit (15 s) each have a deadline of their own.
  }, 60_000);
});
