import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import {
  envOf,
  execForm,
  isIgnored,
  parseDockerfile,
  parseDockerignore,
  type Instruction,
  type Stage,
} from '../support/dockerfile';
import { ROOT } from '../support/run-script';

/**
 * The Dockerfile and .dockerignore, read as Docker reads them: there is no Docker engine in CI, so the
 * image is correct by construction and these tests hold it there. test/deploy/runtime-stage.test.ts
 * runs the runtime stage's steps natively.
 */

const dockerfileText = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const dockerfile = parseDockerfile(dockerfileText);
const ignore = parseDockerignore(readFileSync(path.join(ROOT, '.dockerignore'), 'utf8'));

function stage(name: string): Stage {
  const found = dockerfile.stages.find((s) => s.name === name);
  if (!found) throw new Error(`no stage named ${name}`);
  return found;
}

const runtime = stage('runtime');
const of = (s: Stage, keyword: string): Instruction[] => s.instructions.filter((i) => i.keyword === keyword);

/** Every file under a folder of the repository, relative to the root. */
function filesUnder(relative: string): string[] {
  const absolute = path.join(ROOT, relative);
  if (statSync(absolute).isFile()) return [relative];
  return readdirSync(absolute, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(ROOT, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'));
}

describe('Dockerfile stages and base images', () => {
  test('when the stages are listed, then they are install, build and runtime, the runtime last', () => {
    expect(dockerfile.stages.map((s) => s.name)).toEqual(['install', 'build', 'runtime']);
    expect(stage('build').base).toBe('install');
  });

  test('when the base images are read, then each is one exact release, never latest or a floating tag', () => {
    const external = dockerfile.stages
      .map((s) => s.base)
      .filter((base) => base !== 'install' && base !== 'build');
    expect(external.length).toBeGreaterThan(0);
    for (const base of external) {
      expect(base).not.toMatch(/:latest\b/);
      // name:MAJOR.MINOR.PATCH-variant, optionally @sha256:<64 hex>
      expect(base).toMatch(/^[a-z0-9/._-]+:\d+\.\d+\.\d+(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?$/);
    }
  });

  test('when the runtime base is read, then it is Node 24 on a Debian slim image (glibc, like the machine the tests prove argon2 on)', () => {
    expect(runtime.base).toMatch(/^node:24\.\d+\.\d+-(bookworm|trixie)-slim(@sha256:[0-9a-f]{64})?$/);
    // Every stage builds on the same Node: the native modules installed are the ones that run.
    expect(stage('install').base).toBe(runtime.base);
  });

  test('when the comments are read, then they say how to pin the base image by digest', () => {
    const comments = dockerfile.comments.join('\n');
    expect(comments).toMatch(/@sha256:/);
    expect(comments).toMatch(/docker buildx imagetools inspect node:/);
  });
});

describe('Dockerfile runtime stage', () => {
  test('when dependencies are installed, then it is npm ci of production dependencies only, with no install scripts', () => {
    const runs = of(runtime, 'RUN').map((i) => i.args);
    const install = runs.filter((r) => /\bnpm\b/.test(r));
    expect(install).toHaveLength(1);
    expect(install[0]).toMatch(/&& npm ci --omit=dev --ignore-scripts\b/);
    expect(runs.join('\n')).not.toMatch(/npm (install|i)\b/);
  });

  test('when npm runs, then an extra CA comes only from the optional build secret, and only when one was given', () => {
    // The secret mount leaves nothing in a layer; without the secret the file is absent and nothing
    // changes. No `# syntax=` line: it would make BuildKit fetch a frontend image from a registry.
    const npmRuns = dockerfile.stages.flatMap((s) => of(s, 'RUN')).filter((i) => /\bnpm ci\b/.test(i.args));
    expect(npmRuns).toHaveLength(2);
    for (const run of npmRuns) {
      expect(run.args).toMatch(
        /^--mount=type=secret,id=build_ca,required=false if \[ -s \/run\/secrets\/build_ca \]; then export NODE_EXTRA_CA_CERTS=\/run\/secrets\/build_ca; fi && npm ci /,
      );
    }
    expect(dockerfileText).not.toMatch(/^#\s*syntax=/m);
  });

  test('when the environment is read, then NODE_ENV is production and the app listens on every interface of the container', () => {
    const env = Object.assign({}, ...of(runtime, 'ENV').map((i) => envOf(i.args))) as Record<string, string>;
    expect(env).toMatchObject({ NODE_ENV: 'production', HOST: '0.0.0.0' });
  });

  test('when the files are copied, then only the manifests, the migrations and the built dist go in', () => {
    const copies = of(runtime, 'COPY').map((i) => i.args);
    expect(copies).toEqual([
      'package.json package-lock.json ./',
      'migrations ./migrations',
      '--from=build /app/dist ./dist',
    ]);
    expect(of(runtime, 'ADD')).toHaveLength(0);
  });

  test('when the build runs, then dist gets the templates and the stylesheet too (npm run build copies them)', () => {
    expect(of(stage('build'), 'RUN').map((i) => i.args)).toContain('npm run build');
    const build = (
      JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts.build!;
    expect(build).toMatch(/cp -r src\/web\/views src\/web\/static dist\/src\/web\//);
  });

  test('when the process starts, then it runs as the image`s node user, after every step that needs root', () => {
    const users = of(runtime, 'USER');
    expect(users.map((u) => u.args)).toEqual(['node']);
    const lastRootStep = Math.max(
      ...runtime.instructions.filter((i) => ['RUN', 'COPY'].includes(i.keyword)).map((i) => i.line),
    );
    expect(users[0]!.line).toBeGreaterThan(lastRootStep);
  });

  test('when the command is read, then it is the exec form of node dist/src/main.js (node gets SIGTERM itself), with the young generation sized as npm start sizes it', () => {
    const cmds = of(runtime, 'CMD');
    const { scripts } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(cmds).toHaveLength(1);
    const command = execForm(cmds[0]!.args);
    expect(command).toEqual(['node', '--max-semi-space-size=16', 'dist/src/main.js']);
    expect(of(runtime, 'ENTRYPOINT')).toHaveLength(0);
    // One way to start the server: the image and `npm start` cannot drift apart.
    expect(scripts.start).toBe(command!.join(' '));
  });

  test('when the health check is read, then it fetches /healthz with node and a deadline, needing no curl or wget', () => {
    const checks = of(runtime, 'HEALTHCHECK');
    expect(checks).toHaveLength(1);
    const match = /^((?:--[a-z-]+=\S+\s+)*)CMD\s+(.*)$/s.exec(checks[0]!.args);
    expect(match).not.toBeNull();
    const command = execForm(match![2]!);
    expect(command?.slice(0, 2)).toEqual(['node', '-e']);
    expect(command![2]).toMatch(/fetch\('http:\/\/127\.0\.0\.1:.*\/healthz'/);
    expect(command![2]).toMatch(/AbortSignal\.timeout\(\d+\)/);
    expect(match![1]).toMatch(/--timeout=\d+s/);
    expect(checks[0]!.args).not.toMatch(/curl|wget/);
  });

  test('when every instruction is read, then no secret is baked in (no secret-looking ENV or ARG, no .env copied)', () => {
    for (const s of dockerfile.stages) {
      for (const i of s.instructions.filter((x) => x.keyword === 'ENV' || x.keyword === 'ARG')) {
        expect(i.args).not.toMatch(/SECRET|PASSWORD|TOKEN|PRIVATE|_KEY\b|DATABASE_URL|REDIS_URL/i);
      }
      for (const i of s.instructions.filter((x) => x.keyword === 'COPY')) {
        expect(i.args).not.toMatch(/\.env|\.git\b|^\.\s/);
      }
    }
  });
});

describe('.dockerignore', () => {
  // ASVS 5.0 13.4.1: no .git in the image.
  test('when the build context is assembled, then the git history, secrets, dependencies, builds and tests stay out', () => {
    for (const file of [
      '.git/HEAD',
      '.git/config',
      '.env',
      '.env.production',
      '.env.example',
      'src/.env',
      'config/.env.local',
      'node_modules/express/package.json',
      'src/node_modules/x/index.js',
      'dist/src/main.js',
      'coverage/lcov.info',
      'test/auth/login.test.ts',
      'test/support/test-app.ts',
      'docs/deploy.md',
      'docker-compose.yml',
      'nginx/templates/default.conf.template',
      'scripts/init-letsencrypt.sh',
      'src/tls/server.key',
      'config/cert.pem',
      'backup.sql',
    ]) {
      expect({ file, ignored: isIgnored(ignore, file) }).toEqual({ file, ignored: true });
    }
  });

  test('when the Dockerfile copies from the context, then every file it names is in the context', () => {
    const sources = dockerfile.stages
      .flatMap((s) => s.instructions)
      .filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from'))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(sources).toEqual(
      expect.arrayContaining(['package.json', 'package-lock.json', 'src', 'config', 'scripts', 'migrations']),
    );
    for (const source of sources) {
      const files = filesUnder(source).filter((f) => !f.startsWith('scripts/') || f.endsWith('.ts'));
      expect(files.length).toBeGreaterThan(0);
      for (const file of files)
        expect({ file, ignored: isIgnored(ignore, file) }).toEqual({ file, ignored: false });
    }
    for (const file of ['tsconfig.json', 'tsconfig.build.json', 'src/web/views/login.eta']) {
      expect({ file, ignored: isIgnored(ignore, file) }).toEqual({ file, ignored: false });
    }
  });
});
