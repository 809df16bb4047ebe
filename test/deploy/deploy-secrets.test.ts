import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../config/config';
import {
  OWNERS,
  newMfaKey,
  retireMfaKeys,
  retireSessionSecrets,
  rotateDatabasePassword,
  rotateMfaKey,
  rotateRedisPassword,
  rotateSessionSecret,
  SecretsStore,
} from '../../scripts/deploy-secrets';
import { ROOT, runScript } from '../support/run-script';

/**
 * scripts/deploy-secrets.ts, the compose stack's secrets-init: the real entry point on empty
 * "volumes" (folders), then the rotations. The generated users.acl under a real redis-server, with the
 * app running through it: test/deploy/redis-acl.test.ts.
 */

type Volume = keyof typeof OWNERS;
const FILES: Record<Volume, string[]> = {
  app: ['database_url', 'mfa_encryption_keys', 'redis_url', 'session_secret', 'smtp_url'],
  postgres: ['app_password', 'superuser_password'],
  redis: ['admin_password', 'healthcheck_password', 'users.acl'],
};
const isRoot = process.getuid?.() === 0;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
/** The app in production reading its secrets from the generated files, as docker-compose.yml has it. */
const PRODUCTION_WITH_FILES = {
  NODE_ENV: 'production',
  PUBLIC_URL: 'https://app.example.test',
  TRUST_PROXY: '1',
  DATABASE_URL_FILE: 'app/database_url',
  REDIS_URL_FILE: 'app/redis_url',
  SESSION_SECRET_FILE: 'app/session_secret',
  MFA_ENCRYPTION_KEYS_FILE: 'app/mfa_encryption_keys',
};
/** The app's configuration in production with the files in `dir`. */
const productionConfig = (dir: string) =>
  loadConfig(PRODUCTION_WITH_FILES, (file) => readFileSync(path.join(dir, file), 'utf8'));
/** An id that says when the key was made (UTC, to the second), within what config/config.ts accepts. */
const DATED_KEY_ID = /^\d{4}-\d{2}-\d{2}-\d{6}(-\d+)?$/;

function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(
    (Object.keys(FILES) as Volume[]).flatMap((volume) =>
      readdirSync(path.join(dir, volume)).map((name) => [
        `${volume}/${name}`,
        readFileSync(path.join(dir, volume, name), 'utf8'),
      ]),
    ),
  );
}

