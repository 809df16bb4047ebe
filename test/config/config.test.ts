import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { loadConfig, SESSION_SECRET_PLACEHOLDER } from '../../config/config';
import { GOOD_SECRET, PRODUCTION, problemsOf } from '../support/config';

describe('loadConfig', () => {
  test('when nothing is set, then development defaults apply and a random secret is generated', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      env: 'development',
      isProduction: false,
      host: '127.0.0.1',
      port: 3000,
      publicOrigin: 'http://localhost:3000',
      redisKeyPrefix: 'app:',
      trustProxy: 0,
      logLevel: 'info',
      shutdownTimeoutMs: 10000,
      registrationEnabled: true,
      passwordMinLength: 12,
      session: { cookieName: 'sid', idleTimeoutS: 1800, absoluteTimeoutS: 28800 },
    });
    expect(config.session.secrets[0]!.length).toBeGreaterThanOrEqual(32);
    expect(config.warnings.join()).toMatch(/SESSION_SECRET/);
    expect(Object.isFrozen(config) && Object.isFrozen(config.session)).toBe(true);
  });

  test('when production is complete, then it loads with the __Host- cookie', () => {
    const config = loadConfig(PRODUCTION);
    expect(config.isProduction).toBe(true);
    expect(config.session.cookieName).toBe('__Host-sid');
    expect(config.publicOrigin).toBe('https://app.example.test');
  });

  test('when production lacks everything, then every problem is listed at once', () => {
    const problems = problemsOf({
      NODE_ENV: 'production',
      PUBLIC_URL: 'http://app.example.test',
      TRUST_PROXY: 'true',
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^SESSION_SECRET is required/),
        expect.stringMatching(/^DATABASE_URL is required/),
        expect.stringMatching(/^REDIS_URL is required/),
        expect.stringMatching(/^PUBLIC_URL must be https/),
        expect.stringMatching(/^TRUST_PROXY/),
      ]),
    );
    expect(problems).toHaveLength(5);
  });

  test.each([
    ['a short entry', 'short-secret'],
    ['the .env.example placeholder', SESSION_SECRET_PLACEHOLDER],
    ['a short second entry', `${GOOD_SECRET},tooshort`],
  ])('when the production session secret has %s, then start is refused', (_what, secret) => {
    expect(problemsOf({ ...PRODUCTION, SESSION_SECRET: secret })).toEqual([
      expect.stringMatching(/SESSION_SECRET entry \d (is shorter than 32|is the \.env\.example placeholder)/),
    ]);
  });

  test('when several secrets are given, then the first signs and all are kept for verification', () => {
    const other = GOOD_SECRET.toUpperCase();
    expect(loadConfig({ ...PRODUCTION, SESSION_SECRET: `${GOOD_SECRET}, ${other}` }).session.secrets).toEqual(
      [GOOD_SECRET, other],
    );
  });

  test('when the .env.example placeholder changes, then the refusal still matches it', () => {
    const example = readFileSync(path.join(__dirname, '..', '..', '.env.example'), 'utf8');
    expect(example).toContain(`SESSION_SECRET=${SESSION_SECRET_PLACEHOLDER}\n`);
  });

  test.each([undefined, '0'])(
    'when production trusts no proxy (TRUST_PROXY=%p), then start is refused',
    (value) => {
      const env: Record<string, string> = { ...PRODUCTION };
      if (value === undefined) delete env.TRUST_PROXY;
      else env.TRUST_PROXY = value;
      expect(problemsOf(env)).toEqual([
        expect.stringMatching(/^TRUST_PROXY must be 1 or more in production/),
      ]);
    },
  );

  test.each(['true', '-1', '6', '1.5', 'yes'])(
    'when TRUST_PROXY is %p, then it is refused in any mode',
    (value) => {
      expect(problemsOf({ TRUST_PROXY: value })).toEqual([expect.stringMatching(/^TRUST_PROXY/)]);
    },
  );

  test.each([
    ['PUBLIC_URL', 'https://app.example.test/path'],
    ['PUBLIC_URL', 'ftp://app.example.test'],
    ['DATABASE_URL', 'mysql://db/app'],
    ['REDIS_URL', 'http://redis'],
    ['PORT', '70000'],
    ['LOG_LEVEL', 'verbose'],
    ['REGISTRATION_ENABLED', 'yes'],
    ['PASSWORD_MIN_LENGTH', '4'],
    ['SESSION_IDLE_TIMEOUT_S', '0'],
    ['ADMIN_EMAIL', 'not-an-email'],
    ['NODE_ENV', 'staging'],
    ['HASH_CONCURRENCY', '0'],
    ['HASH_QUEUE_MAX', '-1'],
    ['HASH_QUEUE_WAIT_MS', '0'],
    ['HASH_THREAD_NICE', '20'],
    ['HASH_THREAD_NICE', '-5'],
    ['HASH_REFUSAL_DELAY_MS', '-1'],
    ['HASH_REFUSAL_DELAY_MS', '5001'],
  ])('when %s is %p, then the variable is named in the error', (name, value) => {
    expect(problemsOf({ PUBLIC_URL: 'http://localhost:3000', [name]: value })).toEqual([
      expect.stringMatching(new RegExp(`^${name}:`)),
    ]);
  });

  test('when the hashing bound is not set, then it leaves a core and a libuv thread to the rest of the app, with 16 places in line per slot and a 1 s wait', () => {
    const cores = availableParallelism();

    const roomyPool = loadConfig({ UV_THREADPOOL_SIZE: '64' }).hashing;
    const defaultPool = loadConfig({}).hashing;
    const smallPool = loadConfig({ UV_THREADPOOL_SIZE: '2' }).hashing;

    expect(roomyPool).toEqual({
      concurrency: Math.max(1, cores - 1),
      queueMax: 16 * Math.max(1, cores - 1),
      maxWaitMs: 750,
      // The hashing threads yield to the event loop by default (src/lib/thread-pool.ts).
      threadNice: 10,
      // A refusal on arrival leaves 250 ms later (ADR 0042).
      refusalDelayMs: 250,
    });
    // libuv's default pool of 4 threads caps it at 3, whatever the cores.
    expect(defaultPool.concurrency).toBe(Math.max(1, Math.min(cores - 1, 3)));
    expect(smallPool).toMatchObject({ concurrency: 1, queueMax: 16 });
  });

  test('when the hashing bound is set, then it is used as given, and one that can take every libuv thread is warned about', () => {
    const given = loadConfig({
      HASH_CONCURRENCY: '3',
      HASH_QUEUE_MAX: '0',
      HASH_QUEUE_WAIT_MS: '50',
      HASH_THREAD_NICE: '0',
      HASH_REFUSAL_DELAY_MS: '0',
    });
    const whole = loadConfig({ HASH_CONCURRENCY: '4' });
    const raised = loadConfig({ HASH_CONCURRENCY: '4', UV_THREADPOOL_SIZE: '8' });

    expect(given.hashing).toEqual({
      concurrency: 3,
      queueMax: 0,
      maxWaitMs: 50,
      threadNice: 0,
      refusalDelayMs: 0,
    });
    expect(given.warnings.join('\n')).not.toMatch(/HASH_CONCURRENCY/);
    expect(whole.hashing).toMatchObject({ concurrency: 4, queueMax: 64 });
    expect(whole.warnings.join('\n')).toMatch(/HASH_CONCURRENCY 4 .*UV_THREADPOOL_SIZE 4/);
    expect(raised.warnings.join('\n')).not.toMatch(/HASH_CONCURRENCY/);
  });

  test('when timeouts are small, then they are accepted (tests rely on it)', () => {
    const config = loadConfig({
      SESSION_IDLE_TIMEOUT_S: '2',
      SESSION_ABSOLUTE_TIMEOUT_S: '3',
      SHUTDOWN_TIMEOUT_MS: '200',
    });
    expect(config.session).toMatchObject({ idleTimeoutS: 2, absoluteTimeoutS: 3 });
    expect(config.shutdownTimeoutMs).toBe(200);
  });

  test('when a secret comes from NAME_FILE, then the file content is used without its trailing newline', () => {
    const files: Record<string, string> = {
      '/run/secrets/session': `${GOOD_SECRET}\n`,
      '/run/secrets/db': 'postgres://a@b/c\n',
    };
    const config = loadConfig(
      {
        ...PRODUCTION,
        SESSION_SECRET: '',
        SESSION_SECRET_FILE: '/run/secrets/session',
        DATABASE_URL: undefined as unknown as string,
        DATABASE_URL_FILE: '/run/secrets/db',
      },
      (p) => files[p] ?? '',
    );
    expect(config.session.secrets).toEqual([GOOD_SECRET]);
    expect(config.databaseUrl).toBe('postgres://a@b/c');
  });

  test('when both NAME and NAME_FILE are set, or the file is missing, then it is refused', () => {
    const missing = () => {
      throw Object.assign(new Error('nope'), { code: 'ENOENT' });
    };
    expect(problemsOf({ ...PRODUCTION, SESSION_SECRET_FILE: '/x' }, missing)).toEqual([
      'SESSION_SECRET and SESSION_SECRET_FILE are both set: give one',
    ]);
    expect(
      problemsOf({ ...PRODUCTION, SESSION_SECRET: '', SESSION_SECRET_FILE: '/missing' }, missing),
    ).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/SESSION_SECRET_FILE: cannot read \/missing \(ENOENT\)/),
      ]),
    );
  });

  test('when a NAME_FILE is empty, then the secret counts as unset, as an empty variable does, and production still requires what it requires', () => {
    const files: Record<string, string> = { '/run/secrets/empty': '', '/run/secrets/newline': '\n' };
    const read = (p: string) => {
      if (p in files) return files[p]!;
      throw Object.assign(new Error('nope'), { code: 'ENOENT' });
    };
    expect(
      problemsOf({ ...PRODUCTION, SESSION_SECRET: '', SESSION_SECRET_FILE: '/run/secrets/empty' }, read),
    ).toEqual([expect.stringMatching(/^SESSION_SECRET is required in production/)]);
    expect(
      problemsOf({ ...PRODUCTION, DATABASE_URL: '', DATABASE_URL_FILE: '/run/secrets/newline' }, read),
    ).toEqual(['DATABASE_URL is required in production']);
  });

  test('when a NAME_FILE cannot be read for another reason than being empty, then it is refused', () => {
    const unreadable = () => {
      throw Object.assign(new Error('nope'), { code: 'EACCES' });
    };
    expect(problemsOf({ ...PRODUCTION, SMTP_URL_FILE: '/run/secrets/app/smtp_url' }, unreadable)).toEqual([
      'SMTP_URL_FILE: cannot read /run/secrets/app/smtp_url (EACCES)',
    ]);
  });

  test('when variables are empty strings, then they count as unset', () => {
    expect(loadConfig({ PORT: '', ADMIN_EMAIL: '', LOG_LEVEL: '' })).toMatchObject({
      port: 3000,
      logLevel: 'info',
    });
  });

  test('when ADMIN_EMAIL has capitals and spaces, then it is normalized', () => {
    expect(loadConfig({ ADMIN_EMAIL: '  Admin@Example.TEST ' }).admin.email).toBe('admin@example.test');
  });
});
