import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../config/config';
import { DATABASE, initSecrets, PROVIDED_SECRETS, REDIS, SecretsStore } from '../../scripts/deploy-secrets';
import {
  loadCompose,
  loadRawCompose,
  parseVolume,
  requireService,
  stringsIn,
  type ComposeService,
} from '../support/compose';
import { ROOT } from '../support/run-script';

/**
 * docker-compose.yml read as on a fresh clone: no secret is written in the file, each consumer reads
 * only its own secrets volume, and the files scripts/deploy-secrets.ts generates are the ones the app,
 * postgres and redis read, through the same volumes.
 */

const compose = loadCompose({});
const services = compose.services;
const service = (name: string): ComposeService => requireService(compose, name);
const app = service('app');

/** The named volume mounted at a path prefix of `file` in `service`, and the rest of the path. */
function volumeHolding(s: ComposeService, file: string): { volume: string; rest: string } {
  for (const mount of (s.volumes ?? []).map(parseVolume)) {
    if (file.startsWith(`${mount.target}/`))
      return { volume: mount.source, rest: file.slice(mount.target.length) };
  }
  throw new Error(`${file} is on no volume`);
}

/** secrets-init's volumes and data-certs-init's (but data-ca), each with the service that reads it. */
const SECRETS_VOLUMES: Record<string, string> = {
  'app-secrets': 'app',
  'postgres-secrets': 'postgres',
  'redis-secrets': 'redis',
};
const TLS_VOLUMES: Record<string, string> = {
  'app-tls': 'app',
  'postgres-tls': 'postgres',
  'redis-tls': 'redis',
};
/** migrate runs the app's image as the app's role, with its environment: it reads what the app reads. */
const consumersOf = (owner: string) => [owner, ...(owner === 'app' ? ['migrate'] : [])];
/** The named volumes a service mounts (bind mounts left out). */
const volumesOf = (name: string) =>
  (service(name).volumes ?? [])
    .map(parseVolume)
    .map((m) => m.source)
    .filter((v) => !v.startsWith('./'));

/** The ACL file redis-server is started with (`--aclfile`), and the password file its health check reads. */
const redisAclFile = () => {
  const command = service('redis').command as string[];
  return command[command.indexOf('--aclfile') + 1]!;
};
const redisHealthcheckPasswordFile = () =>
  /REDISCLI_AUTH="\$\(cat (\S+)\)"/.exec(service('redis').healthcheck!.test!.join(' '))![1]!;

