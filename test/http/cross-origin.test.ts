import request from 'supertest';
import { expectError } from '../support/assertions';
import { createUser, login } from '../support/factories';
import { useTestApp } from '../support/use-test-app';

const PUBLIC_URL = 'https://app.example.test';

// ASVS 5.0 3.5.1, 3.5.2: other sites' requests refused before the body is read.
describe('the cross-origin guard', () => {
  const t = useTestApp({ PUBLIC_URL });

  const loginBody = { email: 'nobody@example.test', password: 'irrelevant but long' };

  test.each([
    ['Sec-Fetch-Site cross-site', { 'Sec-Fetch-Site': 'cross-site' }],
    ['Sec-Fetch-Site same-site', { 'Sec-Fetch-Site': 'same-site' }],
    [
      'Sec-Fetch-Site cross-site even with our Origin',
      { 'Sec-Fetch-Site': 'cross-site', Origin: PUBLIC_URL },
    ],
    ['a foreign Origin without Sec-Fetch-Site', { Origin: 'https://evil.test' }],
    ['Origin null', { Origin: 'null' }],
    ['our host on another scheme', { Origin: 'http://app.example.test' }],
    ['our host on another port', { Origin: 'https://app.example.test:8443' }],
  ])(
    'when a login comes with %s, then 403 cross_origin_request before anything else',
    async (_what, headers) => {
      const res = await request(t.app).post('/api/auth/login').set(headers).send(loginBody);
      expectError(res, 403, 'cross_origin_request');
    },
  );

  test.each([
    ['Sec-Fetch-Site same-origin', { 'Sec-Fetch-Site': 'same-origin' }],
    ['Sec-Fetch-Site none (typed or bookmarked)', { 'Sec-Fetch-Site': 'none' }],
    ['our Origin without Sec-Fetch-Site', { Origin: PUBLIC_URL }],
    ['neither header (curl, server to server)', {}],
  ])('when a login comes with %s, then it reaches the handler', async (_what, headers) => {
    const res = await request(t.app).post('/api/auth/login').set(headers).send(loginBody);
    expectError(res, 401, 'invalid_credentials');
  });

  test.each(['put', 'patch', 'delete'] as const)(
    'when %s comes from another site, then it is refused too',
    async (method) => {
      const res = await request(t.app)
        [method]('/api/users/00000000-0000-4000-8000-000000000000')
        .set('Sec-Fetch-Site', 'cross-site');
      expectError(res, 403, 'cross_origin_request');
    },
  );

  test('when a cross-site request has a non-JSON body, then the guard answers before the 415 check', async () => {
    const res = await request(t.app)
      .post('/api/auth/login')
      .set('Sec-Fetch-Site', 'cross-site')
      .set('Content-Type', 'text/plain')
      .send('email=a');
    expect(res.status).toBe(403);
  });

  test('when a cross-site GET arrives, then it is served (safe methods change nothing)', async () => {
    const res = await request(t.app).get('/api/auth/me').set('Sec-Fetch-Site', 'cross-site');
    expect(res.status).toBe(401);
  });

  test('when a signed-in user is forged into deleting themselves, then nothing is deleted and it is logged', async () => {
    const victim = await createUser(t);
    const cookie = await login(t, victim);
    const res = await request(t.app)
      .delete(`/api/users/${victim.user.id}`)
      .set('Cookie', cookie)
      .set('Origin', 'https://evil.test');
    expect(res.status).toBe(403);
    expect((await request(t.app).get('/api/auth/me').set('Cookie', cookie)).status).toBe(200);
    expect(t.logs).toContainEqual(
      expect.objectContaining({
        event: 'request.cross_origin_rejected',
        requestId: res.headers['x-request-id'],
        origin: 'https://evil.test',
        method: 'DELETE',
      }),
    );
  });
});
