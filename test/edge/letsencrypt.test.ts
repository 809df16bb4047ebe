import { randomBytes, X509Certificate } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import {
  describeResult,
  runCommand,
  startBackground,
  type BackgroundProcess,
  type CommandResult,
} from '../support/commands';
import { listen, type Listening } from '../support/listen';
import { startPebble, type Pebble } from '../support/pebble';
import { freePort } from '../support/ports';
import { ROOT } from '../support/run-script';
import { createTestApp, type TestApp } from '../support/test-app';
import { describeWithTool, hasTool } from '../support/tools';

/**
 * The Let's Encrypt part of the edge, end to end on 127.0.0.1: pebble (Let's Encrypt's ACME test
 * server) issues certificates to Debian's certbot over http-01, validated through the project's own
 * nginx configuration (scripts/nginx-local.sh), which proxies to the app in production mode. The
 * scripts under test are the ones docker compose runs: ensure-certificate.sh, init-letsencrypt.sh,
 * certbot-renew-loop.sh and nginx/reload-on-cert-change.sh; only how they reach certbot and nginx
 * differs (natively here, through `docker compose` there).
 *
 * Pebble's ports are fixed: this file must not run twice at the same time (one jest run never does).
 */

const DOMAIN = 'app.test';
const script = (name: string) => path.join(ROOT, 'scripts', name);

/** Every outside program this file drives, and the Debian package it comes in. */
const TOOLS: Record<string, string> = {
  nginx: 'nginx',
  envsubst: 'gettext-base',
  certbot: 'certbot',
  pebble: 'pebble',
  'pebble-challtestsrv': 'pebble',
  openssl: 'openssl',
};
/** describeWithTool checks one tool: the first missing one (so the message names it), else nginx. */
const [tool, toolPackage] = Object.entries(TOOLS).find(([command]) => !hasTool(command)) ?? [
  'nginx',
  'nginx',
];

