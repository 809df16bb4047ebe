import { createHmac } from 'node:crypto';
import type { Response } from 'supertest';
import type { TestApp } from './test-app';

/**
 * The session id inside a `name=value` session cookie. express-session signs the value as
 * `s:<sid>.<signature>`, URL-encoded as `s%3A<sid>.<signature>`.
 */
export function sidOf(cookie: string): string {
  const value = decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1));
  const match = /^s:([^.]+)\./.exec(value);
  if (!match) throw new Error(`not a signed session cookie: ${cookie}`);
  return match[1]!;
}

/** A session cookie for `sid` signed with `secret`, exactly as express-session (cookie-signature) signs it. */
export function signedSessionCookie(name: string, sid: string, secret: string): string {
  const signature = createHmac('sha256', secret).update(sid).digest('base64').replace(/=+$/, '');
  return `${name}=${encodeURIComponent(`s:${sid}.${signature}`)}`;
}

/** The Redis key connect-redis stores a session under. */
export const sessionKey = (t: TestApp, sid: string) => `${t.config.redisKeyPrefix}sess:${sid}`;

/** The per-user sorted set of live session ids. */
export const userSessionsKey = (t: TestApp, userId: string) =>
  `${t.config.redisKeyPrefix}user-sessions:${userId}`;

export interface StoredSession {
  userId?: string;
  authenticatedAt?: number;
  cookie: Record<string, unknown>;
}

/** The session as stored in Redis, or null when the key does not exist. */
export async function readStoredSession(t: TestApp, sid: string): Promise<StoredSession | null> {
  const raw = await t.redis.get(sessionKey(t, sid));
  return raw === null ? null : (JSON.parse(raw) as StoredSession);
}

export interface ParsedSetCookie {
  name: string;
  value: string;
  /** Attribute names lowercased; flag attributes map to ''. */
  attributes: Map<string, string>;
}

/** Splits a Set-Cookie line into name, value and attributes. */
export function parseSetCookie(line: string): ParsedSetCookie {
  const [pair, ...rest] = line.split(';').map((part) => part.trim());
  const eq = pair!.indexOf('=');
  const attributes = new Map<string, string>();
  for (const attribute of rest) {
    const at = attribute.indexOf('=');
    if (at === -1) attributes.set(attribute.toLowerCase(), '');
    else attributes.set(attribute.slice(0, at).toLowerCase(), attribute.slice(at + 1));
  }
  return { name: pair!.slice(0, eq), value: pair!.slice(eq + 1), attributes };
}

/** Every Set-Cookie line of a response (an empty list when there is none). */
export function setCookies(res: Response): string[] {
  return (res.headers['set-cookie'] as unknown as string[] | undefined) ?? [];
}
