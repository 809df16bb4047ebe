import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describeResult } from '../support/commands';
import { configWith, pingOverConfig, queryOverConfig } from '../support/data-store-clients';
import { postgresBinDir, startTlsPostgres, type PrivatePostgres } from '../support/private-postgres';
import { createPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { runScript } from '../support/run-script';
import { killServers, serverEnv, startServer } from '../support/server-process';
import { createTestPki, type TestPki } from '../support/test-pki';
import { describeWithTool } from '../support/tools';

/**
 * TLS to Postgres and Redis against real servers of this file's own: a Postgres from its own initdb
 * that takes TLS connections only, and a redis-server listening on a TLS port only, both with a
 * certificate for `localhost` from a CA made here. The app's clients connect when told to trust that CA
 * and refuse a server vouched for by another CA, or reached by a name its certificate does not carry.
 */

/**
 * OpenSSL's words for a certificate no trusted CA signed (the second when the server sends its CA along,
 * as redis-server does), and Node's for a name the certificate lacks.
 */
const UNKNOWN_CA = expect.stringMatching(/^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)$/);
const WRONG_NAME = 'ERR_TLS_CERT_ALTNAME_INVALID';

describeWithTool('redis-server', 'apt-get install redis-server', 'TLS to the data stores', () => {
  describeWithTool(
    path.join(postgresBinDir() ?? '/nonexistent', 'initdb'),
    'apt-get install postgresql',
    'TLS to Postgres and Redis',
    () => {
      let dir: string;
      let pki: TestPki;
      let postgres: PrivatePostgres | undefined;
      let redis: PrivateRedis | undefined;

      beforeAll(async () => {
        dir = await mkdtemp(path.join(tmpdir(), 'data-store-tls-'));
        pki = await createTestPki(dir);
        redis = await createPrivateRedis({
          tls: { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, caFile: pki.caFile },
        });
        await Promise.all([
          redis.start(),
          startTlsPostgres(dir, { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile }).then(
            (started) => (postgres = started),
          ),
        ]);
      }, 90_000);
      afterAll(async () => {
        await killServers();
        await Promise.allSettled([postgres?.stop(), redis?.kill()]);
        if (dir) await rm(dir, { recursive: true, force: true });
      });

      const postgresUrl = (host: string, query: string, database = 'postgres') =>
        `postgres://postgres@${host}:${postgres!.port}/${database}?${query}`;

      test('when DATABASE_URL asks for verify-full and DATABASE_CA_FILE names the server CA, then queries run over TLS', async () => {
        const config = configWith({
          DATABASE_URL: postgresUrl('localhost', 'sslmode=verify-full'),
          DATABASE_CA_FILE: pki.caFile,
        });
        expect(await queryOverConfig(config)).toEqual([{ ssl: true }]);
      });

      test('when the CA is the sslrootcert of DATABASE_URL instead, then the same verified connection is made', async () => {
        const config = configWith({
          DATABASE_URL: postgresUrl('localhost', `sslmode=verify-full&sslrootcert=${pki.caFile}`),
        });
        expect(await queryOverConfig(config)).toEqual([{ ssl: true }]);
      });

      // ASVS 5.0 12.3.1, 12.3.2, 12.3.4: verified TLS to the data stores, trusting only the configured CA.
      test('when the CA file is another CA, then the connection to Postgres is refused', async () => {
        const config = configWith({
          DATABASE_URL: postgresUrl('localhost', 'sslmode=verify-full'),
          DATABASE_CA_FILE: pki.otherCaFile,
        });
        await expect(queryOverConfig(config)).rejects.toMatchObject({ code: UNKNOWN_CA });
      });

      test('when Postgres is reached by an address its certificate does not name, then the connection is refused', async () => {
        const config = configWith({
          DATABASE_URL: postgresUrl('127.0.0.1', 'sslmode=verify-full'),
          DATABASE_CA_FILE: pki.caFile,
        });
        await expect(queryOverConfig(config)).rejects.toMatchObject({ code: WRONG_NAME });
      });

      test('when development asks for sslmode=require, then it connects to a server no trusted CA vouches for, which is why it warns and production refuses', async () => {
        const config = configWith({ DATABASE_URL: postgresUrl('127.0.0.1', 'sslmode=require') });
        expect(config.warnings.join('\n')).toMatch(/sslmode=require does not verify/);
        expect(await queryOverConfig(config)).toEqual([{ ssl: true }]);
      });

      test('when the migrations and the seed run with the same settings, then they work over verified TLS, and refuse the wrong CA', async () => {
        const env = {
          NODE_ENV: 'test',
          DATABASE_URL: postgresUrl('localhost', 'sslmode=verify-full', 'app'),
          DATABASE_CA_FILE: pki.caFile,
        };
        const wrongCa = await runScript('scripts/migrate.ts', { ...env, DATABASE_CA_FILE: pki.otherCaFile });
        expect(wrongCa.code).not.toBe(0);
        expect(wrongCa.stderr).toMatch(/unable to verify the first certificate/);

        const migrated = await runScript('scripts/migrate.ts', env);
        expect({ code: migrated.code, output: describeResult(migrated) }).toMatchObject({ code: 0 });
        const seeded = await runScript('scripts/seed.ts', {
          ...env,
          ADMIN_EMAIL: 'tls-admin@example.test',
          ADMIN_PASSWORD: 'correct horse battery staple over tls',
        });
        expect({ code: seeded.code, output: describeResult(seeded) }).toMatchObject({ code: 0 });
        expect(seeded.stdout).toMatch(/created admin tls-admin@example.test/);
      }, 60_000);

      test('when REDIS_URL is rediss:// and REDIS_CA_FILE names the server CA, then PING answers', async () => {
        const config = configWith({ REDIS_URL: redis!.url, REDIS_CA_FILE: pki.caFile });
        expect(config.redisUrl).toMatch(/^rediss:\/\/localhost:/);
        expect(await pingOverConfig(config)).toBe('PONG');
      });

      test('when REDIS_CA_FILE is another CA, then the connection to Redis is refused', async () => {
        const config = configWith({ REDIS_URL: redis!.url, REDIS_CA_FILE: pki.otherCaFile });
        await expect(pingOverConfig(config)).rejects.toMatchObject({ code: UNKNOWN_CA });
      });

      test('when Redis is reached by an address its certificate does not name, then the connection is refused', async () => {
        const config = configWith({
          REDIS_URL: `rediss://127.0.0.1:${redis!.port}`,
          REDIS_CA_FILE: pki.caFile,
        });
        await expect(pingOverConfig(config)).rejects.toMatchObject({ code: WRONG_NAME });
      });

      /** /readyz's answer once it is 200, or its last answer when the deadline passes first. */
      async function readyWithin(url: string, ms: number): Promise<{ status: number; body: unknown }> {
        const deadline = Date.now() + ms;
        for (;;) {
          const answer = await fetch(url);
          const result = { status: answer.status, body: (await answer.json()) as unknown };
          if (answer.status === 200 || Date.now() > deadline) return result;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }

      test('when the production process reaches both stores over verified TLS, then it becomes ready and warns of nothing', async () => {
        const server = await startServer(
          serverEnv({
            NODE_ENV: 'production',
            PUBLIC_URL: 'https://app.example.test',
            TRUST_PROXY: '1',
            DATABASE_URL: postgresUrl('localhost', 'sslmode=verify-full'),
            DATABASE_CA_FILE: pki.caFile,
            REDIS_URL: redis!.url,
            REDIS_CA_FILE: pki.caFile,
          }),
        );
        // The process listens before Redis is connected (main.ts does not wait for it), as an
        // orchestrator sees it: ask until ready, within a deadline.
        const ready = await readyWithin(`http://127.0.0.1:${server.port}/readyz`, 10_000);
        expect(ready).toEqual({
          status: 200,
          body: { status: 'ready', checks: { database: 'ok', redis: 'ok' } },
        });
        expect(server.logs.filter((line) => /TLS|sslmode|redis connect/.test(line.msg ?? ''))).toEqual([]);
        server.child.kill('SIGTERM');
        expect(await server.waitForExit(10_000)).toEqual({ code: 0, signal: null });
      });
    },
  );
});
