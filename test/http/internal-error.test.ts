import request from 'supertest';
import type { TestApp } from '../support/test-app';
import { useUnmigratedApps } from '../support/use-test-app';

// A real fault, not a simulated one: the app runs against a database whose schema was never migrated,
// so every users query fails inside Postgres with "relation does not exist".
// ASVS 5.0 13.4.2, 16.3.4, 16.5.1: no debug output in production; the cause is logged, the answer generic.
describe('unexpected errors', () => {
  const { production, development } = useUnmigratedApps('nomigrations');

  const login = (t: TestApp) =>
    request(t.app)
      .post('/api/auth/login')
      .send({ email: 'someone@example.test', password: 'whatever it is' });

  test('when a query fails in production, then 500 internal_error with no stack, SQL or driver text', async () => {
    const res = await login(production);
    expect(res.status).toBe(500);
    expect(res.body).toEqual({
      error: { code: 'internal_error', message: expect.any(String), requestId: res.headers['x-request-id'] },
    });
    expect(res.text).not.toMatch(/relation|users|SELECT|stack|\.ts:|at /i);
  });

  test('when a query fails, then the log keeps the cause with the request id', async () => {
    const res = await login(production);
    const line = production.logs.find(
      (l) => l.msg === 'unhandled error' && l.requestId === res.headers['x-request-id'],
    );
    expect(JSON.stringify(line)).toMatch(/relation \\"users\\" does not exist/);
  });

  test('when a query fails in development, then the developer sees the stack', async () => {
    const res = await login(development);
    expect(res.status).toBe(500);
    expect(res.body.error.stack).toMatch(/relation "users" does not exist/);
  });
});
