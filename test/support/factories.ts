import { randomBytes } from 'node:crypto';
import request, { type Response } from 'supertest';
import { createPasswordPolicy, type PasswordPolicy } from '../../src/auth/password-policy';
import type { Role, User } from '../../src/users/user';
import { createUsersRepository } from '../../src/users/users.repository';
import { createAccount } from '../../src/users/users.service';
import { passwords, type TestApp } from './test-app';

export const DEFAULT_PASSWORD = 'plain old passphrase 42';

/**
 * Passwords exactly at the length bounds (in code points) that the strength estimate accepts too, so a
 * boundary test fails only on length: 'x'.repeat(12) or one emoji repeated would be refused as guessable.
 */
export const BOUNDARY_PASSWORDS = {
  min12: 'mauve-otter9',
  max128:
    'otters juggle seven brass lanterns while a mauve heron hums old sea shanties beneath the crooked pier at dawn, then naps at noon',
  astral12: '🦊🐙🌵🎻🚲🧭🪁🍄🛶🧩🔭🫖', // 24 UTF-16 units
  // 128 pictographs, none next to itself (256 UTF-16 units).
  astral128: Array.from({ length: 128 }, (_, i) => String.fromCodePoint(0x1f300 + ((i * 37) % 256))).join(''),
} as const;

/** Unique per call, so tests create their own users and never depend on each other's data. */
export function uniqueEmail(label = 'user'): string {
  return `${label}-${randomBytes(6).toString('hex')}@example.test`;
}

export interface TestUser {
  user: User;
  email: string;
  password: string;
}

const policies = new Map<string, PasswordPolicy>();
/**
 * One policy per worker and setting: building one ranks the zxcvbn dictionaries (~100 ms, ~15 MB).
 * Without the breached-password lookup: the users a test needs are not what a breach test checks, and
 * their creation sends nothing to a test's range server.
 */
function passwordPolicy(config: TestApp['config']): PasswordPolicy {
  const key = `${config.passwordMinLength}/${config.passwordMinScore}/${config.passwordContextWords.join(',')}`;
  let policy = policies.get(key);
  if (!policy) {
    policy = createPasswordPolicy(config);
    policies.set(key, policy);
  }
  return policy;
}

/** Creates a user straight through the account service (policy and hashing included), not over HTTP. */
export async function createUser(
  t: TestApp,
  options: { role?: Role; email?: string; name?: string; password?: string; verified?: boolean } = {},
): Promise<TestUser> {
  const email = options.email ?? uniqueEmail(options.role ?? 'user');
  const password = options.password ?? DEFAULT_PASSWORD;
  const user = await createAccount(
    {
      users: createUsersRepository(t.db),
      passwords: passwords(),
      passwordPolicy: passwordPolicy(t.config),
    },
    { email, name: options.name ?? 'Test User', password, role: options.role ?? 'user' },
    // Unverified unless asked, as every new account starts (REQUIRE_VERIFIED_EMAIL tests mind the difference).
    { emailVerified: options.verified ?? false },
  );
  return { user, email, password };
}

/** `name=value` of the session cookie a response set, or undefined. */
export function sessionCookie(res: Response, name = 'sid'): string | undefined {
  return sessionSetCookie(res, name)?.split(';')[0];
}

/**
 * The full Set-Cookie line for the session cookie, attributes included. When a response sets the
 * same cookie twice (cleared, then issued anew), the last one wins, as in a browser.
 */
export function sessionSetCookie(res: Response, name = 'sid'): string | undefined {
  const header = res.headers['set-cookie'] as unknown as string[] | undefined;
  return header?.findLast((c) => c.startsWith(`${name}=`));
}

/**
 * Logs in over HTTP and returns the session cookie to send back explicitly (`.set('Cookie', cookie)`).
 * Explicit cookies work in production mode too, where supertest would not send a Secure cookie over http.
 */
export async function login(
  t: TestApp,
  creds: { email: string; password: string },
  headers: Record<string, string> = {},
): Promise<string> {
  const res = await request(t.app)
    .post('/api/auth/login')
    .set(headers)
    .send({ email: creds.email, password: creds.password });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
  const cookie = sessionCookie(res, t.config.session.cookieName);
  if (!cookie) throw new Error('login set no session cookie');
  return cookie;
}

/** GET /api/auth/me with `cookie`: the quickest way to see whether a session is alive. */
export const me = (t: TestApp, cookie: string) => request(t.app).get('/api/auth/me').set('Cookie', cookie);

/** A user of the given role, already logged in. */
export async function signedIn(t: TestApp, role: Role = 'user'): Promise<TestUser & { cookie: string }> {
  const created = await createUser(t, { role });
  return { ...created, cookie: await login(t, created) };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
