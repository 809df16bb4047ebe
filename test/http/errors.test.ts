import request from 'supertest';
import { expectError } from '../support/assertions';
import { signedIn } from '../support/factories';
import { useTestApp } from '../support/use-test-app';

describe('the error envelope', () => {
  const t = useTestApp();

  test('when JSON is malformed, then 400 invalid_json in the envelope with the request id', async () => {
    const res = await request(t.app)
      .post('/api/auth/login')
      .set('Content-Type', 'application/json')
      .send('{"email": ');
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: { code: 'invalid_json', message: expect.any(String), requestId: res.headers['x-request-id'] },
    });
  });

  test('when a JSON body exceeds 100 kB, then 413 payload_too_large', async () => {
    const res = await request(t.app)
      .post('/api/auth/login')
      .send({ email: 'a@example.test', password: 'x'.repeat(101 * 1024) });
    expectError(res, 413, 'payload_too_large');
  });

  test.each([
    ['text/plain', 'email=a'],
    ['application/x-www-form-urlencoded', 'email=a&password=b'],
    ['multipart/form-data; boundary=x', '--x--'],
  ])('when an API body is %s, then 415 unsupported_media_type', async (type, body) => {
    const res = await request(t.app).post('/api/auth/login').set('Content-Type', type).send(body);
    expectError(res, 415, 'unsupported_media_type');
  });

  test('when a request has no body, then no content type is required', async () => {
    const { cookie } = await signedIn(t);
    const res = await request(t.app).post('/api/auth/logout').set('Cookie', cookie);
    expect(res.status).toBe(204);
  });

  // Browser routes answer with an HTML page of our own instead (test/web/error-pages.test.ts).
  test('when an API route does not exist, then 404 not_found as JSON without framework text', async () => {
    const res = await request(t.app).get('/api/no/such/route');
    expectError(res, 404, 'not_found');
    expect(res.text).not.toMatch(/Cannot GET|Express|<html/i);
  });

  test('when any response is sent, then it does not name the framework (no X-Powered-By)', async () => {
    const responses = await Promise.all([
      request(t.app).get('/healthz'),
      request(t.app).get('/api/auth/me'),
      request(t.app).get('/nowhere'),
    ]);
    for (const res of responses) expect(res.headers['x-powered-by']).toBeUndefined();
  });
});
