import request from 'supertest';
import { PERMISSIONS_POLICY } from '../../src/http/security-headers';
import { signedIn } from '../support/factories';
import { useTestApp, withTestApp } from '../support/use-test-app';

const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const PAGE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; " +
  "base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/** A policy as its list of directives: the separator's spacing is not part of the meaning. */
const directives = (policy: string | undefined) => (policy ?? '').split(';').map((d) => d.trim());

describe('security headers', () => {
  const t = useTestApp();

  function expectCommonHeaders(headers: Record<string, string>): void {
    expect(headers).toMatchObject({
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-resource-policy': 'same-origin',
      'x-frame-options': 'DENY',
      'permissions-policy': PERMISSIONS_POLICY,
    });
    expect(headers['strict-transport-security']).toBeUndefined();
    expect(headers['x-powered-by']).toBeUndefined();
  }

  test.each(['/api/auth/me', '/api/users', '/api/nowhere', '/healthz', '/readyz'])(
    // ASVS 5.0 3.2.1, 3.4.3, 3.4.5: JSON cannot be rendered as a page; CSP and Referrer-Policy.
    'when %s answers, then it carries the deny-all API policy and the common headers',
    async (path) => {
      const res = await request(t.app).get(path);
      expect(directives(res.headers['content-security-policy'])).toEqual(directives(API_CSP));
      expectCommonHeaders(res.headers);
    },
  );

  test.each(['/login', '/', '/no/such/page'])(
    // ASVS 5.0 3.4.3: object-src and base-uri 'none', self only.
    'when the page %s answers, then it carries the self-only page policy with no unsafe sources',
    async (path) => {
      const res = await request(t.app).get(path);
      expect(directives(res.headers['content-security-policy'])).toEqual(directives(PAGE_CSP));
      expect(res.headers['content-security-policy']).not.toMatch(/unsafe-/);
      expectCommonHeaders(res.headers);
    },
  );

  test('when the camera, microphone or geolocation are asked for, then the policy switches them off', () => {
    for (const feature of ['camera', 'microphone', 'geolocation', 'payment', 'usb']) {
      expect(PERMISSIONS_POLICY).toContain(`${feature}=()`);
    }
  });

  // ASVS 5.0 14.2.2, 14.3.2: nothing dynamic is cached.
  test('when signed in, then every response is no-store and has no ETag, errors included', async () => {
    const { cookie, user } = await signedIn(t);
    for (const path of ['/api/auth/me', `/api/users/${user.id}`, '/api/users', '/', '/api/users/x']) {
      const res = await request(t.app).get(path).set('Cookie', cookie);
      expect(res.headers['cache-control']).toBe('no-store');
      // Nothing keeps a copy of a no-store answer to revalidate, so hashing its body is wasted.
      expect(res.headers.etag).toBeUndefined();
    }
  });

  test.each([
    ['post', '/api/auth/login'],
    ['post', '/api/auth/logout'],
    ['get', '/api/auth/me'],
    ['post', '/api/auth/register'],
    ['put', '/api/auth/password'],
  ] as const)('when %s %s answers anonymously, then it is no-store', async (method, path) => {
    const res = await request(t.app)[method](path).send({});
    expect(res.headers['cache-control']).toBe('no-store');
  });

  // ASVS 5.0 3.4.1: HSTS from the app when there is no edge.
  test('when HSTS_ENABLED is true, then the app sends HSTS itself (for deployments without the edge)', async () => {
    await withTestApp({ HSTS_ENABLED: 'true' }, async (withHsts) => {
      for (const path of ['/api/auth/me', '/login']) {
        const res = await request(withHsts.app).get(path);
        expect(res.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains');
      }
    });
  });

  // ASVS 5.0 3.4.2: no CORS.
  test('when a foreign Origin asks, then no CORS header reflects it', async () => {
    const preflight = await request(t.app)
      .options('/api/users')
      .set('Origin', 'https://evil.test')
      .set('Access-Control-Request-Method', 'POST');
    const simple = await request(t.app).get('/api/auth/me').set('Origin', 'https://evil.test');
    for (const res of [preflight, simple]) {
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
      expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    }
  });
});
