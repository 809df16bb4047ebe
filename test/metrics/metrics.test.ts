import { randomBytes, randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';
import { Registry } from 'prom-client';
import request from 'supertest';
import { loadConfig } from '../../config/config';
import { CODE_STEP_OUTCOMES } from '../../src/auth/login';
import { createHttpMetrics } from '../../src/metrics/http-metrics';
import { createMetricsServer } from '../../src/metrics/metrics-server';
import { createBrowser, csrfTokenIn, signInThroughForm } from '../support/browser';
import { createUser, login, signedIn, uniqueEmail } from '../support/factories';
import { createHeldHasher, until } from '../support/held-hasher';
import { awayFromStepEdge, codeAt, codeStep, enrolTotp, MFA_ENV, passwordStep } from '../support/mfa';
import { createPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { parseExposition, valueOf, type Sample } from '../support/prometheus';
import { describeWithTool } from '../support/tools';
import { useTestApp } from '../support/use-test-app';

/**
 * The Prometheus metrics (src/metrics): served by a listener of their own, labelled by route template
 * and fixed outcome names only, never by anything a client sent.
 */

/** A port for the configuration only: the tests serve the registry on a listener they open themselves. */
const METRICS_ENV = { METRICS_PORT: '9464' };

async function serve(server: Server): Promise<{ url: string; close(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function scrape(url: string): Promise<{ text: string; samples: Sample[] }> {
  const res = await request(url).get('/metrics');
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  expect(res.headers).toMatchObject({ 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  return { text: res.text, samples: parseExposition(res.text) };
}

const requestSeries = (samples: Sample[]) =>
  samples
    .filter((s) => s.name === 'http_request_duration_seconds_count')
    .map((s) => `${s.labels.method} ${s.labels.route} ${s.labels.status} ${s.value}`)
    .sort();

describe('metrics of a running app', () => {
  const t = useTestApp(METRICS_ENV);
  let listener: { url: string; close(): Promise<void> };
  beforeAll(async () => {
    listener = await serve(createMetricsServer(t.metrics!.registry));
  });
  afterAll(() => listener.close());

  test('when requests of several kinds were answered, then each is counted once by method, route template and status, and no label holds what the client sent', async () => {
    const { user, email, password } = await createUser(t);
    const wrongEmail = uniqueEmail('nobody');
    const randomPath = `/no-such-page-${randomBytes(8).toString('hex')}`;

    const cookie = await login(t, { email, password });
    expect(
      (await t.api().post('/api/auth/login').send({ email: wrongEmail, password: 'wrong one 42' })).status,
    ).toBe(401);
    expect((await t.api().get(randomPath)).status).toBe(404);
    expect((await t.api().get(`/api${randomPath}`)).status).toBe(404);
    expect((await t.api().get(`/api/users/${user.id}`).set('Cookie', cookie)).status).toBe(200);
    // Routing ignores case: the label is the template, not the path as typed.
    expect((await t.api().get('/API/Auth/ME').set('Cookie', cookie)).status).toBe(200);
    expect((await t.api().get('/static/app.css')).status).toBe(200);
    expect((await t.api().get('/login')).status).toBe(200);
    expect((await t.api().get('/healthz')).status).toBe(200);
    const { text, samples } = await scrape(listener.url);

    expect(requestSeries(samples)).toEqual([
      'GET /api/auth/me 200 1',
      'GET /api/users/:id 200 1',
      'GET /healthz 200 1',
      'GET /login 200 1',
      'GET /static/* 200 1',
      'GET unmatched 404 2',
      'POST /api/auth/login 200 1',
      'POST /api/auth/login 401 1',
    ]);
    for (const s of samples.filter((s) => s.name.startsWith('http_request_duration_seconds')))
      expect(Object.keys(s.labels).filter((k) => k !== 'le')).toEqual(['method', 'route', 'status']);
    for (const secret of [randomPath.slice(1), email, wrongEmail, user.id, 'API/Auth'])
      expect({ secret, exposed: text.includes(secret) }).toEqual({ secret, exposed: false });
    expect(valueOf(samples, 'app_login_attempts_total', { outcome: 'success' })).toBe(1);
    expect(valueOf(samples, 'app_login_attempts_total', { outcome: 'invalid_credentials' })).toBe(1);
    expect(valueOf(samples, 'app_login_attempts_total', { outcome: 'locked' })).toBe(0);
  });

  test('when scraped, then the pool, Redis, the hashing line, the event loop and memory are there', async () => {
    const { samples } = await scrape(listener.url);

    expect(valueOf(samples, 'app_redis_ready')).toBe(1);
    expect(valueOf(samples, 'app_pg_pool_clients', { state: 'total' })).toBeGreaterThanOrEqual(0);
    expect(valueOf(samples, 'app_pg_pool_clients', { state: 'waiting' })).toBe(0);
    for (const state of ['running', 'waiting', 'places'])
      expect(valueOf(samples, 'app_password_hash_queue', { state })).toBe(0);
    expect(valueOf(samples, 'app_password_hash_refusals_total', { reason: 'queue_full' })).toBe(0);
    expect(valueOf(samples, 'nodejs_eventloop_lag_p99_seconds')).toBeGreaterThanOrEqual(0);
    expect(valueOf(samples, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(valueOf(samples, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  });

  // ASVS 5.0 13.4.5: metrics never on the app's port.
  test('when the app listener is asked for /metrics, then it answers 404 like any unknown path', async () => {
    const res = await t.api().get('/metrics');

    expect(res.status).toBe(404);
    expect(res.text).not.toContain('http_request_duration_seconds');
  });

  test('when the metrics listener is asked for anything but GET /metrics, then 404', async () => {
    for (const path of ['/', '/metricsx', '/healthz', '/api/auth/me'])
      expect((await request(listener.url).get(path)).status).toBe(404);
    expect((await request(listener.url).post('/metrics')).status).toBe(404);
    expect((await request(listener.url).get('/metrics?x=1')).status).toBe(200);
  });
});

describe('metrics of login locks and rate limits', () => {
  const t = useTestApp({ ...METRICS_ENV, LOGIN_MAX_CONSECUTIVE_FAILS: '1' });

  test('when a failure locks a login and the next attempt is refused, then a lockout, a locked attempt and a 429 are counted', async () => {
    const { email } = await createUser(t);
    const attempt = () => t.api().post('/api/auth/login').send({ email, password: 'wrong one 42' });

    expect((await attempt()).status).toBe(401);
    expect((await attempt()).status).toBe(429);
    const samples = parseExposition(await t.metrics!.registry.metrics());

    expect(valueOf(samples, 'app_login_attempts_total', { outcome: 'invalid_credentials' })).toBe(1);
    expect(valueOf(samples, 'app_login_attempts_total', { outcome: 'locked' })).toBe(1);
    expect(valueOf(samples, 'app_login_lockouts_total', { reason: 'consecutive_failures' })).toBe(1);
    expect(valueOf(samples, 'app_rate_limit_refusals_total')).toBe(1);
    expect(
      valueOf(samples, 'http_request_duration_seconds_count', { route: '/api/auth/login', status: '429' }),
    ).toBe(1);
  });
});

describe('metrics of a two-step login', () => {
  const t = useTestApp({ ...METRICS_ENV, ...MFA_ENV, LOGIN_MAX_CONSECUTIVE_FAILS: '2' });

  /** The login counters now: read before and after, so each test sees only what it did. */
  async function loginCounts() {
    const samples = parseExposition(await t.metrics!.registry.metrics());
    const read = (name: string, label: string, values: string[]) =>
      Object.fromEntries(values.map((v) => [v, valueOf(samples, name, { [label]: v })]));
    return {
      password: read('app_login_attempts_total', 'outcome', ['success', 'mfa_required']),
      code: read('app_login_mfa_attempts_total', 'outcome', [...CODE_STEP_OUTCOMES]),
      codeLocks: read('app_login_mfa_lockouts_total', 'reason', ['consecutive_failures', 'daily_failures']),
    };
  }
  const minus = (a: Record<string, number>, b: Record<string, number>) =>
    Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - b[k]!]));

  /** A user with a confirmed factor, and a wrong code for the next time step. */
  async function enrolled() {
    const created = await signedIn(t);
    const { secret } = await enrolTotp(t, created.cookie, created.password);
    const right = await codeAt(secret, 1);
    return { ...created, right, wrong: String((Number(right) + 1) % 1_000_000).padStart(6, '0') };
  }

  test('when a right password is followed by a wrong code, a right one, and a code with no challenge, then the password step counts mfa_required and the code step each outcome', async () => {
    await awayFromStepEdge();
    const user = await enrolled();
    const before = await loginCounts();

    const pending = await passwordStep(t, user);
    expect((await codeStep(t, pending, { code: user.wrong })).status).toBe(401);
    expect((await codeStep(t, pending, { code: user.right })).status).toBe(200);
    expect((await t.api().post('/api/auth/login/mfa').send({ code: user.right })).status).toBe(401);
    const after = await loginCounts();

    // A right password is not a login yet: it is not counted as a success.
    expect(minus(after.password, before.password)).toEqual({ success: 0, mfa_required: 1 });
    expect(minus(after.code, before.code)).toEqual({
      success: 1,
      invalid_code: 1,
      locked: 0,
      expired: 1,
      unavailable: 0,
      error: 0,
    });
  });

  test('when wrong codes lock the code step and the right one follows, then a lockout and a locked attempt are counted', async () => {
    await awayFromStepEdge();
    const user = await enrolled();
    const before = await loginCounts();

    const pending = await passwordStep(t, user);
    for (let i = 0; i < 2; i++) expect((await codeStep(t, pending, { code: user.wrong })).status).toBe(401);
    expect((await codeStep(t, pending, { code: user.right })).status).toBe(429);
    const after = await loginCounts();

    expect(minus(after.code, before.code)).toMatchObject({ success: 0, invalid_code: 2, locked: 1 });
    expect(minus(after.codeLocks, before.codeLocks)).toEqual({ consecutive_failures: 1, daily_failures: 0 });
  });

  test('when the code step is done through the form, then it is counted as through the API', async () => {
    await awayFromStepEdge();
    const user = await enrolled();
    const browser = createBrowser(t.app);
    const before = await loginCounts();

    await signInThroughForm(browser, user);
    const page = await browser.get('/login/mfa');
    const res = await browser.postForm('/login/mfa', {
      _csrf: csrfTokenIn(page.text),
      next: '/',
      code: user.right,
    });
    const after = await loginCounts();

    expect(res.status).toBe(303);
    expect(minus(after.password, before.password)).toEqual({ success: 0, mfa_required: 1 });
    expect(minus(after.code, before.code)).toMatchObject({ success: 1, invalid_code: 0 });
  });

  test("when the registry is read, then every app_ metric is listed in the README's metrics table", async () => {
    const readme = readFileSync(path.join(__dirname, '../../README.md'), 'utf8');
    const names = new Set(
      parseExposition(await t.metrics!.registry.metrics())
        .map((s) => s.name)
        .filter((name) => name.startsWith('app_')),
    );

    expect(names.size).toBeGreaterThan(0);
    for (const name of names)
      expect({ name, listed: readme.includes(`| \`${name}\``) }).toEqual({ name, listed: true });
  });
});

describe('metrics of the per-client limit', () => {
  const t = useTestApp({ ...METRICS_ENV, RATE_LIMIT_PER_MINUTE: '2' });

  test('when a client goes past its budget, then the refusal is counted, under unmatched: it was refused before routing', async () => {
    const path = `/api/users/${randomUUID()}`;

    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await t.api().get(path)).status);
    const text = await t.metrics!.registry.metrics();

    expect(statuses).toEqual([401, 401, 429]);
    expect(requestSeries(parseExposition(text))).toEqual(['GET /api/users/:id 401 2', 'GET unmatched 429 1']);
    expect(valueOf(parseExposition(text), 'app_rate_limit_refusals_total')).toBe(1);
    expect(text).not.toContain(path.split('/').pop());
  });
});

describe('metrics of a full hashing line', () => {
  const held = createHeldHasher();
  const t = useTestApp(
    { ...METRICS_ENV, HASH_CONCURRENCY: '1', HASH_QUEUE_MAX: '0' },
    { passwords: held.hasher },
  );
  afterEach(() => held.release());

  test('when a login holds the only place and another arrives, then the line shows it and the refusal counts as busy', async () => {
    const login = () =>
      t
        .api()
        .post('/api/auth/login')
        .send({ email: uniqueEmail('held'), password: 'wrong one 42' });
    held.hold();
    // A supertest request leaves when it is awaited or then'd: this one is sent now and waits at the gate.
    const first = login().then((res) => res);
    await until(() => held.calls.length === 1, 'the first login at the gate');
    const during = parseExposition(await t.metrics!.registry.metrics());

    expect((await login()).status).toBe(503);
    held.release();
    expect((await first).status).toBe(401);
    const after = parseExposition(await t.metrics!.registry.metrics());

    expect(valueOf(during, 'app_password_hash_queue', { state: 'running' })).toBe(1);
    expect(valueOf(during, 'app_password_hash_queue', { state: 'places' })).toBe(1);
    expect(valueOf(after, 'app_password_hash_queue', { state: 'places' })).toBe(0);
    expect(valueOf(after, 'app_password_hash_refusals_total', { reason: 'queue_full' })).toBe(1);
    expect(valueOf(after, 'app_login_attempts_total', { outcome: 'busy' })).toBe(1);
    expect(valueOf(after, 'app_login_attempts_total', { outcome: 'invalid_credentials' })).toBe(1);
  });
});

describeWithTool('redis-server', 'apt-get install redis-server', 'metrics of the Redis connection', () => {
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = await createPrivateRedis();
    await redis.start();
  });
  const t = useTestApp(() => ({ ...METRICS_ENV, REDIS_URL: redis.url }));
  afterAll(() => redis?.kill());

  const redisReady = async () =>
    valueOf(parseExposition(await t.metrics!.registry.metrics()), 'app_redis_ready');

  test('when Redis goes away and comes back, then the gauge follows the connection', async () => {
    expect(await redisReady()).toBe(1);

    await redis.kill();
    await until(() => !t.redis.isReady, 'the client to see Redis gone');
    expect(await redisReady()).toBe(0);

    await redis.start();
    await until(() => t.redis.isReady, 'the client to reconnect');
    expect(await redisReady()).toBe(1);
  });
});

describe('the route label', () => {
  test('when routers are mounted at the root and under a parameter, then each label is the full template, never a value', async () => {
    const registry = new Registry();
    const metrics = createHttpMetrics(registry);
    const app = express();
    app.use(metrics.middleware);
    const pages = express.Router();
    pages.get('/', (_req, res) => void res.send('home'));
    pages.get('/about', (_req, res) => void res.send('about'));
    app.use(pages);
    const items = express.Router();
    items.get('/', (_req, res) => void res.send('list'));
    items.get('/items/:id', (_req, res) => void res.send('one'));
    app.use('/orgs/:org', items);
    metrics.learnRoutes(app);

    for (const path of [
      '/',
      '/about',
      '/orgs/acme-secret',
      '/orgs/acme-secret/items/42',
      '/ORGS/other-secret/items/43',
    ])
      expect((await request(app).get(path)).status).toBe(200);
    const text = await registry.metrics();

    expect(requestSeries(parseExposition(text))).toEqual([
      'GET / 200 1',
      'GET /about 200 1',
      'GET /orgs/:org 200 1',
      'GET /orgs/:org/items/:id 200 2',
    ]);
    expect(text).not.toMatch(/secret|acme|ORGS|"4[23]"/);
  });

  test('when a request uses a method no route knows, then it shares one method label', async () => {
    const registry = new Registry();
    const metrics = createHttpMetrics(registry);
    const app = express();
    app.use(metrics.middleware);
    metrics.learnRoutes(app);

    await request(app).propfind('/anything');

    expect(requestSeries(parseExposition(await registry.metrics()))).toEqual(['OTHER unmatched 404 1']);
  });
});

describe('METRICS_PORT', () => {
  const base = { NODE_ENV: 'test' };

  test('when it is unset or 0, then metrics are off', () => {
    expect(loadConfig(base).metrics).toBeNull();
    expect(loadConfig({ ...base, METRICS_PORT: '0' }).metrics).toBeNull();
  });

  test('when it is set, then the listener binds loopback unless METRICS_HOST says otherwise', () => {
    expect(loadConfig({ ...base, METRICS_PORT: '9464' }).metrics).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(loadConfig({ ...base, METRICS_PORT: '9464', METRICS_HOST: '10.0.0.5' }).metrics).toEqual({
      host: '10.0.0.5',
      port: 9464,
    });
  });

  test('when it is the app port, then the configuration is refused', () => {
    expect(() => loadConfig({ ...base, PORT: '3000', METRICS_PORT: '3000' })).toThrow(
      /METRICS_PORT must differ/,
    );
  });
});
