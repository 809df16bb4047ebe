import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * What the compose test needs from the machine: a Docker engine and Compose v2. Used by run.ts (`npm run
 * test:compose`) and by standins/build.ts (`npm run compose:standins`).
 *
 * Where neither is there, a developer machine skips the test; CI (CI=true), or anyone who sets
 * TEST_COMPOSE_SETUP=1, gets them installed from Debian's packages: docker.io for the engine, and the
 * Compose v2 plugin from Debian trixie's docker-compose package, taken out of a trixie container
 * (Debian bookworm only has Compose v1).
 */

export const log = (message: string): void => void process.stderr.write(`compose-test: ${message}\n`);

/** A deadline that catches a hung install, pull or build (not a speed claim): 20 minutes. */
const COMMAND_DEADLINE = { timeout: 20 * 60_000, killSignal: 'SIGKILL' } as const;

/** A command's exit code and output; nothing is thrown. */
export function capture(file: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  const result = spawnSync(file, args, {
    encoding: 'utf8',
    env,
    maxBuffer: 64 * 1024 * 1024,
    ...COMMAND_DEADLINE,
  });
  return { code: result.status ?? -1, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

/** Runs a command with its output shown (long installs and builds); throws when it fails. */
export function show(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): void {
  const result = spawnSync(file, args, { stdio: ['ignore', 'inherit', 'inherit'], env, ...COMMAND_DEADLINE });
  if (result.status !== 0) throw new Error(`${file} ${args.join(' ')} failed (exit ${result.status})`);
}

export const onPath = (command: string): boolean =>
  capture('sh', ['-c', 'command -v "$1"', 'sh', command]).code === 0;

/** May this run install packages and start daemons? On CI, or when asked to. */
export const maySetUp = (): boolean => process.env.CI === 'true' || process.env.TEST_COMPOSE_SETUP === '1';

export function aptInstall(...packages: string[]): void {
  if (process.getuid?.() !== 0) throw new Error(`installing ${packages.join(', ')} needs root`);
  log(`installing ${packages.join(' ')} from Debian's packages`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  show('apt-get', ['update', '-qq'], env);
  show('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], env);
}

export interface Engine {
  /** True when this run started dockerd, and so must stop it. */
  startedHere: boolean;
  serverVersion: string;
  stop(): Promise<void>;
}

const engineVersion = (): string | undefined => {
  const info = capture('docker', ['info', '--format', '{{.ServerVersion}}']);
  return info.code === 0 && info.stdout.trim() ? info.stdout.trim() : undefined;
};

/**
 * The running engine, or one started here (dockerd in the background, its log in a file of its own),
 * or undefined when there is none and this run may not set one up.
 */
export async function ensureEngine(): Promise<Engine | undefined> {
  const running = onPath('docker') ? engineVersion() : undefined;
  if (running) return { startedHere: false, serverVersion: running, stop: async () => {} };
  if (!maySetUp()) return undefined;

  if (!onPath('dockerd') || !onPath('docker')) aptInstall('docker.io');
  const logFile = path.join(os.tmpdir(), `compose-test-dockerd-${process.pid}.log`);
  const out = openSync(logFile, 'a');
  log(`starting dockerd (log: ${logFile})`);
  const daemon = spawn('dockerd', ['--log-level=warn'], { detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  daemon.unref();
  let exited = false;
  daemon.on('exit', () => (exited = true));
  const deadline = Date.now() + 60_000;
  let version: string | undefined;
  while (!(version = engineVersion())) {
    if (exited || Date.now() > deadline) throw new Error(`dockerd did not start; see ${logFile}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return {
    startedHere: true,
    serverVersion: version,
    async stop() {
      if (exited || daemon.pid === undefined) return;
      log('stopping the dockerd this run started');
      const gone = new Promise((resolve) => daemon.once('exit', resolve));
      process.kill(daemon.pid, 'SIGTERM');
      const timer = setTimeout(() => daemon.pid && process.kill(daemon.pid, 'SIGKILL'), 30_000);
      await gone;
      clearTimeout(timer);
    },
  };
}

/** The oldest Compose the project's files need: `!override` in override files, `depends_on.restart`. */
export const MIN_COMPOSE = [2, 24] as const;

/** `docker compose`'s version, or undefined when the docker CLI has no compose plugin. */
export function composeVersion(): string | undefined {
  const result = capture('docker', ['compose', 'version', '--short']);
  return result.code === 0 ? result.stdout.trim().replace(/^v/, '') : undefined;
}

export function isRecentEnough(version: string): boolean {
  const [major = 0, minor = 0] = version.split(/[.-]/).map(Number);
  return major > MIN_COMPOSE[0] || (major === MIN_COMPOSE[0] && minor >= MIN_COMPOSE[1]);
}

/**
 * Makes `docker compose` work: Compose v2 as the docker CLI's plugin. When the CLI has none (or an
 * older one), the plugin is taken from Debian trixie's docker-compose package, installed in a container
 * of `trixieImage`, and put where the docker CLI looks for the user's plugins. Compose v1
 * (docker-compose 1.x, Python) is never used: it predates the Compose specification this project's file
 * is written for.
 */
export function ensureComposeV2(trixieImage: string): string {
  const current = composeVersion();
  if (current && isRecentEnough(current)) return current;
  if (current) log(`docker compose ${current} is older than ${MIN_COMPOSE.join('.')}`);
  const legacy = onPath('docker-compose') ? capture('docker-compose', ['version', '--short']) : undefined;
  if (legacy?.code === 0 && /^1\./.test(legacy.stdout.trim())) {
    log(
      `docker-compose ${legacy.stdout.trim()} is Compose v1, which this project does not support ` +
        '(no Compose specification, no depends_on conditions); installing Compose v2 instead',
    );
  }
  if (!maySetUp()) {
    throw new Error(
      `Compose v2.${MIN_COMPOSE[1]}+ is required (docker compose version); TEST_COMPOSE_SETUP=1 installs it`,
    );
  }
  const pluginDir = path.join(process.env.DOCKER_CONFIG ?? path.join(os.homedir(), '.docker'), 'cli-plugins');
  const out = mkdtempSync(path.join(os.tmpdir(), 'compose-plugin-'));
  try {
    log(`installing Compose v2 from Debian trixie's docker-compose package into ${pluginDir}`);
    show('docker', [
      'run',
      '--rm',
      '-v',
      `${out}:/out`,
      trixieImage,
      'sh',
      '-c',
      'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null ' +
        '&& cp /usr/libexec/docker/cli-plugins/docker-compose /out/',
    ]);
    mkdirSync(pluginDir, { recursive: true });
    copyFileSync(path.join(out, 'docker-compose'), path.join(pluginDir, 'docker-compose'));
    chmodSync(path.join(pluginDir, 'docker-compose'), 0o755);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  const installed = composeVersion();
  if (!installed || !isRecentEnough(installed)) throw new Error('Compose v2 could not be installed');
  return installed;
}

/** True when an image with this reference is in the engine's store. */
export const imageExists = (reference: string): boolean =>
  capture('docker', ['image', 'inspect', reference]).code === 0;

/**
 * The frame of a test runner that needs the engine (test/compose/run.ts, test/edge/run.ts): without one,
 * a developer machine skips `what` with one line and CI fails; with one, runs `body` and stops an engine
 * started here. Exits the process with the body's exit code.
 */
export function runWithEngine(what: string, body: (engine: Engine) => Promise<number>): void {
  const run = async (): Promise<number> => {
    const engine = await ensureEngine();
    if (!engine) {
      if (process.env.CI === 'true') throw new Error('no Docker engine answers, and none could be set up');
      process.stdout.write(
        `Skipping ${what}: no Docker engine answers \`docker info\` (start one, or run as root with TEST_COMPOSE_SETUP=1 to install and start it).\n`,
      );
      return 0;
    }
    try {
      return await body(engine);
    } finally {
      await engine.stop();
    }
  };
  run().then(
    (code) => process.exit(code),
    (error: Error) => {
      log(error.message);
      process.exit(1);
    },
  );
}
