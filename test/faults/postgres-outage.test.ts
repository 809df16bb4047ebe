import request from 'supertest';
import { createUser, login, type TestUser } from '../support/factories';
import { createTcpProxy, databaseUrlThrough, type TcpProxy } from '../support/tcp-proxy';
import { useTestApp } from '../support/use-test-app';
import { expectServiceUnavailable } from '../support/assertions';

/**
 * A real Postgres outage: the app reaches the shared Postgres through a TCP proxy of this file's own,
 * which the tests cut (connections reset, port refused) or stall (a black hole) and then restore.
 * Postgres itself is never touched. The app must answer 503 within its deadlines, never hang and
 * never 500, and recover without a restart.
 */

/** A hang is a failure; the stalled-connection case waits out the client-side query timeout (6 s). */
const ANSWER_WITHIN_MS = 5000;
const ANSWER_WITHIN_MS_WHEN_STALLED = 10_000;

// ASVS 5.0 16.5.2: 503 fast and recovery.
describe('when Postgres becomes unreachable and comes back', () => {
  let proxy: TcpProxy;
  let user: TestUser;
  let cookie: string;

  beforeAll(async () => {
    proxy = await createTcpProxy({ host: '127.0.0.1', port: 5432 });
  });
  // The proxy forwards again before the app closes its pool, and closes after it.
  afterAll(() => proxy?.restore());
  const t = useTestApp(() => ({ DATABASE_URL: databaseUrlThrough(proxy) }));
  afterAll(() => proxy?.close());
  beforeAll(async () => {
    user = await createUser(t);
  });
  // Every test starts with the proxy forwarding, the pool holding live connections through it, and a
  // session made while all was well.
  beforeEach(async () => {
    await proxy.restore();
    cookie = await login(t, user);
  });

  const api = () => request(t.app);
  const loginAttempt = (timeoutMs = ANSWER_WITHIN_MS) =>
    api().post('/api/auth/login').timeout(timeoutMs).send({ email: user.email, password: user.password });
  const readOwnUser = (timeoutMs = ANSWER_WITHIN_MS) =>
    api().get(`/api/users/${user.user.id}`).set('Cookie', cookie).timeout(timeoutMs);

  test('when the connection to Postgres is cut, then logins and authenticated reads get 503 fast, /readyz is 503 and /healthz stays 200', async () => {
    expect((await readOwnUser()).status).toBe(200);

    await proxy.cut();

    expectServiceUnavailable(await loginAttempt());
    expectServiceUnavailable(await readOwnUser());
    const ready = await api().get('/readyz').timeout(ANSWER_WITHIN_MS);
    expect(ready.status).toBe(503);
    expect(ready.body).toEqual({ status: 'unavailable', checks: { database: 'fail', redis: 'ok' } });
    expect((await api().get('/healthz').timeout(ANSWER_WITHIN_MS)).status).toBe(200);
    expect(t.logs.filter((line) => line.msg === 'unhandled error')).toEqual([]);
    expect(t.logs.some((line) => line.msg === 'database unavailable' && line.service === 'database')).toBe(
      true,
    );
  });

  test('when the connection is restored, then the same app serves requests again and the session survived', async () => {
    await proxy.cut();
    expectServiceUnavailable(await readOwnUser());

    await proxy.restore();

    const read = await readOwnUser();
    expect(read.status).toBe(200);
    expect(read.body.id).toBe(user.user.id);
    expect((await loginAttempt()).status).toBe(200);
    expect((await api().get('/readyz').timeout(ANSWER_WITHIN_MS)).status).toBe(200);
  });

  test('when Postgres stops answering on open connections and new ones, then requests get 503 within the query and connect timeouts and recover after', async () => {
    // The pool holds idle connections through the proxy from beforeEach: the first request below runs
    // on one of them (bounded by the query timeout), the next needs a new one (the connect timeout).
    proxy.stall();

    expectServiceUnavailable(await readOwnUser(ANSWER_WITHIN_MS_WHEN_STALLED));
    expectServiceUnavailable(await loginAttempt(ANSWER_WITHIN_MS_WHEN_STALLED));

    await proxy.restore();
    expect((await readOwnUser()).status).toBe(200);
  });
});
