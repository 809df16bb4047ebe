import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../../config/config';
import { runCommand } from '../support/commands';
import { loadCompose, parseVolume, requireService, type ComposeService } from '../support/compose';
import { mfaKey } from '../support/mfa';
import { ROOT } from '../support/run-script';
import { describeWithTool } from '../support/tools';

/**
 * Mail in the compose deployment, read without Docker: the development catcher of the `mail` profile
 * (confined like every other service, published on loopback only), and the two files of
 * docker/compose/ that change the app's reach: smtp-egress.yml (a route out, to a real SMTP server) and
 * mail-catcher.yml (the catcher, trusted over STARTTLS). How the SMTP URL reaches the app as a file:
 * compose-secrets.test.ts.
 */

const compose = loadCompose({});
const service = (name: string): ComposeService => requireService(compose, name);
const app = service('app');
const mailpit = service('mailpit');
const internal = (network: string) => compose.networks[network]?.internal === true;

/** An overlay of docker/compose/, as YAML gives it (it refers to no variable). */
interface Overlay {
  services: Record<string, ComposeService>;
  networks?: Record<string, { internal?: boolean; driver_opts?: Record<string, string> } | null>;
}
const overlay = (file: string): { text: string; parsed: Overlay } => {
  const text = readFileSync(path.join(ROOT, 'docker/compose', file), 'utf8');
  return { text, parsed: parse(text) as Overlay };
};

describe('the development mail catcher (profile mail)', () => {
  test('when its ports are read, then SMTP and the web UI are published on 127.0.0.1 only', () => {
    expect(mailpit.ports).toEqual(['127.0.0.1:1025:1025', '127.0.0.1:8025:8025']);
  });

  test('when it is read, then it is confined like the rest: read-only, no capability, no privilege gain, bounded storage in memory', () => {
    for (const s of [mailpit, service('mail-catcher-certs')]) {
      expect(s.read_only).toBe(true);
      expect(s.cap_drop).toEqual(['ALL']);
      expect(s.cap_add).toBeUndefined();
      expect(s.security_opt).toContain('no-new-privileges:true');
      expect(s.privileged).toBeUndefined();
    }
    expect(mailpit.tmpfs?.some((t) => t.startsWith('/tmp:'))).toBe(true);
    expect(Number(mailpit.environment!.MP_MAX_MESSAGES)).toBeGreaterThan(0);
    // A catcher that could relay would turn a development stack into an open relay.
    expect(Object.keys(mailpit.environment!).filter((k) => /RELAY|FORWARD/.test(k))).toEqual([]);
  });

  test('when networks are read, then the app never meets the catcher without the overlay, and the one network with a route out holds the catcher alone', () => {
    expect(mailpit.networks).toEqual(['mail-catcher', 'mail-catcher-ports']);
    expect(internal('mail-catcher')).toBe(true);
    expect(internal('mail-catcher-ports')).toBe(false);
    for (const [name, s] of Object.entries(compose.services)) {
      if (name === 'mailpit') continue;
      expect({ name, networks: (s.networks ?? []).filter((n) => n.startsWith('mail-catcher')) }).toEqual({
        name,
        networks: [],
      });
    }
  });

  test('when its SMTP is read, then it requires STARTTLS, with the certificate mail-catcher-certs writes', () => {
    const env = mailpit.environment!;
    expect(env.MP_SMTP_REQUIRE_STARTTLS).toBe('true');
    const certs = service('mail-catcher-certs');
    // The same script as certs-init, writing into the volume mailpit reads.
    expect(certs.entrypoint).toEqual(service('certs-init').entrypoint);
    const written = (certs.volumes ?? [])
      .map(parseVolume)
      .find((m) => m.target === certs.environment!.CERT_DIR)!;
    const read = (mailpit.volumes ?? []).map(parseVolume).find((m) => m.source === written.source)!;
    expect(read.readOnly).toBe(true);
    expect(env.MP_SMTP_TLS_CERT).toBe(`${read.target}/fullchain.pem`);
    expect(env.MP_SMTP_TLS_KEY).toBe(`${read.target}/privkey.pem`);
    expect(certs.environment!.CERT_SAN!.split(',')).toEqual(
      expect.arrayContaining(['DNS:mailpit', 'IP:127.0.0.1']),
    );
  });
});

