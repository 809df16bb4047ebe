import { isLoopback } from './loopback';

/**
 * How the app's clients reach Postgres or Redis over TLS (src/lib/data-store-tls.ts turns it into
 * Node's TLS options). Absent (undefined) means a plain connection. ADR 0020 explains the rules.
 */
export interface DataStoreTls {
  /** PEM of the CA(s) the server's certificate must chain to; undefined: Node's default roots. */
  readonly ca: string | undefined;
  /** Refuse a server whose certificate does not chain to `ca` (false only outside production). */
  readonly verifyCertificate: boolean;
  /** Refuse a certificate that is not for the host connected to (false only outside production). */
  readonly verifyHostName: boolean;
  /** The certificate and key the app presents to the server (ADR 0035); undefined: none. */
  readonly clientCertificate: ClientCertificate | undefined;
}

/** PEM of a client certificate (with its chain, if any) and of its private key, read at start. */
export interface ClientCertificate {
  readonly cert: string;
  readonly key: string;
}

/** The files of one store's TLS settings, as the environment names them. */
export interface DataStoreTlsFiles {
  readonly caFile: string | undefined;
  readonly clientCertFile: string | undefined;
  readonly clientKeyFile: string | undefined;
}

export interface DataStoreConnection {
  /** The URL as the client library gets it: Postgres's TLS parameters are taken out (see below). */
  readonly url: string;
  readonly tls: DataStoreTls | undefined;
}

/** What the TLS rules need to know and where they report. */
export interface TlsRuleContext {
  readonly isProduction: boolean;
  readonly readFile: (path: string) => string;
  readonly problems: string[];
  readonly warnings: string[];
}

/**
 * libpq's sslmode values and what each checks. `prefer` and `allow` are left out: they fall back to a
 * plain connection when TLS fails, which pg cannot do and which a man in the middle can force.
 */
const SSLMODES: Readonly<Record<string, { tls: boolean; chain: boolean; name: boolean }>> = {
  disable: { tls: false, chain: false, name: false },
  require: { tls: true, chain: false, name: false },
  // pg's own name for `require`.
  'no-verify': { tls: true, chain: false, name: false },
  'verify-ca': { tls: true, chain: true, name: false },
  'verify-full': { tls: true, chain: true, name: true },
};

/** The TLS parameters of DATABASE_URL the app reads itself, and pg's other ones it refuses. */
const HANDLED = new Set(['sslmode', 'sslrootcert']);
const REFUSED = /^(ssl.*|uselibpqcompat)$/;

/**
 * DATABASE_URL's TLS, read here rather than by pg: pg 8 treats `sslmode=require` as verify-full and
 * its next major as libpq does (no verification), and pg lets URL parameters override the options it is
 * given. So the app reads `sslmode` with libpq's meaning, takes the TLS parameters out of the URL and
 * hands pg explicit options; an upgrade of pg cannot change what is checked. The CA comes from
 * DATABASE_CA_FILE or the URL's `sslrootcert` (a file path, as in libpq), read once, here.
 */
export function databaseConnection(
  databaseUrl: string,
  files: DataStoreTlsFiles,
  context: TlsRuleContext,
): DataStoreConnection {
  const { isProduction, problems, warnings } = context;
  const { caFile } = files;
  const url = new URL(databaseUrl);
  for (const name of new Set(url.searchParams.keys())) {
    if (REFUSED.test(name) && !HANDLED.has(name))
      problems.push(
        `DATABASE_URL: parameter ${name} is not supported (TLS is set with sslmode=verify-full and DATABASE_CA_FILE)`,
      );
  }
  const sslmode = url.searchParams.get('sslmode') ?? 'disable';
  const rootCert = url.searchParams.get('sslrootcert') ?? undefined;
  const host = url.searchParams.get('host') ?? url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (rootCert !== undefined && caFile !== undefined)
    problems.push('DATABASE_CA_FILE and the sslrootcert of DATABASE_URL are both set: give one');
  const caName = caFile === undefined ? 'DATABASE_URL sslrootcert' : 'DATABASE_CA_FILE';
  const ca = readCa(caName, caFile ?? rootCert, context);
  const stripped = stripParameters(databaseUrl, url, HANDLED);
  const clientCertificate = readClientCertificate('DATABASE', files, context);

  const mode = SSLMODES[sslmode];
  if (mode === undefined) {
    // Named only when it is one of libpq's: a value in the wrong place could be a password.
    const fallsBack = sslmode === 'prefer' || sslmode === 'allow';
    problems.push(
      `DATABASE_URL: ${fallsBack ? `sslmode=${sslmode}, which may fall back to plain text,` : 'this sslmode'} ` +
        'is not supported: use sslmode=verify-full (TLS, the server verified) or disable (plain)',
    );
    return { url: stripped, tls: undefined };
  }
  if (!mode.tls) {
    if ((caFile ?? rootCert) !== undefined)
      problems.push(`${caName} is set but DATABASE_URL asks for no TLS: add sslmode=verify-full`);
    if (clientCertificate !== undefined)
      problems.push(
        'DATABASE_CLIENT_CERT_FILE is set but DATABASE_URL asks for no TLS: add sslmode=verify-full',
      );
    warnIfPlainOverNetwork('DATABASE_URL', host, context);
    return { url: stripped, tls: undefined };
  }
  if (!mode.chain || !mode.name) {
    const unchecked = mode.chain ? 'host name' : 'certificate and host name';
    const message = `DATABASE_URL: sslmode=${sslmode} does not verify the server's ${unchecked}`;
    // Encryption without verification stops a passive listener only: whoever can intercept the
    // connection presents a certificate of their own and reads the password and every row.
    if (isProduction)
      problems.push(`${message}: use sslmode=verify-full (with DATABASE_CA_FILE for a private CA)`);
    else warnings.push(`${message}: production refuses it (use sslmode=verify-full)`);
  }
  return {
    url: stripped,
    tls: Object.freeze({ ca, verifyCertificate: mode.chain, verifyHostName: mode.name, clientCertificate }),
  };
}