describe('deploy-secrets init', () => {
  let dir: string;
  let first: { code: number | null; stdout: string; stderr: string };
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'deploy-secrets-'));
    first = await runScript('scripts/deploy-secrets.ts', { SECRETS_DIR: dir });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // ASVS 5.0 13.2.3, 13.3.2: generated credentials, each private to its consumer.
  test('when it runs on empty volumes, then every secret exists, private to the service that reads it', () => {
    expect(first).toMatchObject({ code: 0 });
    for (const [volume, names] of Object.entries(FILES) as [Volume, string[]][]) {
      const folder = statSync(path.join(dir, volume));
      expect({ volume, mode: folder.mode & 0o777 }).toEqual({ volume, mode: 0o700 });
      expect(readdirSync(path.join(dir, volume)).sort()).toEqual(names);
      for (const name of names) {
        const file = statSync(path.join(dir, volume, name));
        expect({ name, mode: file.mode & 0o777 }).toEqual({ name, mode: 0o600 });
        // As root (in the container, and in CI) each volume is handed to its service's user.
        if (isRoot)
          expect([folder.uid, file.uid, file.gid]).toEqual([
            OWNERS[volume].uid,
            OWNERS[volume].uid,
            OWNERS[volume].gid,
          ]);
      }
    }
  });

  test('when its files are read, then the Redis URL carries the password Redis is given, the database URL none (a certificate logs in, ADR 0035), and the app accepts them in production', () => {
    const files = snapshot(dir);
    const appPassword = files['postgres/app_password']!.trim();
    const redisPassword = new URL(files['app/redis_url']!.trim()).password;
    expect(files['app/database_url']!.trim()).toBe('postgres://app@postgres:5432/app?sslmode=verify-full');
    expect(files['app/redis_url']!.trim()).toBe(`rediss://app:${redisPassword}@redis:6379`);
    // users.acl knows the app's Redis password by its SHA-256 only.
    expect(files['redis/users.acl']).toContain(`#${sha256(redisPassword)}`);
    // Five different passwords, long and random.
    const passwords = [
      appPassword,
      redisPassword,
      files['postgres/superuser_password']!.trim(),
      files['redis/healthcheck_password']!.trim(),
      files['redis/admin_password']!.trim(),
    ];
    expect(new Set(passwords).size).toBe(5);
    for (const password of passwords) expect(password).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const config = productionConfig(dir);
    expect(config.session.secrets).toHaveLength(1);
    expect(config.session.secrets[0]!.length).toBeGreaterThanOrEqual(64);
  });

  // ASVS 5.0 11.3.2, 13.3.1: the key that encrypts TOTP secrets at rest, generated on the server.
  test('when the app reads mfa_encryption_keys, then it holds one random 256-bit key under a dated id, and admins must enrol a second factor', () => {
    const entry = readFileSync(path.join(dir, 'app/mfa_encryption_keys'), 'utf8');
    expect(entry).toMatch(/^[a-z0-9-]{1,32}:[A-Za-z0-9+/]{43}=\n$/);
    const config = productionConfig(dir);
    expect(config.mfaKeys).toHaveLength(1);
    const [key] = config.mfaKeys!;
    expect(key!.id).toMatch(DATED_KEY_ID);
    expect(key!.id.slice(0, 10)).toBe(new Date().toISOString().slice(0, 10));
    expect(key!.key).toHaveLength(32);
    expect(new Set(key!.key).size).toBeGreaterThan(8);
    expect(config.requireMfaForAdmins).toBe(true);
  });

  test('when it reports, then it names files and never prints a secret', () => {
    const files = snapshot(dir);
    const output = first.stdout + first.stderr;
    expect(output).toMatch(/created postgres\/app_password/);
    for (const content of Object.values(files)) {
      for (const token of content.match(/[A-Za-z0-9_-]{32,}/g) ?? []) expect(output).not.toContain(token);
    }
  });

  test('when it runs again (every `docker compose up`), then nothing changes', async () => {
    const before = snapshot(dir);
    const again = await runScript('scripts/deploy-secrets.ts', { SECRETS_DIR: dir });
    expect(again).toMatchObject({ code: 0, stdout: expect.stringMatching(/kept postgres\/app_password/) });
    expect(snapshot(dir)).toEqual(before);
  });

  test('when it runs again, then the MFA key ring is kept byte for byte: a new key would make every stored TOTP secret unreadable', async () => {
    const file = path.join(dir, 'app/mfa_encryption_keys');
    const before = readFileSync(file);
    const again = await runScript('scripts/deploy-secrets.ts', { SECRETS_DIR: dir });
    expect(again).toMatchObject({ code: 0, stdout: expect.stringContaining('kept app/mfa_encryption_keys') });
    expect(readFileSync(file).equals(before)).toBe(true);
  });

  test.each([
    ['empty', ''],
    ['not a key ring', 'half-a-copied-line'],
  ])(
    'when mfa_encryption_keys is there but %s (a failed restore), then init stops and says so instead of making a new key',
    async (_what, content) => {
      const file = path.join(dir, 'app/mfa_encryption_keys');
      const saved = readFileSync(file);
      writeFileSync(file, content);
      try {
        const again = await runScript('scripts/deploy-secrets.ts', { SECRETS_DIR: dir });
        expect(again.code).not.toBe(0);
        expect(again.stderr).toContain('app/mfa_encryption_keys exists but holds no valid key ring');
        expect(readFileSync(file, 'utf8')).toBe(content);
      } finally {
        writeFileSync(file, saved);
      }
    },
  );
});

