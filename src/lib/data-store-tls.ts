import { checkServerIdentity, type ConnectionOptions } from 'node:tls';
import type { DataStoreTls } from '../../config/config';

/** Accepts any host name: only where config allows an unchecked name (verify-ca, require, outside production). */
const ANY_HOST_NAME = (): undefined => undefined;

/**
 * Node's TLS options for a Postgres or Redis client, from the checked configuration. Spelled out rather
 * than left to the libraries' defaults, so what is verified is visible here and cannot change with them.
 */
export function tlsConnectionOptions(tls: DataStoreTls): ConnectionOptions {
  return {
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    // Presented when the server asks (mutual TLS, ADR 0035): the server then knows which account connects.
    ...(tls.clientCertificate === undefined
      ? {}
      : { cert: tls.clientCertificate.cert, key: tls.clientCertificate.key }),
    rejectUnauthorized: tls.verifyCertificate,
    checkServerIdentity: tls.verifyHostName ? checkServerIdentity : ANY_HOST_NAME,
  };
}
