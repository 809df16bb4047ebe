import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../config/config';
import { DATABASE, initSecrets, REDIS, SecretsStore } from '../../scripts/deploy-secrets';
import {
  durationMs,
  loadCompose,
  loadRawCompose,
  parseVolume,
  referencesIn,
  stringsIn,
  type ComposeService,
} from '../support/compose';
import { execForm, parseDockerfile } from '../support/dockerfile';
import { ROOT } from '../support/run-script';

/**
 * docker-compose.yml, read as `docker compose config` would read it on a fresh clone (no .env, no
 * variables set). There is no Docker engine in CI: these tests hold the file to what its comments and
 * docs/deploy.md promise, and check that the pieces fit (volumes, paths, service names, the nginx
 * template's variables, the app's configuration).
 */

const compose = loadCompose({});
const services = compose.services;
const service = (name: string): ComposeService => {
  const found = services[name];
  if (!found) throw new Error(`no service ${name}`);
  return found;
};
const app = service('app');
const LONG_RUNNING = ['nginx', 'app', 'postgres', 'redis', 'certbot'];
const ONE_SHOT = ['secrets-init', 'certs-init', 'migrate'];
const APP_IMAGE = 'express-hardened-starter:local';

/** The named volume mounted at a path prefix of `file` in `service`, and the rest of the path. */
function volumeHolding(s: ComposeService, file: string): { volume: string; rest: string } {
  for (const mount of (s.volumes ?? []).map(parseVolume)) {
    if (file.startsWith(`${mount.target}/`))
      return { volume: mount.source, rest: file.slice(mount.target.length) };
  }
  throw new Error(`${file} is on no volume`);
}