describe('compose secrets', () => {
  test('when the app`s environment is read, then every secret is a *_FILE path, never a value', () => {
    const env = app.environment!;
    for (const name of ['DATABASE_URL', 'REDIS_URL', 'SESSION_SECRET', 'SMTP_URL', 'MFA_ENCRYPTION_KEYS']) {
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
      // A path into one of the service's own volumes names a file (mailpit's MP_SMTP_TLS_KEY), not a value.
      const owner = /^services\.([^.]+)\.environment\./.exec(at)?.[1];
      const mounts = owner ? (services[owner]?.volumes ?? []).map(parseVolume) : [];
      if (mounts.some((m) => value.startsWith(`${m.target}/`))) continue;
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

  // ASVS 5.0 13.3.2: each volume only for its consumer, read-only.
  test('when a service reads a secrets volume, then it is its own and mounted read-only; only secrets-init writes them', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const mount of (s.volumes ?? []).map(parseVolume)) {
        const owner = SECRETS_VOLUMES[mount.source];
        if (!owner || name === 'secrets-init') continue;
        expect({ name, volume: mount.source, readOnly: mount.readOnly }).toEqual({
          name,
          volume: mount.source,
          readOnly: true,
        });
        expect(consumersOf(owner)).toContain(name);
      }
    }
    expect(volumesOf('secrets-init').sort()).toEqual(Object.keys(SECRETS_VOLUMES).sort());
  });

  // ASVS 5.0 13.3.2 (ADR 0035): the certificates service, a third-party image run as root, sees no secret
  // of secrets-init's; each tls volume is written by it alone and read by its one consumer.
  test('when the data stores` certificates are mounted, then data-certs-init writes them in tls volumes of their own and mounts no secrets volume; each consumer mounts its own, read-only', () => {
    expect(volumesOf('data-certs-init').sort()).toEqual(['data-ca', ...Object.keys(TLS_VOLUMES)].sort());
    for (const volume of volumesOf('data-certs-init'))
      expect({ volume, secretsInit: volume in SECRETS_VOLUMES }).toEqual({ volume, secretsInit: false });
    const owners: Record<string, string> = { ...TLS_VOLUMES, 'data-ca': 'data-certs-init' };
    for (const [name, s] of Object.entries(services)) {
      if (name === 'data-certs-init') continue;
      for (const mount of (s.volumes ?? []).map(parseVolume)) {
        const owner = owners[mount.source];
        if (!owner) continue;
        expect({ name, volume: mount.source, readOnly: mount.readOnly, ownConsumer: true }).toEqual({
          name,
          volume: mount.source,
          readOnly: true,
          ownConsumer: consumersOf(owner).includes(name),
        });
      }
    }
    // Each consumer does mount its own (the app and migrate share the app's, as they share its identity).
    for (const [volume, owner] of Object.entries(TLS_VOLUMES))
      for (const name of consumersOf(owner)) expect(volumesOf(name)).toContain(volume);
  });

  // ASVS 13.3.1: a secret can be destroyed as well as created and rotated (ADR 0037).
  test('when docs/deploy.md destroys the secrets, then it removes exactly the volumes secrets-init and data-certs-init write (the CA key included), under the project`s name, and no data volume', () => {
    const guide = readFileSync(path.join(ROOT, 'docs', 'deploy.md'), 'utf8');
    const section = guide.slice(guide.indexOf('## Destroying secrets'), guide.indexOf('## Upgrades'));
    const removed = /^docker volume rm (.+)$/m.exec(section)?.[1]?.split(' ') ?? [];
    const written = [...volumesOf('secrets-init'), ...volumesOf('data-certs-init')].map(
      (v) => `${compose.name}_${v}`,
    );
    expect(compose.name).toBe('express-hardened-starter');
    expect(removed.sort()).toEqual(written.sort());
    expect(section).toMatch(/^rm -f secrets\/smtp_url$/m);
    expect(section).not.toMatch(/^docker compose down (--volumes|-v)/m);
  });

  test('when the operator provides secrets, then only secrets-init reads their folder, read-only, and git ignores what is in it', () => {
    const init = service('secrets-init');
    const provided = (init.volumes ?? []).map(parseVolume).filter((m) => m.source === './secrets');
    expect(provided).toEqual([
      { source: './secrets', target: init.environment!.PROVIDED_SECRETS_DIR, readOnly: true },
    ]);
    for (const [name, s] of Object.entries(services)) {
      if (name === 'secrets-init') continue;
      const sources = (s.volumes ?? []).map((v) => parseVolume(v).source);
      expect({ name, mountsProvidedSecrets: sources.some((v) => v.startsWith('./secrets')) }).toEqual({
        name,
        mountsProvidedSecrets: false,
      });
    }
    const ignored = (file: string) =>
      spawnSync('git', ['check-ignore', '--quiet', '--no-index', file], { cwd: ROOT }).status === 0;
    for (const file of Object.keys(PROVIDED_SECRETS)) expect(ignored(`secrets/${file}`)).toBe(true);
    expect(ignored('secrets/anything-else.pem')).toBe(true);
    expect(ignored('secrets/README.md')).toBe(false);
  });

  describe('with the secrets secrets-init generates', () => {
    /** The folder each init service's script writes into here, as into its volumes. */
    const WRITERS = { 'secrets-init': 'secrets', 'data-certs-init': 'tls' } as const;
    let dir: string;
    /** The operator's ./secrets, empty until a test provides something. */
    let provided: string;
    beforeAll(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'compose-secrets-'));
      provided = path.join(dir, 'provided');
      mkdirSync(provided);
      initSecrets(new SecretsStore(path.join(dir, WRITERS['secrets-init']), false), provided);
      // data-certs-init writes the data stores' certificates into volumes of their own.
      for (const owner of Object.values(TLS_VOLUMES))
        mkdirSync(path.join(dir, WRITERS['data-certs-init'], owner), { recursive: true });
      execFileSync('sh', [path.join(ROOT, 'scripts', 'data-store-certs.sh')], {
        env: {
          ...process.env,
          TLS_DIR: path.join(dir, WRITERS['data-certs-init']),
          CA_DIR: path.join(dir, 'ca'),
        },
        stdio: 'ignore',
      });
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    /** Where secrets-init or data-certs-init writes the file that `consumer` reads at `file`, through the same volume. */
    function generatedFile(consumer: ComposeService, file: string): string {
      const { volume, rest } = volumeHolding(consumer, file);
      for (const [writer, folder] of Object.entries(WRITERS)) {
        const init = service(writer);
        const mount = (init.volumes ?? []).map(parseVolume).find((m) => m.source === volume);
        if (!mount) continue;
        const root = init.environment![writer === 'secrets-init' ? 'SECRETS_DIR' : 'TLS_DIR']!;
        return path.join(dir, folder, path.relative(root, `${mount.target}${rest}`));
      }
      throw new Error(`neither init service writes ${volume}`);
    }

    test('when the app`s configuration is loaded with them, then it passes every production check', () => {
      const env = app.environment!;
      const config = loadConfig(env, (file) => readFileSync(generatedFile(app, file), 'utf8'));
      expect(config.isProduction).toBe(true);
      expect(config.publicOrigin).toBe('https://localhost');
      expect(config.trustProxy).toBe(1);
      expect(config.session.secrets[0]!.length).toBeGreaterThanOrEqual(32);
      // Nothing provided: mail is off, and the start says so.
      expect(config.mail).toEqual({ transport: 'off' });
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

    // ASVS 5.0 11.3.2, 13.3.2: the TOTP key ring, generated on the server, read by the app alone.
    test('when the app reads the generated MFA key ring, then second factors can be enrolled and admins must have one; the file is private to the app`s volume', () => {
      const file = app.environment!.MFA_ENCRYPTION_KEYS_FILE!;
      expect(volumeHolding(app, file).volume).toBe('app-secrets');
      const readers = Object.entries(services)
        .filter(
          ([name, s]) =>
            // secrets-init writes the volume (the key) and runs no app.
            name !== 'secrets-init' &&
            (s.volumes ?? []).map(parseVolume).some((m) => m.source === 'app-secrets'),
        )
        .map(([name]) => name);
      // migrate runs the same config (the seed), with the same environment.
      expect(readers.sort()).toEqual(['app', 'migrate']);
      expect(statSync(generatedFile(app, file)).mode & 0o777).toBe(0o600);
      const config = loadConfig(app.environment!, (f) => readFileSync(generatedFile(app, f), 'utf8'));
      expect(config.mfaKeys).toHaveLength(1);
      expect(config.requireMfaForAdmins).toBe(true);
    });

    test('when a domain is set, then the public URL follows it', () => {
      const withDomain = loadCompose({ SERVER_NAME: 'app.example.com' }).services.app!;
      const config = loadConfig(withDomain.environment!, (file) =>
        readFileSync(generatedFile(app, file), 'utf8'),
      );
      expect(config.publicOrigin).toBe('https://app.example.com');
    });

    test('when the operator provides smtp_url and MAIL_FROM, then the app sends through that server, and removing the file turns mail off again', () => {
      const password = 'provided-smtp-password-0123456789';
      writeFileSync(path.join(provided, 'smtp_url'), `smtps://mailer:${password}@smtp.example.com\n`);
      initSecrets(new SecretsStore(path.join(dir, WRITERS['secrets-init']), false), provided);
      const withMail = loadCompose({ MAIL_FROM: 'Example <no-reply@example.com>' }).services.app!;
      const load = () =>
        loadConfig(withMail.environment!, (file) => readFileSync(generatedFile(app, file), 'utf8'));

      expect(load().mail).toMatchObject({
        transport: 'smtp',
        from: { name: 'Example', address: 'no-reply@example.com' },
        smtp: { host: 'smtp.example.com', port: 465, auth: { user: 'mailer', pass: password } },
      });
      expect(load().rateLimits.mailsPerAddressPerHour).toBe(5);
      expect(JSON.stringify(withMail)).not.toContain(password);

      rmSync(path.join(provided, 'smtp_url'));
      initSecrets(new SecretsStore(path.join(dir, WRITERS['secrets-init']), false), provided);
      expect(load().mail).toEqual({ transport: 'off' });
    });

    test('when postgres and redis start, then the files they read are there', () => {
      const postgres = service('postgres');
      expect(existsSync(generatedFile(postgres, postgres.environment!.POSTGRES_PASSWORD_FILE!))).toBe(true);
      // The init script's default password file, through the same volume.
      const script = readFileSync(path.join(ROOT, 'docker/postgres/initdb/10-app-role.sh'), 'utf8');
      const passwordFile = /APP_DB_PASSWORD_FILE:-([^}]+)\}/.exec(script)![1]!;
      expect(existsSync(generatedFile(postgres, passwordFile))).toBe(true);
      const redis = service('redis');
      expect(existsSync(generatedFile(redis, redisAclFile()))).toBe(true);
      expect(existsSync(generatedFile(redis, redisHealthcheckPasswordFile()))).toBe(true);
    });

    test('when redis starts, then its users come from users.acl, and neither they nor a password are on its command line (ASVS 13.2.2)', () => {
      const command = (service('redis').command as string[]).join(' ');
      expect(command).toMatch(/^redis-server --aclfile \/run\/secrets\/redis\/users\.acl /);
      expect(command).not.toMatch(/requirepass|--user|masterauth|>\S|#[0-9a-f]{64}/);
      const acl = readFileSync(generatedFile(service('redis'), redisAclFile()), 'utf8');
      expect(
        acl
          .split('\n')
          .filter(Boolean)
          .map((line) => line.split(' ').slice(0, 2).join(' ')),
      ).toEqual(['user default', 'user app', 'user healthcheck', 'user admin']);
    });

    test('when the health check runs, then it is the healthcheck user, its password in REDISCLI_AUTH rather than an argument (ASVS 13.2.2)', () => {
      const [kind, script] = service('redis').healthcheck!.test!;
      expect(kind).toBe('CMD-SHELL');
      // Over TLS with the healthcheck user's own client certificate (ASVS 13.2.1, ADR 0035).
      expect(script).toMatch(
        /^REDISCLI_AUTH="\$\(cat \S+\)" redis-cli --tls .*--cert \S+\/healthcheck\.crt --key \S+\/healthcheck\.key --user healthcheck ping /,
      );
      expect(script).not.toMatch(/ -a |--pass|--askpass/);
      const acl = readFileSync(generatedFile(service('redis'), redisAclFile()), 'utf8');
      expect(acl).toMatch(/^user healthcheck reset on #[0-9a-f]{64} \+ping$/m);
    });

    test('when the app connects with the generated redis_url, then it is the app user, limited to the app`s key prefix (ASVS 13.2.1, 13.2.2)', () => {
      const config = loadConfig(app.environment!, (file) => readFileSync(generatedFile(app, file), 'utf8'));
      expect(new URL(config.redisUrl).username).toBe('app');
      const acl = readFileSync(generatedFile(service('redis'), redisAclFile()), 'utf8');
      const keys = /^user app reset on #[0-9a-f]{64} ~(\S+) /m.exec(acl)?.[1];
      expect(keys).toBe(`${config.redisKeyPrefix}*`);
      expect(acl).toMatch(/^user default reset$/m);
    });
  });
});
