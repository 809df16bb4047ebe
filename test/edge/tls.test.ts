import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import path from 'node:path';
import tls from 'node:tls';
import { sleep } from '../support/factories';
import { isRunning, pgrep, startAppBehindEdge, type AppBehindEdge } from '../support/nginx-edge';
import { createLocalhostCertificate } from '../support/tls-proxy';
import { describeWithTool } from '../support/tools';

/**
 * The edge's TLS, per Mozilla's intermediate profile (guideline 6.0), checked twice: in the
 * configuration nginx actually loaded (`nginx -T`), and live, by handshakes and an nmap scan. Debian's
 * OpenSSL 3.0 refuses TLS 1.0/1.1 whatever nginx asks for, so a failed 1.0 handshake alone would prove
 * nothing about our configuration: the rendered directives are asserted too.
 */

/** Mozilla intermediate 6.0, in OpenSSL's names (ssl_ciphers) and IANA's (what nmap reports). */
const SUITES = {
  'ECDHE-ECDSA-AES128-GCM-SHA256': 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256': 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384': 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384': 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305': 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256',
  'ECDHE-RSA-CHACHA20-POLY1305': 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
};
/** TLS 1.3 has its own three suites (OpenSSL's defaults), named by nmap after the AEAD alone. */
const TLS13_SUITES = [
  'TLS_AKE_WITH_AES_128_GCM_SHA256',
  'TLS_AKE_WITH_AES_256_GCM_SHA384',
  'TLS_AKE_WITH_CHACHA20_POLY1305_SHA256',
];

/** The directives of an `nginx -T` dump (comments dropped), as [name, arguments] in file order. */
function directives(dump: string): Array<[string, string]> {
  const found: Array<[string, string]> = [];
  for (const line of dump.split('\n')) {
    const text = line.trim();
    if (text === '' || text.startsWith('#')) continue;
    const match = /^([a-z0-9_]+)\s*(.*?);$/.exec(text);
    if (match) found.push([match[1]!, match[2]!]);
  }
  return found;
}

const argsOf = (dump: string, name: string) =>
  directives(dump)
    .filter(([n]) => n === name)
    .map(([, args]) => args);

/** Parses nmap's ssl-enum-ciphers output into the suites it found per protocol, and the grade. */
function parseSslEnumCiphers(output: string): { protocols: Map<string, string[]>; leastStrength?: string } {
  const protocols = new Map<string, string[]>();
  let current: string[] | undefined;
  let leastStrength: string | undefined;
  for (const line of output.split('\n')) {
    const protocol = /^\|\s+(SSLv3|TLSv1(?:\.\d)?):\s*$/.exec(line);
    if (protocol) {
      current = [];
      protocols.set(protocol[1]!, current);
      continue;
    }
    const suite = /^\|\s+(TLS_[A-Z0-9_]+)\s/.exec(line);
    if (suite && current) current.push(suite[1]!);
    const grade = /least strength: ([A-F])/.exec(line);
    if (grade) leastStrength = grade[1];
  }
  return { protocols, leastStrength };
}

interface Completed {
  code: number | null;
  output: string;
}

/** Runs a command with an empty stdin (s_client ends after the handshake) and collects its output. */
function runTool(command: string, args: string[], timeoutMs = 15_000): Promise<Completed> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
    child.stdin.end();
  });
}

