import request from 'supertest';
import { createUser, login, uniqueEmail } from '../support/factories';
import { fromIp, scanKeys, strongPassword, uniqueIp } from '../support/rate-limit';
import { useTestApp } from '../support/use-test-app';

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
    expect(limiters(new RegExp(`^login-email-ip:+${escape(`${stranger}|${ip}`)}$`))).toHaveLength(1);
    expect(limiters(/^register-ip:/)).toHaveLength(1);
    expect(limiters(/^password-user:/)).toHaveLength(1);
    // The client's address and the attempted email appear in no key outside the prefix.
    for (const marker of [ip, stranger]) {
      const everywhere = await scanKeys(t, `*${marker}*`);
      expect(everywhere.length).toBeGreaterThan(0);
      expect(everywhere.filter((key) => !key.startsWith(prefix))).toEqual([]);
    }
  });
});
