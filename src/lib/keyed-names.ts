import { createHmac } from 'node:crypto';

/**
 * Stable, short names for values that must not be shown or stored as they are (a session id, an
 * email typed at a failed login): HMAC-SHA256 under a key of their own, cut to 128 bits, base64url.
 * Nobody without the server's secret can compute a name or get the value back from it, and no two
 * values collide by chance.
 *
 * The key is derived in one step from the first SESSION_SECRET entry and a label that says what it
 * names (as the CSRF key is, src/web/csrf.ts), so it is never the key that signs cookies and two uses
 * never share a key. Rotating SESSION_SECRET renames everything.
 */
export function keyedNamer(secret: string, label: string): (value: string) => string {
  const key = createHmac('sha256', secret).update(label).digest();
  return (value) => createHmac('sha256', key).update(value).digest().subarray(0, 16).toString('base64url');
}
