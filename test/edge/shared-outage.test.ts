import { randomBytes } from 'node:crypto';
import { createUser, DEFAULT_PASSWORD } from '../support/factories';
import { edgePorts, startEdge, type Edge, type EdgeAnswer } from '../support/nginx-edge';
import { runEnv } from '../support/env';
import { freePort } from '../support/ports';
import { killServers, serverEnv, startServer } from '../support/server-process';
import { parseSetCookie } from '../support/sessions';
import { createTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { createTestApp, type TestApp } from '../support/test-app';
import { describeWithTool } from '../support/tools';

/**
 * Every instance shares one Redis, so when it goes away every instance answers 503 at once. The edge
 * must pass the app's own answer on (a JSON 503 with Retry-After) and send traffic again the moment
 * Redis is back: a 503 must not mark an instance failed, or nginx, with every peer marked, answers 502
 * itself for fail_timeout after the outage ended (ADR 0022).
 */

const ME = '/api/auth/me';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const describeAnswer = (a: EdgeAnswer) => `${a.status} ${a.body.slice(0, 120)}`;

describeWithTool(
  'nginx',
  'run these suites with npm run test:edge',
  'a Redis outage shared by every instance behind the edge',
  () => {
    let edge: Edge;
    let redis: TcpProxy;
    let t: TestApp;
    const appPorts: number[] = [];

    beforeAll(async () => {
      const ports = await edgePorts();
      const shared = new URL(runEnv().redisUrl);
      redis = await createTcpProxy({ host: shared.hostname, port: Number(shared.port || 6379) });
      while (appPorts.length < 2) {
        const port = await freePort();
        if (![...appPorts, ports.http, ports.https].includes(port)) appPorts.push(port);
      }
      const env = serverEnv({
        NODE_ENV: 'production',
        PUBLIC_URL: `https://localhost:${ports.https}`,
        TRUST_PROXY: '1',
        SESSION_SECRET: randomBytes(36).toString('base64url'),
        REDIS_URL: `redis://127.0.0.1:${redis.port}`,
      });
      await Promise.all(appPorts.map((port) => startServer({ ...env, PORT: String(port) })));
      edge = await startEdge({ ports, upstream: appPorts.map((port) => `127.0.0.1:${port}`) });
      t = await createTestApp();
    }, 60_000);

    afterAll(async () => {
      await edge?.stop();
      await killServers();
      await redis?.close();
      await t?.close();
    });

    test('when Redis is cut, then every read gets the app’s 503 with Retry-After, and the first read after it returns is served', async () => {
      const { email } = await createUser(t);
      const login = await edge.https('/api/auth/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password: DEFAULT_PASSWORD }),
      });
      expect(login.status).toBe(200);
      const sid = (login.headers['set-cookie'] ?? [])
        .map(parseSetCookie)
        .find((c) => c.name === '__Host-sid');
      const cookie = `__Host-sid=${sid!.value}`;
      expect((await edge.https(ME, { headers: { cookie } })).status).toBe(200);

      await redis.cut();
      // Enough reads for every peer to have answered 503 more than once (round robin over two).
      const during: EdgeAnswer[] = [];
      for (let i = 0; i < 8; i++) during.push(await edge.https(ME, { headers: { cookie } }));
      await redis.restore();

      // Each instance's client reconnects on its own schedule (100 ms, doubling): wait until both serve
      // the session when asked directly, not through the edge.
      const servesDirectly = async (port: number) => {
        const res = await fetch(`http://127.0.0.1:${port}${ME}`, {
          headers: { cookie, 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.7' },
        });
        return res.status === 200;
      };
      const deadline = Date.now() + 15_000;
      while (!(await Promise.all(appPorts.map(servesDirectly))).every(Boolean)) {
        if (Date.now() > deadline) throw new Error('the instances did not reconnect to Redis within 15 s');
        await sleep(50);
      }
      // At once, well inside the 5 s fail_timeout that a 503 counted as a failure would start.
      const after: EdgeAnswer[] = [];
      for (let i = 0; i < 4; i++) after.push(await edge.https(ME, { headers: { cookie } }));

      expect(during.map(describeAnswer).filter((a) => !a.startsWith('503 '))).toEqual([]);
      for (const answer of during) {
        expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'service_unavailable' } });
        expect(answer.headers['retry-after']).toBeDefined();
      }
      expect(after.map(describeAnswer).filter((a) => !a.startsWith('200 '))).toEqual([]);
    }, 60_000);
  },
);
