import { randomBytes } from 'node:crypto';
import https from 'node:https';
import net from 'node:net';
import { createUser, DEFAULT_PASSWORD, uniqueEmail } from '../support/factories';
import {
  accessLogLines,
  edgePorts,
  requestEdge,
  startEdge,
  type Edge,
  type EdgeAnswer,
  type EdgeRequest,
} from '../support/nginx-edge';
import { freePort } from '../support/ports';
import { killServers, serverEnv, startServer, type ListeningServer } from '../support/server-process';
import { parseSetCookie } from '../support/sessions';
import { createTestApp, type TestApp } from '../support/test-app';
import { describeWithTool } from '../support/tools';

/**
 * Two app processes behind the project's nginx edge, on loopback: what one instance does (a session, a
 * lockout, a request count, a revocation) holds on the other, since all of it lives in the shared
 * Postgres and Redis; nginx carries reads past an instance that dies or restarts; and it never sends a
 * write a second time.
 */

/** About 300 reads a second at most: 16 in parallel, each pausing 50 ms after its answer. */
const READ_WORKERS = 16;
const PAUSE_MS = 50;
const CLIENT_ADDRESSES = 64;
const LIMIT_PER_MINUTE = 300;
const CONSECUTIVE_FAILS = 3;

/** Failures counted by kind, so that a failed assertion says what went wrong in a few lines. */
const summary = (failures: string[]) =>
  failures.reduce<Record<string, number>>((counts, f) => ({ ...counts, [f]: (counts[f] ?? 0) + 1 }), {});

/** A user's own session, read through the edge: Redis (session) and Postgres (the user) both. */
const ME = '/api/auth/me';

interface Instance {
  port: number;
  server: ListeningServer;
}

