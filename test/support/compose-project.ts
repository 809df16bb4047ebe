import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeResult, runCommand, type CommandResult } from './commands';
import { ROOT } from './run-script';

/**
 * A compose project as a new user has it: a fresh copy of the repository (what git tracks, plus new
 * files not yet committed; no .env, no node_modules), a project name of its own, and an override that
 * only publishes nginx on ephemeral ports of 127.0.0.1. Every `docker compose` command runs in that copy
 * with COMPOSE_PROJECT_NAME and COMPOSE_FILE set, so the README's commands work there as written.
 */

export interface ProjectOptions {
  /** Extra compose files (YAML text), merged after the ports override. */
  overrides?: Record<string, string>;
  /** Variables for compose's interpolation (SERVER_NAME ...), as a user's shell would have them. */
  env?: Record<string, string>;
}

/** Variables of the test process that the docker CLI and compose need (engine address, plugin dir). */
const DOCKER_ENV = ['DOCKER_HOST', 'DOCKER_CONFIG', 'DOCKER_CERT_PATH', 'DOCKER_TLS_VERIFY'];

const PORTS_OVERRIDE = `# Test only: nginx on ephemeral ports of 127.0.0.1 instead of 80 and 443 on every interface.
services:
  nginx:
    ports: !override
      - '127.0.0.1::80'
      - '127.0.0.1::443'
`;

export class ComposeProject {
  readonly name: string;
  readonly dir: string;
  /** The app image this project builds: its own tag, so parallel runs never share or remove each other's. */
  readonly appImage: string;
  readonly env: Record<string, string>;

  constructor({ overrides = {}, env = {} }: ProjectOptions = {}) {
    const id = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    this.name = `compose-test-${id}`;
    this.appImage = `express-hardened-starter:test-${id}`;
    this.dir = mkdtempSync(path.join(os.tmpdir(), `${this.name}-`));
    copyWorkingTree(this.dir);
    const files = ['docker-compose.yml', 'test-ports.override.yml'];
    writeFileSync(path.join(this.dir, 'test-ports.override.yml'), PORTS_OVERRIDE);
    for (const [file, text] of Object.entries(overrides)) {
      writeFileSync(path.join(this.dir, file), text);
      files.push(file);
    }
    const passed = Object.fromEntries(
      DOCKER_ENV.filter((n) => process.env[n]).map((n) => [n, process.env[n]!]),
    );
    this.env = {
      ...passed,
      COMPOSE_PROJECT_NAME: this.name,
      COMPOSE_FILE: files.join(':'),
      APP_IMAGE: this.appImage,
      // A TLS-intercepting proxy between the build and the npm registry (as on the machines this test
      // was written on) needs its CA; TEST_BUILD_CA_FILE= (empty) builds without one.
      ...(buildCaFile() ? { BUILD_CA_FILE: buildCaFile()! } : {}),
      ...env,
    };
  }

  /** `docker compose ARGS` in the project's copy; resolves with the result whatever the exit code. */
  compose(
    args: string[],
    { timeoutMs = 120_000, env = {} }: { timeoutMs?: number; env?: Record<string, string> } = {},
  ) {
    trace(`docker compose ${args.join(' ')}`);
    return runCommand('docker', ['compose', ...args], {
      cwd: this.dir,
      env: { ...this.env, ...env },
      timeoutMs,
    });
  }

  /** Like compose(), but throws with the whole output when the command fails. */
  async mustCompose(
    args: string[],
    options?: { timeoutMs?: number; env?: Record<string, string> },
  ): Promise<string> {
    return succeeded(await this.compose(args, options), `docker compose ${args.join(' ')}`);
  }

  /** A shell command line in the project's copy, with the project's environment (README commands). */
  async shell(line: string, env: Record<string, string> = {}, timeoutMs = 120_000): Promise<CommandResult> {
    return runCommand('sh', ['-c', line], { cwd: this.dir, env: { ...this.env, ...env }, timeoutMs });
  }

  async docker(args: string[], timeoutMs = 60_000): Promise<string> {
    trace(`docker ${args.join(' ')}`);
    return succeeded(
      await runCommand('docker', args, { env: this.env, timeoutMs }),
      `docker ${args.join(' ')}`,
    );
  }

  /** The ids of the project's containers (stopped ones too), optionally of one service. */
  async containers(service?: string): Promise<string[]> {
    const filters = ['--filter', `label=com.docker.compose.project=${this.name}`];
    if (service) filters.push('--filter', `label=com.docker.compose.service=${service}`);
    return (await this.docker(['ps', '--all', '--quiet', '--no-trunc', ...filters]))
      .split('\n')
      .filter(Boolean);
  }

  /** `docker inspect` of one or more objects, parsed. */
  async inspect<T = DockerContainer>(ids: string[], kind = 'container'): Promise<T[]> {
    return JSON.parse(await this.docker([kind, 'inspect', ...ids])) as T[];
  }

