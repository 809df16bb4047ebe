import type { CookieOptions } from 'express';
import type { AppConfig } from '../../config/config';

/**
 * The attributes of every cookie the app sets (the session, the CSRF pair), in one place so setting
 * and clearing a cookie can never disagree (a browser ignores a clear whose attributes differ):
 * - HttpOnly: page scripts cannot read them, so an injected script cannot steal a session (ASVS 3.3.4);
 * - Secure in production: never sent over plain HTTP, and required by the `__Host-` names (ASVS 3.3.1);
 * - SameSite=Lax: not sent on cross-site subrequests and posts, yet present when a user follows a link
 *   to us from elsewhere (ASVS 3.3.2);
 * - Path=/ and no Domain: host-only, as `__Host-` demands, so a sibling subdomain cannot see them.
 */
export function cookieAttributes(config: Pick<AppConfig, 'isProduction'>): CookieOptions {
  return { httpOnly: true, secure: config.isProduction, sameSite: 'lax', path: '/' };
}
