import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Router } from 'express';
import request from 'supertest';
import { UNVERIFIED_API_ROUTES } from '../../src/auth/auth.routes';
import { ENROLMENT_API_ROUTES } from '../../src/mfa/mfa.routes';
import { isJsonPath } from '../../src/http/request-context';
import { createOpenApiDocument } from '../../src/openapi/openapi';
import { runCommand } from '../support/commands';
import { errorCodesRaisedInSources } from '../support/error-codes';
import { errorCodesOf, mountedRouter, operationsOf, routerStack, routesOf } from '../support/openapi';
import { ROOT } from '../support/run-script';
import type { TestApp } from '../support/test-app';
import { useTestApp, withTestApp } from '../support/use-test-app';

const doc = createOpenApiDocument();
/** The document as JSON carries it (no undefined members), which is what a file or a response holds. */
const asJson = () => JSON.parse(JSON.stringify(doc)) as unknown;

describe('the committed description', () => {
  const file = path.join(ROOT, 'docs', 'openapi.json');

  test('when docs/openapi.json is compared with what the schemas generate, then it is the same document, in the same order', () => {
    const text = readFileSync(file, 'utf8');

    expect(JSON.parse(text)).toEqual(asJson());
    const sameBytes = JSON.stringify(JSON.parse(text)) === JSON.stringify(asJson());
    expect({ file: 'docs/openapi.json', sameOrder: sameBytes }).toEqual({
      file: 'docs/openapi.json',
      sameOrder: true,
    });
  });

  test('when docs/openapi.json is read, then it is formatted as npm run lint wants, ends with a newline and names the package version', async () => {
    const text = readFileSync(file, 'utf8');
    // Prettier's CLI: its API loads plugins through dynamic import, which jest's sandbox refuses.
    const prettier = await runCommand(
      path.join(ROOT, 'node_modules', '.bin', 'prettier'),
      ['--check', file],
      {
        cwd: ROOT,
      },
    );

    expect({ code: prettier.code, output: prettier.stdout + prettier.stderr }).toMatchObject({ code: 0 });
    expect(text.endsWith('}\n')).toBe(true);
    const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    expect(doc.info.version).toBe(version);
    expect(doc.openapi).toMatch(/^3\.1\./);
  });
});

// ASVS 5.0 6.3.4, 6.4.2: every JSON route is described: no undocumented pathway, no hint or question route.
describe('the described routes', () => {
  const t = useTestApp();

  const jsonRoutesOf = (app: TestApp['app']) => routesOf(app).filter((r) => isJsonPath(r.split(' ')[1]!));

  test('when the JSON routes the app registers (/api and the probes) are listed, then they are exactly the described operations', () => {
    const routes = jsonRoutesOf(t.app);

    expect(routes.length).toBeGreaterThanOrEqual(12);
    expect(routes.sort()).toEqual(operationsOf(doc).sort());
  });

  test('when a router gains a route that the description lacks, then the listing finds it', async () => {
    await withTestApp({}, async (spare) => {
      const users = mountedRouter(mountedRouter(routerStack(spare.app), '/api').stack, '/users');
      (users as unknown as Router).get('/:id/avatar', (_req, res) => {
        res.end();
      });

      const undescribed = jsonRoutesOf(spare.app).filter((r) => !operationsOf(doc).includes(r));

      expect(undescribed).toEqual(['GET /api/users/{id}/avatar']);
    });
  });
});

describe('the described error codes', () => {
  /**
   * Raised only by the HTML form posts of src/web, which are not part of the JSON API; and the answer to
   * TRACE (src/http/methods.ts), a method no operation has, so no operation can list it.
   */
  const UNDESCRIBED_CODES = ['csrf_invalid', 'method_not_allowed'];

  test('when the sources raise an error code, then the description lists it, and lists no other', () => {
    const raised = errorCodesRaisedInSources();

    expect(raised.size).toBeGreaterThanOrEqual(17);
    // The exception must stay an exception: a code listed here that vanished from the sources is stale here.
    for (const code of UNDESCRIBED_CODES)
      expect({ code, raised: raised.has(code) }).toEqual({ code, raised: true });
    const expected = [...raised].filter((code) => !UNDESCRIBED_CODES.includes(code)).sort();
    expect([...errorCodesOf(doc)].sort()).toEqual(expected);
  });
});

