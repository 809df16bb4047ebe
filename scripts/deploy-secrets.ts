import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { mfaKeyRing } from '../config/config';
import { redisAcl } from './redis-acl';

/**
 * The secrets of the docker compose deployment (docker-compose.yml), made on the server itself: the
 * one-shot `secrets-init` service runs `init` on every `docker compose up`, as root in the app image,
 * before anything else starts. Nothing secret is ever written in the compose file, in `.env` or in an
 * image, and nobody has to invent a password.
 *
 * One volume per consumer, each mounted read-only by that service only, owned by the user the service
 * runs as (the uids of the official Debian-based images), mode 0700 with 0600 files:
 *   app/       node (1000)      session_secret, database_url, redis_url, smtp_url  (read through NAME_FILE)
 *   postgres/  postgres (999)   superuser_password (POSTGRES_PASSWORD_FILE), app_password (the `app`
 *                               role's, set by docker/postgres/initdb/10-app-role.sh)
 *   redis/     redis (999)      users.acl (`--aclfile`: the Redis users, scripts/redis-acl.ts),
 *                               healthcheck_password, admin_password
 *   app/mfa_encryption_keys     the key ring that encrypts TOTP secrets (MFA_ENCRYPTION_KEYS_FILE): made
 *                               once, only ever extended or trimmed by the two mfa commands below
 * The data stores' certificates are made by scripts/data-store-certs.sh in volumes of their own (*-tls,
 * ADR 0035), never in these: the app logs in to Postgres with its certificate, so database_url holds no
 * password, and app_password is a role password that no pg_hba.conf line accepts from the network.
 * A password lives in one place and what needs it is derived from it on every run:
 * the app's Redis password lives in redis_url, and users.acl is rendered from it and the
 * two others (as SHA-256 hashes: the redis volume holds no password of the app's). What exists is
 * never regenerated, so `init` is idempotent. The ACL limits the app to the keys under
 * REDIS_KEY_PREFIX (default `app:`): an app given another prefix needs secrets-init given the same.
 * What cannot be made here (SMTP credentials come from a mail provider) the operator provides as files
 * in PROVIDED_SECRETS_DIR (./secrets/, git-ignored, mounted read-only); `init` copies them in (below).
 *
 *   deploy-secrets.js init                      create what is missing, derive the URLs, copy what is provided
 *   deploy-secrets.js rotate-session-secret     prepend a new session secret (the old ones still verify)
 *   deploy-secrets.js retire-session-secrets    keep only the newest session secret
 *   deploy-secrets.js rotate-database-password  new password for the `app` role (then apply it: docs/deploy.md)
 *   deploy-secrets.js rotate-redis-password     new password for the app's Redis user (then restart redis and app)
 *   deploy-secrets.js rotate-mfa-key            prepend a new TOTP encryption key (the old ones still open their rows)
 *   deploy-secrets.js retire-mfa-keys           keep only the first key (once no row names another: docs/deploy.md)
 * SECRETS_DIR (default /secrets) is where the three volumes are mounted; PROVIDED_SECRETS_DIR (unset:
 * none provided) where the operator's files are; REDIS_KEY_PREFIX (unset: the app's default) the
 * prefix the app's Redis user is limited to.
 */

interface Owner {
  uid: number;
  gid: number;
}

/** The users of the official images: node (node:*-slim), postgres and redis (Debian variants). */
export const OWNERS = {
  app: { uid: 1000, gid: 1000 },
  postgres: { uid: 999, gid: 999 },
  redis: { uid: 999, gid: 999 },
} as const satisfies Record<string, Owner>;

/** Where the other services find each other on the compose network, and the app's database. */
export const DATABASE = { host: 'postgres', port: 5432, name: 'app', user: 'app' } as const;
export const REDIS = { host: 'redis', port: 6379 } as const;

/** 256 bits, URL-safe (no escaping inside a connection URL or a config file). */
function randomPassword(): string {
  return randomBytes(32).toString('base64url');
}

/** 384 bits: 64 characters, twice the minimum the app accepts. */
function randomSessionSecret(): string {
  return randomBytes(48).toString('base64url');
}

/**
 * Without a password: the `app` role logs in with its client certificate over verified TLS
 * (docker/postgres/pg_hba.conf, scripts/data-store-certs.sh; ADR 0035), and no line accepts a password
 * for it from the network.
 */
export function databaseUrl(): string {
  return `postgres://${DATABASE.user}@${DATABASE.host}:${DATABASE.port}/${DATABASE.name}?sslmode=verify-full`;
}

/** The app's user in users.acl; its password is only ever in this URL (and hashed in the ACL). */
export const REDIS_APP_USER = 'app';

