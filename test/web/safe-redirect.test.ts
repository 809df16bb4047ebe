import { MAX_REDIRECT_LENGTH, safeRedirectTarget } from '../../src/web/safe-redirect';

// Open-redirect payloads from the OWASP Unvalidated Redirects cheat sheet and the usual bypass lists:
// each one, if let through, would send a freshly signed-in user to another site.
const HOSTILE: ReadonlyArray<[label: string, value: unknown]> = [
  ['protocol-relative', '//evil.test'],
  ['protocol-relative with a path', '//evil.test/login'],
  ['three slashes', '///evil.test'],
  ['slash backslash', '/\\evil.test'],
  ['backslash backslash', '\\\\evil.test'],
  ['a lone backslash', '\\evil.test'],
  ['absolute https URL', 'https://evil.test'],
  ['absolute http URL with credentials', 'http://app@evil.test/'],
  ['scheme with one slash', 'http:/evil.test'],
  ['scheme without slashes', 'http:evil.test'],
  ['javascript: URL', 'javascript:alert(1)'],
  ['javascript: with a tab inside the scheme', 'java\tscript:alert(1)'],
  ['javascript: with upper case', 'JaVaScRiPt:alert(1)'],
  ['data: URL', 'data:text/html,<script>alert(1)</script>'],
  ['data: URL in base64', 'data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=='],
  ['leading space before //', ' //evil.test'],
  ['leading tab before //', '\t//evil.test'],
  ['tab between the slashes', '/\t/evil.test'],
  ['newline between the slashes', '/\n/evil.test'],
  ['carriage return inside', '/\r/evil.test'],
  ['NUL byte', '/\u0000/evil.test'],
  ['encoded slashes only', '%2F%2Fevil.test'],
  ['encoded second slash', '/%2F/evil.test'],
  ['encoded second slash, lower case', '/%2f/evil.test'],
  ['encoded backslash', '/%5Cevil.test'],
  ['encoded tab between the slashes', '/%09/evil.test'],
  ['encoded CRLF header injection', '/%0d%0aSet-Cookie:x=1'],
  ['double-encoded second slash', '/%252F/evil.test'],
  ['triple-encoded second slash', '/%25252F/evil.test'],
  ['dot segments back to //', '/..//evil.test'],
  ['double slash further down the path', '/a//evil.test'],
  ['fullwidth solidus', '／／evil.test'],
  ['slash then fullwidth solidus', '/／evil.test'],
  ['encoded fullwidth solidus', '/%EF%BC%8Fevil.test'],
  ['small reverse solidus', '/﹨evil.test'],
  ['non-ASCII in the path', '/café'],
  ['relative path without a slash', 'evil.test'],
  ['empty string', ''],
  ['over-long path', `/${'a'.repeat(MAX_REDIRECT_LENGTH)}`],
  ['repeated parameter (array)', ['/safe', '//evil.test']],
  ['undefined (no parameter)', undefined],
  ['null', null],
  ['number', 42],
  ['object from a nested parameter', { '/': 'x' }],
];

const SAFE: readonly string[] = [
  '/',
  '/users?x=1',
  '/a/b#c',
  '/users/123/edit',
  '/search?q=a%20b&page=2',
  '/search?q=100%',
  '/report?from=https://example.test',
];

// ASVS 5.0 1.2.2, 3.7.2: redirects stay on our origin, whatever the encoding.
describe('safeRedirectTarget', () => {
  test.each(HOSTILE)('when next is %s, then the target is /', (_label, value) => {
    expect(safeRedirectTarget(value)).toBe('/');
  });

  test.each(SAFE)('when next is the same-origin path %p, then it is kept as is', (value) => {
    expect(safeRedirectTarget(value)).toBe(value);
  });

  test('when a path is exactly the length limit, then it is kept', () => {
    const longest = `/${'a'.repeat(MAX_REDIRECT_LENGTH - 1)}`;
    expect(safeRedirectTarget(longest)).toBe(longest);
  });
});
