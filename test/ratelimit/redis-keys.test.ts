import request from 'supertest';
import { createUser, login, uniqueEmail } from '../support/factories';
import { fromIp, scanKeys, strongPassword, uniqueIp } from '../support/rate-limit';
import type { TestApp } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';
import { DAY_S } from '../../src/lib/rate-limiter';

/**
 * Every rate-limit counter lives under the app's REDIS_KEY_PREFIX, so apps (or environments) sharing a
 * Redis never count against each other and an operator can find or clear them with one pattern.
 */
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('rate-limit keys in Redis', () => {
  const t = useTestApp({ TRUST_PROXY: '1' });

  test('when every limiter has counted, then each counter key starts with the prefix and nothing about the client exists outside it', async () => {
    const ip = uniqueIp();
    const { email, password } = await createUser(t);
    const stranger = uniqueEmail('stranger');
    const prefix = `${t.config.redisKeyPrefix}rl:`;

    await request(t.app)
      .post('/api/auth/login')
      .set(fromIp(ip))
      .send({ email: stranger, password: 'wrong 1' });
    const cookie = await login(t, { email, password }, fromIp(ip));
    await request(t.app)
      .put('/api/auth/password')
      .set(fromIp(ip))
      .set('Cookie', cookie)
      .send({ currentPassword: 'not it at all', newPassword: strongPassword() });
    await request(t.app)
      .post('/api/auth/register')
      .set(fromIp(ip))
      .send({ email: uniqueEmail('reg'), password: strongPassword(), name: 'Reg User' });

    const ours = await scanKeys(t, `${prefix}*`);
    const limiters = (pattern: RegExp) => ours.filter((key) => pattern.test(key.slice(prefix.length)));
    expect(limiters(new RegExp(`^ip-minute:+${escape(ip)}$`))).toHaveLength(1);
    expect(limiters(new RegExp(`^login-ip-day:+${escape(ip)}$`))).toHaveLength(1);
    // The (email, client) pair by its keyed name only (ADR 0039).
    expect(limiters(/^login-email-ip:+[\w-]{22}$/)).toHaveLength(1);
    expect(limiters(/^register-ip:/)).toHaveLength(1);
    expect(limiters(/^password-user:/)).toHaveLength(1);
    // The client's address appears in no key outside the prefix; the attempted email in none at all.
    const everywhere = await scanKeys(t, `*${ip}*`);
    expect(everywhere.length).toBeGreaterThan(0);
    expect(everywhere.filter((key) => !key.startsWith(prefix))).toEqual([]);
    expect(await scanKeys(t, `*${stranger}*`)).toEqual([]);
  });
});

/** Every key under `prefix` with what it holds, as text, whatever the key's type. */
async function dumpKeys(t: TestApp, prefix: string): Promise<{ key: string; value: string; ttlS: number }[]> {
  const dump = [];
  for (const key of await scanKeys(t, `${prefix}*`)) {
    const type = await t.redis.type(key);
    const value =
      type === 'string'
        ? await t.redis.get(key)
        : type === 'hash'
          ? await t.redis.hGetAll(key)
          : type === 'zset'
            ? await t.redis.zRange(key, 0, -1)
            : type === 'set'
              ? await t.redis.sMembers(key)
              : type;
    dump.push({ key, value: JSON.stringify(value), ttlS: await t.redis.ttl(key) });
  }
  return dump;
}

// ASVS 5.0 14.2.4: what Redis keeps about people who try to sign in (ADR 0039).
describe('what Redis keeps of a failed login', () => {
  const t = useTestApp({ TRUST_PROXY: '1' });

  test('when logins fail for an account, an unknown address and a password typed as the email, then no key or value under the prefix holds any of them, and the client address only names counters of a day or less', async () => {
    const ip = uniqueIp();
    const { email } = await createUser(t);
    const typedPassword = `correct-horse-${Date.now()}`;
    const tries = [email, uniqueEmail('stranger'), typedPassword];

    for (const typed of tries) {
      const res = await request(t.app)
        .post('/api/auth/login')
        .set(fromIp(ip))
        .send({ email: typed, password: 'wrong 1' });
      expect(res.status).toBe(401);
    }

    const dump = await dumpKeys(t, t.config.redisKeyPrefix);
    const counters = dump.filter(({ key }) => key.includes(':login-email-ip:'));
    expect(counters).toHaveLength(tries.length);
    for (const typed of tries) {
      expect(dump.filter(({ key, value }) => `${key} ${value}`.includes(typed))).toEqual([]);
    }
    const naming = dump.filter(({ key, value }) => `${key} ${value}`.includes(ip));
    expect(naming.map(({ key }) => key.slice(t.config.redisKeyPrefix.length).split(':')[1]).sort()).toEqual([
      'ip-minute',
      'login-ip-day',
    ]);
    for (const { ttlS } of naming) expect(ttlS).toBeLessThanOrEqual(DAY_S);
  });
});
