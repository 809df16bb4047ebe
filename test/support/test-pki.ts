import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

/** Files of a small PKI made with openssl for TLS tests, all in one directory the caller owns. */
export interface TestPki {
  /** The CA that signed the server's certificate: what a client should trust. */
  caFile: string;
  /** A CA that signed nothing here: trusting it instead must fail. */
  otherCaFile: string;
  /** The server's certificate, for `localhost` only (no IP address): connecting by 127.0.0.1 is a wrong name. */
  serverCertFile: string;
  serverKeyFile: string;
  /**
   * A client certificate whose CN is `cn` (the account it stands for, as Postgres's `cert` method reads
   * it), signed by the test CA or by the other one, which the servers do not trust.
   */
  clientCertificate(
    cn: string,
    signer?: 'test-ca' | 'other-ca',
  ): Promise<{ certFile: string; keyFile: string }>;
}

const openssl = (args: string[]) => promisify(execFile)('openssl', args, { timeout: 10_000 });

async function createCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = path.join(dir, `${name}.pem`);
  const key = path.join(dir, `${name}-key.pem`);
  await openssl([
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
    ...['-days', '1', '-subj', `/CN=${name}`],
    ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'],
    ...['-keyout', key, '-out', cert],
  ]);
  return { cert, key };
}

/** A certificate for `cn`, signed by `ca`, with the given extensions; the key is written beside it. */
async function issue(
  dir: string,
  ca: { cert: string; key: string },
  name: string,
  cn: string,
  extensions: string,
): Promise<{ certFile: string; keyFile: string }> {
  const keyFile = path.join(dir, `${name}-key.pem`);
  const csr = path.join(dir, `${name}.csr`);
  const certFile = path.join(dir, `${name}.pem`);
  const extFile = path.join(dir, `${name}.ext`);
  await writeFile(extFile, extensions);
  await openssl([
    ...['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
    ...['-subj', `/CN=${cn}`, '-keyout', keyFile, '-out', csr],
  ]);
  await openssl([
    ...['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial'],
    ...['-days', '1', '-extfile', extFile, '-out', certFile],
  ]);
  return { certFile, keyFile };
}

/**
 * Two CAs and a server certificate for `localhost` signed by the first, valid one day, written to `dir`.
 * The keys are unencrypted and mode 0600 (Postgres refuses a key others can read).
 */
export async function createTestPki(dir: string): Promise<TestPki> {
  const [ca, other] = await Promise.all([createCa(dir, 'test-ca'), createCa(dir, 'other-ca')]);
  // Only the name: a client that connects by address sees a certificate that is not for it.
  const server = await issue(
    dir,
    ca,
    'server',
    'localhost',
    'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n',
  );
  return {
    caFile: ca.cert,
    otherCaFile: other.cert,
    serverCertFile: server.certFile,
    serverKeyFile: server.keyFile,
    clientCertificate: (cn, signer = 'test-ca') =>
      issue(
        dir,
        signer === 'test-ca' ? ca : other,
        `client-${signer}-${cn}`,
        cn,
        'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n',
      ),
  };
}