describeWithTool(tool, `apt-get install ${toolPackage}`, "Let's Encrypt certificates at the edge", () => {
  let work: string;
  let pebble: Pebble | undefined;
  let t: TestApp | undefined;
  let app: Listening | undefined;
  let watcher: BackgroundProcess | undefined;
  /** Where everything lives; certbot's directories are what compose mounts at /etc/letsencrypt etc. */
  const dirs = { nginx: '', webroot: '', config: '', work: '', logs: '', certDir: '' };
  let httpPort: number;
  let httpsPort: number;

  /** The environment nginx-local.sh renders the template with, as compose gives it to the nginx image. */
  function nginxEnv(): Record<string, string> {
    return {
      SERVER_NAME: DOMAIN,
      APP_UPSTREAM: `127.0.0.1:${app!.port}`,
      HTTP_PORT: String(httpPort),
      HTTPS_PORT: String(httpsPort),
      CERT_DIR: dirs.certDir,
      ACME_WEBROOT: dirs.webroot,
    };
  }

  /** certbot's own directories, as init-letsencrypt.sh gives them to it. */
  function certbotArgs(): string[] {
    return ['--config-dir', dirs.config, '--work-dir', dirs.work, '--logs-dir', dirs.logs];
  }

  /** init-letsencrypt.sh run natively: certbot and nginx-local.sh instead of docker compose. */
  function initLetsEncrypt(args: string[], env: Record<string, string> = {}): Promise<CommandResult> {
    const nginxLocal = `${script('nginx-local.sh')} %s ${dirs.nginx}`;
    return runCommand(script('init-letsencrypt.sh'), args, {
      env: {
        ...nginxEnv(),
        ACME_SERVER: pebble!.directoryUrl,
        REQUESTS_CA_BUNDLE: pebble!.tlsCaFile,
        CERTBOT_CONFIG_DIR: dirs.config,
        CERTBOT_WORK_DIR: dirs.work,
        CERTBOT_LOGS_DIR: dirs.logs,
        ACME_WEBROOT: dirs.webroot,
        CERTBOT_RUN: 'env',
        // What `docker compose up -d nginx` does: start it unless it runs.
        NGINX_START: `kill -0 "$(cat ${dirs.nginx}/nginx.pid 2>/dev/null)" 2>/dev/null || ${nginxLocal.replace('%s', 'start')}`,
        NGINX_RELOAD: nginxLocal.replace('%s', 'reload'),
        ...env,
      },
      timeoutMs: 60_000,
    });
  }

  /** The certificate nginx presents to a client asking for `app.test`, checked against `ca` if given. */
  function servedCertificate(
    ca?: string,
  ): Promise<{ cert: X509Certificate; authorized: boolean; error?: string }> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect(
        {
          host: '127.0.0.1',
          port: httpsPort,
          servername: DOMAIN,
          ca,
          rejectUnauthorized: false,
          timeout: 5_000,
        },
        () => {
          const cert = socket.getPeerX509Certificate();
          const result = {
            authorized: socket.authorized,
            error: socket.authorizationError ? String(socket.authorizationError) : undefined,
          };
          socket.end();
          if (!cert) reject(new Error('nginx presented no certificate'));
          else resolve({ cert, ...result });
        },
      );
      socket.on('timeout', () => socket.destroy(new Error('TLS handshake timed out')));
      socket.on('error', reject);
    });
  }

  /**
   * The certificate served once it has this serial: `nginx -s reload` only signals the master, which
   * then starts new workers while the old ones finish, so a handshake right after may still get the old one.
   */
  async function servedOnceReloaded(serial: string, ca?: string, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    let served = await servedCertificate(ca);
    while (served.cert.serialNumber !== serial && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      served = await servedCertificate(ca);
    }
    return served;
  }

  const fileCertificate = async () =>
    new X509Certificate(await readFile(path.join(dirs.certDir, 'fullchain.pem')));
  const accessLog = () => readFile(path.join(dirs.nginx, 'access.log'), 'utf8').catch(() => '');
  /**
   * How many http-01 challenges pebble's validator fetched from our nginx (and got), as nginx's access
   * log recorded them: distinct tokens, since the validator may fetch one more than once.
   */
  const validations = async () => {
    const tokens = new Set<string>();
    for (const line of (await accessLog()).split('\n')) {
      const fetched = /"GET \/\.well-known\/acme-challenge\/([\w-]+) HTTP\/1\.1" 200 .*Pebble/.exec(line);
      if (fetched) tokens.add(fetched[1]!);
    }
    return tokens.size;
  };

  beforeAll(async () => {
    // nginx's workers run as nobody when nginx starts as root: the webroot must be reachable by them,
    // through a temp dir that mkdtemp makes 0700.
    work = await mkdtemp(path.join(os.tmpdir(), 'letsencrypt-'));
    await chmod(work, 0o755);
    Object.assign(dirs, {
      nginx: path.join(work, 'nginx'),
      webroot: path.join(work, 'acme-webroot'),
      config: path.join(work, 'letsencrypt'),
      work: path.join(work, 'certbot-work'),
      logs: path.join(work, 'certbot-logs'),
      certDir: path.join(work, 'letsencrypt', 'live', DOMAIN),
    });
    for (const dir of [dirs.nginx, dirs.webroot, path.join(work, 'pebble')])
      await mkdir(dir, { mode: 0o755 });

    httpPort = await freePort();
    httpsPort = await freePort();
    pebble = await startPebble({ dir: path.join(work, 'pebble'), httpPort });

    t = await createTestApp({
      NODE_ENV: 'production',
      PUBLIC_URL: `https://${DOMAIN}:${httpsPort}`,
      TRUST_PROXY: '1',
      SESSION_SECRET: randomBytes(36).toString('base64url'),
    });
    app = await listen(t.app, '127.0.0.1');
  }, 45_000);

  afterAll(async () => {
    await watcher?.stop();
    // Stops nginx if it runs (whichever step started it); does nothing otherwise.
    if (dirs.nginx) await runCommand(script('nginx-local.sh'), ['stop', dirs.nginx]);
    await pebble?.stop();
    await app?.close();
    await t?.close();
    if (work) await rm(work, { recursive: true, force: true });
  }, 30_000);

  test('when no domain is configured, then init-letsencrypt.sh only makes sure a localhost certificate exists', async () => {
    // SERVER_NAME=localhost is what compose gives nginx when none is configured.
    const result = await initLetsEncrypt([], {
      SERVER_NAME: 'localhost',
      NGINX_START: 'false',
      NGINX_RELOAD: 'false',
    });

    expect(result.code).toBe(0);
    const cert = new X509Certificate(
      await readFile(path.join(dirs.config, 'live', 'localhost', 'fullchain.pem')),
    );
    expect(cert.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(cert.issuer).toBe(cert.subject);
  });

  test('when a name cannot get a certificate over http-01, then init-letsencrypt.sh refuses before asking', async () => {
    for (const name of ['*.example.com', '192.0.2.1', 'localhost.localhost']) {
      const result = await initLetsEncrypt([name], { NGINX_START: 'false', NGINX_RELOAD: 'false' });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`'${name}'`);
    }
    // certbot never ran: it would have made its logs directory.
    await expect(stat(dirs.logs)).rejects.toThrow(/ENOENT/);
  });

  test('when no certificate exists yet, then ensure-certificate.sh makes a self-signed one and nginx starts with it', async () => {
    const ensure = () => runCommand(script('ensure-certificate.sh'), [], { env: nginxEnv() });
    const first = await ensure();
    expect(first.code).toBe(0);
    const made = await readFile(path.join(dirs.certDir, 'fullchain.pem'), 'utf8');
    // The key is for nginx's master (root) only.
    expect((await stat(path.join(dirs.certDir, 'privkey.pem'))).mode & 0o777).toBe(0o600);

    const start = await runCommand(script('nginx-local.sh'), ['start', dirs.nginx], { env: nginxEnv() });
    expect({ code: start.code, output: describeResult(start) }).toMatchObject({ code: 0 });

    const served = await servedCertificate();
    expect(served.cert.subjectAltName).toBe(`DNS:${DOMAIN}`);
    expect(served.cert.issuer).toBe(served.cert.subject);
    expect(served.cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');

    // Idempotent: a second run (every container start) keeps the certificate.
    expect((await ensure()).code).toBe(0);
    expect(await readFile(path.join(dirs.certDir, 'fullchain.pem'), 'utf8')).toBe(made);
  });

  // ASVS 5.0 12.2.2: a publicly trusted certificate (Let's Encrypt; here a local ACME server).
  test('when init-letsencrypt.sh runs, then certbot gets a certificate over http-01 through nginx, and nginx serves it', async () => {
    const selfSigned = await servedCertificate();

    const result = await initLetsEncrypt([DOMAIN]);

    expect({ code: result.code, output: describeResult(result) }).toMatchObject({ code: 0 });
    // certbot's lineage replaced the placeholder: live/ links into archive/, renewal settings are saved.
    expect((await lstat(path.join(dirs.certDir, 'fullchain.pem'))).isSymbolicLink()).toBe(true);
    const renewal = await readFile(path.join(dirs.config, 'renewal', `${DOMAIN}.conf`), 'utf8');
    expect(renewal).toContain(`server = ${pebble!.directoryUrl}`);
    expect(renewal).toContain('authenticator = webroot');
    // Pebble's validator fetched the token from our nginx (the only thing on httpPort), from the webroot.
    expect(await validations()).toBeGreaterThan(0);

    const issued = await fileCertificate();
    const served = await servedOnceReloaded(issued.serialNumber, await pebble!.issuingRoot());
    expect(served.cert.serialNumber).toBe(issued.serialNumber);
    expect(served.error).toBeUndefined();
    expect(served.authorized).toBe(true);
    expect(served.cert.issuer).toMatch(/Pebble Intermediate CA/);
    expect(served.cert.serialNumber).not.toBe(selfSigned.cert.serialNumber);

    // And the app answers behind it, over a connection that verifies the new certificate.
    const health = await httpsStatus('/healthz', await pebble!.issuingRoot());
    expect(health).toBe(200);
  }, 60_000);

  test('when init-letsencrypt.sh runs again, then the certificate is kept (no new request)', async () => {
    const before = (await fileCertificate()).serialNumber;

    const result = await initLetsEncrypt([]);

    expect({ code: result.code, output: describeResult(result) }).toMatchObject({ code: 0 });
    expect(result.stdout + result.stderr).toMatch(/not yet due for renewal/i);
    expect((await fileCertificate()).serialNumber).toBe(before);
  }, 60_000);

  test('when the ACME server changes (staging to production), then init-letsencrypt.sh gets a new certificate from it', async () => {
    const before = (await fileCertificate()).serialNumber;
    // The same pebble under another URL: to certbot, another server.
    const production = pebble!.directoryUrl.replace('localhost', '127.0.0.1');

    const result = await initLetsEncrypt([], { ACME_SERVER: production });

    expect({ code: result.code, output: describeResult(result) }).toMatchObject({ code: 0 });
    const renewal = await readFile(path.join(dirs.config, 'renewal', `${DOMAIN}.conf`), 'utf8');
    expect(renewal).toContain(`server = ${production}`);
    const issued = await fileCertificate();
    expect(issued.serialNumber).not.toBe(before);
    expect((await servedOnceReloaded(issued.serialNumber)).cert.serialNumber).toBe(issued.serialNumber);
  }, 60_000);

  test('when certbot renews, then reload-on-cert-change.sh reloads nginx and the new certificate is served', async () => {
    watcher = startBackground(path.join(ROOT, 'nginx', 'reload-on-cert-change.sh'), ['--foreground'], {
      env: {
        CERT_DIR: dirs.certDir,
        RELOAD_CHECK_INTERVAL: '1',
        NGINX_RELOAD_COMMAND: `${script('nginx-local.sh')} reload ${dirs.nginx}`,
      },
    });
    await watcher.waitForOutput(/watching/);
    const before = (await servedCertificate()).cert.serialNumber;

    // No deploy hook: nothing but the watcher tells nginx about the new files.
    const renewal = await runCommand(
      'certbot',
      ['renew', '--force-renewal', '--no-random-sleep-on-renew', '--non-interactive', ...certbotArgs()],
      { env: { REQUESTS_CA_BUNDLE: pebble!.tlsCaFile }, timeoutMs: 60_000 },
    );
    expect({ code: renewal.code, output: describeResult(renewal) }).toMatchObject({ code: 0 });
    const renewed = (await fileCertificate()).serialNumber;
    expect(renewed).not.toBe(before);

    // The watcher checks every second; a reload takes milliseconds.
    expect((await servedOnceReloaded(renewed)).cert.serialNumber).toBe(renewed);
    expect(watcher.output()).toMatch(/changed; reloading nginx/);
  }, 60_000);

  test('when certbot renew --dry-run runs, then the saved renewal settings work and nothing changes', async () => {
    const before = (await fileCertificate()).serialNumber;

    // --server again: certbot's dry run would otherwise go to Let's Encrypt's staging server.
    const dryRun = await runCommand(
      'certbot',
      [
        ...['renew', '--dry-run', '--no-random-sleep-on-renew', '--non-interactive'],
        ...['--server', pebble!.directoryUrl, ...certbotArgs()],
      ],
      { env: { REQUESTS_CA_BUNDLE: pebble!.tlsCaFile }, timeoutMs: 60_000 },
    );

    expect({ code: dryRun.code, output: describeResult(dryRun) }).toMatchObject({ code: 0 });
    expect(dryRun.stdout + dryRun.stderr).toMatch(/all simulated renewals succeeded/i);
    expect((await fileCertificate()).serialNumber).toBe(before);
  }, 60_000);

  test('when the renewal loop runs, then each round renews through nginx, and SIGTERM stops it at once', async () => {
    const validationsBefore = await validations();
    // Dry runs, so each round really talks to the ACME server; a real round is `certbot renew`,
    // which does nothing until a certificate is due.
    const loop = startBackground(
      script('certbot-renew-loop.sh'),
      ['--dry-run', '--no-random-sleep-on-renew', '--server', pebble!.directoryUrl, ...certbotArgs()],
      { env: { ACME_WEBROOT: dirs.webroot, RENEW_INTERVAL: '1', REQUESTS_CA_BUNDLE: pebble!.tlsCaFile } },
    );
    try {
      const deadline = Date.now() + 20_000;
      while ((await validations()) < validationsBefore + 2 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(await validations()).toBeGreaterThanOrEqual(validationsBefore + 2);
      expect(loop.output()).not.toMatch(/failed/);
    } finally {
      // SIGTERM to the script alone, as `docker stop` sends it to PID 1 only. A round in progress
      // finishes first (a second or two); the sleep after it does not hold the exit up.
      loop.child.kill('SIGTERM');
      const exit = await loop.waitForExit(5_000);
      await loop.stop();
      expect(exit).toEqual({ code: 0, signal: null });
    }
  }, 60_000);

  /** GET through nginx over HTTPS, verifying its certificate against `ca` for app.test. */
  function httpsStatus(pathname: string, ca: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = https.get(
        {
          host: '127.0.0.1',
          port: httpsPort,
          servername: DOMAIN,
          ca,
          path: pathname,
          headers: { host: `${DOMAIN}:${httpsPort}` },
          agent: false,
          timeout: 5_000,
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`GET ${pathname} timed out`)));
      req.on('error', reject);
    });
  }
});
