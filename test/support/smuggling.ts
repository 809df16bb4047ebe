/**
 * Requests whose end is ambiguous: two HTTP/1.1 parsers can disagree about where each one stops, and the
 * bytes one of them takes for the next request are what request smuggling hides from the other (ASVS
 * 4.2.1; RFC 9112 6.1, 6.3, 5.2). Each is followed, on the same connection, by a second request for
 * `smuggledPath`: a server that refuses the first one and closes never answers the second.
 */

export interface AmbiguousRequest {
  name: string;
  /** The raw bytes: the ambiguous request, then the smuggled one. */
  payload(host: string, smuggledPath: string): string;
}

/** The request an attacker wants a server to treat as a separate one. */
const smuggled = (host: string, path: string) => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`;

/** A POST of `{}` to the login route, with these framing headers and these bytes as its body. */
const post = (host: string, framing: string, body: string) =>
  `POST /api/auth/login HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n${framing}\r\n${body}`;

/** The chunked encoding of `{}`: one chunk of 2 bytes, then the last chunk. */
const CHUNKED_BODY = '2\r\n{}\r\n0\r\n\r\n';

export const AMBIGUOUS_REQUESTS: readonly AmbiguousRequest[] = [
  {
    // A Content-Length parser reads 2 bytes of body ("2\r"), a chunked one the whole chunked body.
    name: 'Transfer-Encoding: chunked with a Content-Length',
    payload: (host, path) =>
      post(host, 'Content-Length: 2\r\nTransfer-Encoding: chunked\r\n', CHUNKED_BODY) + smuggled(host, path),
  },
  {
    // The first or the last value wins, depending on the parser.
    name: 'two different Content-Lengths',
    payload: (host, path) =>
      post(host, `Content-Length: 2\r\nContent-Length: ${2 + smuggled(host, path).length}\r\n`, '{}') +
      smuggled(host, path),
  },
  {
    // Harmless in itself (RFC 9110 8.6 lets a recipient accept it), but the same parsers that accept it
    // tend to accept the different ones too: no component here needs to.
    name: 'two identical Content-Lengths',
    payload: (host, path) =>
      post(host, 'Content-Length: 2\r\nContent-Length: 2\r\n', '{}') + smuggled(host, path),
  },
  {
    name: 'a Content-Length list ("2, 2")',
    payload: (host, path) => post(host, 'Content-Length: 2, 2\r\n', '{}') + smuggled(host, path),
  },
  {
    // An unfolding parser reads "Transfer-Encoding: chunked"; one that takes the continuation line for a
    // header of its own (or drops it) frames the body by Content-Length (RFC 9112 5.2: obsolete).
    name: 'obsolete line folding (a continuation line starting with a space)',
    payload: (host, path) =>
      post(host, 'Content-Length: 2\r\nX-Note: a\r\n folded\r\n', '{}') + smuggled(host, path),
  },
  {
    name: 'obsolete line folding (a continuation line starting with a tab)',
    payload: (host, path) =>
      post(host, 'Content-Length: 2\r\nX-Note: a\r\n\tfolded\r\n', '{}') + smuggled(host, path),
  },
  {
    // chunked is not the final coding: the length cannot be known (RFC 9112 6.3: 400 and close).
    name: 'Transfer-Encoding: chunked, identity',
    payload: (host, path) =>
      post(host, 'Transfer-Encoding: chunked, identity\r\n', CHUNKED_BODY) + smuggled(host, path),
  },
  {
    // Two lines make the list "chunked, chunked": a coding applied twice is not a framing anyone sends.
    name: 'Transfer-Encoding: chunked twice',
    payload: (host, path) =>
      post(host, 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', CHUNKED_BODY) +
      smuggled(host, path),
  },
  {
    // A space before the colon: a lenient parser strips it and sees chunked, a strict one a bad header.
    name: 'a space between Transfer-Encoding and its colon',
    payload: (host, path) =>
      post(host, 'Content-Length: 2\r\nTransfer-Encoding : chunked\r\n', CHUNKED_BODY) + smuggled(host, path),
  },
  {
    name: 'an unknown transfer coding (xchunked)',
    payload: (host, path) =>
      post(host, 'Content-Length: 2\r\nTransfer-Encoding: xchunked\r\n', CHUNKED_BODY) + smuggled(host, path),
  },
];

/**
 * The same two requests framed correctly (the second closes the connection): a server answers both, so
 * a test that counts one answer for an ambiguous request has a baseline showing it would see two.
 */
export const wellFramedPair = (host: string, smuggledPath: string): string =>
  post(host, 'Content-Length: 2\r\n', '{}') +
  `GET ${smuggledPath} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;

/**
 * The status code of each HTTP/1.x response in raw bytes received, in order. A status line need not
 * start a line of the text: a response follows the previous body directly.
 */
export const statusesIn = (received: string): number[] =>
  [...received.matchAll(/HTTP\/1\.[01] (\d{3}) [^\r\n]*\r\n/g)].map((match) => Number(match[1]));
