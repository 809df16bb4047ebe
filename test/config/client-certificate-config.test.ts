import { loadConfig } from '../../config/config';
import { PRODUCTION, problemsOf } from '../support/config';

/**
 * ASVS 13.2.1: the client certificate the app presents to Postgres and Redis (config/data-store-tls.ts,
 * ADR 0035). Both files or neither, with TLS only, read at start; the handshakes themselves run against
 * real servers in test/lib/data-store-tls.test.ts.
 */

const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n';
const FILES: Record<string, string> = { '/run/ca.pem': CERT, '/run/app.pem': CERT, '/run/app-key.pem': KEY };
const readFile = (path: string): string => {
  const content = FILES[path];
  if (content === undefined) throw Object.assign(new Error('not found'), { code: 'ENOENT' });
  return content;
};

const VERIFIED_DATABASE = {
  DATABASE_URL: 'postgres://app@postgres:5432/app?sslmode=verify-full',
  DATABASE_CA_FILE: '/run/ca.pem',
};
const VERIFIED_REDIS = { REDIS_URL: 'rediss://app:pw@redis:6379', REDIS_CA_FILE: '/run/ca.pem' };
const DATABASE_PAIR = {
  DATABASE_CLIENT_CERT_FILE: '/run/app.pem',
  DATABASE_CLIENT_KEY_FILE: '/run/app-key.pem',
};
const REDIS_PAIR = { REDIS_CLIENT_CERT_FILE: '/run/app.pem', REDIS_CLIENT_KEY_FILE: '/run/app-key.pem' };

describe('client certificates for the data stores (ASVS 13.2.1)', () => {
  test('when both stores get a certificate and its key, then production reads them once and hands them to the TLS options', () => {
    const config = loadConfig(
      { ...PRODUCTION, ...VERIFIED_DATABASE, ...DATABASE_PAIR, ...VERIFIED_REDIS, ...REDIS_PAIR },
      readFile,
    );
    expect(config.databaseTls?.clientCertificate).toEqual({ cert: CERT, key: KEY });
    expect(config.redisTls?.clientCertificate).toEqual({ cert: CERT, key: KEY });
    expect(Object.isFrozen(config.databaseTls?.clientCertificate)).toBe(true);
  });

  test('when no client certificate is given, then none is presented, as before', () => {
    const config = loadConfig({ ...PRODUCTION, ...VERIFIED_DATABASE, ...VERIFIED_REDIS }, readFile);
    expect(config.databaseTls?.clientCertificate).toBeUndefined();
    expect(config.redisTls?.clientCertificate).toBeUndefined();
  });

  test.each([
    ['DATABASE_CLIENT_CERT_FILE', 'DATABASE_CLIENT_KEY_FILE', { DATABASE_CLIENT_CERT_FILE: '/run/app.pem' }],
    [
      'DATABASE_CLIENT_KEY_FILE',
      'DATABASE_CLIENT_CERT_FILE',
      { DATABASE_CLIENT_KEY_FILE: '/run/app-key.pem' },
    ],
    ['REDIS_CLIENT_CERT_FILE', 'REDIS_CLIENT_KEY_FILE', { REDIS_CLIENT_CERT_FILE: '/run/app.pem' }],
    ['REDIS_CLIENT_KEY_FILE', 'REDIS_CLIENT_CERT_FILE', { REDIS_CLIENT_KEY_FILE: '/run/app-key.pem' }],
  ])('when %s comes without %s, then start is refused', (given, missing, half) => {
    expect(problemsOf({ ...PRODUCTION, ...VERIFIED_DATABASE, ...VERIFIED_REDIS, ...half }, readFile)).toEqual(
      [`${given} is set without ${missing}: give the certificate and its key`],
    );
  });

  test('when a file cannot be read or holds the wrong kind of PEM, then start is refused, naming the file and never its content', () => {
    const problems = problemsOf(
      {
        ...PRODUCTION,
        ...VERIFIED_DATABASE,
        DATABASE_CLIENT_CERT_FILE: '/run/missing.pem',
        DATABASE_CLIENT_KEY_FILE: '/run/app-key.pem',
        ...VERIFIED_REDIS,
        REDIS_CLIENT_CERT_FILE: '/run/app-key.pem',
        REDIS_CLIENT_KEY_FILE: '/run/app.pem',
      },
      readFile,
    );
    expect(problems).toEqual([
      'DATABASE_CLIENT_CERT_FILE: cannot read /run/missing.pem (ENOENT)',
      'REDIS_CLIENT_CERT_FILE: /run/app-key.pem holds no PEM certificate',
      'REDIS_CLIENT_KEY_FILE: /run/app.pem holds no PEM private key',
    ]);
    expect(problems.join('\n')).not.toContain('MIG');
  });

  test('when a client certificate is given for a plain connection, then start is refused: the operator meant TLS', () => {
    expect(
      problemsOf({ ...PRODUCTION, ...DATABASE_PAIR, ...REDIS_PAIR }, readFile).filter((p) =>
        /CLIENT/.test(p),
      ),
    ).toEqual([
      'DATABASE_CLIENT_CERT_FILE is set but DATABASE_URL asks for no TLS: add sslmode=verify-full',
      'REDIS_CLIENT_CERT_FILE is set but REDIS_URL is redis://: use rediss://',
    ]);
  });
});
