import { clientLimitKey, normalizeIp } from '../../src/http/request-context';

describe('client addresses', () => {
  test.each([
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['127.0.0.1', '127.0.0.1'],
    ['2001:DB8:0:0::1', '2001:db8::1'],
    ['::1', '::1'],
    [undefined, 'unknown'],
    ['not an address', 'not an address'],
  ])('when the address is %p, then it is logged as %p', (raw, normal) => {
    expect(normalizeIp(raw)).toBe(normal);
  });

  test.each([
    ['203.0.113.9', '203.0.113.9'],
    ['::ffff:203.0.113.9', '203.0.113.9'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::ffff', '2001:db8:1:2::/64'],
    ['2001:DB8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
  ])('when limits count %p, then the key is %p', (ip, key) => {
    expect(clientLimitKey(ip)).toBe(key);
  });
});
