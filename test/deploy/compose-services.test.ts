import { APP_IMAGE, loadCompose, requireService, type ComposeService } from '../support/compose';

/**
 * docker-compose.yml read as `docker compose config` would read it on a fresh clone (no .env, no
 * variables set): which services make up the stack, the images they run, and the order they start in.
 * There is no Docker engine in CI; test/compose/ runs the stack where there is one.
 */

const compose = loadCompose({});
const services = compose.services;
const service = (name: string): ComposeService => requireService(compose, name);
const app = service('app');
const LONG_RUNNING = ['nginx', 'app', 'postgres', 'redis', 'certbot'];
const ONE_SHOT = ['secrets-init', 'data-certs-init', 'certs-init', 'migrate'];
/** The development mail catcher: only with `--profile mail`, never part of a plain `up`. */
const MAIL_PROFILE = { 'mail-catcher-certs': 'one-shot', mailpit: 'long-running' } as const;

describe('compose services and images', () => {
  test('when the services are listed, then the stack is complete (init-letsencrypt.sh expects nginx and certbot)', () => {
    expect(Object.keys(services).sort()).toEqual(
      [...LONG_RUNNING, ...ONE_SHOT, ...Object.keys(MAIL_PROFILE)].sort(),
    );
  });

  test('when profiles are read, then the stack has none, and the mail catcher has only `mail`, needed by nothing outside it', () => {
    for (const [name, s] of Object.entries(services)) {
      const expected = name in MAIL_PROFILE ? ['mail'] : undefined;
      expect({ name, profiles: s.profiles }).toEqual({ name, profiles: expected });
      // A plain `up` must never need a profiled service (nor pull its image).
      if (!(name in MAIL_PROFILE))
        for (const dependency of Object.keys(s.depends_on ?? {}))
          expect({ name, dependency, profiled: dependency in MAIL_PROFILE }).toEqual({
            name,
            dependency,
            profiled: false,
          });
    }
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
    expect(service('mail-catcher-certs').image).toBe(service('certbot').image);
    expect(service('mailpit').image).toMatch(/^axllent\/mailpit:v/);
    expect(app.build).toMatchObject({ context: '.', target: 'runtime' });
    for (const name of ['secrets-init', 'migrate']) expect(service(name).image).toBe(APP_IMAGE);
  });

  test('when the images that declare a Debian variant are read, then the uids deploy-secrets.ts hands volumes to are theirs', () => {
    // postgres and redis are uid 999 in the Debian variants (70 and 999 in the Alpine ones).
    expect(service('postgres').image).toMatch(/-(trixie|bookworm)(@|$)/);
    expect(service('redis').image).toMatch(/-(trixie|bookworm)(@|$)/);
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
      migrate: {
        'secrets-init': 'service_completed_successfully',
        'data-certs-init': 'service_completed_successfully',
        postgres: 'service_healthy',
      },
      postgres: {
        'secrets-init': 'service_completed_successfully',
        'data-certs-init': 'service_completed_successfully',
      },
      redis: {
        'secrets-init': 'service_completed_successfully',
        'data-certs-init': 'service_completed_successfully',
      },
      nginx: { 'certs-init': 'service_completed_successfully', app: 'service_healthy' },
      mailpit: { 'mail-catcher-certs': 'service_completed_successfully' },
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
        if (spec.condition === 'service_completed_successfully')
          expect([...ONE_SHOT, 'mail-catcher-certs']).toContain(dependency);
      }
    }
  });

  test('when restart policies are read, then long-running services come back and one-shots do not loop', () => {
    for (const name of LONG_RUNNING) expect(service(name).restart).toBe('unless-stopped');
    for (const name of ONE_SHOT) expect(service(name).restart).toBe('no');
    for (const [name, kind] of Object.entries(MAIL_PROFILE))
      expect(service(name).restart).toBe(kind === 'one-shot' ? 'no' : 'unless-stopped');
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