  async container(service: string): Promise<DockerContainer> {
    const ids = await this.containers(service);
    if (ids.length !== 1) throw new Error(`${ids.length} containers for ${service}`);
    return (await this.inspect([ids[0]!]))[0]!;
  }

  /** The certificate nginx serves for `serverName` (PEM), read from its container. */
  nginxCertificate(serverName = 'localhost'): Promise<string> {
    return this.mustCompose([
      'exec',
      '-T',
      'nginx',
      'cat',
      `/etc/letsencrypt/live/${serverName}/fullchain.pem`,
    ]);
  }

  /** The host port nginx's container port is published on. */
  async port(service: string, containerPort: number): Promise<number> {
    const out = await this.mustCompose(['port', service, String(containerPort)]);
    const port = Number(/:(\d+)\s*$/.exec(out.trim())?.[1]);
    if (!port) throw new Error(`no published port for ${service}:${containerPort}: ${out}`);
    return port;
  }

  /** Polls until `check` resolves truthy; rejects with the last error after `timeoutMs`. */
  async until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        const value = await check();
        if (value) return value;
      } catch (error) {
        last = error;
      }
      if (Date.now() > deadline)
        throw new Error(`${what}: not within ${timeoutMs} ms (${String(last ?? 'no')})`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  /**
   * Everything gone: containers, networks, volumes and the app image; then the copy. When `down` fails,
   * whatever carries the project's label is removed directly, so a failed run leaves nothing behind.
   */
  async destroy(): Promise<void> {
    const down = await this.compose(['down', '--volumes', '--remove-orphans', '--timeout', '5'], {
      timeoutMs: 180_000,
    });
    if (down.code !== 0) {
      const label = `label=com.docker.compose.project=${this.name}`;
      const ids = async (kind: string[]) =>
        (await runCommand('docker', [...kind, '--quiet', '--filter', label], { env: this.env })).stdout
          .split('\n')
          .filter(Boolean);
      const remove = async (kind: string[], list: string[]) => {
        if (list.length > 0)
          await runCommand('docker', [...kind, ...list], { env: this.env, timeoutMs: 120_000 });
      };
      await remove(['rm', '--force', '--volumes'], await ids(['ps', '--all']));
      await remove(['network', 'rm'], await ids(['network', 'ls']));
      await remove(['volume', 'rm', '--force'], await ids(['volume', 'ls']));
    }
    await runCommand('docker', ['image', 'rm', '--force', this.appImage], { env: this.env });
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface DockerContainer {
  Id: string;
  Name: string;
  Path: string;
  Args: string[];
  State: {
    Status: string;
    Running: boolean;
    ExitCode: number;
    StartedAt: string;
    Health?: { Status: string };
  };
  RestartCount: number;
  Config: {
    Healthcheck?: { Test: string[] };
    User: string;
    Env: string[];
    Cmd: string[] | null;
    Entrypoint: string[] | null;
    Labels: Record<string, string>;
    Image: string;
  };
  HostConfig: {
    ReadonlyRootfs: boolean;
    CapDrop: string[] | null;
    CapAdd: string[] | null;
    SecurityOpt: string[] | null;
    PortBindings: Record<string, { HostIp: string; HostPort: string }[] | null> | null;
    RestartPolicy: { Name: string };
    Privileged: boolean;
  };
  Mounts: { Type: string; Name?: string; Source: string; Destination: string; RW: boolean }[];
  NetworkSettings: {
    Ports: Record<string, { HostIp: string; HostPort: string }[] | null> | null;
    Networks: Record<string, unknown>;
  };
}

/** COMPOSE_TEST_TRACE=1 prints every command as it starts: where a slow or stuck step is. */
const trace = (line: string) => {
  if (process.env.COMPOSE_TEST_TRACE === '1') process.stderr.write(`+ ${line}\n`);
};

export const serviceOf = (c: DockerContainer): string => c.Config.Labels['com.docker.compose.service']!;

function succeeded(result: CommandResult, what: string): string {
  if (result.code !== 0) throw new Error(`${what} failed: ${describeResult(result)}`);
  return result.stdout;
}

/** TEST_BUILD_CA_FILE, else the host's CA bundle when there is one (harmless where no proxy intercepts). */
function buildCaFile(): string | undefined {
  const given = process.env.TEST_BUILD_CA_FILE;
  if (given !== undefined) return given || undefined;
  const system = '/etc/ssl/certs/ca-certificates.crt';
  return existsSync(system) ? system : undefined;
}

/** What `git clone` of the working tree would give, plus files not yet committed (not ignored ones). */
function copyWorkingTree(target: string): void {
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], {
    cwd: ROOT,
    encoding: 'utf8',
  })
    .split('\0')
    .filter(Boolean);
  for (const file of files) {
    const from = path.join(ROOT, file);
    if (!existsSync(from)) continue; // deleted in the working tree
    mkdirSync(path.dirname(path.join(target, file)), { recursive: true });
    cpSync(from, path.join(target, file), { preserveTimestamps: true });
  }
}