describe('compose services and images', () => {
  test('when the services are listed, then the stack is complete (init-letsencrypt.sh expects nginx and certbot)', () => {
    expect(Object.keys(services).sort()).toEqual([...LONG_RUNNING, ...ONE_SHOT].sort());
  });

  test('when images are read, then each is pinned to an exact release or is the app image built here', () => {
    for (const [name, s] of Object.entries(services)) {
      expect(s.image).toBeDefined();
      expect(s.image).not.toMatch(/:latest\b/);
      if (s.image === APP_IMAGE) continue;
      expect({ name, image: s.image }).toEqual({
        name,
        // Postgres releases are MAJOR.MINOR (18.4); the others MAJOR.MINOR.PATCH.
        image: expect.stringMatching(
          /^[a-z0-9/._-]+:v?\d+\.\d+(\.\d+)?(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?$/,
        ),
      });
    }
    expect(service('nginx').image).toMatch(/^nginx:/);
    expect(service('postgres').image).toMatch(/^postgres:/);
    expect(service('redis').image).toMatch(/^redis:/);
    expect(service('certbot').image).toMatch(/^certbot\/certbot:v/);
    expect(service('certs-init').image).toBe(service('certbot').image);
    expect(app.build).toMatchObject({ context: '.', target: 'runtime' });
    for (const name of ['secrets-init', 'migrate']) expect(service(name).image).toBe(APP_IMAGE);
  });

  test('when the images that declare a Debian variant are read, then the uids deploy-secrets.ts hands volumes to are theirs', () => {
    // postgres and redis are uid 999 in the Debian variants (70 and 999 in the Alpine ones).
    expect(service('postgres').image).toMatch(/-(trixie|bookworm)(@|$)/);
    expect(service('redis').image).toMatch(/-(trixie|bookworm)(@|$)/);
  });
});

describe('compose exposure and networks', () => {
  test('when ports are read, then nginx alone publishes, and only 80 and 443', () => {
    for (const [name, s] of Object.entries(services)) {
      if (name === 'nginx') continue;
      expect({ name, ports: s.ports }).toEqual({ name, ports: undefined });
      expect(s.network_mode).not.toBe('host');
      expect(s.privileged).toBeUndefined();
    }
    expect(service('nginx').ports).toEqual(['80:80', '443:443']);
  });

  test('when networks are read, then postgres and redis are only on internal networks and nginx never reaches them', () => {
    const internal = (n: string) => compose.networks[n]?.internal === true;
    for (const name of ['postgres', 'redis']) {
      expect(service(name).networks!.length).toBeGreaterThan(0);
      expect(service(name).networks!.every(internal)).toBe(true);
    }
    const data = service('postgres').networks!;
    expect(service('redis').networks).toEqual(data);
    expect(service('nginx').networks!.some((n) => data.includes(n))).toBe(false);
    // The app shares a network with nginx and one with the databases, and every network it is on is
    // internal: no route to the internet from the app.
    expect(app.networks!.every(internal)).toBe(true);
    expect(app.networks!.some((n) => service('nginx').networks!.includes(n))).toBe(true);
    expect(app.networks!.some((n) => data.includes(n))).toBe(true);
    expect(service('migrate').networks).toEqual(data);
    // nginx publishes ports and certbot talks to Let's Encrypt: they need one network that is not internal.
    for (const name of ['nginx', 'certbot'])
      expect(service(name).networks!.some((n) => !internal(n))).toBe(true);
    for (const name of ['secrets-init', 'certs-init']) expect(service(name).network_mode).toBe('none');
  });
});

describe('compose app hardening', () => {
  test('when the app container is read, then it is read-only, capability-free, non-root, with an init and limits', () => {
    expect(app.read_only).toBe(true);
    expect(app.tmpfs?.some((t) => t.startsWith('/tmp:') || t === '/tmp')).toBe(true);
    expect(app.cap_drop).toEqual(['ALL']);
    expect(app.cap_add).toBeUndefined();
    expect(app.security_opt).toContain('no-new-privileges:true');
    expect(app.init).toBe(true);
    expect(app.mem_limit).toMatch(/^\d+[mg]$/);
    expect(app.pids_limit).toBeGreaterThan(0);
    // The image's USER (node) applies: nothing in compose switches the app back to root.
    expect(app.user).toBeUndefined();
    expect(service('migrate').user).toBeUndefined();
    for (const name of ['migrate', 'certs-init', 'secrets-init']) {
      expect(service(name).read_only).toBe(true);
      expect(service(name).cap_drop).toEqual(['ALL']);
    }
    // secrets-init is root only to chown: exactly the capabilities for that, and no network.
    expect(service('secrets-init').cap_add?.sort()).toEqual(['CHOWN', 'DAC_OVERRIDE', 'FOWNER']);
    for (const s of Object.values(services)) expect(s.security_opt).toContain('no-new-privileges:true');
  });

  test('when capabilities are read, then every service drops them all and adds back only what its entrypoint needs', () => {
    // Postgres and Redis start as their images' users (999), so their entrypoints have no root phase;
    // nginx's master binds 80 and 443 and starts workers as the nginx user. test/compose proves the
    // stack runs with exactly these.
    const added = Object.fromEntries(
      Object.entries(services).map(([name, s]) => {
        expect({ name, drop: s.cap_drop }).toEqual({ name, drop: ['ALL'] });
        return [name, [...(s.cap_add ?? [])].sort()];
      }),
    );
    expect(added).toEqual({
      'secrets-init': ['CHOWN', 'DAC_OVERRIDE', 'FOWNER'],
      'certs-init': [],
      migrate: [],
      app: [],
      postgres: [],
      redis: [],
      nginx: ['CHOWN', 'NET_BIND_SERVICE', 'SETGID', 'SETUID'],
      certbot: [],
    });
    // Without a capability, a root entrypoint could not switch user: these start as the user.
    expect(service('postgres').user).toBe('999:999');
    expect(service('redis').user).toBe('999:999');
  });

  test('when the app is stopped, then Docker waits longer than the app`s own shutdown deadline', () => {
    const shutdownMs = Number(app.environment!.SHUTDOWN_TIMEOUT_MS);
    expect(shutdownMs).toBeGreaterThanOrEqual(100);
    expect(durationMs(app.stop_grace_period!)).toBeGreaterThan(shutdownMs);
  });

  test('when health checks are read, then app, postgres and redis have one, and the app`s is the image`s own /healthz check', () => {
    for (const name of ['app', 'postgres', 'redis']) {
      const check = service(name).healthcheck;
      expect(check?.test?.length).toBeGreaterThan(0);
      expect(check?.disable).toBeUndefined();
    }
    const dockerfile = parseDockerfile(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'));
    const imageCheck = dockerfile.stages.at(-1)!.instructions.find((i) => i.keyword === 'HEALTHCHECK')!;
    const imageCommand = execForm(/CMD\s+(.*)$/s.exec(imageCheck.args)![1]!);
    // test/deploy/runtime-stage.test.ts runs the image's command against the real server.
    expect(app.healthcheck!.test).toEqual(['CMD', ...imageCommand!]);
    expect(service('postgres').healthcheck!.test).toEqual(expect.arrayContaining(['pg_isready']));
    expect(service('redis').healthcheck!.test!.join(' ')).toMatch(/redis-cli ping/);
    // One-shot containers of the app image would otherwise run the image's check against no server.
    for (const name of ['secrets-init', 'migrate']) expect(service(name).healthcheck?.disable).toBe(true);
  });
});

describe('compose start order', () => {
  test('when dependencies are read, then each waits for health or successful completion, never just a start', () => {
    const expected: Record<string, Record<string, string>> = {
      app: {
        migrate: 'service_completed_successfully',
        postgres: 'service_healthy',
        redis: 'service_healthy',
      },
      migrate: { 'secrets-init': 'service_completed_successfully', postgres: 'service_healthy' },
      postgres: { 'secrets-init': 'service_completed_successfully' },
      redis: { 'secrets-init': 'service_completed_successfully' },
      nginx: { 'certs-init': 'service_completed_successfully', app: 'service_healthy' },
    };
    for (const [name, s] of Object.entries(services)) {
      const conditions = Object.fromEntries(
        Object.entries(s.depends_on ?? {}).map(([dependency, spec]) => [dependency, spec.condition]),
      );
      expect({ name, conditions }).toEqual({ name, conditions: expected[name] ?? {} });
    }
    for (const s of Object.values(services)) {
      for (const [dependency, spec] of Object.entries(s.depends_on ?? {})) {
        if (spec.condition === 'service_healthy') expect(service(dependency).healthcheck?.test).toBeDefined();
        if (spec.condition === 'service_completed_successfully') expect(ONE_SHOT).toContain(dependency);
      }
    }
  });

  test('when restart policies are read, then long-running services come back and one-shots do not loop', () => {
    for (const name of LONG_RUNNING) expect(service(name).restart).toBe('unless-stopped');
    for (const name of ONE_SHOT) expect(service(name).restart).toBe('no');
  });

  test('when migrate runs, then it applies the migrations and then the seed, with the app`s own image and configuration', () => {
    const migrate = service('migrate');
    expect(migrate.command).toEqual([
      'sh',
      '-c',
      'node dist/scripts/migrate.js && exec node dist/scripts/seed.js',
    ]);
    expect(migrate.environment).toEqual(app.environment);
    expect(migrate.volumes).toEqual(app.volumes);
  });
});

describe('compose secrets', () => {
  test('when the app`s environment is read, then every secret is a *_FILE path, never a value', () => {
    const env = app.environment!;
    for (const name of ['DATABASE_URL', 'REDIS_URL', 'SESSION_SECRET']) {
      expect(env[name]).toBeUndefined();
      expect(env[`${name}_FILE`]).toMatch(/^\/run\/secrets\//);
    }
    expect(env.ADMIN_PASSWORD).toBeUndefined();
    expect(service('postgres').environment).toEqual({
      POSTGRES_PASSWORD_FILE: expect.stringMatching(/^\/run\/secrets\//),
    });
  });

  test('when every value in the file is read, then none is a literal secret', () => {
    for (const { path: at, value } of stringsIn(loadRawCompose())) {
      const key = at.split('.').at(-1)!;
      if (/(PASSWORD|SECRETS?|TOKEN|_KEY)$/i.test(key)) {
        throw new Error(`${at} gives a secret as a value`);
      }
      expect({ at, value }).not.toEqual({ at, value: expect.stringMatching(/:\/\/[^/\s:@]*:[^/\s@]+@/) });
      expect({ at, value }).not.toEqual({
        at,
        value: expect.stringMatching(/--requirepass|\brequirepass\s+[\w-]{8,}/),
      });
    }
  });

  test('when a service reads a secrets volume, then it is its own and mounted read-only; only secrets-init writes them', () => {
    const owners: Record<string, string> = {
      'app-secrets': 'app',
      'postgres-secrets': 'postgres',
      'redis-secrets': 'redis',
    };
    for (const [name, s] of Object.entries(services)) {
      for (const mount of (s.volumes ?? []).map(parseVolume)) {
        const owner = owners[mount.source];
        if (!owner || name === 'secrets-init') continue;
        expect({ name, volume: mount.source, readOnly: mount.readOnly }).toEqual({
          name,
          volume: mount.source,
          readOnly: true,
        });
        expect([owner, ...(owner === 'app' ? ['migrate'] : [])]).toContain(name);
      }
    }
    const initVolumes = (service('secrets-init').volumes ?? []).map(parseVolume).map((m) => m.source);
    expect(initVolumes.sort()).toEqual(Object.keys(owners).sort());
  });

  describe('with the secrets secrets-init generates', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'compose-secrets-'));
      initSecrets(new SecretsStore(dir, false));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    /** Where secrets-init writes the file that `consumer` reads at `file`, through the same volume. */
    function generatedFile(consumer: ComposeService, file: string): string {
      const { volume, rest } = volumeHolding(consumer, file);
      const init = service('secrets-init');
      const mount = (init.volumes ?? []).map(parseVolume).find((m) => m.source === volume);
      expect(mount).toBeDefined();
      const secretsDir = init.environment!.SECRETS_DIR!;
      return path.join(dir, path.relative(secretsDir, `${mount!.target}${rest}`));
    }

    test('when the app`s configuration is loaded with them, then it passes every production check', () => {
      const env = app.environment!;
      const config = loadConfig(env, (file) => readFileSync(generatedFile(app, file), 'utf8'));
      expect(config.isProduction).toBe(true);
      expect(config.publicOrigin).toBe('https://localhost');
      expect(config.trustProxy).toBe(1);
      expect(config.session.secrets[0]!.length).toBeGreaterThanOrEqual(32);
      // The URLs name the compose services the app shares a network with, and the role the
      // postgres init script creates.
      const database = new URL(config.databaseUrl);
      expect([database.hostname, database.username, database.pathname]).toEqual([
        DATABASE.host,
        DATABASE.user,
        `/${DATABASE.name}`,
      ]);
      expect(new URL(config.redisUrl).hostname).toBe(REDIS.host);
      for (const host of [DATABASE.host, REDIS.host]) {
        expect(service(host).networks!.some((n) => app.networks!.includes(n))).toBe(true);
      }
    });

    test('when a domain is set, then the public URL follows it', () => {
      const withDomain = loadCompose({ SERVER_NAME: 'app.example.com' }).services.app!;
      const config = loadConfig(withDomain.environment!, (file) =>
        readFileSync(generatedFile(app, file), 'utf8'),
      );
      expect(config.publicOrigin).toBe('https://app.example.com');
    });

    test('when postgres and redis start, then the files they read are there', () => {
      const postgres = service('postgres');
      expect(existsSync(generatedFile(postgres, postgres.environment!.POSTGRES_PASSWORD_FILE!))).toBe(true);
      // The init script's default password file, through the same volume.
      const script = readFileSync(path.join(ROOT, 'docker/postgres/initdb/10-app-role.sh'), 'utf8');
      const passwordFile = /APP_DB_PASSWORD_FILE:-([^}]+)\}/.exec(script)![1]!;
      expect(existsSync(generatedFile(postgres, passwordFile))).toBe(true);
      const redis = service('redis');
      const conf = (redis.command as string[])[1]!;
      expect(readFileSync(generatedFile(redis, conf), 'utf8')).toMatch(/^requirepass \S+$/m);
      expect((redis.healthcheck!.test as string[]).join(' ')).toContain(conf);
      expect((redis.command as string[]).join(' ')).not.toMatch(/requirepass/);
    });
  });
});

