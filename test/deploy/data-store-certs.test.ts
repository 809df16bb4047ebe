import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT } from '../support/run-script';

/**
 * ASVS 13.2.1: scripts/data-store-certs.sh, which data-certs-init runs on every `up` (docker-compose.yml,
 * ADR 0035): the stack's private CA, a server certificate for each data store under the name it is
 * reached by, and a client certificate for each account that connects, each key in its consumer's folder
 * (its own tls volume).
 */

const SCRIPT = path.join(ROOT, 'scripts', 'data-store-certs.sh');

const EXPECTED = {
  app: ['ca.crt', 'postgres-client.crt', 'postgres-client.key', 'redis-client.crt', 'redis-client.key'],
  postgres: ['ca.crt', 'server.crt', 'server.key'],
  redis: [
    'admin.crt',
    'admin.key',
    'ca.crt',
    'healthcheck.crt',
    'healthcheck.key',
    'server.crt',
    'server.key',
  ],
};

describe('the data stores` certificates (ASVS 13.2.1)', () => {
  let dir: string;
  const secrets = () => path.join(dir, 'secrets');
  const caDir = () => path.join(dir, 'ca');
  const run = (env: Record<string, string> = {}) =>
    execFileSync('sh', [SCRIPT], {
      env: { ...process.env, TLS_DIR: secrets(), CA_DIR: caDir(), ...env },
      encoding: 'utf8',
      // openssl's progress lines on stderr are not the test's output.
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  const cert = (volume: string, name: string) =>
    new X509Certificate(readFileSync(path.join(secrets(), volume, `${name}.crt`)));
  const ca = () => new X509Certificate(readFileSync(path.join(caDir(), 'ca.crt')));
  const fingerprints = () =>
    Object.fromEntries(
      Object.entries(EXPECTED).flatMap(([volume, files]) =>
        files
          .filter((f) => f.endsWith('.crt'))
          .map((f) => [`${volume}/${f}`, cert(volume, f.replace(/\.crt$/, '')).fingerprint256]),
      ),
    );

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'data-store-certs-'));
    for (const volume of Object.keys(EXPECTED)) mkdirSync(path.join(secrets(), volume), { recursive: true });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('when it first runs, then each store gets a server certificate for its name and each account a client certificate with its name as CN, all from one P-256 CA, every key 0600 in its consumer`s folder', () => {
    run();
    for (const [volume, files] of Object.entries(EXPECTED)) {
      expect(readdirSync(path.join(secrets(), volume)).sort()).toEqual(files);
      for (const file of files) expect(statSync(path.join(secrets(), volume, file)).mode & 0o777).toBe(0o600);
    }
    // The CA's key exists only in its own folder.
    expect(readdirSync(caDir()).sort()).toEqual(['ca.crt', 'ca.key']);
    expect(ca().ca).toBe(true);
    const issued = {
      'postgres/server': ['CN=postgres', 'serverAuth'],
      'redis/server': ['CN=redis', 'serverAuth'],
      'redis/healthcheck': ['CN=healthcheck', 'clientAuth'],
      'redis/admin': ['CN=admin', 'clientAuth'],
      'app/postgres-client': ['CN=app', 'clientAuth'],
      'app/redis-client': ['CN=app', 'clientAuth'],
    };
    for (const [name, [subject, usage]] of Object.entries(issued)) {
      const [volume, file] = name.split('/') as [string, string];
      const leaf = cert(volume, file);
      expect({ name, subject: leaf.subject, ca: leaf.ca, signed: leaf.verify(ca().publicKey) }).toEqual({
        name,
        subject,
        ca: false,
        signed: true,
      });
      expect(leaf.keyUsage).toEqual([usage === 'serverAuth' ? '1.3.6.1.5.5.7.3.1' : '1.3.6.1.5.5.7.3.2']);
      expect(leaf.publicKey.asymmetricKeyDetails).toEqual({ namedCurve: 'prime256v1' });
      const key = createPrivateKey(readFileSync(path.join(secrets(), volume, `${file}.key`)));
      expect(leaf.checkPrivateKey(key)).toBe(true);
    }
    // The names the app reaches the servers by (and the containers' own loopback, for health checks).
    expect(cert('postgres', 'server').checkHost('postgres')).toBe('postgres');
    expect(cert('redis', 'server').checkHost('redis')).toBe('redis');
    expect(cert('redis', 'server').checkHost('postgres')).toBeUndefined();
    for (const volume of Object.keys(EXPECTED))
      expect(readFileSync(path.join(secrets(), volume, 'ca.crt'), 'utf8')).toBe(
        readFileSync(path.join(caDir(), 'ca.crt'), 'utf8'),
      );
  });

  test('when it runs again, then every certificate is kept', () => {
    run();
    const before = fingerprints();
    expect(run()).not.toMatch(/issued|created/);
    expect(fingerprints()).toEqual(before);
  });

  test('when a certificate is within the renewal window, then that one is issued again with a new key, and the others are kept', () => {
    run();
    const before = fingerprints();
    // Issued for 30 days: inside the 60-day window at the next run.
    rmSync(path.join(secrets(), 'app', 'redis-client.crt'));
    run({ LEAF_DAYS: '30' });
    // The key of that 30-day certificate: the renewal below must replace it, not only the certificate.
    const oldKey = readFileSync(path.join(secrets(), 'app', 'redis-client.key'), 'utf8');
    expect(run()).toMatch(/issued app\/redis-client\.crt/);
    const after = fingerprints();
    expect(after['app/redis-client.crt']).not.toBe(before['app/redis-client.crt']);
    expect(readFileSync(path.join(secrets(), 'app', 'redis-client.key'), 'utf8')).not.toBe(oldKey);
    expect(after['app/postgres-client.crt']).toBe(before['app/postgres-client.crt']);
    expect(cert('app', 'redis-client').validToDate.getTime()).toBeGreaterThan(Date.now() + 300 * 86_400_000);
  });

  test('when the CA is replaced, then every certificate is issued again under the new one', () => {
    run();
    const before = fingerprints();
    rmSync(path.join(caDir(), 'ca.crt'));
    expect(run()).toMatch(/created a new CA/);
    const after = fingerprints();
    for (const name of Object.keys(before)) expect(after[name]).not.toBe(before[name]);
    expect(cert('postgres', 'server').verify(ca().publicKey)).toBe(true);
  });

  // Finding B of the CA review: a CA replaced near its end must not break running servers (ADR 0035).
  test('when the CA nears its end, then its certificate is issued again for the same key, every certificate is kept, and old and new CA certificates each verify what the other signed', () => {
    run();
    const before = fingerprints();
    const oldCa = ca();
    const oldKey = readFileSync(path.join(caDir(), 'ca.key'), 'utf8');
    // Every CA has less than 4000 days left: this run renews it, as the default 400 days will.
    expect(run({ CA_RENEW_DAYS: '4000' })).toMatch(/renewed the CA certificate/);
    expect(ca().fingerprint256).not.toBe(oldCa.fingerprint256);
    expect(ca().subject).toBe(oldCa.subject);
    expect(readFileSync(path.join(caDir(), 'ca.key'), 'utf8')).toBe(oldKey);
    // Every leaf is kept (only the published ca.crt copies change), and still chains to the new CA.
    const leaves = (all: Record<string, string | undefined>) =>
      Object.entries(all).filter(([name]) => !name.endsWith('/ca.crt'));
    expect(leaves(fingerprints())).toEqual(leaves(before));
    expect(cert('postgres', 'server').verify(ca().publicKey)).toBe(true);
    // A leaf issued after the renewal, as a server still holding the old CA certificate sees it.
    run({ RENEW_DAYS: '400' });
    const renewed = cert('app', 'postgres-client');
    expect(renewed.fingerprint256).not.toBe(before['app/postgres-client.crt']);
    const verifies = (caFile: string, leaf: string) =>
      spawnSync('openssl', ['verify', '-CAfile', caFile, leaf]).status === 0;
    writeFileSync(path.join(dir, 'old-ca.crt'), oldCa.toString());
    expect(verifies(path.join(dir, 'old-ca.crt'), path.join(secrets(), 'app', 'postgres-client.crt'))).toBe(
      true,
    );
  });

  test('when ca.key does not belong to ca.crt, then it stops, says why on stderr, and leaves no temporary file', () => {
    run();
    const before = fingerprints();
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    writeFileSync(path.join(caDir(), 'ca.key'), other.export({ format: 'pem', type: 'pkcs8' }));
    const result = spawnSync('sh', [SCRIPT], {
      env: { ...process.env, TLS_DIR: secrets(), CA_DIR: caDir() },
      encoding: 'utf8',
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/ca\.key does not belong to \S+ca\.crt/);
    expect(result.stdout).not.toMatch(/kept the CA/);
    expect(fingerprints()).toEqual(before);
  });

  test('when openssl fails half-way, then its error is shown and no temporary key is left in the volume', () => {
    run();
    // The certificate cannot be written (a directory holds its temporary name), after the new key was.
    rmSync(path.join(secrets(), 'app', 'redis-client.crt'));
    mkdirSync(path.join(secrets(), 'app', '.redis-client.crt.new'));
    const result = spawnSync('sh', [SCRIPT], {
      env: { ...process.env, TLS_DIR: secrets(), CA_DIR: caDir() },
      encoding: 'utf8',
    });
    expect(result.status).not.toBe(0);
    // openssl's own reason, no longer sent to /dev/null.
    expect(result.stderr).toMatch(/Can't open "[^"]*redis-client\.crt\.new" for writing/);
    expect(readdirSync(path.join(secrets(), 'app')).filter((f) => f.startsWith('.'))).toEqual([
      '.redis-client.crt.new',
    ]);
  });

  test('when a consumer`s folder is missing (its volume is not mounted), then it stops and issues nothing', () => {
    rmSync(path.join(secrets(), 'redis'), { recursive: true });
    expect(() =>
      execFileSync('sh', [SCRIPT], {
        env: { ...process.env, TLS_DIR: secrets(), CA_DIR: caDir() },
        stdio: 'pipe',
      }),
    ).toThrow(/redis is missing/);
    expect(readdirSync(path.join(secrets(), 'app'))).toEqual([]);
  });
});
