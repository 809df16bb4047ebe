import { loadConfig } from '../../config/config';
import { PRODUCTION, problemsOf } from '../support/config';

/**
 * The TLS rules for DATABASE_URL and REDIS_URL (config/data-store-tls.ts): what production refuses,
 * what development only warns about, and the CA files read at start. The connections themselves are
 * tested against real servers in test/lib/data-store-tls.test.ts.
 */

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const FILES: Record<string, string> = { '/run/ca.pem': PEM, '/run/empty.pem': '', '/run/key.pem': 'a key' };
const readFile = (path: string): string => {
  const content = FILES[path];
  if (content === undefined) throw Object.assign(new Error('not found'), { code: 'ENOENT' });
  return content;
};

const DEVELOPMENT = { NODE_ENV: 'development' };
const database = (url: string, extra: Record<string, string> = {}) => ({
  ...PRODUCTION,
  DATABASE_URL: url,
  ...extra,
});

describe('TLS to Postgres', () => {
  test('when DATABASE_URL asks for verify-full with DATABASE_CA_FILE, then production loads it, verifying everything, and pg gets the URL without sslmode', () => {
    const config = loadConfig(
      database('postgres://app:pw@db.example.test:5432/app?sslmode=verify-full&application_name=x', {
        DATABASE_CA_FILE: '/run/ca.pem',
      }),
      readFile,
    );
    expect(config.databaseTls).toEqual({ ca: PEM, verifyCertificate: true, verifyHostName: true });
    expect(config.databaseUrl).toBe('postgres://app:pw@db.example.test:5432/app?application_name=x');
    expect(config.warnings.join('\n')).not.toMatch(/DATABASE_URL/);
  });

  test('when the CA comes from sslrootcert, then it is read at start like DATABASE_CA_FILE', () => {
    const config = loadConfig(
      database('postgres://app@db.example.test/app?sslmode=verify-full&sslrootcert=/run/ca.pem'),
      readFile,
    );
    expect(config.databaseTls?.ca).toBe(PEM);
    expect(config.databaseUrl).toBe('postgres://app@db.example.test/app');
  });

  test('when verify-full has no CA file, then Node’s default roots verify the server (a managed service with a public CA)', () => {
    const config = loadConfig(database('postgres://app@db.example.test/app?sslmode=verify-full'));
    expect(config.databaseTls).toEqual({ ca: undefined, verifyCertificate: true, verifyHostName: true });
  });

  test.each([
    ['require', 'certificate and host name'],
    ['no-verify', 'certificate and host name'],
    ['verify-ca', 'host name'],
  ])(
    'when production asks for sslmode=%s, then start is refused: it does not verify the %s',
    (mode, what) => {
      expect(
        problemsOf(
          database(`postgres://app@db.example.test/app?sslmode=${mode}`, { DATABASE_CA_FILE: '/run/ca.pem' }),
          readFile,
        ),
      ).toEqual([
        `DATABASE_URL: sslmode=${mode} does not verify the server's ${what}: use sslmode=verify-full (with DATABASE_CA_FILE for a private CA)`,
      ]);
    },
  );

  test.each([
    ['require', { ca: undefined, verifyCertificate: false, verifyHostName: false }],
    ['no-verify', { ca: undefined, verifyCertificate: false, verifyHostName: false }],
    ['verify-ca', { ca: undefined, verifyCertificate: true, verifyHostName: false }],
  ])(
    'when development asks for sslmode=%s, then it connects as libpq would and warns that production refuses it',
    (mode, tls) => {
      const config = loadConfig({
        ...DEVELOPMENT,
        DATABASE_URL: `postgres://app@db.example.test/app?sslmode=${mode}`,
      });
      expect(config.databaseTls).toEqual(tls);
      expect(config.warnings.join('\n')).toMatch(
        new RegExp(`sslmode=${mode} does not verify .*production refuses it`),
      );
    },
  );

  test.each([
    ['prefer', /^DATABASE_URL: sslmode=prefer, which may fall back to plain text, is not supported/],
    ['allow', /^DATABASE_URL: sslmode=allow, which may fall back to plain text, is not supported/],
    ['verify_full', /^DATABASE_URL: this sslmode is not supported: use sslmode=verify-full/],
  ])('when sslmode=%s, then start is refused in every environment', (mode, problem) => {
    const url = `postgres://app@db.example.test/app?sslmode=${mode}`;
    for (const env of [{ ...DEVELOPMENT, DATABASE_URL: url }, database(url)])
      expect(problemsOf(env)).toEqual([expect.stringMatching(problem)]);
  });

  test.each(['ssl=true', 'sslcert=/run/key.pem', 'sslmode=verify-full&uselibpqcompat=true'])(
    'when DATABASE_URL carries %s, then start is refused rather than the parameter half-applied',
    (query) => {
      expect(
        problemsOf({ ...DEVELOPMENT, DATABASE_URL: `postgres://app@db.example.test/app?${query}` }),
      ).toEqual([expect.stringMatching(/^DATABASE_URL: parameter \w+ is not supported/)]);
    },
  );

  test('when a CA file is given without sslmode, then start is refused: the operator meant TLS', () => {
    expect(
      problemsOf(
        database('postgres://app@db.example.test/app', { DATABASE_CA_FILE: '/run/ca.pem' }),
        readFile,
      ),
    ).toEqual(['DATABASE_CA_FILE is set but DATABASE_URL asks for no TLS: add sslmode=verify-full']);
  });

  test('when the CA file is missing, empty, holds no certificate or is given twice, then each is a problem', () => {
    const verifyFull = 'postgres://app@db.example.test/app?sslmode=verify-full';
    expect(problemsOf(database(verifyFull, { DATABASE_CA_FILE: '/run/missing.pem' }), readFile)).toEqual([
      'DATABASE_CA_FILE: cannot read /run/missing.pem (ENOENT)',
    ]);
    expect(problemsOf(database(verifyFull, { DATABASE_CA_FILE: '/run/empty.pem' }), readFile)).toEqual([
      'DATABASE_CA_FILE: /run/empty.pem holds no PEM certificate',
    ]);
    expect(problemsOf(database(verifyFull, { DATABASE_CA_FILE: '/run/key.pem' }), readFile)).toEqual([
      'DATABASE_CA_FILE: /run/key.pem holds no PEM certificate',
    ]);
    expect(
      problemsOf(
        database(`${verifyFull}&sslrootcert=/run/ca.pem`, { DATABASE_CA_FILE: '/run/ca.pem' }),
        readFile,
      ),
    ).toEqual(['DATABASE_CA_FILE and the sslrootcert of DATABASE_URL are both set: give one']);
  });
});