describeWithTool(
  'nginx',
  'run these suites with npm run test:edge',
  'two app instances behind the edge',
  () => {
    let edge: Edge;
    let env: Record<string, string>;
    /** For the factories: the run's database, as both instances use it. */
    let t: TestApp;
    const instances: Instance[] = [];

    const startInstance = async (port: number): Promise<ListeningServer> =>
      startServer({ ...env, PORT: String(port) });

    beforeAll(async () => {
      const ports = await edgePorts();
      const appPorts = [await freePort()];
      while (appPorts.length < 2) {
        const port = await freePort();
        if (!appPorts.includes(port) && port !== ports.http && port !== ports.https) appPorts.push(port);
      }
      env = serverEnv({
        NODE_ENV: 'production',
        PUBLIC_URL: `https://localhost:${ports.https}`,
        TRUST_PROXY: '1',
        SESSION_SECRET: randomBytes(36).toString('base64url'),
        RATE_LIMIT_PER_MINUTE: String(LIMIT_PER_MINUTE),
        LOGIN_MAX_CONSECUTIVE_FAILS: String(CONSECUTIVE_FAILS),
        LOG_LEVEL: 'info',
      });
      const servers = await Promise.all(appPorts.map((port) => startInstance(port)));
      servers.forEach((server, i) => instances.push({ port: appPorts[i]!, server }));
      edge = await startEdge({ ports, upstream: appPorts.map((port) => `127.0.0.1:${port}`) });
      t = await createTestApp();
    }, 60_000);

    afterAll(async () => {
      await edge?.stop();
      await killServers();
      await t?.close();
    });

    /** A request straight to one instance, as nginx would send it (https per X-Forwarded-Proto). */
    const direct = (
      instance: Instance,
      pathAndQuery: string,
      options: EdgeRequest & { client?: string } = {},
    ) =>
      requestEdge({ port: instance.port, secure: false }, pathAndQuery, {
        ...options,
        headers: {
          'x-forwarded-proto': 'https',
          'x-forwarded-for': options.client ?? '203.0.113.1',
          ...options.headers,
        },
      });

    const json = (method: string, body: unknown, cookie?: string): EdgeRequest => ({
      method,
      headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
      body: JSON.stringify(body),
    });

    const sessionCookieOf = (answer: EdgeAnswer): string => {
      const sid = (answer.headers['set-cookie'] ?? [])
        .map(parseSetCookie)
        .find((c) => c.name === '__Host-sid');
      if (!sid) throw new Error(`no session cookie in a ${answer.status} answer: ${answer.body}`);
      return `__Host-sid=${sid.value}`;
    };

    const loginAt = async (instance: Instance, email: string, password = DEFAULT_PASSWORD) => {
      const answer = await direct(instance, '/api/auth/login', json('POST', { email, password }));
      expect(answer.status).toBe(200);
      return sessionCookieOf(answer);
    };

    describe('shared state', () => {
      test('when a session is made on one instance, then the other and the edge serve it', async () => {
        const { email } = await createUser(t);
        const [a, b] = instances as [Instance, Instance];

        const cookie = await loginAt(a, email);

        const onB = await direct(b, ME, { headers: { cookie } });
        expect(onB.status).toBe(200);
        expect(JSON.parse(onB.body)).toMatchObject({ email });
        // Round-robin: four requests through the edge reach both instances.
        for (let i = 0; i < 4; i++) {
          const throughEdge = await edge.https(ME, { headers: { cookie } });
          expect(throughEdge.status).toBe(200);
        }
      });

      test('when an account is locked out on one instance, then the other refuses it too, right password included', async () => {
        const { email } = await createUser(t);
        const [a, b] = instances as [Instance, Instance];
        const client = '203.0.113.10';

        for (let i = 0; i < CONSECUTIVE_FAILS; i++) {
          const failed = await direct(i % 2 ? b : a, '/api/auth/login', {
            ...json('POST', { email, password: 'not the password at all' }),
            client,
          });
          expect(failed.status).toBe(401);
        }
        const onB = await direct(b, '/api/auth/login', {
          ...json('POST', { email, password: DEFAULT_PASSWORD }),
          client,
        });

        expect(onB.status).toBe(429);
        expect(JSON.parse(onB.body)).toMatchObject({ error: { code: 'rate_limited' } });
      });

      test('when a client spends its request limit across both instances, then the next request is refused on either', async () => {
        const [a, b] = instances as [Instance, Instance];
        const client = '203.0.113.20';

        for (let i = 0; i < LIMIT_PER_MINUTE; i++) {
          const answer = await direct(i % 2 ? b : a, '/api/no-such-thing', { client });
          expect(answer.status).toBe(404);
        }

        expect((await direct(a, '/api/no-such-thing', { client })).status).toBe(429);
        expect((await direct(b, '/api/no-such-thing', { client })).status).toBe(429);
      });

      test('when a user logs out on one instance, then the session is refused on the other', async () => {
        const { email } = await createUser(t);
        const [a, b] = instances as [Instance, Instance];
        const cookie = await loginAt(a, email);
        expect((await direct(b, ME, { headers: { cookie } })).status).toBe(200);

        const out = await direct(a, '/api/auth/logout', { method: 'POST', headers: { cookie } });
        expect(out.status).toBe(204);

        expect((await direct(b, ME, { headers: { cookie } })).status).toBe(401);
      });

      test('when the password is changed through the edge (a PUT), then the other sessions end on both instances', async () => {
        const { email } = await createUser(t);
        const [a, b] = instances as [Instance, Instance];
        const changing = await loginAt(a, email);
        const other = await loginAt(b, email);

        const changed = await edge.https(
          '/api/auth/password',
          json(
            'PUT',
            { currentPassword: DEFAULT_PASSWORD, newPassword: 'a brand new passphrase 77' },
            changing,
          ),
        );

        expect(changed.status).toBe(204);
        expect((await direct(a, ME, { headers: { cookie: other } })).status).toBe(401);
        expect((await direct(b, ME, { headers: { cookie: other } })).status).toBe(401);
      });
    });

    describe('an instance going away under load', () => {
      /**
       * Reads through the edge: READ_WORKERS clients in parallel, each pausing between its requests (a
       * bounded load on a shared machine), until `until` resolves or `max` requests were sent. They take
       * turns over CLIENT_ADDRESSES loopback addresses (keep-alive connections from each), so that no
       * address nears the per-client limit.
       */
      function readLoad(cookie: string, subnet: number, max: number, until: Promise<unknown>) {
        let sent = 0;
        let done = false;
        void until.finally(() => (done = true));
        const failures: string[] = [];
        const agents = Array.from(
          { length: CLIENT_ADDRESSES },
          (_, i) =>
            new https.Agent({
              keepAlive: true,
              localAddress: `127.0.${subnet}.${i + 1}`,
              ca: edge.certificate,
              servername: 'localhost',
            }),
        );
        const worker = async () => {
          while (!done && sent < max) {
            const agent = agents[sent++ % agents.length]!;
            const answer = await getWith(agent, cookie).catch((error: Error) => error);
            if (answer instanceof Error) failures.push(answer.message);
            else if (answer !== 200) failures.push(`status ${answer}`);
            await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
          }
        };
        const finished = Promise.all(Array.from({ length: READ_WORKERS }, worker)).finally(() =>
          agents.forEach((a) => a.destroy()),
        );
        return { finished, failures, sent: () => sent };
      }

      const getWith = (agent: https.Agent, cookie: string) =>
        new Promise<number>((resolve, reject) => {
          const req = https.request(
            {
              host: '127.0.0.1',
              port: edge.ports.https,
              path: ME,
              agent,
              headers: { host: 'localhost', cookie },
            },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode!));
              res.on('error', reject);
            },
          );
          req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
          req.on('error', reject);
          req.end();
        });

      interface Write {
        email: string;
        status: number;
        code?: string;
        requestId: string;
      }

      /**
       * Writes through the edge, one after the other until `stop()` or `max`: accounts created by an
       * admin, each with its own address. A POST that nginx sent twice would meet its own row the
       * second time (409 email_taken).
       */
      function writeLoad(adminCookie: string, max: number) {
        const writes: Write[] = [];
        let writing = true;
        const finished = (async () => {
          while (writing && writes.length < max) {
            const account = uniqueEmail('scale');
            const answer = await edge.https(
              '/api/users',
              json('POST', { email: account, password: DEFAULT_PASSWORD, name: 'Scale Test' }, adminCookie),
            );
            writes.push({
              email: account,
              status: answer.status,
              code: JSON.parse(answer.body || '{}').error?.code,
              requestId: answer.headers['x-request-id'] as string,
            });
          }
        })();
        return {
          writes,
          stop: async () => {
            writing = false;
            await finished;
          },
        };
      }

      /**
       * Every write answered once, never a replay: each account answered 201 is in the table, and
       * nginx's access log shows at most one upstream attempt that sent bytes (`upstream_sent` above
       * 0; 0: nothing left nginx, as for a refused connection, which nginx may retry), exactly one for
       * a 201. A 502 is nginx's answer to a write whose attempt was cut: at most `most502` of them.
       */
      async function expectEachWriteOnce(writes: Write[], most502: number): Promise<void> {
        expect(writes.filter((w) => w.code === 'email_taken')).toEqual([]);
        const others = writes.filter((w) => ![201, 502].includes(w.status)).map((w) => `status ${w.status}`);
        expect(summary(others)).toEqual({});
        expect(writes.filter((w) => w.status === 502).length).toBeLessThanOrEqual(most502);
        const created = writes.filter((w) => w.status === 201).map((w) => w.email);
        const rows = await t.db.query<{ email: string }>('SELECT email FROM users WHERE email = ANY($1)', [
          writes.map((w) => w.email),
        ]);
        expect(rows.map((r) => r.email)).toEqual(expect.arrayContaining(created));
        const logged = await accessLogLines(
          edge,
          writes.map((write) => write.requestId),
        );
        for (const write of writes) {
          const lines = logged.get(write.requestId)!;
          const sent = /upstream_sent=(.*) upstream_time=/.exec(lines[0] ?? '')?.[1]?.split(', ') ?? [];
          const sending = sent.filter((n) => n !== '0');
          // A 502 may show no attempt that sent bytes (a write that failed on a connection already
          // reset, "no live upstreams"); a 201 was sent exactly once; none was sent twice.
          expect({ write: write.email, status: write.status, lines: lines.length, sending }).toEqual({
            write: write.email,
            status: write.status,
            lines: 1,
            sending: write.status === 201 ? [expect.stringMatching(/^[1-9]\d*$/)] : expect.any(Array),
          });
          expect(sending.length).toBeLessThanOrEqual(1);
        }
      }

      const waitUntil = async (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000) => {
        const deadline = Date.now() + timeoutMs;
        while (!(await check())) {
          if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      };

      const servedSomething = (server: ListeningServer) =>
        server.logs.some(
          (line) =>
            line.msg === 'request completed' && (line.req as { url?: string } | undefined)?.url === ME,
        );

      /** SIGTERM, wait for the exit, start again on the same port, wait until the edge sends it requests. */
      async function restart(instance: Instance): Promise<void> {
        instance.server.child.kill('SIGTERM');
        expect(await instance.server.waitForExit(15_000)).toEqual({ code: 0, signal: null });
        instance.server = await startInstance(instance.port);
        await waitUntil('/readyz', async () => (await direct(instance, '/readyz')).status === 200);
        // Ready for nginx too: it tries a peer it saw fail again after fail_timeout (5 s).
        await waitUntil('a read through the edge', () => servedSomething(instance.server));
      }

      test('when the instances restart one after the other (SIGTERM, ready, the next), then no read fails', async () => {
        const { email } = await createUser(t);
        const cookie = await loginAt(instances[0]!, email);
        let rolled!: () => void;
        const load = readLoad(cookie, 1, 20_000, new Promise<void>((resolve) => (rolled = resolve)));
        await waitUntil('the load under way', () => load.sent() >= 200);

        try {
          for (const instance of instances) await restart(instance);
        } finally {
          rolled();
          await load.finished;
        }

        // Counted by kind, so that a failure says what went wrong without listing thousands of lines.
        expect(summary(load.failures)).toEqual({});
        expect(load.sent()).toBeGreaterThan(200);
      }, 90_000);

      test('when the instances restart one after the other under writes, then every write is sent at most once and answered, 201 or at most as many 502s as restarts', async () => {
        const { email } = await createUser(t);
        const admin = await createUser(t, { role: 'admin' });
        const reader = await loginAt(instances[0]!, email);
        const adminCookie = await loginAt(instances[0]!, admin.email);
        // Reads alongside, as real traffic has them (restart() waits for one to reach the new process).
        let rolled!: () => void;
        const load = readLoad(reader, 3, 20_000, new Promise<void>((resolve) => (rolled = resolve)));
        // At most about four a second (each hashes a password), well under the per-client limit.
        const { writes, stop } = writeLoad(adminCookie, 200);
        await waitUntil('the load under way', () => load.sent() >= 100 && writes.length >= 2);

        try {
          for (const instance of instances) await restart(instance);
        } finally {
          rolled();
          await Promise.all([load.finished, stop()]);
        }

        expect(summary(load.failures)).toEqual({});

        // The instance going away finishes what it took, and what it no longer takes goes to the other
        // (a refused connection is retried: nothing was sent). A write nginx sends at the very moment a
        // draining instance stops listening or closes an idle connection is cut and answered 502, once
        // (ADR 0022): as many in total as there are restarts at most, never run twice.
        expect(writes.length).toBeGreaterThan(5);
        await expectEachWriteOnce(writes, instances.length);
      }, 90_000);

      test('when one instance is killed (SIGKILL) under load, then reads keep succeeding and no write is sent twice', async () => {
        const { email } = await createUser(t);
        const admin = await createUser(t, { role: 'admin' });
        const reader = await loginAt(instances[0]!, email);
        const adminCookie = await loginAt(instances[1]!, admin.email);
        const TOTAL = 2000;
        const load = readLoad(reader, 2, TOTAL, new Promise(() => {}));

        // Writes alongside.
        const { writes, stop } = writeLoad(adminCookie, 60);

        await waitUntil('the load under way', () => load.sent() >= 300 && writes.length >= 2);
        instances[0]!.server.child.kill('SIGKILL');
        await load.finished;
        await stop();

        // At most the reads in flight on the killed instance may fail (and nginx retries those too).
        expect(load.sent()).toBe(TOTAL);
        expect(load.failures.length).toBeLessThanOrEqual(READ_WORKERS);
        // ... and those with nginx's 502, not a hang or any other refusal.
        expect(load.failures.filter((failure) => failure !== 'status 502')).toEqual([]);
        // Every write was answered once: created, or nginx's own 502 for the one in flight on the killed
        // instance, never a replay.
        await expectEachWriteOnce(writes, 1);
      }, 60_000);
    });
  },
);

