import { loadConfig } from '../../config/config';
import { PRODUCTION, problemsOf } from '../support/config';

/**
 * REDIS_SENTINELS and REDIS_MASTER_NAME (ADR 0023): the other way to name Redis, next to REDIS_URL.
 * The failover itself runs against real sentinels in test/faults/redis-sentinel.test.ts.
 */

// PRODUCTION with REDIS_URL left out (an empty value is an absent one).
const WITHOUT_REDIS = { ...PRODUCTION, REDIS_URL: '' };
const SENTINELS = {
  REDIS_SENTINELS: 'sentinel-1:26379, sentinel-2:26379,[::1]:26380',
  REDIS_MASTER_NAME: 'app',
};

describe('Redis through Sentinel', () => {
  test('when REDIS_SENTINELS and REDIS_MASTER_NAME are set without REDIS_URL, then production loads them as host and port pairs', () => {
    const config = loadConfig({ ...WITHOUT_REDIS, ...SENTINELS });
    expect(config.redisSentinel).toEqual({
      masterName: 'app',
      nodes: [
        { host: 'sentinel-1', port: 26379 },
        { host: 'sentinel-2', port: 26379 },
        { host: '::1', port: 26380 },
      ],
    });
    expect(config.redisTls).toBeUndefined();
    expect(Object.isFrozen(config.redisSentinel)).toBe(true);
  });

  test('when production reaches sentinels on other hosts, then it warns of clear text for each, as for a plain REDIS_URL, and not for loopback', () => {
    const { warnings } = loadConfig({ ...WITHOUT_REDIS, ...SENTINELS });

    const plain = warnings.filter((w) => w.startsWith('REDIS_SENTINELS connects to'));
    expect(plain).toHaveLength(2);
    expect(plain[0]).toContain('sentinel-1 without TLS');
    expect(plain[1]).toContain('sentinel-2 without TLS');
  });

  test('when only REDIS_URL is set, then there is no Sentinel', () => {
    expect(loadConfig(PRODUCTION).redisSentinel).toBeUndefined();
  });

  test('when neither REDIS_URL nor REDIS_SENTINELS is set in production, then it refuses to start naming both', () => {
    expect(problemsOf(WITHOUT_REDIS)).toContain(
      'REDIS_URL is required in production (or REDIS_SENTINELS with REDIS_MASTER_NAME)',
    );
  });

  test('when REDIS_URL and REDIS_SENTINELS are both set, then it refuses to guess which one wins', () => {
    expect(problemsOf({ ...PRODUCTION, ...SENTINELS })).toEqual([
      'REDIS_URL and REDIS_SENTINELS are both set: give one (the sentinels name the master)',
    ]);
  });

  test('when development sets REDIS_SENTINELS, then the local REDIS_URL default does not apply', () => {
    const config = loadConfig({ NODE_ENV: 'development', ...SENTINELS });
    expect(config.redisSentinel?.masterName).toBe('app');
  });

  test('when one of the pair is missing, then it says which', () => {
    expect(problemsOf({ ...WITHOUT_REDIS, REDIS_SENTINELS: 'sentinel-1:26379' })).toEqual([
      'REDIS_MASTER_NAME is required with REDIS_SENTINELS (the name in `sentinel monitor`)',
    ]);
    expect(problemsOf({ ...PRODUCTION, REDIS_MASTER_NAME: 'app' })).toEqual([
      'REDIS_MASTER_NAME is set without REDIS_SENTINELS',
    ]);
  });

  test('when an entry is not host:port, then each bad one is named', () => {
    expect(
      problemsOf({ ...WITHOUT_REDIS, ...SENTINELS, REDIS_SENTINELS: 'sentinel-1, sentinel-2:99999,ok:1' }),
    ).toEqual([
      'REDIS_SENTINELS: "sentinel-1" is not host:port',
      'REDIS_SENTINELS: "sentinel-2:99999" is not host:port',
    ]);
  });

  test('when REDIS_CA_FILE comes with sentinels, then it is refused: TLS through Sentinel is not supported', () => {
    const readFile = () => '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    expect(problemsOf({ ...WITHOUT_REDIS, ...SENTINELS, REDIS_CA_FILE: '/run/ca.pem' }, readFile)).toEqual([
      'REDIS_CA_FILE is set with REDIS_SENTINELS: TLS through Sentinel is not supported',
    ]);
  });

  test.each(['REDIS_CLIENT_CERT_FILE', 'REDIS_CLIENT_KEY_FILE'])(
    'when %s comes with sentinels, then it is refused by its own name',
    (name) => {
      const problems = problemsOf({ ...WITHOUT_REDIS, ...SENTINELS, [name]: '/run/client.pem' }, () => '');
      expect(problems).toContain(
        `${name} is set with REDIS_SENTINELS: TLS through Sentinel is not supported`,
      );
    },
  );
});
