import { readFileSync } from 'node:fs';
import path from 'node:path';
import { durationMs, loadCompose, requireService, type ComposeService } from '../support/compose';
import { execForm, parseDockerfile } from '../support/dockerfile';
import { ROOT } from '../support/run-script';

/**
 * docker-compose.yml read as on a fresh clone: what each container may reach (ports, networks) and
 * what it may do (read-only root, capabilities, users, limits, health checks, stop deadline), held to
 * what the file's comments and docs/deploy.md promise.
 */

const compose = loadCompose({});
const services = compose.services;
const service = (name: string): ComposeService => requireService(compose, name);
const app = service('app');

describe('compose exposure and networks', () => {
  test('when ports are read, then nginx alone publishes, and only 80 and 443 (the mail profile`s catcher aside, on loopback: compose-mail.test.ts)', () => {
    for (const [name, s] of Object.entries(services)) {
      if (name === 'nginx' || name === 'mailpit') continue;
      expect({ name, ports: s.ports }).toEqual({ name, ports: undefined });
      expect(s.network_mode).not.toBe('host');
      expect(s.privileged).toBeUndefined();
    }
    expect(service('nginx').ports).toEqual(['80:80', '443:443']);
  });

  // ASVS 5.0 12.3.3, 13.1.1, 13.2.4, 13.2.5: internal networks only (ADR 0024); the app's peers are fixed.
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
    for (const name of ['secrets-init', 'certs-init', 'mail-catcher-certs'])
      expect(service(name).network_mode).toBe('none');
  });
});

// ASVS 5.0 16.4.2: the containers only write their logs to standard output; Docker keeps them, rotated,
// outside every container (docs/security/logging.md), and the app's read-only file system (below)
// leaves it nowhere else to write.
describe('compose logs', () => {
  test('when each service is read, then its log goes to Docker`s json-file driver, rotated at 10 MB, 5 files', () => {
    for (const [name, s] of Object.entries(services)) {
      const { logging } = s as { logging?: { driver?: string; options?: Record<string, string> } };
      expect({ name, logging }).toEqual({
        name,
        logging: { driver: 'json-file', options: { 'max-size': '10m', 'max-file': '5' } },
      });
    }
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
    for (const name of ['migrate', 'certs-init', 'secrets-init', 'mail-catcher-certs', 'mailpit']) {
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
      'data-certs-init': ['CHOWN', 'DAC_OVERRIDE', 'FOWNER'],
      'certs-init': [],
      migrate: [],
      app: [],
      postgres: [],
      redis: [],
      nginx: ['CHOWN', 'NET_BIND_SERVICE', 'SETGID', 'SETUID'],
      certbot: [],
      'mail-catcher-certs': [],
      mailpit: [],
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
    expect(service('redis').healthcheck!.test!.join(' ')).toMatch(
      /redis-cli --tls .* --user healthcheck ping/,
    );
    // One-shot containers of the app image would otherwise run the image's check against no server.
    for (const name of ['secrets-init', 'migrate']) expect(service(name).healthcheck?.disable).toBe(true);
  });
});
