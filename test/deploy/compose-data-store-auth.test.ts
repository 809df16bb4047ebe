import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadCompose, parseVolume, requireService } from '../support/compose';
import { ROOT } from '../support/run-script';

/**
 * ASVS 13.2.1, 12.3.1 (ADR 0035), read from docker-compose.yml and docker/postgres/pg_hba.conf: the
 * settings that make the data stores demand a client certificate. test/compose/stack.test.ts proves
 * them on a running stack; this file names each one, so removing it fails at once.
 */

const compose = loadCompose();
const service = (name: string) => requireService(compose, name);

/** pg_hba.conf's rules, comments and blank lines left out, each as its whitespace-separated fields. */
const hbaRules = () =>
  readFileSync(path.join(ROOT, 'docker/postgres/pg_hba.conf'), 'utf8')
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter(Boolean)
    .map((line) => line.split(/\s+/));

describe('the data stores demand client certificates (ASVS 13.2.1)', () => {
  test('when pg_hba.conf is read, then the app role may only come over TLS with a certificate, nothing plain comes from the network, and the superuser only from inside its container', () => {
    const rules = hbaRules();
    // No `host` (plain or TLS) nor `hostnossl` line: every network rule is TLS.
    expect(rules.filter(([type]) => type !== 'local' && type !== 'hostssl')).toEqual([]);
    expect(rules.filter(([, , user]) => user === 'app' || user === 'all')).toEqual([
      ['hostssl', 'app', 'app', 'all', 'cert'],
    ]);
    for (const [type, , , address, method] of rules.filter(([, , user]) => user === 'postgres')) {
      if (type === 'local') expect(method ?? address).toBe('peer');
      else expect(['127.0.0.1/32', '::1/128']).toContain(address);
    }
    expect(rules.some(([, , , , method]) => method === 'trust' || method === 'password')).toBe(false);
  });

  test('when Postgres`s command is read, then it uses that pg_hba.conf, TLS with the stack`s certificates, and the CA that signs the clients', () => {
    const postgres = service('postgres');
    const command = (postgres.command as string[]).join(' ');
    for (const setting of [
      'ssl=on',
      'ssl_cert_file=/run/tls/postgres/server.crt',
      'ssl_key_file=/run/tls/postgres/server.key',
      'ssl_ca_file=/run/tls/postgres/ca.crt',
      'hba_file=/etc/postgresql/pg_hba.conf',
    ])
      expect(command).toContain(`-c ${setting}`);
    expect((postgres.volumes ?? []).map(parseVolume)).toContainEqual({
      source: './docker/postgres/pg_hba.conf',
      target: '/etc/postgresql/pg_hba.conf',
      readOnly: true,
    });
  });

  test('when Redis`s command is read, then it has no plain port and asks every client for a certificate from the stack`s CA', () => {
    const command = (service('redis').command as string[]).join(' ');
    expect(command).toContain('--port 0 ');
    expect(command).toContain('--tls-port 6379 ');
    expect(command).toContain('--tls-auth-clients yes');
    expect(command).toContain('--tls-ca-cert-file /run/tls/redis/ca.crt');
  });

  test('when the app`s environment is read, then it presents a client certificate to each store and verifies each server with the stack`s CA', () => {
    const env = service('app').environment!;
    expect(env).toMatchObject({
      DATABASE_CA_FILE: '/run/tls/app/ca.crt',
      DATABASE_CLIENT_CERT_FILE: '/run/tls/app/postgres-client.crt',
      DATABASE_CLIENT_KEY_FILE: '/run/tls/app/postgres-client.key',
      REDIS_CA_FILE: '/run/tls/app/ca.crt',
      REDIS_CLIENT_CERT_FILE: '/run/tls/app/redis-client.crt',
      REDIS_CLIENT_KEY_FILE: '/run/tls/app/redis-client.key',
    });
    // migrate logs in as the same role, with the same settings.
    expect(service('migrate').environment).toEqual(env);
  });
});
