/** Which server a case is aimed at. */
export type Target = 'bareHttp' | 'bareExpress' | 'naive' | 'app';

export interface Case {
  id: string;
  label: string;
  target: Target;
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** Every answer must have this status, or the row fails. */
  expectedStatus: number;
  connections: number;
  /** A new client address per request (login failures would otherwise lock the address out). */
  uniqueClients?: boolean;
  /** Sequential requests over which Redis and SQL work is counted. */
  countRequests: number;
  /** Answered before the limiter, the session and the routes (the health probe). */
  beforeStack?: boolean;
}

export interface SignedIn {
  /** The app's session cookie (`__Host-sid=…`), sent as a header: it is Secure, the bench speaks HTTP. */
  appCookie: string;
  naiveCookie: string;
  userId: string;
  /** The login cases' account: another user than the signed-in one, whose session they never end. */
  email: string;
  password: string;
}

/** Concurrent connections per run: enough to keep one server core busy, few enough not to queue much. */
const CONNECTIONS = 20;
/** Login is an argon2id verification (~10 ms of CPU): a few connections already saturate it. */
const LOGIN_CONNECTIONS = 4;

/**
 * The app behind its TLS proxy, as in production: the proxy says https, and who the client is. Each
 * case has a client address of its own so the per-client limit (raised, still counting) holds for all.
 */
function fromProxy(clientNumber: number): Record<string, string> {
  return { 'X-Forwarded-Proto': 'https', 'X-Forwarded-For': `198.51.100.${clientNumber}` };
}

export function benchCases(s: SignedIn): Case[] {
  const app = (n: number, cookie = true) => ({
    ...fromProxy(n),
    ...(cookie ? { Cookie: s.appCookie } : {}),
  });
  const json = { 'Content-Type': 'application/json' };
  const base = { method: 'GET' as const, expectedStatus: 200, connections: CONNECTIONS, countRequests: 200 };
  const login = { ...base, method: 'POST' as const, connections: LOGIN_CONNECTIONS, countRequests: 40 };
  return [
    { ...base, id: 'bare-http', label: 'node:http hello (bare)', target: 'bareHttp', path: '/', headers: {} },
    {
      ...base,
      id: 'bare-express',
      label: 'Express hello (bare)',
      target: 'bareExpress',
      path: '/',
      headers: {},
    },
    {
      ...base,
      id: 'naive-read',
      label: 'naive assembly, signed-in read',
      target: 'naive',
      path: '/me',
      headers: { Cookie: s.naiveCookie },
    },
    {
      ...base,
      id: 'healthz',
      label: 'app `GET /healthz`',
      target: 'app',
      path: '/healthz',
      headers: app(1, false),
      beforeStack: true,
    },
    {
      ...base,
      id: 'anonymous-401',
      label: 'app `GET /api/auth/me` anonymous (401)',
      target: 'app',
      path: '/api/auth/me',
      headers: app(2, false),
      expectedStatus: 401,
    },
    {
      ...base,
      id: 'me',
      label: 'app `GET /api/auth/me` signed in',
      target: 'app',
      path: '/api/auth/me',
      headers: app(3),
    },
    {
      ...base,
      id: 'user-by-id',
      label: 'app `GET /api/users/:id` signed in',
      target: 'app',
      path: `/api/users/${s.userId}`,
      headers: app(4),
    },
    {
      ...base,
      id: 'home-page',
      label: 'app `GET /` signed in (HTML)',
      target: 'app',
      path: '/',
      headers: app(5),
    },
    {
      ...login,
      id: 'login-ok',
      label: 'app `POST /api/auth/login` success',
      target: 'app',
      path: '/api/auth/login',
      headers: { ...app(6, false), ...json },
      body: JSON.stringify({ email: s.email, password: s.password }),
    },
    {
      ...login,
      id: 'login-fail',
      label: 'app `POST /api/auth/login` wrong password (401)',
      target: 'app',
      path: '/api/auth/login',
      headers: { ...app(7, false), ...json },
      body: JSON.stringify({ email: s.email, password: `${s.password} not` }),
      expectedStatus: 401,
      uniqueClients: true,
    },
  ];
}