/**
 * The /api operations whose 403 cannot carry `code` (a gate's refusal): what that gate lets through. The
 * probes are answered before the session is read, so no gate ever reaches them.
 */
const openPast = (code: string, component: string): string[] =>
  Object.entries(doc.paths ?? {})
    .flatMap(([path, item]) =>
      Object.entries(item as Record<string, { responses?: Record<string, unknown> }>)
        .filter(([, operation]) => operation.responses !== undefined)
        .filter(([, operation]) => {
          const forbidden = JSON.stringify(operation.responses?.['403'] ?? {});
          return !forbidden.includes(code) && !forbidden.includes(component);
        })
        .map(([method]) => `${method.toUpperCase()} ${path}`),
    )
    .filter((op) => op.includes(' /api/'));

const jsonRoutes = (routes: readonly string[]) => routes.filter((route) => isJsonPath(route.split(' ')[1]!));

describe('the description of REQUIRE_VERIFIED_EMAIL', () => {
  test('when the operations an unverified user keeps are read from the description, then they are exactly the allow-list the app enforces', () => {
    expect(openPast('email_unverified', 'EmailUnverified').sort()).toEqual(
      jsonRoutes(UNVERIFIED_API_ROUTES).sort(),
    );
  });
});

describe('the description of REQUIRE_MFA_FOR_ADMINS', () => {
  test('when the operations an admin without a second factor keeps are read from the description, then they are exactly the allow-list the app enforces', () => {
    expect(openPast('mfa_required', 'MfaRequired').sort()).toEqual(
      jsonRoutes([...UNVERIFIED_API_ROUTES, ...ENROLMENT_API_ROUTES]).sort(),
    );
  });
});

// ASVS 5.0 13.4.5: the API description in development only.
describe('the served description', () => {
  test('when the app runs in development, then GET /api/openapi.json answers the document through the middleware of every API request', async () => {
    await withTestApp({ NODE_ENV: 'development' }, async (dev) => {
      const res = await request(dev.app).get('/api/openapi.json');

      expect(res.status).toBe(200);
      expect(res.body).toEqual(asJson());
      expect(res.headers['x-request-id']).toEqual(expect.any(String));
      expect(res.headers['ratelimit-limit']).toBe(String(dev.config.rateLimits.requestsPerMinute));
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['content-security-policy']).toContain("default-src 'none'");
      // The security scheme names the cookie development actually sets.
      expect(doc.components?.securitySchemes?.session).toMatchObject({
        type: 'apiKey',
        in: 'cookie',
        name: dev.config.session.cookieName,
      });
    });
  });

  test.each([
    [
      'production',
      {
        NODE_ENV: 'production',
        PUBLIC_URL: 'https://app.example.test',
        TRUST_PROXY: '1',
        SESSION_SECRET: randomBytes(30).toString('base64url'),
      },
    ],
    ['test', {}],
  ])(
    'when the app runs in %s, then /api/openapi.json is a 404 like any unknown path',
    async (_env, env: Record<string, string>) => {
      await withTestApp(env, async (other) => {
        const res = await request(other.app).get('/api/openapi.json');
        const unknown = await request(other.app).get('/api/no-such-path');

        expect({ status: res.status, code: res.body.error?.code }).toEqual({
          status: 404,
          code: 'not_found',
        });
        expect({ status: res.status, message: res.body.error?.message }).toEqual({
          status: unknown.status,
          message: unknown.body.error?.message,
        });
        // The committed document names this mode's cookie too.
        expect(JSON.stringify(doc.components?.securitySchemes?.session)).toContain(
          `\`${other.config.session.cookieName}\``,
        );
      });
    },
  );
});
