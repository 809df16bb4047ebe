import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { configWith, pingOverConfig, queryOverConfig } from '../support/data-store-clients';
import { postgresBinDir, startTlsPostgres, type PrivatePostgres } from '../support/private-postgres';
import { createPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { createTestPki, type TestPki } from '../support/test-pki';
import { describeWithTool } from '../support/tools';

/**
 * ASVS 13.2.1: the app authenticates to Postgres and Redis with a client certificate (ADR 0035), against
 * real servers of this file's own that demand one: a Postgres whose pg_hba.conf says `hostssl … cert`
 * (the certificate's CN is the role) and a redis-server with `--tls-auth-clients yes`. A client without
 * a certificate, or with one from another CA, is refused; the right one gets in.
 */

type ClientFiles = { certFile: string; keyFile: string };

describeWithTool(
  'redis-server',
  'apt-get install redis-server',
  'client certificates to the data stores',
  () => {
    describeWithTool(
      path.join(postgresBinDir() ?? '/nonexistent', 'initdb'),
      'apt-get install postgresql',
      'client certificates to Postgres and Redis (ASVS 13.2.1)',
      () => {
        let dir: string;
        let pki: TestPki;
        let postgres: PrivatePostgres | undefined;
        let redis: PrivateRedis | undefined;
        let client: { postgres: ClientFiles; otherRole: ClientFiles; otherCa: ClientFiles };

        beforeAll(async () => {
          dir = await mkdtemp(path.join(tmpdir(), 'data-store-mtls-'));
          pki = await createTestPki(dir);
          client = {
            postgres: await pki.clientCertificate('postgres'),
            otherRole: await pki.clientCertificate('someone-else'),
            otherCa: await pki.clientCertificate('postgres', 'other-ca'),
          };
          redis = await createPrivateRedis({
            tls: {
              certFile: pki.serverCertFile,
              keyFile: pki.serverKeyFile,
              caFile: pki.caFile,
              authClients: true,
            },
          });
          await Promise.all([
            redis.start(),
            startTlsPostgres(dir, {
              certFile: pki.serverCertFile,
              keyFile: pki.serverKeyFile,
              clientCaFile: pki.caFile,
            }).then((started) => (postgres = started)),
          ]);
        }, 90_000);
        afterAll(async () => {
          await Promise.allSettled([postgres?.stop(), redis?.kill()]);
          if (dir) await rm(dir, { recursive: true, force: true });
        });

        const database = (files?: ClientFiles) =>
          configWith({
            DATABASE_URL: `postgres://postgres@localhost:${postgres!.port}/postgres?sslmode=verify-full`,
            DATABASE_CA_FILE: pki.caFile,
            ...(files && {
              DATABASE_CLIENT_CERT_FILE: files.certFile,
              DATABASE_CLIENT_KEY_FILE: files.keyFile,
            }),
          });
        const cache = (files?: ClientFiles) =>
          configWith({
            REDIS_URL: redis!.url,
            REDIS_CA_FILE: pki.caFile,
            ...(files && { REDIS_CLIENT_CERT_FILE: files.certFile, REDIS_CLIENT_KEY_FILE: files.keyFile }),
          });

        test('when the app presents the certificate whose CN is its role, then Postgres lets it in as that role, over TLS', async () => {
          expect(
            await queryOverConfig(
              database(client.postgres),
              'SELECT current_user AS role, ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
            ),
          ).toEqual([{ role: 'postgres', ssl: true, client_dn: '/CN=postgres' }]);
        });

        test('when the app presents no client certificate, then Postgres refuses the login', async () => {
          await expect(queryOverConfig(database())).rejects.toThrow(/requires a valid client certificate/);
        });

        test('when the certificate is signed by another CA, then Postgres refuses it in the handshake', async () => {
          await expect(queryOverConfig(database(client.otherCa))).rejects.toThrow(/alert unknown ca/);
        });

        test('when the certificate names another role, then Postgres refuses the login as this one', async () => {
          await expect(queryOverConfig(database(client.otherRole))).rejects.toThrow(
            /certificate authentication failed for user "postgres"/,
          );
        });

        test('when the app presents a certificate from the CA Redis trusts, then PING answers', async () => {
          expect(await pingOverConfig(cache(client.postgres))).toBe('PONG');
        });

        test('when the app presents no client certificate, then Redis refuses the connection', async () => {
          await expect(pingOverConfig(cache())).rejects.toThrow(
            /alert certificate required|Socket closed unexpectedly/,
          );
        });

        test('when the certificate is signed by another CA, then Redis refuses the connection', async () => {
          await expect(pingOverConfig(cache(client.otherCa))).rejects.toThrow(
            /alert unknown ca|Socket closed unexpectedly/,
          );
        });
      },
    );
  },
);
