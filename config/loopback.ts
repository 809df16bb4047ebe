import ipaddr from 'ipaddr.js';

/**
 * True for a host whose traffic never leaves the machine (`localhost`, 127.0.0.0/8, ::1): a local mail
 * relay, Postgres or Redis there needs no TLS. `host` is bare: no IPv6 brackets.
 */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  return ipaddr.isValid(host) && ipaddr.process(host).range() === 'loopback';
}
