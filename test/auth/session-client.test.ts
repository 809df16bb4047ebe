import { summarizeUserAgent, truncateAddress } from '../../src/auth/session-client';

// What the list of sessions (ASVS 5.0 7.5.2) keeps of a client: its network, not its address, and a
// browser family, not its User-Agent.
describe('the client a session remembers', () => {
  test.each([
    ['203.0.113.77', '203.0.113.0/24'],
    ['::ffff:198.51.100.9', '198.51.100.0/24'],
    ['2001:db8:1234:5678::abcd', '2001:db8:1234::/48'],
    ['2001:db8::1', '2001:db8::/48'],
    ['unknown', 'unknown'],
    ['', 'unknown'],
  ])('when the address is %p, then the session keeps %p', (ip, kept) => {
    expect(truncateAddress(ip)).toBe(kept);
  });

  test.each([
    ['Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0', 'Firefox on Linux'],
    [
      'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36 Edg/140.0.0.0',
      'Edge on Windows',
    ],
    [
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Safari/605.1.15',
      'Safari on macOS',
    ],
    [
      'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Mobile Safari/537.36',
      'Chrome on Android',
    ],
    [
      'Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/140.0 Mobile/15E148 Safari/604.1',
      'Chrome on iOS',
    ],
    [
      'Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36',
      'Chrome on ChromeOS',
    ],
    ['curl/8.5.0', 'curl'],
    ['<script>alert(1)</script>', 'Unknown browser'],
    [undefined, 'Unknown browser'],
  ])('when the User-Agent is %p, then the summary is %p', (header, summary) => {
    expect(summarizeUserAgent(header)).toBe(summary);
  });

  test('when a User-Agent is huge, then only its first 512 characters are read and nothing of it is echoed', () => {
    const header = `${'x'.repeat(600)} Firefox/140.0 (X11; Linux x86_64)`;

    expect(summarizeUserAgent(header)).toBe('Unknown browser');
  });
});
