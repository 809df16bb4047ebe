import { spawn, type ChildProcess } from 'node:child_process';
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
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient } from 'redis';
import { loadConfig } from '../../config/config';
import {
  OWNERS,
  retireSessionSecrets,
  rotateDatabasePassword,
  rotateRedisPassword,
  rotateSessionSecret,
  SecretsStore,
} from '../../scripts/deploy-secrets';
import { freePort } from '../support/ports';
import { runScript } from '../support/run-script';
import { describeWithTool } from '../support/tools';

/**
 * scripts/deploy-secrets.ts, the compose stack's secrets-init: the real entry point on empty
 * "volumes" (folders), then the rotations, and the generated redis.conf under a real redis-server.
 */

type Volume = keyof typeof OWNERS;
const FILES: Record<Volume, string[]> = {
  app: ['database_url', 'redis_url', 'session_secret', 'smtp_url'],
  postgres: ['app_password', 'superuser_password'],
  redis: ['redis.conf'],
};
const isRoot = process.getuid?.() === 0;
/** The app in production reading its secrets from the generated files, as docker-compose.yml has it. */
const PRODUCTION_WITH_FILES = {
  NODE_ENV: 'production',
  PUBLIC_URL: 'https://app.example.test',
  TRUST_PROXY: '1',
  DATABASE_URL_FILE: 'app/database_url',
  REDIS_URL_FILE: 'app/redis_url',
  SESSION_SECRET_FILE: 'app/session_secret',
};

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

  test('when its files are read, then the URLs carry the passwords the servers are given, and the app accepts them in production', () => {
    const files = snapshot(dir);
    const appPassword = files['postgres/app_password']!.trim();
    const redisPassword = /^requirepass (\S+)$/m.exec(files['redis/redis.conf']!)![1]!;
    expect(files['app/database_url']!.trim()).toBe(`postgres://app:${appPassword}@postgres:5432/app`);
    expect(files['app/redis_url']!.trim()).toBe(`redis://:${redisPassword}@redis:6379`);
    // Three different passwords, long and random.
    const passwords = [appPassword, redisPassword, files['postgres/superuser_password']!.trim()];
    expect(new Set(passwords).size).toBe(3);
    for (const password of passwords) expect(password).toMatch(/^[A-Za-z0-9_-]{43}$/);

    const config = loadConfig(PRODUCTION_WITH_FILES, (file) => readFileSync(path.join(dir, file), 'utf8'));
    expect(config.session.secrets).toHaveLength(1);
    expect(config.session.secrets[0]!.length).toBeGreaterThanOrEqual(64);
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

  test('when the database or Redis password is rotated, then the server`s copy and the app`s URL change together', () => {
    const before = snapshot(dir);
    rotateDatabasePassword(store);
    const appPassword = store.read('postgres', 'app_password')!;
    expect(appPassword).not.toBe(before['postgres/app_password']!.trim());
    expect(store.read('app', 'database_url')).toBe(`postgres://app:${appPassword}@postgres:5432/app`);

    rotateRedisPassword(store);
    const redisPassword = /^requirepass (\S+)$/m.exec(store.read('redis', 'redis.conf')!)![1]!;
    expect(`${redisPassword}\n`).not.toBe(before['redis/redis.conf']);
    expect(store.read('app', 'redis_url')).toBe(`redis://:${redisPassword}@redis:6379`);
    // Everything else is as it was.
    expect(snapshot(dir)['postgres/superuser_password']).toBe(before['postgres/superuser_password']);
    expect(snapshot(dir)['app/session_secret']).toBe(before['app/session_secret']);
  });
});

describeWithTool(
  'redis-server',
  'apt-get install redis-server',
  'the generated redis.conf under a real Redis',
  () => {
    let dir: string;
    let redis: ChildProcess | undefined;
    let port: number;
    beforeAll(async () => {
      dir = mkdtempSync(path.join(tmpdir(), 'deploy-secrets-redis-'));
      expect(await runScript('scripts/deploy-secrets.ts', { SECRETS_DIR: dir })).toMatchObject({ code: 0 });
      port = await freePort();
      // The compose service's way: the config file first, then the options from docker-compose.yml.
      const child = spawn(
        'redis-server',
        [
          path.join(dir, 'redis/redis.conf'),
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      redis = child;
      await new Promise<void>((resolve, reject) => {
        let output = '';
        const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 5000);
        child.stdout!.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          if (output.includes('Ready to accept connections')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.once('exit', (code) => reject(new Error(`redis-server exited (${code}):\n${output}`)));
      });
    });
    afterAll(() => {
      redis?.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });

    test('when a client has no password, then Redis refuses it; with the app`s REDIS_URL, then it is let in', async () => {
      // Raw RESP, so no client library's handshake is in the way.
      const reply = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
        socket.once('data', (chunk: Buffer) => {
          socket.destroy();
          resolve(chunk.toString());
        });
        socket.once('error', reject);
      });
      expect(reply).toMatch(/^-NOAUTH/);

      // The app's URL, with the compose host name swapped for this test's server.
      const url = new URL(readFileSync(path.join(dir, 'app/redis_url'), 'utf8').trim());
      url.host = `127.0.0.1:${port}`;
      const client = createClient({ url: url.toString() });
      client.on('error', () => {});
      await client.connect();
      expect(await client.ping()).toBe('PONG');
      await client.close();
    });
  },
);
