import request from 'supertest';
import { expectError } from '../support/assertions';
import { me, signedIn } from '../support/factories';
import { eventsNamed } from '../support/log-lines';
import { enrolTotp, MFA_ENV } from '../support/mfa';
import { useTestApp } from '../support/use-test-app';

/**
 * REQUIRE_MFA_FOR_ADMINS through the real app (ASVS 5.0 6.3.3 for the accounts that can do the most):
 * an admin without a second factor is refused everything but enrolling one, and nobody else notices.
 */
describe('REQUIRE_MFA_FOR_ADMINS=true (ASVS 5.0 6.3.3)', () => {
  const t = useTestApp({ ...MFA_ENV, REQUIRE_MFA_FOR_ADMINS: 'true' });

  test('when an admin without a second factor calls an admin route, then 403 mfa_required, logged as a refusal', async () => {
    const admin = await signedIn(t, 'admin');

    const list = await request(t.app).get('/api/users').set('Cookie', admin.cookie);
    const self = await request(t.app).get(`/api/users/${admin.user.id}`).set('Cookie', admin.cookie);
    const otherSpelling = await request(t.app).get('/API/users/').set('Cookie', admin.cookie);

    for (const res of [list, self, otherSpelling]) expectError(res, 403, 'mfa_required');
    const denied = eventsNamed(t, 'authz.denied').find((line) => line.userId === admin.user.id);
    expect(denied).toMatchObject({ reason: 'mfa_required' });
  });

  test('when that admin reads me, enrols and confirms, then each is allowed, and afterwards the admin routes answer', async () => {
    const admin = await signedIn(t, 'admin');

    expect((await me(t, admin.cookie)).status).toBe(200);
    expect((await request(t.app).get('/api/auth/mfa').set('Cookie', admin.cookie)).status).toBe(200);
    await enrolTotp(t, admin.cookie, admin.password);

    expect((await request(t.app).get('/api/users').set('Cookie', admin.cookie)).status).toBe(200);
  });

  test('when that admin signs out, then it is allowed', async () => {
    const admin = await signedIn(t, 'admin');

    expect((await request(t.app).post('/api/auth/logout').set('Cookie', admin.cookie)).status).toBe(204);
  });

  test('when a user who is not an admin has no second factor, then nothing is refused for it', async () => {
    const user = await signedIn(t);

    expect((await request(t.app).get(`/api/users/${user.user.id}`).set('Cookie', user.cookie)).status).toBe(
      200,
    );
  });

  test('when an admin without a factor asks for a page other than home, sign-in and sign-out, then the error page asks for a second factor', async () => {
    const admin = await signedIn(t, 'admin');

    const home = await request(t.app).get('/').set('Cookie', admin.cookie);
    const other = await request(t.app).get('/no-such-page').set('Cookie', admin.cookie);

    expect(home.status).toBe(200);
    expect(other.status).toBe(403);
    expect(other.text).toContain('Set up a second factor');
  });
});

describe('REQUIRE_MFA_FOR_ADMINS=false', () => {
  const t = useTestApp({ ...MFA_ENV, REQUIRE_MFA_FOR_ADMINS: 'false' });

  test('when an admin without a second factor calls an admin route, then it answers as before', async () => {
    const admin = await signedIn(t, 'admin');

    expect((await request(t.app).get('/api/users').set('Cookie', admin.cookie)).status).toBe(200);
  });
});
