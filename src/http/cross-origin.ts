import type { RequestHandler } from 'express';
import { CrossOriginRequestError } from '../errors';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Refuses state-changing requests sent by other sites (CSRF), modelled on Go 1.25's
 * net/http CrossOriginProtection with PUBLIC_URL's origin in place of the Host header:
 * - `Sec-Fetch-Site` (sent by every current browser) must be `same-origin` or `none` (typed URL,
 *   bookmark); `same-site` is refused too, since a sibling subdomain is not us;
 * - without it (older browsers, non-browser clients), an `Origin` must equal our public origin;
 * - with neither, the request did not come from a browser page (curl, server-to-server): allowed, as
 *   it cannot carry a victim's cookies through a forged page.
 * Runs before body parsing and the content-type check, so a forged request is refused first.
 */
export function crossOriginGuard(publicOrigin: string): RequestHandler {
  return (req, _res, next) => {
    if (SAFE_METHODS.has(req.method)) return next();
    const site = req.get('sec-fetch-site');
    const origin = req.get('origin');
    const allowed =
      site !== undefined
        ? site === 'same-origin' || site === 'none'
        : origin === undefined || origin === publicOrigin;
    if (allowed) return next();
    next(new CrossOriginRequestError({ origin: origin ?? null, secFetchSite: site ?? null }));
  };
}