describe('deploy-secrets init with provided secrets', () => {
  const SMTP_URL = 'smtps://mailer:provided-password-0123456789@smtp.example.test:465';
  let dir: string;
  let provided: string;
  const init = () =>
    runScript('scripts/deploy-secrets.ts', { SECRETS_DIR: dir, PROVIDED_SECRETS_DIR: provided });
  const smtpUrlCopy = () => readFileSync(path.join(dir, 'app/smtp_url'), 'utf8');
  /** The app's configuration with the copy, as docker-compose.yml's SMTP_URL_FILE points at it. */
  const mailOf = () =>
    loadConfig(
      {
        ...PRODUCTION_WITH_FILES,
        SMTP_URL_FILE: 'app/smtp_url',
        MAIL_FROM: 'no-reply@example.test',
      },
      (file) => readFileSync(path.join(dir, file), 'utf8'),
    ).mail;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'deploy-secrets-provided-'));
    provided = path.join(dir, 'provided');
    mkdirSync(provided);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('when the operator provides smtp_url, then the app`s volume gets a private copy, and the report never shows it', async () => {
    // The operator's own file, as an editor leaves it: readable by others, a trailing newline.
    writeFileSync(path.join(provided, 'smtp_url'), `${SMTP_URL}\r\n`, { mode: 0o644 });

    const result = await init();

    expect(result).toMatchObject({
      code: 0,
      stdout: expect.stringContaining('copied the provided smtp_url to app/smtp_url'),
    });
    expect(smtpUrlCopy()).toBe(`${SMTP_URL}\n`);
    const copy = statSync(path.join(dir, 'app/smtp_url'));
    expect(copy.mode & 0o777).toBe(0o600);
    if (isRoot) expect([copy.uid, copy.gid]).toEqual([OWNERS.app.uid, OWNERS.app.gid]);
    expect(result.stdout + result.stderr).not.toContain('provided-password');
    expect(mailOf()).toMatchObject({ transport: 'smtp', smtp: { host: 'smtp.example.test', secure: true } });
  });

  test('when the operator removes smtp_url and init runs again, then the copy is emptied and mail is off', async () => {
    writeFileSync(path.join(provided, 'smtp_url'), SMTP_URL);
    expect(await init()).toMatchObject({ code: 0 });
    rmSync(path.join(provided, 'smtp_url'));

    const again = await init();

    expect(again).toMatchObject({ code: 0, stdout: expect.stringContaining('smtp_url not provided') });
    expect(smtpUrlCopy().trim()).toBe('');
    expect(statSync(path.join(dir, 'app/smtp_url')).mode & 0o777).toBe(0o600);
    expect(mailOf()).toEqual({ transport: 'off' });
  });

  test('when nothing is provided, or no folder is named, then smtp_url is empty and everything else is made', async () => {
    expect(await init()).toMatchObject({ code: 0 });
    expect(smtpUrlCopy().trim()).toBe('');

    rmSync(path.join(dir, 'app'), { recursive: true });
    expect(await runScript('scripts/deploy-secrets.ts', { SECRETS_DIR: dir })).toMatchObject({ code: 0 });
    expect(smtpUrlCopy().trim()).toBe('');
    expect(readdirSync(path.join(dir, 'app')).sort()).toEqual(FILES.app);
  });

  test.each([
    ['empty', (file: string) => writeFileSync(file, ' \n')],
    [
      'a dangling symlink (its target is outside the mount)',
      (file: string) => symlinkSync('/nowhere/smtp_url', file),
    ],
    ['a folder', (file: string) => mkdirSync(file)],
  ])(
    'when the provided smtp_url is %s, then init fails and says so, and the copy is not touched',
    async (_what, make) => {
      writeFileSync(path.join(provided, 'smtp_url'), SMTP_URL);
      expect(await init()).toMatchObject({ code: 0 });
      rmSync(path.join(provided, 'smtp_url'));
      make(path.join(provided, 'smtp_url'));

      const result = await init();

      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^deploy-secrets: .*smtp_url/m);
      expect(smtpUrlCopy()).toBe(`${SMTP_URL}\n`);
    },
  );

  test('when the named folder does not exist, then init fails rather than turning mail off', async () => {
    rmSync(provided, { recursive: true });
    const result = await init();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`PROVIDED_SECRETS_DIR ${provided} does not exist`);
  });
});

