import ipaddr from 'ipaddr.js';

/**
 * What a session remembers of the client that signed in, for its owner's list of sessions (ASVS 5.0
 * 7.5.2): enough to tell "my laptop at home" from "a phone I do not own, elsewhere", no more. Both are
 * reduced before they are stored, so the session data holds no full address and no fingerprintable
 * User-Agent string (data minimisation: the list is personal data, kept as long as the session).
 */
export interface SessionClient {
  /** The sign-in address truncated to its network: IPv4 /24 (`203.0.113.0/24`), IPv6 /48 (`2001:db8:1::/48`). */
  clientAddress: string;
  /** A short summary of the User-Agent: `Firefox on Linux`, `Safari on iOS`, `Unknown browser`. */
  userAgent: string;
}

/**
 * An IPv4 /24 is one home or office network as ISPs hand them out; an IPv6 /48 is the prefix a site is
 * usually given (RFC 6177), where a /64 would single out one household. Anything that is not an
 * address (no proxy header, a test double) is shown as `unknown`.
 */
export function truncateAddress(ip: string): string {
  if (!ipaddr.isValid(ip)) return 'unknown';
  const address = ipaddr.process(ip);
  if (address.kind() === 'ipv4') {
    const [a, b, c] = (address as ipaddr.IPv4).octets;
    return `${a}.${b}.${c}.0/24`;
  }
  const parts = (address as ipaddr.IPv6).parts.slice(0, 3);
  return `${new ipaddr.IPv6([...parts, 0, 0, 0, 0, 0]).toString()}/48`;
}

/**
 * How much of a User-Agent is read: real ones are under 300 characters, and reading at most this many
 * bounds the work a forged 8 kB header can cause.
 */
const MAX_USER_AGENT = 512;

/**
 * Families in the order they must be tested: each later one's token also appears in the earlier ones'
 * strings (Edge and Opera say `Chrome/`, Chrome says `Safari/`). Plain substring tests, no regular
 * expression: linear in the bounded input whatever it holds, so nothing here can be made to backtrack.
 * A hand-written table rather than a parser library: the list needs a family name, not a version
 * database, and the well-kept parser (ua-parser-js) is AGPL from version 2.
 */
const BROWSERS: readonly (readonly [token: string, name: string])[] = [
  ['Edg/', 'Edge'],
  ['EdgiOS/', 'Edge'],
  ['EdgA/', 'Edge'],
  ['OPR/', 'Opera'],
  ['SamsungBrowser/', 'Samsung Internet'],
  ['Firefox/', 'Firefox'],
  ['FxiOS/', 'Firefox'],
  ['CriOS/', 'Chrome'],
  ['Chrome/', 'Chrome'],
  ['Safari/', 'Safari'],
  ['curl/', 'curl'],
];

const SYSTEMS: readonly (readonly [token: string, name: string])[] = [
  ['iPhone', 'iOS'],
  ['iPad', 'iPadOS'],
  ['Android', 'Android'],
  ['CrOS', 'ChromeOS'],
  ['Windows', 'Windows'],
  ['Mac OS X', 'macOS'],
  ['Macintosh', 'macOS'],
  ['Linux', 'Linux'],
];

const firstMatch = (text: string, table: typeof BROWSERS) =>
  table.find(([token]) => text.includes(token))?.[1];

/** `Browser on System`, the browser alone, or `Unknown browser`: never any part of the header itself. */
export function summarizeUserAgent(header: string | undefined): string {
  const text = (header ?? '').slice(0, MAX_USER_AGENT);
  const browser = firstMatch(text, BROWSERS);
  const system = firstMatch(text, SYSTEMS);
  if (!browser) return system ? `Unknown browser on ${system}` : 'Unknown browser';
  return system ? `${browser} on ${system}` : browser;
}