describeWithTool(
  'nginx',
  'run these suites with npm run test:edge',
  'the nginx edge: configuration and TLS',
  () => {
    describeWithTool('openssl', 'apt-get install openssl', 'with a certificate made by openssl', () => {
      let stack: AppBehindEdge;
      let dump: string;

      beforeAll(async () => {
        stack = await startAppBehindEdge();
        const dumped = await stack.edge.nginx(['-T']);
        if (dumped.code !== 0) throw new Error(`nginx -T failed:\n${dumped.stderr}`);
        dump = dumped.stdout;
      }, 30_000);

      afterAll(() => stack?.close());

      /** openssl s_client against the edge for `localhost`, verifying its certificate. */
      const sClient = (...args: string[]) =>
        runTool('openssl', [
          ...['s_client', '-connect', `127.0.0.1:${stack.edge.ports.https}`, '-servername', 'localhost'],
          ...['-CAfile', path.join(stack.edge.certDir, 'fullchain.pem'), '-verify_return_error'],
          ...args,
        ]);

      test('when the rendered configuration is tested, then nginx -t passes', async () => {
        const result = await stack.edge.script('test');
        expect(result.stderr).toContain('syntax is ok');
        expect(result.code).toBe(0);
      });

      // ASVS 5.0 11.3.1, 11.3.2, 11.3.3, 12.1.1, 12.1.2: TLS 1.2 and 1.3, AEAD suites only.
      test('when nginx dumps the configuration it loaded, then it offers TLS 1.2 and 1.3 only, the six intermediate suites, and no DH parameters or stapling', () => {
        expect(argsOf(dump, 'ssl_protocols')).toEqual(['TLSv1.2 TLSv1.3']);
        expect(argsOf(dump, 'ssl_ciphers')).toEqual([Object.keys(SUITES).join(':')]);
        expect(argsOf(dump, 'ssl_prefer_server_ciphers')).toEqual(['off']);
        expect(argsOf(dump, 'ssl_session_cache')).toEqual([expect.stringMatching(/^shared:\w+:\d+m$/)]);
        expect(argsOf(dump, 'ssl_session_tickets')).toEqual(['off']);
        expect(argsOf(dump, 'ssl_dhparam')).toEqual([]);
        expect(argsOf(dump, 'ssl_stapling')).toEqual([]);
        // No older protocol anywhere, whatever the directive.
        expect(
          directives(dump).filter(([, args]) => /\b(SSLv[23]|TLSv1(\.[01])?)\b(?!\.)/.test(args)),
        ).toEqual([]);
        const https = stack.edge.ports.https;
        expect(argsOf(dump, 'listen').filter((l) => l.startsWith(`${https}`))).toEqual([
          `${https} ssl default_server`,
          `${https} ssl`,
        ]);
        // HTTP/2 the way nginx 1.25.1 and later spell it (the `listen ... http2` form is deprecated).
        expect(argsOf(dump, 'http2')).toEqual(['on', 'on']);
        expect(argsOf(dump, 'ssl_reject_handshake')).toEqual(['on']);
        expect(argsOf(dump, 'server_tokens')).toEqual(['off']);
      });

      test('when nginx dumps the configuration it loaded, then slow clients are cut off within 10 s and the app gets forwarding headers set by nginx', () => {
        // A live slow-loris run would wait out these timeouts; the loaded values are what decides it.
        // At http level, so they also hold in the default servers, whose values apply to the headers.
        for (const timeout of ['client_header_timeout', 'client_body_timeout', 'send_timeout']) {
          expect({ timeout, values: argsOf(dump, timeout) }).toEqual({ timeout, values: ['10s'] });
        }
        expect(argsOf(dump, 'client_max_body_size')).toEqual(['100k']);
        expect(argsOf(dump, 'limit_req_zone')).toEqual([
          expect.stringMatching(/^\$edge_login_client zone=edge_login:\d+m rate=5r\/s$/),
        ]);
        expect(argsOf(dump, 'limit_req_status')).toEqual(['429']);
        expect(argsOf(dump, 'proxy_set_header')).toEqual([
          'Connection ""',
          'X-Forwarded-For $remote_addr',
          'X-Forwarded-Proto $scheme',
          'X-Forwarded-Host $host',
          'Host $host',
          'X-Request-Id $request_id',
        ]);
        expect(argsOf(dump, 'proxy_http_version')).toEqual(['1.1']);
        expect(argsOf(dump, 'proxy_hide_header')).toEqual(['Strict-Transport-Security']);
      });

      test('when a client offers TLS 1.2 or TLS 1.3, then the handshake succeeds with a verified certificate', async () => {
        const v12 = await sClient('-tls1_2');
        expect(v12.output).toMatch(
          /New, TLSv1\.2, Cipher is ECDHE-ECDSA-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)\n/,
        );
        expect(v12.output).toContain('Verify return code: 0 (ok)');
        expect(v12.code).toBe(0);

        const v13 = await sClient('-tls1_3');
        expect(v13.output).toMatch(
          /New, TLSv1\.3, Cipher is TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)\n/,
        );
        expect(v13.output).toContain('Verify return code: 0 (ok)');
        expect(v13.code).toBe(0);
      });

      test('when a client offers the hybrid post-quantum group, then it is used; a client without it still gets X25519', async () => {
        const hybrid = await sClient('-tls1_3', '-groups', 'X25519MLKEM768');
        expect(hybrid.output).toMatch(/(Negotiated TLS1\.3 group|Server Temp Key): X25519MLKEM768/);
        expect(hybrid.code).toBe(0);
        const classic = await sClient('-tls1_3', '-groups', 'X25519');
        expect(classic.output).toMatch(/(Negotiated TLS1\.3 group|(Server|Peer) Temp Key): X25519\b/);
        expect(classic.code).toBe(0);
      });

      // ASVS 5.0 12.1.1, 12.2.1: old protocols refused.
      test('when a client offers only TLS 1.0 or 1.1, then the server refuses it with a protocol-version alert', async () => {
        // SECLEVEL=0 lets OpenSSL 3.0 really send the old ClientHello: the refusal comes from the server.
        for (const version of ['-tls1', '-tls1_1']) {
          const result = await sClient(version, '-cipher', 'DEFAULT@SECLEVEL=0');
          expect(result.output).toMatch(/alert protocol version/);
          expect(result.code).not.toBe(0);
        }
      });

      test('when a client offers h2 by ALPN, then HTTP/2 is negotiated and answers with HSTS once', async () => {
        const alpn = await sClient('-alpn', 'h2');
        expect(alpn.output).toContain('ALPN protocol: h2');

        const session = http2.connect(stack.edge.origin, {
          createConnection: () =>
            tls.connect({
              host: '127.0.0.1',
              port: stack.edge.ports.https,
              servername: 'localhost',
              ca: stack.edge.certificate,
              ALPNProtocols: ['h2'],
            }),
        });
        try {
          const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
            session.on('error', reject);
            const stream = session.request({ ':path': '/healthz' });
            stream.on('response', (h) => {
              stream.resume();
              stream.on('end', () => resolve(h));
            });
            stream.on('error', reject);
            stream.end();
          });
          expect(session.alpnProtocol).toBe('h2');
          expect(headers[':status']).toBe(200);
          // A repeated header would arrive joined: equality means exactly one.
          expect(headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains');
        } finally {
          session.close();
        }
      });

      test('when a client asks for another name or none, then the handshake is refused', async () => {
        const handshake = (servername?: string) =>
          new Promise<string>((resolve) => {
            const socket = tls.connect({
              host: '127.0.0.1',
              port: stack.edge.ports.https,
              ...(servername ? { servername } : {}),
              rejectUnauthorized: false,
            });
            socket.on('secureConnect', () => {
              socket.destroy();
              resolve('connected');
            });
            socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
          });

        expect(await handshake('evil.example')).toBe('ERR_SSL_TLSV1_UNRECOGNIZED_NAME');
        expect(await handshake()).toBe('ERR_SSL_TLSV1_UNRECOGNIZED_NAME');
        expect(await handshake('localhost')).toBe('connected');
      });

      describeWithTool('nmap', 'run these suites with npm run test:edge', 'scanned by nmap', () => {
        test('when nmap enumerates the suites for localhost, then it finds only intermediate suites, graded A', async () => {
          const scan = await runTool('nmap', [
            ...['-Pn', '-n', '-p', String(stack.edge.ports.https)],
            ...['--script', 'ssl-enum-ciphers', '--script-args', 'tls.servername=localhost', '127.0.0.1'],
          ]);
          expect(scan.code).toBe(0);
          const { protocols, leastStrength } = parseSslEnumCiphers(scan.output);

          expect([...protocols.keys()]).toEqual(['TLSv1.2', 'TLSv1.3']);
          // The certificate is ECDSA, so of the six exactly the three ECDSA suites can be negotiated.
          const ecdsa = Object.values(SUITES).filter((s) => s.includes('_ECDSA_'));
          expect([...protocols.get('TLSv1.2')!].sort()).toEqual([...ecdsa].sort());
          expect([...protocols.get('TLSv1.3')!].sort()).toEqual([...TLS13_SUITES].sort());
          expect(leastStrength).toBe('A');
        });
      });

      describe('reloading (last: it replaces the certificate)', () => {
        /** The certificate the edge presents for localhost now, from a fresh handshake. */
        const servedCertificate = () =>
          new Promise<X509Certificate>((resolve, reject) => {
            const socket = tls.connect(
              {
                host: '127.0.0.1',
                port: stack.edge.ports.https,
                servername: 'localhost',
                rejectUnauthorized: false,
              },
              () => {
                const raw = socket.getPeerX509Certificate();
                socket.destroy();
                if (raw) resolve(raw);
                else reject(new Error('no certificate'));
              },
            );
            socket.on('error', reject);
          });

        test('when the certificate files change and nginx-local.sh reloads, then new handshakes get the new certificate', async () => {
          const next = await createLocalhostCertificate();
          await writeFile(path.join(stack.edge.certDir, 'privkey.pem'), next.key, { mode: 0o600 });
          await writeFile(path.join(stack.edge.certDir, 'fullchain.pem'), next.cert);

          const oldWorkers = pgrep('-P', String(await stack.edge.masterPid()));

          const reloaded = await stack.edge.script('reload');

          expect(reloaded.code).toBe(0);
          // The master re-reads the files and starts new workers; the old ones may still accept a
          // connection until they have exited, so wait for them before looking.
          for (let i = 0; i < 100 && oldWorkers.some(isRunning); i++) await sleep(100);
          expect(oldWorkers.filter(isRunning)).toEqual([]);
          expect((await servedCertificate()).fingerprint256).toBe(
            new X509Certificate(next.cert).fingerprint256,
          );
        });

        test('when the certificate files are broken, then reload fails loudly and nginx keeps serving the last good one', async () => {
          const before = (await servedCertificate()).fingerprint256;
          await writeFile(path.join(stack.edge.certDir, 'fullchain.pem'), 'not a certificate\n');

          const reloaded = await stack.edge.script('reload');

          expect(reloaded.code).not.toBe(0);
          expect(reloaded.stderr).toContain('fullchain.pem');
          expect((await servedCertificate()).fingerprint256).toBe(before);
        });
      });
    });
  },
);