describe('deploy-secrets rotations', () => {
  let dir: string;
  let store: SecretsStore;
  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'deploy-secrets-rotate-'));
    expect(await runScript('scripts/deploy-secrets.ts', { SECRETS_DIR: dir })).toMatchObject({ code: 0 });
    store = new SecretsStore(dir);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('when the session secret is rotated, then a new one signs and the old one still verifies, until it is retired', () => {
    const original = store.read('app', 'session_secret')!;
    rotateSessionSecret(store);
    const rotated = store.read('app', 'session_secret')!.split(',');
    expect(rotated).toHaveLength(2);
    expect(rotated[1]).toBe(original);
    expect(rotated[0]).not.toBe(original);
    const config = loadConfig({
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://app.example.test',
      TRUST_PROXY: '1',
      DATABASE_URL: 'postgres://app:x@postgres:5432/app',
      REDIS_URL: 'redis://redis:6379',
      SESSION_SECRET: rotated.join(','),
    });
    expect(config.session.secrets).toEqual(rotated);

    retireSessionSecrets(store);
    expect(store.read('app', 'session_secret')).toBe(rotated[0]);
    expect(statSync(store.file('app', 'session_secret')).mode & 0o777).toBe(0o600);
  });

  test('when the MFA key is rotated, then a new dated key seals and the old ones still open their rows, until they are retired', () => {
    const original = store.read('app', 'mfa_encryption_keys')!;
    const report = [...rotateMfaKey(store), ...rotateMfaKey(store)].join('\n');
    expect(report).toContain('1 older one(s) still open');
    expect(report).toContain('2 older one(s) still open');
    const ring = productionConfig(dir).mfaKeys!;
    expect(ring).toHaveLength(3);
    expect(ring.map((k) => k.id)).toEqual([...new Set(ring.map((k) => k.id))]);
    for (const k of ring) expect(k.id).toMatch(DATED_KEY_ID);
    expect(store.read('app', 'mfa_encryption_keys')!.split(',')[2]).toBe(original);
    expect(new Set(ring.map((k) => k.key.toString('hex'))).size).toBe(3);
    // Nothing of a key reaches the output.
    for (const k of ring) expect(report).not.toContain(k.key.toString('base64'));

    const first = store.read('app', 'mfa_encryption_keys')!.split(',')[0];
    retireMfaKeys(store);
    expect(store.read('app', 'mfa_encryption_keys')).toBe(first);
    expect(productionConfig(dir).mfaKeys!.map((k) => k.id)).toEqual([ring[0]!.id]);
    expect(statSync(store.file('app', 'mfa_encryption_keys')).mode & 0o777).toBe(0o600);
  });

  test('when two keys are made in the same second, then their ids still differ', () => {
    const now = new Date('2026-11-30T14:28:55.123Z');
    const first = newMfaKey([], now).split(':')[0]!;
    expect(first).toBe('2026-11-30-142855');
    expect(newMfaKey([first], now).split(':')[0]).toBe('2026-11-30-142855-2');
    expect(newMfaKey([first, `${first}-2`], now).split(':')[0]).toBe('2026-11-30-142855-3');
  });

  test('when retire-mfa-keys runs before any key exists, then it fails and says so', () => {
    store.remove('app', 'mfa_encryption_keys');
    expect(() => retireMfaKeys(store)).toThrow('app/mfa_encryption_keys does not exist: run init first');
  });

  test('when the database or Redis password is rotated, then the server`s copy changes, and the app`s Redis URL with it', () => {
    const before = snapshot(dir);
    rotateDatabasePassword(store);
    const appPassword = store.read('postgres', 'app_password')!;
    expect(appPassword).not.toBe(before['postgres/app_password']!.trim());
    expect(store.read('app', 'database_url')).toBe('postgres://app@postgres:5432/app?sslmode=verify-full');

    rotateRedisPassword(store);
    const redisPassword = new URL(store.read('app', 'redis_url')!).password;
    expect(store.read('app', 'redis_url')).not.toBe(before['app/redis_url']!.trim());
    expect(store.read('app', 'redis_url')).toBe(`rediss://app:${redisPassword}@redis:6379`);
    expect(store.read('redis', 'users.acl')).toContain(`#${sha256(redisPassword)}`);
    // Everything else is as it was.
    const after = snapshot(dir);
    for (const name of [
      'postgres/superuser_password',
      'app/session_secret',
      'app/mfa_encryption_keys',
      'redis/healthcheck_password',
      'redis/admin_password',
    ])
      expect({ name, value: after[name] }).toEqual({ name, value: before[name] });
  });
});