describe('compose variables', () => {
  test('when the file refers to variables, then each has a default, so a fresh clone needs no .env', () => {
    const references = stringsIn(loadRawCompose()).flatMap(({ path: at, value }) =>
      referencesIn(value).map((r) => ({ at, ...r })),
    );
    expect(references.length).toBeGreaterThan(0);
    for (const r of references) {
      expect({ at: r.at, name: r.name, operator: r.operator }).toEqual({
        at: r.at,
        name: r.name,
        operator: ':-',
      });
    }
    // Only deployment variables: the development values of .env.example (HOST, PUBLIC_URL, TRUST_PROXY
    // ...) must never leak into the production stack through compose's .env interpolation.
    const defaults = Object.fromEntries(references.map((r) => [r.name, r.fallback]));
    expect(defaults).toEqual({
      SERVER_NAME: 'localhost',
      APP_IMAGE: APP_IMAGE,
      BUILD_CA_FILE: './docker/no-build-ca.pem',
    });
    const docs = readFileSync(path.join(ROOT, 'docs/deploy.md'), 'utf8');
    for (const name of Object.keys(defaults)) expect(docs).toContain(`\`${name}\``);
  });

  test('when the app`s environment is read, then every variable is one config/config.ts knows', () => {
    const source = readFileSync(path.join(ROOT, 'config/config.ts'), 'utf8');
    const schema = source.slice(
      source.indexOf('const envSchema = z.object({'),
      source.indexOf('\n});', source.indexOf('const envSchema')),
    );
    const known = new Set([...schema.matchAll(/^ {2}([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1]!));
    const fileSecrets = /FILE_SECRETS = \[([^\]]+)\]/.exec(source)![1]!.match(/[A-Z_]+/g)!;
    for (const name of fileSecrets) known.add(`${name}_FILE`);
    expect(known.has('SHUTDOWN_TIMEOUT_MS')).toBe(true);
    for (const name of Object.keys(app.environment!))
      expect({ name, known: known.has(name) }).toEqual({ name, known: true });
  });
});

describe('compose edge: nginx, certificates and renewals', () => {
  const nginx = service('nginx');
  const template = readFileSync(path.join(ROOT, 'nginx/templates/default.conf.template'), 'utf8');

  test('when nginx is configured, then it gets every variable its template uses, and only those are substituted', () => {
    const env = nginx.environment!;
    expect(env).toMatchObject({
      SERVER_NAME: 'localhost',
      APP_UPSTREAM: 'app:3000',
      HTTP_PORT: '80',
      HTTPS_PORT: '443',
      CERT_DIR: '/etc/letsencrypt/live/localhost',
      ACME_WEBROOT: '/var/www/certbot',
    });
    const used = [...new Set([...template.matchAll(/\$\{([A-Z][A-Z0-9_]*)\}/g)].map((m) => m[1]!))];
    expect(used.length).toBeGreaterThan(0);
    const filter = new RegExp(env.NGINX_ENVSUBST_FILTER!);
    for (const name of used)
      expect({ name, given: name in env, substituted: filter.test(name) }).toEqual({
        name,
        given: true,
        substituted: true,
      });
    // The image's own variables (and nginx's lowercase ones) stay out of the substitution.
    for (const name of ['PATH', 'HOSTNAME', 'NGINX_VERSION', 'RELOAD_CHECK_INTERVAL', 'host']) {
      expect(filter.test(name)).toBe(false);
    }
    const https = service('nginx').ports!.map((p) => p.split(':')[1]);
    expect(https).toEqual([env.HTTP_PORT, env.HTTPS_PORT]);
    expect(env.APP_UPSTREAM).toBe(`app:${app.environment!.PORT}`);
  });

  test('when nginx starts, then templates, snippets and the reload watcher are mounted read-only where the image looks for them', () => {
    const mounts = Object.fromEntries((nginx.volumes ?? []).map(parseVolume).map((m) => [m.target, m]));
    expect(mounts['/etc/nginx/templates']).toMatchObject({ source: './nginx/templates', readOnly: true });
    expect(mounts['/etc/nginx/snippets']).toMatchObject({ source: './nginx/snippets', readOnly: true });
    const watcher = Object.values(mounts).find((m) => m.source === './nginx/reload-on-cert-change.sh');
    expect(watcher).toMatchObject({ readOnly: true });
    // Started by sh before the image's entrypoint, so it runs whatever the file's mode on the host
    // (the image's /docker-entrypoint.d/ would skip a script that lost its execute bit), and then
    // the image's entrypoint runs with the image's command.
    expect(watcher!.target.startsWith('/docker-entrypoint.d/')).toBe(false);
    const entrypoint = (nginx as { entrypoint?: string[] }).entrypoint;
    expect(entrypoint?.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(entrypoint?.[2]).toBe(`sh ${watcher!.target} && exec /docker-entrypoint.sh "$@"`);
    expect((nginx as { command?: string[] }).command).toEqual(['nginx', '-g', 'daemon off;']);
    expect(mounts['/etc/letsencrypt']).toMatchObject({ readOnly: true });
    expect(nginx.environment!.CERT_DIR!.startsWith(`${mounts['/etc/letsencrypt']!.target}/`)).toBe(true);
    expect(mounts[nginx.environment!.ACME_WEBROOT!]).toMatchObject({ readOnly: true });
  });

  test('when certbot renews, then it writes where nginx reads: the same certificate and webroot volumes', () => {
    const byTarget = (s: ComposeService) =>
      Object.fromEntries((s.volumes ?? []).map(parseVolume).map((m) => [m.target, m.source]));
    const nginxMounts = byTarget(nginx);
    const certbotMounts = byTarget(service('certbot'));
    expect(certbotMounts['/etc/letsencrypt']).toBe(nginxMounts['/etc/letsencrypt']);
    expect(certbotMounts['/var/www/certbot']).toBe(nginxMounts[nginx.environment!.ACME_WEBROOT!]);
    expect(service('certbot').environment!.ACME_WEBROOT).toBe(nginx.environment!.ACME_WEBROOT);
    expect(service('certbot').entrypoint).toEqual(['/bin/sh', '/opt/scripts/certbot-renew-loop.sh']);
  });

  test('when the stack starts on a fresh clone, then certs-init makes the certificate nginx expects before nginx starts', () => {
    const certsInit = service('certs-init');
    expect(certsInit.entrypoint).toEqual(['/bin/sh', '/opt/scripts/ensure-certificate.sh']);
    expect(certsInit.environment).toEqual({
      SERVER_NAME: nginx.environment!.SERVER_NAME,
      CERT_DIR: nginx.environment!.CERT_DIR,
    });
    const certsVolume = (certsInit.volumes ?? [])
      .map(parseVolume)
      .find((m) => m.target === '/etc/letsencrypt');
    expect(certsVolume?.readOnly).toBe(false);
    expect(certsVolume?.source).toBe(
      (nginx.volumes ?? []).map(parseVolume).find((m) => m.target === '/etc/letsencrypt')!.source,
    );
    expect(nginx.depends_on!['certs-init']!.condition).toBe('service_completed_successfully');
  });

  test('when a file of the repository is mounted, then it exists (scripts executable), and named volumes are declared', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const mount of (s.volumes ?? []).map(parseVolume)) {
        if (mount.source.startsWith('./')) {
          const file = path.join(ROOT, mount.source);
          expect({ name, source: mount.source, exists: existsSync(file) }).toEqual({
            name,
            source: mount.source,
            exists: true,
          });
          if (file.endsWith('.sh')) expect(statSync(file).mode & 0o111).not.toBe(0);
        } else {
          expect(Object.keys(compose.volumes)).toContain(mount.source);
        }
      }
    }
  });
});
