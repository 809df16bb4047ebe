import request from 'supertest';
import { useTestApp } from '../support/use-test-app';

describe('health endpoints', () => {
  const t = useTestApp();

  test('when the process runs, then /healthz is 200', async () => {
    const res = await request(t.app).get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  test('when Postgres and Redis answer, then /readyz is 200 with both checks ok', async () => {
    const res = await request(t.app).get('/readyz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ready', checks: { database: 'ok', redis: 'ok' } });
  });

  test('when shutdown has begun, then /readyz is 503 while /healthz stays 200', async () => {
    t.lifecycle.shuttingDown = true;
    try {
      expect((await request(t.app).get('/readyz')).status).toBe(503);
      expect((await request(t.app).get('/healthz')).status).toBe(200);
    } finally {
      t.lifecycle.shuttingDown = false;
    }
  });

  test('when health is probed, then no session cookie is issued and no access log line is written', async () => {
    const before = t.logs.length;
    const res = await request(t.app).get('/readyz');
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(t.logs.slice(before).filter((l) => l.msg === 'request completed')).toEqual([]);
  });
});