/**
 * REDIS_URL's TLS: `rediss://` is TLS that always verifies the certificate and the host name, against
 * REDIS_CA_FILE or Node's default roots. There is no switch to turn verification off, in any
 * environment: a private CA is one file away. node-redis ignores URL parameters, so any are refused
 * rather than silently dropped (`?rejectUnauthorized=false` would otherwise look like it worked).
 */
export function redisConnection(
  redisUrl: string,
  files: DataStoreTlsFiles,
  context: TlsRuleContext,
): DataStoreConnection {
  const { caFile } = files;
  const url = new URL(redisUrl);
  for (const name of new Set(url.searchParams.keys()))
    context.problems.push(
      `REDIS_URL: parameter ${name} is not supported (TLS is set with rediss:// and REDIS_CA_FILE)`,
    );
  const ca = readCa('REDIS_CA_FILE', caFile, context);
  const clientCertificate = readClientCertificate('REDIS', files, context);
  if (url.protocol === 'rediss:') {
    return {
      url: redisUrl,
      tls: Object.freeze({ ca, verifyCertificate: true, verifyHostName: true, clientCertificate }),
    };
  }
  if (caFile !== undefined)
    context.problems.push('REDIS_CA_FILE is set but REDIS_URL is redis://: use rediss://');
  if (clientCertificate !== undefined)
    context.problems.push('REDIS_CLIENT_CERT_FILE is set but REDIS_URL is redis://: use rediss://');
  warnIfPlainOverNetwork('REDIS_URL', url.hostname.replace(/^\[(.*)\]$/, '$1'), context);
  return { url: redisUrl, tls: undefined };
}

/**
 * A plain connection to another machine is only a warning in production: on a private network (the
 * compose stack's internal network to `postgres` and `redis`) it is the usual set-up, and the app
 * cannot tell that network from any other.
 */
export function warnIfPlainOverNetwork(name: string, host: string, context: TlsRuleContext): void {
  if (!context.isProduction || host.startsWith('/') || isLoopback(host)) return;
  context.warnings.push(
    `${name} connects to ${host} without TLS: passwords and data cross the network in clear text, ` +
      "which is only acceptable on a private network such as the compose stack's",
  );
}

/** A CA file's PEM, read at start: a file that is missing, unreadable or holds no certificate stops it. */
function readCa(name: string, path: string | undefined, context: TlsRuleContext): string | undefined {
  if (path === undefined) return undefined;
  return readPem(name, path, /-----BEGIN CERTIFICATE-----/, 'certificate', context);
}

/** A PEM file read at start; what is missing, unreadable or not `kind` is a problem (never its content). */
function readPem(
  name: string,
  path: string,
  marker: RegExp,
  kind: string,
  context: TlsRuleContext,
): string | undefined {
  let pem: string;
  try {
    pem = context.readFile(path);
  } catch (error) {
    context.problems.push(
      `${name}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
    return undefined;
  }
  if (!marker.test(pem)) {
    context.problems.push(`${name}: ${path} holds no PEM ${kind}`);
    return undefined;
  }
  return pem;
}

/**
 * The client certificate of DATABASE_ or REDIS_, from its _CLIENT_CERT_FILE and _CLIENT_KEY_FILE: both or
 * neither. Half a pair, a file that cannot be read or one that holds the wrong kind of PEM stops the
 * start, rather than a first connection failing later with a TLS alert that names neither file.
 */
function readClientCertificate(
  store: 'DATABASE' | 'REDIS',
  files: DataStoreTlsFiles,
  context: TlsRuleContext,
): ClientCertificate | undefined {
  const certName = `${store}_CLIENT_CERT_FILE`;
  const keyName = `${store}_CLIENT_KEY_FILE`;
  const { clientCertFile, clientKeyFile } = files;
  if (clientCertFile === undefined && clientKeyFile === undefined) return undefined;
  if (clientCertFile === undefined || clientKeyFile === undefined) {
    const [given, missing] = clientCertFile === undefined ? [keyName, certName] : [certName, keyName];
    context.problems.push(`${given} is set without ${missing}: give the certificate and its key`);
    return undefined;
  }
  const cert = readPem(certName, clientCertFile, /-----BEGIN CERTIFICATE-----/, 'certificate', context);
  const key = readPem(keyName, clientKeyFile, /-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'private key', context);
  return cert === undefined || key === undefined ? undefined : Object.freeze({ cert, key });
}

/** The URL without the named parameters; untouched (byte for byte) when it has none of them. */
function stripParameters(original: string, url: URL, names: ReadonlySet<string>): string {
  if (![...url.searchParams.keys()].some((name) => names.has(name))) return original;
  for (const name of names) url.searchParams.delete(name);
  return url.toString();
}