/**
 * TLS (rediss://), where Redis asks for the app's client certificate before anything else (ADR 0035);
 * Redis 8.0 cannot map a certificate to a user, so the password still chooses the ACL user.
 */
export function redisUrl(password: string): string {
  return `rediss://${REDIS_APP_USER}:${encodeURIComponent(password)}@${REDIS.host}:${REDIS.port}`;
}

/** The password of a redis_url, also one written before the ACL (`redis://:PASSWORD@…`, the default user's). */
function passwordFromRedisUrl(url: string | undefined): string | undefined {
  if (!url) return undefined;
  return decodeURIComponent(new URL(url).password) || undefined;
}

export class SecretsStore {
  constructor(
    private readonly root: string,
    /** chown only as root (in the container); a test run as another user keeps its own files. */
    private readonly chown = process.getuid?.() === 0,
  ) {}

  file(volume: keyof typeof OWNERS, name: string): string {
    return path.join(this.root, volume, name);
  }

  read(volume: keyof typeof OWNERS, name: string): string | undefined {
    const file = this.file(volume, name);
    return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
  }

  /** Written beside the target and renamed over it: a reader never sees half a secret. */
  write(volume: keyof typeof OWNERS, name: string, content: string): void {
    const dir = this.prepare(volume);
    const target = path.join(dir, name);
    const temporary = path.join(dir, `.${name}.${process.pid}.tmp`);
    writeFileSync(temporary, content.endsWith('\n') ? content : `${content}\n`, { mode: 0o600 });
    chmodSync(temporary, 0o600);
    if (this.chown) chownSync(temporary, OWNERS[volume].uid, OWNERS[volume].gid);
    renameSync(temporary, target);
  }

  /** Deletes a file that is no longer used; true if there was one. */
  remove(volume: keyof typeof OWNERS, name: string): boolean {
    const file = this.file(volume, name);
    if (!existsSync(file)) return false;
    rmSync(file);
    return true;
  }

  /** Returns the current value, creating it first when it does not exist. */
  ensure(volume: keyof typeof OWNERS, name: string, make: () => string, report: string[]): string {
    const existing = this.read(volume, name);
    if (existing) {
      this.write(volume, name, existing); // re-applies owner and mode
      report.push(`kept ${volume}/${name}`);
      return existing;
    }
    const value = make();
    this.write(volume, name, value);
    report.push(`created ${volume}/${name}`);
    return value;
  }

  private prepare(volume: keyof typeof OWNERS): string {
    const dir = path.join(this.root, volume);
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o700);
    if (this.chown) chownSync(dir, OWNERS[volume].uid, OWNERS[volume].gid);
    return dir;
  }
}

/**
 * The secrets the operator provides, by file name, and the volume each is copied into. The copy gets
 * that volume's owner and mode, which a bind-mounted file could not (Compose ignores uid and mode for
 * file secrets outside Swarm): the operator's file may stay 0600 and theirs.
 */
export const PROVIDED_SECRETS = { smtp_url: 'app' } as const satisfies Record<string, keyof typeof OWNERS>;

/**
 * Copies each provided secret into its volume. One that is not provided leaves an empty file there,
 * which the app reads as unset (config/config.ts): mail off. So removing ./secrets/smtp_url and running
 * `up` again turns mail off, and no stale copy outlives its source. A provided file that is empty or
 * cannot be read (a dangling symlink: its target is not inside the mount) stops the stack instead.
 */