describe('TLS to Redis', () => {
  test('when REDIS_URL is rediss:// with REDIS_CA_FILE, then production loads it, verifying everything', () => {
    const config = loadConfig(
      { ...PRODUCTION, REDIS_URL: 'rediss://:pw@cache.example.test:6380', REDIS_CA_FILE: '/run/ca.pem' },
      readFile,
    );
    expect(config.redisTls).toEqual({ ca: PEM, verifyCertificate: true, verifyHostName: true });
    expect(config.warnings.join('\n')).not.toMatch(/REDIS_URL/);
  });

  test('when rediss:// has no CA file, then Node’s default roots verify the server', () => {
    const config = loadConfig({ ...PRODUCTION, REDIS_URL: 'rediss://cache.example.test:6380' });
    expect(config.redisTls).toEqual({ ca: undefined, verifyCertificate: true, verifyHostName: true });
  });

  test.each(['rejectUnauthorized=false', 'ssl_cert_reqs=none'])(
    'when REDIS_URL carries ?%s, then start is refused: node-redis would ignore it silently',
    (query) => {
      expect(problemsOf({ ...DEVELOPMENT, REDIS_URL: `rediss://cache.example.test:6380?${query}` })).toEqual([
        expect.stringMatching(/^REDIS_URL: parameter \w+ is not supported/),
      ]);
    },
  );

  test('when REDIS_CA_FILE is given with redis://, then start is refused: the operator meant TLS', () => {
    expect(problemsOf({ ...PRODUCTION, REDIS_CA_FILE: '/run/ca.pem' }, readFile)).toEqual([
      'REDIS_CA_FILE is set but REDIS_URL is redis://: use rediss://',
    ]);
  });
});

describe('plain connections and every problem at once', () => {
  test('when production connects in plain text to another host, then it starts and warns for each store; to loopback it does not warn', () => {
    const remote = loadConfig(PRODUCTION);
    expect(remote.databaseTls).toBeUndefined();
    expect(remote.redisTls).toBeUndefined();
    expect(remote.warnings.join('\n')).toMatch(/DATABASE_URL connects to db without TLS/);
    expect(remote.warnings.join('\n')).toMatch(/REDIS_URL connects to redis without TLS/);
    const local = loadConfig({
      ...PRODUCTION,
      DATABASE_URL: 'postgres://app@[::1]:5432/app',
      REDIS_URL: 'redis://127.0.0.1:6379',
    });
    expect(local.warnings.join('\n')).not.toMatch(/without TLS/);
  });

  test('when both stores have problems, then all of them are listed at once', () => {
    const problems = problemsOf(
      {
        ...PRODUCTION,
        DATABASE_URL: 'postgres://app@db.example.test/app?sslmode=require',
        REDIS_URL: 'rediss://cache.example.test?rejectUnauthorized=false',
        REDIS_CA_FILE: '/run/missing.pem',
      },
      readFile,
    );
    expect(problems).toEqual([
      expect.stringMatching(/^DATABASE_URL: sslmode=require does not verify/),
      expect.stringMatching(/^REDIS_URL: parameter rejectUnauthorized is not supported/),
      'REDIS_CA_FILE: cannot read /run/missing.pem (ENOENT)',
    ]);
  });
});