describe('deploy-secrets init on volumes from before the Redis ACL', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'deploy-secrets-upgrade-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('when redis.conf and a password-only redis_url are there, then the app user keeps that password and redis.conf is removed', async () => {
    const legacy = 'legacy-password-0123456789abcdefghijklmnopqrstu';
    const store = new SecretsStore(dir);
    store.write('redis', 'redis.conf', `requirepass ${legacy}\n`);
    store.write('app', 'redis_url', `redis://:${legacy}@redis:6379`);

    const result = await runScript('scripts/deploy-secrets.ts', { SECRETS_DIR: dir });

    expect(result).toMatchObject({ code: 0, stdout: expect.stringContaining('removed redis/redis.conf') });
    expect(store.read('app', 'redis_url')).toBe(`rediss://app:${legacy}@redis:6379`);
    expect(readdirSync(path.join(dir, 'redis')).sort()).toEqual(FILES.redis);
    expect(store.read('redis', 'users.acl')).toContain(`#${sha256(legacy)}`);
  });

  test('when the certificates of the layout before the *-tls volumes are there, then they and their temporary files are removed, and the secrets kept', async () => {
    // The layout data-store-certs.sh wrote before (ADR 0035): its files beside secrets-init's.
    expect(await runScript('scripts/deploy-secrets.ts', { SECRETS_DIR: dir })).toMatchObject({ code: 0 });
    const secrets = snapshot(dir);
    execFileSync('sh', [path.join(ROOT, 'scripts', 'data-store-certs.sh')], {
      env: { ...process.env, TLS_DIR: dir, CA_DIR: path.join(dir, 'ca') },
      stdio: 'ignore',
    });
    writeFileSync(path.join(dir, 'app', '.redis-client.key.new'), 'half a key');
    expect(readdirSync(path.join(dir, 'redis'))).toContain('server.key');

    const result = await runScript('scripts/deploy-secrets.ts', { SECRETS_DIR: dir });

    expect(result).toMatchObject({ code: 0, stdout: expect.stringContaining('removed redis/server.key') });
    expect(result.stdout).toContain('removed app/.redis-client.key.new');
    for (const volume of Object.keys(FILES) as Volume[])
      expect(readdirSync(path.join(dir, volume)).sort()).toEqual(FILES[volume]);
    expect(snapshot(dir)).toEqual(secrets);
  });

  test('when secrets-init is given REDIS_KEY_PREFIX, then the app user is limited to that prefix; an invalid one stops it', async () => {
    const store = new SecretsStore(dir);
    expect(
      await runScript('scripts/deploy-secrets.ts', { SECRETS_DIR: dir, REDIS_KEY_PREFIX: 'shop:' }),
    ).toMatchObject({
      code: 0,
    });
    expect(store.read('redis', 'users.acl')).toMatch(/^user app reset on #[0-9a-f]{64} ~shop:\* /m);
    const invalid = await runScript('scripts/deploy-secrets.ts', {
      SECRETS_DIR: dir,
      REDIS_KEY_PREFIX: 'a*',
    });
    expect(invalid).toMatchObject({ code: 1, stderr: expect.stringContaining('REDIS_KEY_PREFIX') });
  });
});