describeWithTool('openssl', 'apt-get install openssl', 'the mail catcher`s certificate', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'mail-catcher-certs-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('when ensure-certificate.sh runs with the catcher`s environment, then the certificate names the catcher and loopback; without CERT_SAN, SERVER_NAME alone', async () => {
    const env = service('mail-catcher-certs').environment!;
    const script = path.join(ROOT, 'scripts/ensure-certificate.sh');
    const run = (extra: Record<string, string>) =>
      runCommand('sh', [script], { env: { ...extra, CERT_DIR: path.join(dir, extra.SERVER_NAME!) } });

    expect(await run({ SERVER_NAME: env.SERVER_NAME!, CERT_SAN: env.CERT_SAN! })).toMatchObject({ code: 0 });
    expect(await run({ SERVER_NAME: 'example.test' })).toMatchObject({ code: 0 });

    const san = (name: string) =>
      new X509Certificate(readFileSync(path.join(dir, name, 'fullchain.pem'))).subjectAltName;
    expect(san('mailpit')).toBe(
      'DNS:mailpit, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    expect(san('example.test')).toBe('DNS:example.test');
  });
});

describe('docker/compose/smtp-egress.yml', () => {
  const { parsed } = overlay('smtp-egress.yml');

  test('when it is merged, then the app alone gains one network, with a route out and a bridge name a firewall rule can use', () => {
    expect(Object.keys(parsed.services)).toEqual(['app']);
    const networks = parsed.services.app!.networks!;
    expect(networks.slice(0, -1)).toEqual(app.networks);
    const added = networks.at(-1)!;
    expect(compose.networks[added]).toBeUndefined();
    const declared = parsed.networks![added]!;
    expect(declared.internal).toBeUndefined();
    expect(declared.driver_opts!['com.docker.network.bridge.name']).toMatch(/^[a-z0-9-]{1,15}$/);
    expect(Object.keys(parsed.services.app!)).toEqual(['networks']);
  });
});

describe('docker/compose/mail-catcher.yml', () => {
  const { text, parsed } = overlay('mail-catcher.yml');
  const extra = parsed.services.app!;

  test('when it is merged, then the app joins the catcher`s internal network only, and trusts the catcher`s certificate read-only', () => {
    expect(Object.keys(parsed.services)).toEqual(['app']);
    expect(parsed.networks).toBeUndefined();
    expect(extra.networks).toEqual([...app.networks!, 'mail-catcher']);
    expect(internal('mail-catcher')).toBe(true);
    // The base file's mounts are kept; the one added is the catcher's certificate volume, read-only.
    const mounts = (extra.volumes ?? []).map(parseVolume);
    expect(mounts.slice(0, -1).map((m) => `${m.source}:${m.target}`)).toEqual(
      (app.volumes ?? []).map(parseVolume).map((m) => `${m.source}:${m.target}`),
    );
    const tls = mounts.at(-1)!;
    expect(tls).toMatchObject({ source: 'mail-catcher-tls', readOnly: true });
    expect(extra.environment).toEqual({ NODE_EXTRA_CA_CERTS: `${tls.target}/fullchain.pem` });
    expect(extra.depends_on).toEqual({ mailpit: { condition: 'service_healthy' } });
  });

  test('when the SMTP URL it documents is given to the app, then production accepts it: STARTTLS to the catcher', () => {
    const url = /smtp_url:\s+(\S+)/.exec(text)![1]!;
    const files: Record<string, string> = {
      smtp_url: url,
      session_secret: 'x'.repeat(64),
      database_url: 'postgres://app@postgres:5432/app?sslmode=verify-full',
      redis_url: 'rediss://app:x@redis:6379',
      // The data stores' certificates (data-certs-init): only their kind matters here.
      'ca.crt': '-----BEGIN CERTIFICATE-----',
      'postgres-client.crt': '-----BEGIN CERTIFICATE-----',
      'postgres-client.key': '-----BEGIN PRIVATE KEY-----',
      'redis-client.crt': '-----BEGIN CERTIFICATE-----',
      'redis-client.key': '-----BEGIN PRIVATE KEY-----',
      mfa_encryption_keys: mfaKey('compose-1'),
    };
    const config = loadConfig({ ...app.environment!, MAIL_FROM: 'no-reply@example.com' }, (file) => {
      return `${files[path.basename(file)]!}\n`;
    });
    expect(config.mail).toMatchObject({
      transport: 'smtp',
      smtp: { host: 'mailpit', port: 1025, secure: false, requireTLS: true, auth: undefined },
    });
    expect(readFileSync(path.join(ROOT, 'docs/deploy.md'), 'utf8')).toContain(url);
  });
});
