/**
 * Where to send the browser after login. `next` comes from the query string and then from a hidden
 * form field, so it is attacker-controlled: an open redirect would turn our login page into a
 * phishing relay (OWASP Unvalidated Redirects and Forwards Cheat Sheet; ASVS 5.0 3.7.2).
 * Only a same-origin relative path passes; anything else becomes `/`.
 */
const DEFAULT_REDIRECT = '/';

/** Longer than any path of ours; a bigger value is an attack or a mistake, not a destination. */
export const MAX_REDIRECT_LENGTH = 1024;

/**
 * RFC 3986 path, query and fragment characters, `%` included. Everything else is refused outright:
 * whitespace and control characters (which browsers strip or choke on), the backslash (which browsers
 * read as `/`, so `/\evil.test` is `//evil.test`), and any non-ASCII character, so Unicode look-alikes
 * such as the fullwidth solidus never reach a parser that might normalise them into a slash.
 */
const ALLOWED_CHARACTERS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/?#%]+$/;

/** Control characters (C0, DEL, C1) and the backslash: never acceptable once decoded either. */
// eslint-disable-next-line no-control-regex
const FORBIDDEN_DECODED = /[\u0000-\u001f\u007f-\u009f\\]/;

/** How many layers of percent-encoding are unwrapped and checked (`%252F` is `/` after two). */
const DECODE_ROUNDS = 3;

/** A base nobody can own; a candidate must resolve onto exactly this origin. */
const PROBE_ORIGIN = 'http://redirect-check.invalid';

/**
 * Returns `input` when it is a same-origin relative path, `/` otherwise. `unknown` in, because the
 * value is whatever a parser produced: a string, an array from a repeated parameter, or nothing.
 */
export function safeRedirectTarget(input: unknown): string {
  if (typeof input !== 'string') return DEFAULT_REDIRECT;
  if (input.length === 0 || input.length > MAX_REDIRECT_LENGTH) return DEFAULT_REDIRECT;
  if (!ALLOWED_CHARACTERS.test(input)) return DEFAULT_REDIRECT;
  // The raw value and every decoded layer must be safe: a proxy, a framework or a later redirect
  // might decode `/%2F/evil.test` into `//evil.test` or `/%5Cevil` into `/\evil`.
  for (const layer of decodedLayers(input)) {
    // NFKC turns look-alikes (fullwidth `／`, small reverse solidus `﹨`) into what some software
    // downstream would make of them.
    if (!isSameOriginPath(layer) || !isSameOriginPath(layer.normalize('NFKC'))) return DEFAULT_REDIRECT;
  }
  return input;
}

function decodedLayers(input: string): string[] {
  const layers = [input];
  let current = input;
  for (let round = 0; round < DECODE_ROUNDS; round++) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(current);
    } catch {
      // A `%` that is not an escape (`/search?q=100%`) decodes no further: what is left is literal.
      break;
    }
    if (decoded === current) break;
    layers.push(decoded);
    current = decoded;
  }
  return layers;
}

function isSameOriginPath(candidate: string): boolean {
  // One leading slash and not two: `//host` and `/\host` are protocol-relative URLs to another site.
  // Requiring the leading `/` also rules out every scheme (`javascript:`, `data:`, `https:`).
  if (!candidate.startsWith('/') || candidate.startsWith('//')) return false;
  if (FORBIDDEN_DECODED.test(candidate)) return false;
  const path = candidate.split(/[?#]/, 1)[0]!;
  if (path.includes('//')) return false;
  // The WHATWG URL parser is what the browser will apply to our Location header: the result must stay
  // on our origin, also after dot segments (`/..//evil.test` would leave a `//evil.test` path).
  let url: URL;
  try {
    url = new URL(candidate, PROBE_ORIGIN);
  } catch {
    return false;
  }
  return url.origin === PROBE_ORIGIN && !url.pathname.startsWith('//');
}
