import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { loadRawCompose, referencesIn, stringsIn } from '../support/compose';
import { ROOT } from '../support/run-script';

/**
 * docker/compose/log-shipping.yml read without Docker (ASVS 16.4.3): every service of the stack sends
 * its logs to the syslog receiver, over TLS with the receiver verified, never in clear text, and the
 * file refuses to be used without its receiver. test/compose/log-shipping.ts runs it on a real engine.
 */

const OVERLAY = 'docker/compose/log-shipping.yml';
const text = readFileSync(path.join(ROOT, OVERLAY), 'utf8');

interface Logging {
  driver?: string;
  options?: Record<string, string>;
}
const overlay = parse(text, { merge: true }) as { services: Record<string, Record<string, unknown>> };
const loggingOf = (service: string) => overlay.services[service]?.logging as Logging | undefined;

/** The services a plain `docker compose up` starts: every one but the development profiles'. */
const stackServices = Object.entries(loadRawCompose().services)
  .filter(([, s]) => !s.profiles)
  .map(([name]) => name);

describe('log shipping to a separate system (ASVS 16.4.3)', () => {
  test('when the overlay is read, then every service of the stack ships its logs through the syslog driver, tagged with its name', () => {
    expect(stackServices).toEqual(expect.arrayContaining(['app', 'nginx', 'postgres', 'redis', 'certbot']));
    expect(Object.keys(overlay.services).sort()).toEqual([...stackServices].sort());
    for (const service of stackServices) {
      const logging = loggingOf(service);
      expect({ service, driver: logging?.driver }).toEqual({ service, driver: 'syslog' });
      expect({ service, tag: logging?.options?.tag }).toEqual({ service, tag: `${service}/{{.ID}}` });
      // It changes where the logs go, nothing else about a service.
      expect({ service, keys: Object.keys(overlay.services[service]!) }).toEqual({
        service,
        keys: ['logging'],
      });
    }
  });

  test('when the receiver`s address is read, then it is TLS over TCP, never plain TCP, UDP or a socket, and the certificate is verified against the given CA', () => {
    for (const service of stackServices) {
      const options = loggingOf(service)!.options!;
      expect({ service, address: options['syslog-address'] }).toEqual({
        service,
        address: expect.stringMatching(/^tcp\+tls:\/\/\$\{LOG_SYSLOG_ADDRESS:\?[^}]+\}$/) as string,
      });
      expect(options['syslog-tls-ca-cert']).toMatch(/^\$\{LOG_SYSLOG_CA_FILE:\?[^}]+\}$/);
      // Docker skips verification when this option is present at all, whatever its value ("false" too).
      expect(Object.keys(options)).not.toContain('syslog-tls-skip-verify');
      expect(options['syslog-format']).toBe('rfc5424micro');
    }
    expect(text).not.toMatch(/(?<![+\w])(udp|tcp|unix|unixgram):\/\//);
  });

  test('when the receiver is slow or gone, then a log line never waits for it: non-blocking with a bounded buffer', () => {
    for (const service of stackServices) {
      const options = loggingOf(service)!.options!;
      expect({ service, mode: options.mode, buffer: options['max-buffer-size'] }).toEqual({
        service,
        mode: 'non-blocking',
        buffer: expect.stringMatching(/^\d+m$/) as string,
      });
    }
  });

  test('when the overlay`s variables are read, then the address and the CA are required (no silent default), the client certificate is optional, and each is documented', () => {
    const references = stringsIn(overlay).flatMap(({ value }) => referencesIn(value));
    const operators = Object.fromEntries(references.map((r) => [r.name, r.operator]));
    expect(operators).toEqual({
      LOG_SYSLOG_ADDRESS: ':?',
      LOG_SYSLOG_CA_FILE: ':?',
      LOG_SYSLOG_CLIENT_CERT_FILE: ':-',
      LOG_SYSLOG_CLIENT_KEY_FILE: ':-',
    });
    for (const r of references.filter((r) => r.operator === ':-')) expect(r.fallback).toBe('');
    const docs = {
      'docs/deploy.md': readFileSync(path.join(ROOT, 'docs/deploy.md'), 'utf8'),
      'README.md': readFileSync(path.join(ROOT, 'README.md'), 'utf8'),
    };
    for (const name of Object.keys(operators))
      expect({ name, documented: docs['docs/deploy.md'].includes(`\`${name}\``) }).toEqual({
        name,
        documented: true,
      });
    for (const [file, doc] of Object.entries(docs))
      expect({ file, names: doc.includes(OVERLAY) }).toEqual({ file, names: true });
  });
});
