import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { createUser, sessionCookie, uniqueEmail } from '../support/factories';
import { accessLineOf } from '../support/log-lines';
import { sidOf } from '../support/sessions';
import type { LogLine } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';

const secret = (label: string) => `${label}-${randomBytes(12).toString('hex')}`;

// ASVS 5.0 14.2.4, 16.2.5: secrets never reach the log.
describe('log redaction', () => {
  const t = useTestApp();

  test('when requests carry passwords, cookies and an Authorization header, then none of them reach the log', async () => {
    const loginPassword = secret('login-password');
    const wrongPassword = secret('wrong-password');
    const newPassword = secret('new-password');
    const registerPassword = secret('register-password');
    const bearer = secret('bearer-token');
    const { email } = await createUser(t, { password: loginPassword });

    const failed = await request(t.app)
      .post('/api/auth/login')
      .set('Authorization', `Bearer ${bearer}`)
      .send({ email, password: wrongPassword });
    const loggedIn = await request(t.app)
      .post('/api/auth/login')
      .set('Authorization', `Bearer ${bearer}`)
      .send({ email, password: loginPassword });
    const cookie = sessionCookie(loggedIn)!;
    const me = await request(t.app)
      .get('/api/auth/me')
      .set('Cookie', cookie)
      .set('Authorization', `Bearer ${bearer}`);
    const changed = await request(t.app)
      .put('/api/auth/password')
      .set('Cookie', cookie)
      .send({ currentPassword: loginPassword, newPassword });
    const rotatedCookie = sessionCookie(changed)!;
    const registered = await request(t.app)
      .post('/api/auth/register')
      .send({ email: uniqueEmail('redact'), password: registerPassword, name: 'Redact' });
    const registeredCookie = sessionCookie(registered)!;
    const loggedOut = await request(t.app).post('/api/auth/logout').set('Cookie', rotatedCookie);
    expect([
      failed.status,
      loggedIn.status,
      me.status,
      changed.status,
      registered.status,
      loggedOut.status,
    ]).toEqual([401, 200, 200, 204, 201, 204]);

    const raw = t.rawLogs();
    const cookieValues = [cookie, rotatedCookie, registeredCookie].flatMap((c) => {
      const value = c.slice(c.indexOf('=') + 1);
      return [value, decodeURIComponent(value), sidOf(c)];
    });
    for (const leaked of [
      loginPassword,
      wrongPassword,
      newPassword,
      registerPassword,
      bearer,
      ...cookieValues,
    ]) {
      expect(raw).not.toContain(leaked);
    }

    const meLine = accessLineOf(t, me) as { req: { headers: Record<string, unknown> } } & LogLine;
    expect(meLine.req.headers.cookie).toBe('[redacted]');
    expect(meLine.req.headers.authorization).toBe('[redacted]');
    // The access line keeps no response headers (src/http/access-log.ts): Set-Cookie, a credential,
    // is not even there redacted.
    for (const res of [loggedIn, changed, registered]) {
      const line = accessLineOf(t, res) as { res: Record<string, unknown> } & LogLine;
      expect(line.res).toBeDefined();
      expect(JSON.stringify(line.res).toLowerCase()).not.toContain('set-cookie');
    }
  });
});
