import { chmodSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { ComposeProject } from '../support/compose-project';
import { createPebbleTls } from '../support/pebble';

/**
 * Let's Encrypt in containers: the stack's own nginx, certbot service and scripts/init-letsencrypt.sh,
 * against pebble (Let's Encrypt's ACME test server) added as a test-only service. Docker's DNS gives
 * nginx the served name on the public network, so pebble's http-01 validation reaches nginx there,
 * as Let's Encrypt reaches a real server on port 80.
 */

const SERVER_NAME = 'app.test';
const PEBBLE_IMAGE = 'compose-test/pebble:trixie';

const PEBBLE_OVERRIDE = `# Test only: pebble as the ACME server; nginx answers for ${SERVER_NAME} on the public network.
services:
  pebble:
    image: ${PEBBLE_IMAGE}
    pull_policy: never
    command: ['-config', '/etc/pebble/pebble-config.json']
    environment:
      PEBBLE_VA_NOSLEEP: '1'
      PEBBLE_WFE_NONCEREJECT: '0'
    volumes:
      - ./test-pebble:/etc/pebble:ro
    networks: [public]
  nginx:
    environment:
      RELOAD_CHECK_INTERVAL: '2'
    networks:
      public:
        aliases: [${SERVER_NAME}]
  certbot:
    environment:
      REQUESTS_CA_BUNDLE: /etc/pebble/tls-ca.pem
    volumes:
      - ./test-pebble/tls-ca.pem:/etc/pebble/tls-ca.pem:ro
`;

const project = new ComposeProject({
  overrides: { 'test-pebble.override.yml': PEBBLE_OVERRIDE },
  env: { SERVER_NAME },
});

interface Served {
  issuer: string;
  serial: string;
  subjectAltName: string;
}

/** The certificate nginx serves for SERVER_NAME (not verified: pebble's root is new on every start). */
function served(port: number): Promise<Served> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port, servername: SERVER_NAME, rejectUnauthorized: false },
      () => {
        const peer = socket.getPeerCertificate();
        socket.end();
        resolve({
          issuer: [peer.issuer.CN ?? ''].flat().join(' '),
          serial: peer.serialNumber,
          subjectAltName: peer.subjectaltname ?? '',
        });
      },
    );
    socket.setTimeout(10_000, () => socket.destroy(new Error('no handshake within 10 s')));
    socket.on('error', reject);
  });
}

let https443 = 0;

beforeAll(async () => {
  const dir = path.join(project.dir, 'test-pebble');
  mkdirSync(dir);
  const { cert, key } = await createPebbleTls(dir, 'DNS:pebble');
  const config = {
    pebble: {
      listenAddress: '0.0.0.0:14000',
      managementListenAddress: '0.0.0.0:15000',
      certificate: `/etc/pebble/${path.basename(cert)}`,
      privateKey: `/etc/pebble/${path.basename(key)}`,
      httpPort: 80,
      tlsPort: 443,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
    },
  };
  writeFileSync(path.join(dir, 'pebble-config.json'), JSON.stringify(config));
  // Test material only: pebble runs as nobody and must read its key.
  for (const file of readdirSync(dir)) chmodSync(path.join(dir, file), 0o644);
  await project.mustCompose(['up', '--detach', '--wait'], { timeoutMs: 900_000 });
  https443 = await project.port('nginx', 443);
}, 1_000_000);

afterAll(async () => project.destroy(), 300_000);

describe("Let's Encrypt in containers", () => {
  test('when init-letsencrypt.sh runs against the ACME server, then nginx serves the issued certificate for the name', async () => {
    const before = await served(https443);
    expect(before.issuer).toBe(SERVER_NAME); // the temporary self-signed one

    const result = await project.shell(
      'scripts/init-letsencrypt.sh',
      { ACME_SERVER: 'https://pebble:14000/dir' },
      300_000,
    );
    expect({ code: result.code, output: result.stderr }).toEqual({
      code: 0,
      output: expect.stringContaining('Done.') as string,
    });

    const issued = await project.until('nginx serves the issued certificate', async () => {
      const now = await served(https443);
      return /pebble/i.test(now.issuer) && now;
    });
    expect(issued.subjectAltName).toBe(`DNS:${SERVER_NAME}`);
  });

  test('when the certbot service renews, then nginx serves the new certificate by itself, without a restart or a manual reload', async () => {
    const nginxBefore = await project.container('nginx');
    const before = await served(https443);
    const reloads = async () =>
      (
        (await project.mustCompose(['logs', '--no-color', 'nginx'])).match(
          /certificate in \S+ changed; reloading nginx/g,
        ) ?? []
      ).length;
    // The watcher checks every 2 s: let it record the issuance's certificate before counting.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    const reloadsBefore = await reloads();
    await project.mustCompose(
      [
        'exec',
        '-T',
        'certbot',
        'certbot',
        'renew',
        '--force-renewal',
        '--no-random-sleep-on-renew',
        '--webroot',
        '-w',
        '/var/www/certbot',
      ],
      { timeoutMs: 300_000 },
    );
    const renewed = await project.until('nginx serves the renewed certificate', async () => {
      const now = await served(https443);
      return now.serial !== before.serial && now;
    });
    expect(renewed.issuer).toBe(before.issuer);
    const nginxAfter = await project.container('nginx');
    expect({ started: nginxAfter.State.StartedAt, restarts: nginxAfter.RestartCount }).toEqual({
      started: nginxBefore.State.StartedAt,
      restarts: nginxBefore.RestartCount,
    });
    // The watcher in the nginx container did it (init-letsencrypt.sh's own reload came before).
    expect(await reloads()).toBeGreaterThan(reloadsBefore);
  });
});
