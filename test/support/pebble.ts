import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { promisify } from 'node:util';
import { startBackground, type BackgroundProcess } from './commands';
import { isListening } from './ports';

/**
 * Pebble, Let's Encrypt's ACME test server, with pebble-challtestsrv as its DNS server, both on
 * 127.0.0.1: a real ACME exchange (account, order, http-01 validation, issuance) without the internet.
 * Pebble's ports are fixed (it has no port 0), so only one can run at a time on a machine, and it
 * makes a new root CA on each start.
 */

/** Pebble's fixed addresses. */
const ACME_PORT = 14000;
const MANAGEMENT_PORT = 15000;
const DNS_PORT = 8053;
const CHALLTESTSRV_MANAGEMENT_PORT = 8055;
/** How long to wait for those ports to be free. */
const PORTS_WAIT_MS = 20_000;

export interface Pebble {
  /** The ACME directory URL, for certbot's --server. */
  directoryUrl: string;
  /** The CA that signed pebble's own HTTPS certificate: certbot's REQUESTS_CA_BUNDLE. */
  tlsCaFile: string;
  /** The root pebble issues certificates under (new each start), for verifying what nginx serves. */
  issuingRoot(): Promise<string>;
  /** What pebble and its DNS server printed, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

const openssl = (args: string[]) => promisify(execFile)('openssl', args, { timeout: 10_000 });

/**
 * Starts pebble-challtestsrv and pebble. `httpPort` is where pebble's validator connects for http-01
 * (instead of 80): the port our nginx serves plain HTTP on. Every name resolves to 127.0.0.1.
 */
export async function startPebble({ dir, httpPort }: { dir: string; httpPort: number }): Promise<Pebble> {
  // Another run of a pebble test (a second jest in the same checkout) finishes within seconds: wait for
  // it rather than fail at once. A pebble left behind by a killed run is reported after the wait.
  const ports = [ACME_PORT, MANAGEMENT_PORT, DNS_PORT, CHALLTESTSRV_MANAGEMENT_PORT];
  const anyTaken = async () => (await Promise.all(ports.map(isListening))).some(Boolean);
  await waitUntil(
    async () => !(await anyTaken()),
    PORTS_WAIT_MS,
    `pebble's ports (${ports.join(', ')} on 127.0.0.1) stayed taken: is another pebble still running?`,
  );

  // The Debian package ships no certificate for pebble's HTTPS listener.
  const { caCert, cert, key } = await createPebbleTls(dir, 'DNS:localhost,IP:127.0.0.1');

  const config = path.join(dir, 'pebble-config.json');
  await writeFile(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${ACME_PORT}`,
        managementListenAddress: `127.0.0.1:${MANAGEMENT_PORT}`,
        certificate: cert,
        privateKey: key,
        httpPort,
        tlsPort: 5001,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );

  const started: BackgroundProcess[] = [];
  const output = () => started.map((p) => p.output()).join('\n');
  const stop = async () => {
    await Promise.all(started.map((p) => p.stop()));
  };
  try {
    // A DNS server answering 127.0.0.1 for every name (no AAAA), and nothing else: its own challenge
    // responders stay off, so http-01 can only be answered by our nginx.
    const dns = startBackground('pebble-challtestsrv', [
      ...['-defaultIPv4', '127.0.0.1', '-defaultIPv6', ''],
      ...['-dns01', `127.0.0.1:${DNS_PORT}`, '-http01', '', '-https01', '', '-tlsalpn01', ''],
      ...['-management', `127.0.0.1:${CHALLTESTSRV_MANAGEMENT_PORT}`],
    ]);
    started.push(dns);
    await waitUntil(
      () => isListening(CHALLTESTSRV_MANAGEMENT_PORT),
      10_000,
      'pebble-challtestsrv did not start',
    );

    // NOSLEEP: no random pause before validating; NONCEREJECT=0: no deliberately rejected nonces.
    const pebble = startBackground('pebble', ['-config', config, '-dnsserver', `127.0.0.1:${DNS_PORT}`], {
      env: { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' },
    });
    started.push(pebble);
    await pebble.waitForOutput(/ACME directory available/, 10_000);
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n${output()}`, { cause: error });
  }

  const tlsCa = await readFile(caCert, 'utf8');
  return {
    directoryUrl: `https://localhost:${ACME_PORT}/dir`,
    tlsCaFile: caCert,
    issuingRoot: () => httpsGet(`https://localhost:${MANAGEMENT_PORT}/roots/0`, tlsCa),
    output,
    stop,
  };
}

/**
 * A small CA and a certificate signed by it for pebble's own HTTPS listener (the Debian package ships
 * none), valid for a day; `subjectAltName` names where certbot will reach pebble.
 */
export async function createPebbleTls(
  dir: string,
  subjectAltName: string,
): Promise<{ caCert: string; cert: string; key: string }> {
  const caKey = path.join(dir, 'tls-ca.key');
  const caCert = path.join(dir, 'tls-ca.pem');
  const key = path.join(dir, 'tls.key');
  const csr = path.join(dir, 'tls.csr');
  const cert = path.join(dir, 'tls.pem');
  const extensions = path.join(dir, 'tls.ext');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl([
    'req',
    '-x509',
    ...ec,
    '-days',
    '1',
    '-subj',
    '/CN=pebble test TLS CA',
    '-keyout',
    caKey,
    '-out',
    caCert,
  ]);
  await openssl(['req', ...ec, '-subj', '/CN=pebble', '-keyout', key, '-out', csr]);
  await writeFile(extensions, `subjectAltName=${subjectAltName}\n`);
  await openssl([
    ...['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-CAcreateserial'],
    ...['-days', '1', '-extfile', extensions, '-out', cert],
  ]);
  return { caCert, cert, key };
}

function httpsGet(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, timeout: 5_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () =>
          res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: ${res.statusCode}`)),
        );
      })
      .on('timeout', function (this: import('node:http').ClientRequest) {
        this.destroy(new Error(`${url} timed out`));
      })
      .on('error', reject);
  });
}

async function waitUntil(
  condition: () => Promise<boolean>,
  timeoutMs: number,
  message: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(message);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