/** Two upstreams that take a request and close the connection without answering. */
describeWithTool(
  'nginx',
  'run these suites with npm run test:edge',
  'what the edge retries on another instance',
  () => {
    interface Dropper {
      port: number;
      received: string[];
      close(): Promise<void>;
    }

    const startDropper = async (): Promise<Dropper> => {
      const received: string[] = [];
      const server = net.createServer((socket) => {
        socket.once('data', (chunk) => {
          received.push(chunk.toString('latin1').split(' ', 1)[0]!);
          socket.destroy();
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return {
        port: (server.address() as net.AddressInfo).port,
        received,
        close: () => new Promise((resolve) => server.close(() => resolve())),
      };
    };

    /** nginx's own 502, as error-responses.conf writes it: the app's JSON error envelope. */
    const expectEnvelope = (answer: { headers: Record<string, unknown>; body: string }) => {
      expect(answer.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'service_unavailable' } });
    };

    /** A fresh edge per case: nginx remembers failed peers for fail_timeout. */
    async function throughDroppers(method: string) {
      const droppers = [await startDropper(), await startDropper()];
      const edge = await startEdge({
        ports: await edgePorts(),
        upstream: droppers.map((d) => `127.0.0.1:${d.port}`),
      });
      try {
        const answer = await edge.https('/api/anything', {
          method,
          headers: { 'content-type': 'application/json' },
          ...(method === 'GET' ? {} : { body: '{}' }),
        });
        return { answer, status: answer.status, attempts: droppers.flatMap((d) => d.received) };
      } finally {
        await edge.stop();
        await Promise.all(droppers.map((d) => d.close()));
      }
    }

    test('when an instance drops a GET without answering, then nginx tries the other one (once)', async () => {
      const { answer, status, attempts } = await throughDroppers('GET');

      expect(attempts).toEqual(['GET', 'GET']);
      expect(status).toBe(502);
      expectEnvelope(answer);
    });

    test.each(['POST', 'PATCH', 'PUT', 'DELETE'])(
      'when an instance drops a %s without answering, then nginx answers 502 and never sends it to the other',
      async (method) => {
        const { answer, status, attempts } = await throughDroppers(method);

        expect(attempts).toEqual([method]);
        expect(status).toBe(502);
        // PUT and DELETE reach the upstream from a second location (a second error_page redirect):
        // their 502 must still be the JSON envelope, not nginx's HTML page.
        expectEnvelope(answer);
      },
    );
  },
);
