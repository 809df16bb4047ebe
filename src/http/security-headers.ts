import type { Request, RequestHandler, Response } from 'express';
import helmet from 'helmet';
import { isJsonPath } from './request-context';

/** JSON never needs to load, run, frame or submit anything. */
const API_CSP = {
  'default-src': ["'none'"],
  'frame-ancestors': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'none'"],
};

/** Pages load only our own scripts, styles and images: no inline code, so an injected tag cannot run. */
const PAGE_CSP = {
  'default-src': ["'self'"],
  'script-src': ["'self'"],
  'style-src': ["'self'"],
  'img-src': ["'self'"],
  'object-src': ["'none'"],
  'base-uri': ["'none'"],
  'frame-ancestors': ["'none'"],
  'form-action': ["'self'"],
};

/** Powerful browser features the app does not use, switched off for it and anything it might embed. */
export const PERMISSIONS_POLICY = [
  'accelerometer',
  'autoplay',
  'camera',
  'display-capture',
  'encrypted-media',
  'fullscreen',
  'geolocation',
  'gyroscope',
  'magnetometer',
  'microphone',
  'midi',
  'payment',
  'picture-in-picture',
  'publickey-credentials-get',
  'screen-wake-lock',
  'usb',
  'xr-spatial-tracking',
]
  .map((feature) => `${feature}=()`)
  .join(', ');

function headersWith(csp: Record<string, string[]>, hsts: boolean): RequestHandler {
  return helmet({
    contentSecurityPolicy: { useDefaults: false, directives: csp },
    crossOriginOpenerPolicy: { policy: 'same-origin' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    crossOriginEmbedderPolicy: false,
    originAgentCluster: true,
    referrerPolicy: { policy: 'no-referrer' },
    // Off by default: the nginx edge sends HSTS once for every https response. For deployments
    // without that edge, HSTS_ENABLED=true sends it from here (2 years, as the edge does).
    strictTransportSecurity: hsts ? { maxAge: 63072000, includeSubDomains: true, preload: false } : false,
    xContentTypeOptions: true,
    xDnsPrefetchControl: { allow: false },
    xDownloadOptions: true,
    xFrameOptions: { action: 'deny' },
    xPermittedCrossDomainPolicies: { permittedPolicies: 'none' },
    xPoweredBy: true,
    // "0" turns off the legacy XSS auditor, which itself enabled attacks; CSP does the job now.
    xXssProtection: true,
  });
}

interface HeaderSet {
  set: [name: string, value: string][];
  removed: string[];
}

/**
 * helmet, configured as above, sets the same headers on every response: no directive depends on the
 * request (no nonces). So its chain of a dozen middlewares runs once, here, against a recorder, and each
 * request replays what it did: the same headers for a fraction of the calls, on every response (the
 * health probes included). Anything helmet might do per request would fail the recording at start.
 */
function recordHeaders(middleware: RequestHandler): HeaderSet {
  const recorded: HeaderSet = { set: [], removed: [] };
  const recorder = {
    setHeader(name: string, value: unknown) {
      if (typeof value !== 'string') throw new Error(`helmet set ${name} to a non-string value`);
      recorded.set.push([name, value]);
      return recorder;
    },
    removeHeader(name: string) {
      recorded.removed.push(name);
    },
  };
  let outcome: { error?: unknown } | undefined;
  void middleware({} as Request, recorder as unknown as Response, (error?: unknown) => {
    outcome = { error };
  });
  if (!outcome || outcome.error !== undefined) {
    throw new Error('the security headers could not be computed once at start', { cause: outcome?.error });
  }
  return recorded;
}

/**
 * Response headers that make the browser enforce our intent (OWASP HTTP Headers Cheat Sheet).
 * helmet is configured here line by line, not defaulted: its defaults include HSTS (owned by the nginx
 * edge), X-Frame-Options SAMEORIGIN and a CSP allowing inline styles, none of which we want.
 */
export function securityHeaders({ hsts }: { hsts: boolean }): RequestHandler {
  const api = recordHeaders(headersWith(API_CSP, hsts));
  const pages = recordHeaders(headersWith(PAGE_CSP, hsts));
  return (req, res, next) => {
    res.setHeader('Permissions-Policy', PERMISSIONS_POLICY);
    const headers = isJsonPath(req.path) ? api : pages;
    for (const [name, value] of headers.set) res.setHeader(name, value);
    for (const name of headers.removed) res.removeHeader(name);
    next();
  };
}

/**
 * Responses are personal (a session) or carry per-visitor tokens (the login form), so nothing dynamic
 * may be kept by a browser or shared cache (ASVS 14.3). Static assets set their own caching.
 */
export const noStore: RequestHandler = (_req, res, next) => {
  res.setHeader('Cache-Control', 'no-store');
  next();
};