export function copyProvidedSecrets(
  store: SecretsStore,
  providedDir: string | undefined,
  report: string[],
): void {
  if (providedDir !== undefined && !existsSync(providedDir))
    throw new Error(`PROVIDED_SECRETS_DIR ${providedDir} does not exist`);
  for (const [name, volume] of Object.entries(PROVIDED_SECRETS)) {
    const source = providedDir === undefined ? undefined : path.join(providedDir, name);
    if (source === undefined || !lstatSync(source, { throwIfNoEntry: false })) {
      store.write(volume, name, '');
      report.push(`${name} not provided: ${volume}/${name} is empty (off)`);
      continue;
    }
    let value: string;
    try {
      value = readFileSync(source, 'utf8').trim();
    } catch (error) {
      throw new Error(
        `cannot read the provided ${name} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
        { cause: error },
      );
    }
    if (value === '') throw new Error(`the provided ${name} is empty: write it, or delete the file`);
    store.write(volume, name, value);
    report.push(`copied the provided ${name} to ${volume}/${name}`);
  }
}

/**
 * Renders users.acl from the app's password and the healthcheck's and operator's (created when missing),
 * for the key prefix in REDIS_KEY_PREFIX. A redis.conf left by a version before the ACL held the
 * password in clear (`requirepass`); redis-server no longer reads it, so it goes.
 */
function writeRedisAcl(store: SecretsStore, appPassword: string, report: string[]): void {
  const healthcheck = store.ensure('redis', 'healthcheck_password', randomPassword, report);
  const admin = store.ensure('redis', 'admin_password', randomPassword, report);
  const acl = redisAcl({ app: appPassword, healthcheck, admin }, process.env.REDIS_KEY_PREFIX);
  store.write('redis', 'users.acl', acl);
  if (store.remove('redis', 'redis.conf')) report.push('removed redis/redis.conf (replaced by users.acl)');
}

/**
 * The certificates and keys an earlier version issued into these volumes, before they moved to the
 * *-tls volumes (ADR 0035), with the temporary names a run cut short could leave. Nothing reads them
 * any more, and these volumes are this service's: it removes them.
 */
const CERTIFICATES_OF_BEFORE = {
  app: ['ca.crt', 'postgres-client.crt', 'postgres-client.key', 'redis-client.crt', 'redis-client.key'],
  postgres: ['ca.crt', 'server.crt', 'server.key'],
  redis: [
    'ca.crt',
    'server.crt',
    'server.key',
    'healthcheck.crt',
    'healthcheck.key',
    'admin.crt',
    'admin.key',
  ],
} as const satisfies Record<keyof typeof OWNERS, readonly string[]>;

function removeCertificatesOfBefore(store: SecretsStore, report: string[]): void {
  for (const [volume, files] of Object.entries(CERTIFICATES_OF_BEFORE) as [
    keyof typeof OWNERS,
    readonly string[],
  ][])
    for (const name of files.flatMap((file) => [file, `.${file}.new`]))
      if (store.remove(volume, name))
        report.push(`removed ${volume}/${name} (now in the ${volume}-tls volume)`);
}

/**
 * Creates what is missing, (re)derives the URLs and copies the provided secrets. Returns one line per
 * file, never a value.
 */
export function initSecrets(store: SecretsStore, providedDir?: string): string[] {
  const report: string[] = [];
  store.ensure('postgres', 'superuser_password', randomPassword, report);
  store.ensure('postgres', 'app_password', randomPassword, report);
  store.write('app', 'database_url', databaseUrl());
  const existingRedisPassword = passwordFromRedisUrl(store.read('app', 'redis_url'));
  const redisPassword = existingRedisPassword ?? randomPassword();
  report.push(`${existingRedisPassword ? 'kept' : 'created'} the app's Redis password`);
  store.write('app', 'redis_url', redisUrl(redisPassword));
  writeRedisAcl(store, redisPassword, report);
  store.ensure('app', 'session_secret', randomSessionSecret, report);
  ensureMfaKeys(store, report);
  report.push('wrote app/database_url, app/redis_url, redis/users.acl');
  copyProvidedSecrets(store, providedDir, report);
  removeCertificatesOfBefore(store, report);
  return report;
}

export function rotateSessionSecret(store: SecretsStore): string[] {
  const current = store.read('app', 'session_secret');
  const kept = current ? current.split(',').map((s) => s.trim()) : [];
  store.write('app', 'session_secret', [randomSessionSecret(), ...kept].join(','));
  return [
    `app/session_secret: a new secret signs, ${kept.length} older one(s) still verify`,
    'next: docker compose up -d --force-recreate app; once every old session has expired',
    '(SESSION_ABSOLUTE_TIMEOUT_S, 8 h by default), run retire-session-secrets and recreate app again',
  ];
}

export function retireSessionSecrets(store: SecretsStore): string[] {
  const current = store.read('app', 'session_secret');
  if (!current) throw new Error('app/session_secret does not exist: run init first');
  store.write('app', 'session_secret', current.split(',')[0]!.trim());
  return [
    'app/session_secret: only the newest secret is left',
    'next: docker compose up -d --force-recreate app',
  ];
}

export function rotateDatabasePassword(store: SecretsStore): string[] {
  const password = randomPassword();
  store.write('postgres', 'app_password', password);
  store.write('app', 'database_url', databaseUrl());
  return [
    'postgres/app_password: new password written (the app itself logs in with its certificate)',
    'next: docker compose exec -u postgres postgres /docker-entrypoint-initdb.d/10-app-role.sh',
    'then: docker compose up -d --force-recreate app',
  ];
}

export function rotateRedisPassword(store: SecretsStore): string[] {
  const password = randomPassword();
  store.write('app', 'redis_url', redisUrl(password));
  writeRedisAcl(store, password, []);
  return [
    'app/redis_url and redis/users.acl: new password for the app`s Redis user written',
    'next: docker compose restart redis app',
  ];
}

/**
 * A new entry of MFA_ENCRYPTION_KEYS: 32 random bytes (AES-256) in base64, under an id that says when
 * it was made (`2026-11-30-142855`, UTC; config/config.ts and user_totp.key_id's CHECK allow 1-32
 * characters of a-z 0-9 -), so `SELECT key_id, count(*) FROM user_totp GROUP BY 1` reads
 * as a history of rotations. Two keys made in the same second get `-2`, `-3`: an id is never reused,
 * or a row sealed under the old key would be opened with the new one and fail.
 */
export function newMfaKey(takenIds: readonly string[], now = new Date()): string {
  const stamp = now.toISOString().slice(0, 19).replace('T', '-').replaceAll(':', '');
  let id = stamp;
  for (let n = 2; takenIds.includes(id); n++) id = `${stamp}-${n}`;
  return `${id}:${randomBytes(32).toString('base64')}`;
}

/** The entries of app/mfa_encryption_keys, first (the one that seals) first; [] when there is none. */
function readMfaKeys(store: SecretsStore): string[] {
  const current = store.read('app', 'mfa_encryption_keys');
  return current ? current.split(',').map((entry) => entry.trim()) : [];
}

const mfaKeyIds = (entries: readonly string[]) => entries.map((entry) => entry.split(':')[0]!);

/**
 * The TOTP key ring, created once and then kept byte for byte: a new key in its place would leave every
 * stored TOTP secret unreadable (each row names the key that sealed it, ADR 0033).
 */
function ensureMfaKeys(store: SecretsStore, report: string[]): void {
  // A file that is there but holds no ring (a restore from an empty or cut copy) is not "missing": a new
  // key in its place would hide the loss of every enrolled factor until users fail to sign in.
  if (existsSync(store.file('app', 'mfa_encryption_keys'))) {
    const problems: string[] = [];
    const ring = mfaKeyRing(store.read('app', 'mfa_encryption_keys') || undefined, true, problems);
    if (!ring || problems.length > 0) {
      throw new Error(
        'app/mfa_encryption_keys exists but holds no valid key ring: restore it from your copy ' +
          '(docs/deploy.md, Backups), or delete it to start a new ring (every enrolled factor is then lost)',
      );
    }
  }
  store.ensure('app', 'mfa_encryption_keys', () => newMfaKey([]), report);
}

export function rotateMfaKey(store: SecretsStore): string[] {
  const kept = readMfaKeys(store);
  const entry = newMfaKey(mfaKeyIds(kept));
  store.write('app', 'mfa_encryption_keys', [entry, ...kept].join(','));
  return [
    `app/mfa_encryption_keys: the new key ${mfaKeyIds([entry])[0]} seals, ${kept.length} older one(s) still open their rows`,
    'next: docker compose up -d --force-recreate app; once no TOTP secret uses an older key',
    '(docs/deploy.md, "Rotating secrets"), run retire-mfa-keys and recreate app again',
  ];
}

export function retireMfaKeys(store: SecretsStore): string[] {
  const kept = readMfaKeys(store);
  if (kept.length === 0) throw new Error('app/mfa_encryption_keys does not exist: run init first');
  store.write('app', 'mfa_encryption_keys', kept[0]!);
  return [
    `app/mfa_encryption_keys: only ${mfaKeyIds(kept)[0]} is left (${kept.length - 1} retired)`,
    'a TOTP secret sealed under a retired key can no longer be checked: its user needs a recovery code',
    'next: docker compose up -d --force-recreate app',
  ];
}

const COMMANDS: Record<string, (store: SecretsStore) => string[]> = {
  init: (store) => initSecrets(store, process.env.PROVIDED_SECRETS_DIR),
  'rotate-session-secret': rotateSessionSecret,
  'retire-session-secrets': retireSessionSecrets,
  'rotate-database-password': rotateDatabasePassword,
  'rotate-redis-password': rotateRedisPassword,
  'rotate-mfa-key': rotateMfaKey,
  'retire-mfa-keys': retireMfaKeys,
};

function main(): void {
  const [command = 'init'] = process.argv.slice(2);
  const run = COMMANDS[command];
  if (!run) {
    process.stderr.write(
      `deploy-secrets: unknown command ${command} (${Object.keys(COMMANDS).join(', ')})\n`,
    );
    process.exit(2);
  }
  // Every file this process creates is private from the first byte.
  process.umask(0o077);
  const store = new SecretsStore(process.env.SECRETS_DIR ?? '/secrets');
  for (const line of run(store)) process.stdout.write(`deploy-secrets: ${line}\n`);
}

if (require.main === module) {
  try {
    main();
  } catch (error) {
    process.stderr.write(`deploy-secrets: ${(error as Error).message}\n`);
    process.exit(1);
  }
}
