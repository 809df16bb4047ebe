import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadCompose, parseVolume, requireService, type ComposeService } from '../support/compose';
import { ROOT } from '../support/run-script';

/**
 * docker-compose.yml's edge, read as on a fresh clone: nginx gets what its template needs, certbot and
 * certs-init write where nginx reads, and every file the stack mounts from the repository exists.
 */

const compose = loadCompose({});
const services = compose.services;
const service = (name: string): ComposeService => requireService(compose, name);
const app = service('app');

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
    for (const name of [
      'PATH',
      'HOSTNAME',
      'NGINX_VERSION',
      'RELOAD_CHECK_INTERVAL',
      'APP_CHECK_INTERVAL',
      'host',
    ]) {
      expect(filter.test(name)).toBe(false);
    }
    const https = service('nginx').ports!.map((p) => p.split(':')[1]);
    expect(https).toEqual([env.HTTP_PORT, env.HTTPS_PORT]);
    expect(env.APP_UPSTREAM).toBe(`app:${app.environment!.PORT}`);
  });

  test('when nginx starts, then templates, snippets and the reload watchers are mounted read-only where the image looks for them', () => {
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
    const replicas = Object.values(mounts).find((m) => m.source === './nginx/reload-on-app-change.sh');
    expect(replicas).toMatchObject({ readOnly: true });
    expect(replicas!.target.startsWith('/docker-entrypoint.d/')).toBe(false);
    expect(entrypoint?.[2]).toBe(
      `sh ${watcher!.target} && sh ${replicas!.target} && exec /docker-entrypoint.sh "$@"`,
    );
    // The replica watcher looks up the name the template proxies to.
    expect(nginx.environment!.APP_CHECK_INTERVAL).toMatch(/^[1-9][0-9]*$/);
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
