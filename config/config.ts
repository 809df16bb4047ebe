import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import {
  databaseConnection,
  redisConnection,
  warnIfPlainOverNetwork,
  type DataStoreTls,
} from './data-store-tls';
import { isLoopback } from './loopback';
import { passwordBreachApi, passwordContextWords, type PasswordBreachApi } from './passwords';

export type { DataStoreTls, PasswordBreachApi };

/** The value `.env.example` ships with. Production refuses it, so a copied example file never goes live. */
export const SESSION_SECRET_PLACEHOLDER = 'change-me-to-a-long-random-string-of-at-least-32-chars';

/**
 * Secrets that may also come from a file (`NAME_FILE=/run/secrets/...`), the Docker secrets convention.
 * An empty file counts as unset; a file that cannot be read is an error.
 */
const FILE_SECRETS = [
  'SESSION_SECRET',
  'DATABASE_URL',
  'REDIS_URL',
  'ADMIN_PASSWORD',
  'SMTP_URL',
  'MFA_ENCRYPTION_KEYS',
] as const;

const MIN_SECRET_LENGTH = 32;

/**
 * REDIS_KEY_PREFIX's default and form. No glob character (* ? [ ] \) can occur in it, so `~PREFIX*` in
 * the compose stack's Redis ACL (scripts/redis-acl.ts) means exactly the keys the app writes.
 */
export const DEFAULT_REDIS_KEY_PREFIX = 'app:';
export const REDIS_KEY_PREFIX_PATTERN = /^[A-Za-z0-9:_.-]{1,64}$/;

/** Where Redis Sentinel runs and which master it watches (REDIS_SENTINELS, REDIS_MASTER_NAME; ADR 0023). */
export interface RedisSentinelSettings {
  readonly masterName: string;
  readonly nodes: readonly { readonly host: string; readonly port: number }[];
}

type NodeEnv = 'development' | 'test' | 'production';

/** A mailbox as nodemailer takes it: the display name is encoded by the library, never spliced in. */
export interface MailAddress {
  readonly name: string | undefined;
  readonly address: string;
}

/** Where and how the SMTP client connects (src/mail/mail-transport.ts). */
export interface SmtpSettings {
  readonly host: string;
  readonly port: number;
  /** TLS from the first byte (smtps://, usually port 465). */
  readonly secure: boolean;
  /** On a plain connection, STARTTLS before anything else, or no mail at all (never a fallback to clear text). */
  readonly requireTLS: boolean;
  readonly auth: { readonly user: string; readonly pass: string } | undefined;
}

/**
 * How mail leaves the app: over SMTP; written to the log (development without SMTP_URL, so a developer
 * can follow a reset link); or not at all, and the flows that need mail are off.
 */
export type MailConfig =
  | { readonly transport: 'smtp'; readonly from: MailAddress; readonly smtp: SmtpSettings }
  | { readonly transport: 'log'; readonly from: MailAddress }
  | { readonly transport: 'off' };
/** One key of MFA_ENCRYPTION_KEYS: the id stored next to what it sealed, and 32 bytes of AES-256 key. */
export interface MfaKey {
  readonly id: string;
  readonly key: Buffer;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface AppConfig {
  readonly env: NodeEnv;
  readonly isProduction: boolean;
  readonly host: string;
  readonly port: number;
  /** The external origin (scheme://host[:port]) users reach the app at. */
  readonly publicOrigin: string;
  /** Postgres's URL without its TLS parameters, which are in databaseTls (config/data-store-tls.ts). */
  readonly databaseUrl: string;
  /** TLS to Postgres; undefined: a plain connection. */
  readonly databaseTls: DataStoreTls | undefined;
  readonly redisUrl: string;
  /** TLS to Redis (rediss://); undefined: a plain connection. */
  readonly redisTls: DataStoreTls | undefined;
  /** Redis through Sentinel; undefined: the single node of redisUrl. When set, redisUrl is unused. */
  readonly redisSentinel: RedisSentinelSettings | undefined;
  /** Every Redis key the app writes starts with this. */
  readonly redisKeyPrefix: string;
  readonly session: {
    readonly cookieName: string;
    /** The first secret signs new cookies; all of them verify, which allows rotation. */
    readonly secrets: readonly string[];
    readonly idleTimeoutS: number;
    readonly absoluteTimeoutS: number;
    /** Sessions one user may hold at once; a login beyond it ends that user's oldest session. */
    readonly maxPerUser: number;
  };
  /** Number of reverse-proxy hops whose X-Forwarded-* headers are believed. */
  readonly trustProxy: number;
  readonly logLevel: LogLevel;
  readonly shutdownTimeoutMs: number;
  /**
   * How long a signed-in user read from Postgres may be served from memory at most (src/users/user-cache.ts,
   * ADR 0044); 0: never, every signed-in request reads Postgres.
   */
  readonly userCacheTtlS: number;
  readonly admin: {
    readonly email: string | undefined;
    readonly password: string | undefined;
    readonly name: string | undefined;
  };
  readonly registrationEnabled: boolean;
  readonly passwordMinLength: number;
  /** Minimum zxcvbn score (0-4) a new password needs. */
  readonly passwordMinScore: number;
  /** Words tied to this deployment that no password may contain, lowercased (ASVS 6.2.11). */
  readonly passwordContextWords: readonly string[];
  /** The breached-password range API (ASVS 6.2.12); null: no lookup. */
  readonly passwordBreachApi: PasswordBreachApi | null;
  readonly mail: MailConfig;
  /**
   * Signed-in users whose address is not verified may only see who they are, sign out and verify
   * (src/http/require-verified-email.ts). Never on while mail is off: no one could verify.
   */
  readonly requireVerifiedEmail: boolean;
  /**
   * The keys that encrypt TOTP secrets at rest (src/mfa/secret-box.ts): the first seals new secrets,
   * every one opens what it sealed. null: MFA_ENCRYPTION_KEYS is unset and no one can enrol a second
   * factor (a factor already enrolled still has to be given at login: see src/mfa).
   */
  readonly mfaKeys: readonly MfaKey[] | null;
  /**
   * Admins without a confirmed second factor may only enrol one, see who they are and sign out
   * (src/mfa/require-mfa.ts; ADR 0034).
   */
  readonly requireMfaForAdmins: boolean;
  /** Send Strict-Transport-Security from the app (for deployments without the nginx edge, which sends it). */
  readonly hstsEnabled: boolean;
  readonly rateLimits: {
    /** Consecutive failed logins per (email, client IP) before a one-hour block. */
    readonly loginConsecutiveFails: number;
    /** Failed logins per client IP per day before a 24-hour block. */
    readonly loginFailsPerIpPerDay: number;
    /** Requests per client IP per minute, on every route but the health probes. */
    readonly requestsPerMinute: number;
    /** Registrations per client IP per hour. */
    readonly registrationsPerIpPerHour: number;
    /** Password change attempts per user per hour. */
    readonly passwordChangesPerUserPerHour: number;
    /** Password reset requests and confirmations per client IP per hour. */
    readonly passwordResetsPerIpPerHour: number;
    /** Mails the app sends to one address per hour, whoever asks (no mail bombing through the app). */
    readonly mailsPerAddressPerHour: number;
  };
  /** The bound in front of argon2 (src/lib/password-queue.ts). */
  readonly hashing: {
    /** Hashes computed at once: each holds 19 MiB and a thread while it runs. */
    readonly concurrency: number;
    /** Requests admitted beyond those, waiting for their turn; more are refused with 503 at once. */
    readonly queueMax: number;
    /** The longest a hash waits for its turn before it is refused with 503. */
    readonly maxWaitMs: number;
    /** The nice value of libuv's worker threads, where argon2 runs (0: left as they are). */
    readonly threadNice: number;
    /**
     * How long a request refused because the line is full waits before its 503 leaves (0: at once).
     * It computes nothing meanwhile; it keeps a flood's connections from coming straight back (ADR 0042).
     */
    readonly refusalDelayMs: number;
  };
  /**
   * The Prometheus listener (src/metrics): its own port, never the app's, so the proxy in front of the
   * app cannot route to it. null: off, and nothing is recorded.
   */
  readonly metrics: { readonly host: string; readonly port: number } | null;
  /** Non-fatal remarks for the operator, logged once at start. */
  readonly warnings: readonly string[];
}

/** Thrown with every configuration problem at once, so an operator fixes them in one go. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

const intInRange = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const urlWithProtocols = (protocols: readonly string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`,
  );

const originUrl = z.string().transform((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be an absolute URL such as https://app.example.com' });
    return z.NEVER;
  }
  if (!['http:', 'https:'].includes(url.protocol) || url.username || url.password) {
    ctx.addIssue({ code: 'custom', message: 'must be an http(s) origin without credentials' });
    return z.NEVER;
  }
  if (url.pathname !== '/' || url.search || url.hash) {
    ctx.addIssue({ code: 'custom', message: 'must be an origin only (no path, query or fragment)' });
    return z.NEVER;
  }
  return url.origin;
});

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: intInRange(0, 65535).default(3000),
  PUBLIC_URL: originUrl,
  DATABASE_URL: urlWithProtocols(['postgres:', 'postgresql:']),
  // Optional here: absent only with REDIS_SENTINELS (development fills in the local default otherwise).
  REDIS_URL: urlWithProtocols(['redis:', 'rediss:']).optional(),
  // Paths to PEM files, read at start (config/data-store-tls.ts); the URLs say whether TLS is used.
  DATABASE_CA_FILE: z.string().optional(),
  REDIS_CA_FILE: z.string().optional(),
  // The app's client certificate and key per store (ADR 0035): both or neither, with TLS only.
  DATABASE_CLIENT_CERT_FILE: z.string().optional(),
  DATABASE_CLIENT_KEY_FILE: z.string().optional(),
  REDIS_CLIENT_CERT_FILE: z.string().optional(),
  REDIS_CLIENT_KEY_FILE: z.string().optional(),
  // Redis through Sentinel instead of REDIS_URL (ADR 0023): host:port of each sentinel, and the name
  // of the master they watch (`sentinel monitor <name> …`). Checked together in redisSentinel().
  REDIS_SENTINELS: z.string().optional(),
  REDIS_MASTER_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ . -')
    .optional(),
  REDIS_KEY_PREFIX: z
    .string()
    .regex(REDIS_KEY_PREFIX_PATTERN, 'must be 1-64 characters of A-Z a-z 0-9 : _ . -')
    .default(DEFAULT_REDIS_KEY_PREFIX),
  SESSION_SECRET: z
    .string()
    .transform((value) => value.split(',').map((s) => s.trim()))
    .refine((secrets) => secrets.every((s) => s.length > 0), 'must not contain empty entries'),
  SESSION_IDLE_TIMEOUT_S: intInRange(1, 7 * 24 * 3600).default(1800),
  SESSION_ABSOLUTE_TIMEOUT_S: intInRange(1, 30 * 24 * 3600).default(28800),
  // No "unlimited": every login would add to a list that only the absolute timeout shortens, and a
  // stolen password could open sessions the owner has to page through to end (ASVS 5.0 7.1.2).
  SESSION_MAX_PER_USER: intInRange(1, 1000).default(10),
  // A hop count only: `true` would trust any X-Forwarded-For a client makes up.
  TRUST_PROXY: intInRange(0, 5).default(0),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SHUTDOWN_TIMEOUT_MS: intInRange(100, 600_000).default(10_000),
  // The bound on a cached user if Postgres's change notifications stopped unnoticed (ADR 0044).
  USER_CACHE_TTL_S: intInRange(0, 3600).default(60),
  ADMIN_EMAIL: z.string().trim().toLowerCase().pipe(z.email().max(254)).optional(),
  ADMIN_PASSWORD: z.string().optional(),
  // Checked by the seed with the same rules as every user's name (src/users/users.schemas.ts).
  ADMIN_NAME: z.string().optional(),
  REGISTRATION_ENABLED: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .default(true),
  // NIST SP 800-63B: at least 8; 12 is OWASP's recommendation without composition rules.
  PASSWORD_MIN_LENGTH: intInRange(8, 128).default(12),
  PASSWORD_MIN_SCORE: intInRange(0, 4).default(3),
  // Checked in config/passwords.ts: the words' lengths, the URL's scheme in production.
  PASSWORD_CONTEXT_WORDS: z.string().optional(),
  PASSWORD_BREACH_API_URL: z.string().optional(),
  PASSWORD_BREACH_TIMEOUT_MS: intInRange(100, 10_000).default(2000),
  HSTS_ENABLED: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .default(false),
  LOGIN_MAX_CONSECUTIVE_FAILS: intInRange(1, 1000).default(10),
  LOGIN_MAX_FAILS_PER_IP_PER_DAY: intInRange(1, 100_000).default(100),
  RATE_LIMIT_PER_MINUTE: intInRange(1, 1_000_000).default(600),
  REGISTER_MAX_PER_IP_PER_HOUR: intInRange(1, 100_000).default(10),
  PASSWORD_CHANGE_MAX_PER_USER_PER_HOUR: intInRange(1, 100_000).default(10),
  PASSWORD_RESET_MAX_PER_IP_PER_HOUR: intInRange(1, 100_000).default(10),
  // Checked with the production rules in mailSettings(): the scheme alone says little about TLS.
  SMTP_URL: urlWithProtocols(['smtp:', 'smtps:']).optional(),
  MAIL_FROM: z.string().optional(),
  MAIL_MAX_PER_ADDRESS_PER_HOUR: intInRange(1, 1000).default(5),
  // Unset: on in production when mail is on, off otherwise (see verifiedEmailRequired).
  REQUIRE_VERIFIED_EMAIL: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional(),
  // id:base64-key[,id:base64-key...], the first encrypts (see mfaKeyRing). Unset: no enrolment.
  MFA_ENCRYPTION_KEYS: z.string().optional(),
  // Unset: on in production when MFA_ENCRYPTION_KEYS is set, off otherwise (see mfaRequiredForAdmins).
  REQUIRE_MFA_FOR_ADMINS: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional(),
  // Unset: computed from the machine (see hashingLimits).
  HASH_CONCURRENCY: intInRange(1, 256).optional(),
  HASH_QUEUE_MAX: intInRange(0, 10_000).optional(),
  HASH_QUEUE_WAIT_MS: intInRange(1, 60_000).default(750),
  HASH_THREAD_NICE: intInRange(0, 19).default(10),
  HASH_REFUSAL_DELAY_MS: intInRange(0, 5_000).default(250),
  // 0 (the default): no metrics listener and no recording. Loopback unless told otherwise: in a
  // container it must be the container's own address, for the scraper on the private network only.
  METRICS_PORT: intInRange(0, 65535).default(0),
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
});

/** Every variable the app reads (NAME_FILE variants aside): .env.example and the README list them all. */
export const ENV_VARIABLES: readonly string[] = Object.keys(envSchema.shape);

/**
 * Parses the environment once. Nothing else in the app reads `process.env`: the result is passed down.
 * `readFile` is injectable so tests can exercise the `NAME_FILE` convention without touching disk.
 */
export function loadConfig(
  rawEnv: Env,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): AppConfig {
  const problems: string[] = [];
  const warnings: string[] = [];

  // Compose files often pass `VAR=` for "unset"; treat empty strings as absent.
  const env: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(rawEnv))
    if (value !== undefined && value !== '') env[key] = value;

  for (const name of FILE_SECRETS) {
    const path = env[`${name}_FILE`];
    if (path === undefined) continue;
    if (env[name] !== undefined) {
      problems.push(`${name} and ${name}_FILE are both set: give one`);
      continue;
    }
    try {
      const value = readFile(path).replace(/\r?\n$/, '');
      // An empty file is an unset secret, as an empty variable is above: a deployment that always
      // mounts the file says "none" this way (docker-compose.yml's SMTP_URL_FILE: mail off). A file
      // that is missing or unreadable still stops the start: a secret that was meant is never dropped.
      if (value !== '') env[name] = value;
    } catch (error) {
      problems.push(
        `${name}_FILE: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }

  const isProduction = env.NODE_ENV === 'production';
  if (isProduction) {
    problems.push(...productionProblems(env));
  } else {
    env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/app';
    if (env.REDIS_SENTINELS === undefined) env.REDIS_URL ??= 'redis://127.0.0.1:6379';
    env.PUBLIC_URL ??= `http://localhost:${env.PORT ?? 3000}`;
    if (env.SESSION_SECRET === undefined) {
      env.SESSION_SECRET = randomBytes(32).toString('base64url');
      warnings.push(
        'SESSION_SECRET is not set: using a random one, so sessions end when the process restarts',
      );
    }
  }

  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0] ?? 'environment');
      // Production already reported missing required values in its own words.
      if (isProduction && env[name] === undefined && issue.code === 'invalid_type') continue;
      problems.push(`${name}: ${issue.message}`);
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(problems);

  const e = parsed.data;
  const tlsContext = { isProduction, readFile, problems, warnings };
  const database = databaseConnection(
    e.DATABASE_URL,
    {
      caFile: e.DATABASE_CA_FILE,
      clientCertFile: e.DATABASE_CLIENT_CERT_FILE,
      clientKeyFile: e.DATABASE_CLIENT_KEY_FILE,
    },
    tlsContext,
  );
  const sentinel = redisSentinel(e, problems);
  // Sentinel is always plain text here (no TLS in this form): said as for a plain REDIS_URL.
  for (const node of sentinel?.nodes ?? []) warnIfPlainOverNetwork('REDIS_SENTINELS', node.host, tlsContext);
  // With Sentinel there is no REDIS_URL nor CA file (redisSentinel refuses them): the single-node
  // connection is then an inert placeholder, never used.
  const redis =
    e.REDIS_SENTINELS === undefined
      ? redisConnection(
          e.REDIS_URL ?? SENTINEL_PLACEHOLDER_URL,
          {
            caFile: e.REDIS_CA_FILE,
            clientCertFile: e.REDIS_CLIENT_CERT_FILE,
            clientKeyFile: e.REDIS_CLIENT_KEY_FILE,
          },
          tlsContext,
        )
      : { url: SENTINEL_PLACEHOLDER_URL, tls: undefined };
  const mail = mailSettings(e, problems, warnings);
  const passwordChecks = { isProduction, problems, warnings };
  const contextWords = passwordContextWords(e.PASSWORD_CONTEXT_WORDS, passwordChecks);
  const breachApi = passwordBreachApi(
    e.PASSWORD_BREACH_API_URL,
    e.PASSWORD_BREACH_TIMEOUT_MS,
    passwordChecks,
  );
  const requireVerifiedEmail = verifiedEmailRequired(e, mail, problems);
  const mfaKeys = mfaKeyRing(e.MFA_ENCRYPTION_KEYS, isProduction, problems);
  const requireMfaForAdmins = mfaRequiredForAdmins(e, mfaKeys, problems, warnings);
  if (e.METRICS_PORT !== 0 && e.METRICS_PORT === e.PORT) {
    // The point of the separate listener is a port the proxy never forwards to: never the app's own.
    problems.push('METRICS_PORT must differ from PORT: metrics are never served on the app listener');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const hashing = hashingLimits(e, env, warnings);
  return Object.freeze({
    env: e.NODE_ENV,
    isProduction,
    host: e.HOST,
    port: e.PORT,
    publicOrigin: e.PUBLIC_URL,
    databaseUrl: database.url,
    databaseTls: database.tls,
    redisUrl: redis.url,
    redisTls: redis.tls,
    redisSentinel: sentinel,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    session: Object.freeze({
      // The __Host- prefix makes the browser refuse the cookie unless it is Secure, host-only and Path=/.
      cookieName: isProduction ? '__Host-sid' : 'sid',
      secrets: Object.freeze(e.SESSION_SECRET),
      idleTimeoutS: e.SESSION_IDLE_TIMEOUT_S,
      absoluteTimeoutS: e.SESSION_ABSOLUTE_TIMEOUT_S,
      maxPerUser: e.SESSION_MAX_PER_USER,
    }),
    trustProxy: e.TRUST_PROXY,
    logLevel: e.LOG_LEVEL,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    userCacheTtlS: e.USER_CACHE_TTL_S,
    admin: Object.freeze({ email: e.ADMIN_EMAIL, password: e.ADMIN_PASSWORD, name: e.ADMIN_NAME }),
    registrationEnabled: e.REGISTRATION_ENABLED,
    passwordMinLength: e.PASSWORD_MIN_LENGTH,
    passwordMinScore: e.PASSWORD_MIN_SCORE,
    passwordContextWords: contextWords,
    passwordBreachApi: breachApi,
    mail: Object.freeze(mail),
    requireVerifiedEmail,
    mfaKeys,
    requireMfaForAdmins,
    hstsEnabled: e.HSTS_ENABLED,
    rateLimits: Object.freeze({
      loginConsecutiveFails: e.LOGIN_MAX_CONSECUTIVE_FAILS,
      loginFailsPerIpPerDay: e.LOGIN_MAX_FAILS_PER_IP_PER_DAY,
      requestsPerMinute: e.RATE_LIMIT_PER_MINUTE,
      registrationsPerIpPerHour: e.REGISTER_MAX_PER_IP_PER_HOUR,
      passwordChangesPerUserPerHour: e.PASSWORD_CHANGE_MAX_PER_USER_PER_HOUR,
      passwordResetsPerIpPerHour: e.PASSWORD_RESET_MAX_PER_IP_PER_HOUR,
      mailsPerAddressPerHour: e.MAIL_MAX_PER_ADDRESS_PER_HOUR,
    }),
    hashing: Object.freeze(hashing),
    metrics: e.METRICS_PORT === 0 ? null : Object.freeze({ host: e.METRICS_HOST, port: e.METRICS_PORT }),
    warnings: Object.freeze(warnings),
  });
}

/** Stands in for REDIS_URL when Sentinel is configured, so the URL's checks run on something inert. */
const SENTINEL_PLACEHOLDER_URL = 'redis://sentinel.invalid';

/**
 * REDIS_SENTINELS and REDIS_MASTER_NAME: both or neither, and never together with REDIS_URL (two
 * sources for one connection would leave the reader guessing which one wins). TLS is the single-node
 * form's only: node-redis's Sentinel client would need the same CA and host-name checks on every
 * sentinel and on whatever node they name, which this configuration does not express, so a CA file
 * with sentinels is refused rather than half applied (ADR 0023).
 */
function redisSentinel(e: z.infer<typeof envSchema>, problems: string[]): RedisSentinelSettings | undefined {
  if (e.REDIS_SENTINELS === undefined) {
    if (e.REDIS_MASTER_NAME !== undefined) problems.push('REDIS_MASTER_NAME is set without REDIS_SENTINELS');
    return undefined;
  }
  if (e.REDIS_URL !== undefined)
    problems.push('REDIS_URL and REDIS_SENTINELS are both set: give one (the sentinels name the master)');
  if (e.REDIS_CA_FILE !== undefined)
    problems.push('REDIS_CA_FILE is set with REDIS_SENTINELS: TLS through Sentinel is not supported');
  for (const name of ['REDIS_CLIENT_CERT_FILE', 'REDIS_CLIENT_KEY_FILE'] as const) {
    if (e[name] !== undefined)
      problems.push(`${name} is set with REDIS_SENTINELS: TLS through Sentinel is not supported`);
  }
  if (e.REDIS_MASTER_NAME === undefined)
    problems.push('REDIS_MASTER_NAME is required with REDIS_SENTINELS (the name in `sentinel monitor`)');
  const nodes: { host: string; port: number }[] = [];
  for (const entry of e.REDIS_SENTINELS.split(',').map((s) => s.trim())) {
    // host:port, an IPv6 address in brackets ([::1]:26379).
    const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(entry);
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535) {
      problems.push(`REDIS_SENTINELS: "${entry}" is not host:port`);
      continue;
    }
    nodes.push(Object.freeze({ host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port }));
  }
  if (e.REDIS_MASTER_NAME === undefined || nodes.length === 0) return undefined;
  return Object.freeze({ masterName: e.REDIS_MASTER_NAME, nodes: Object.freeze(nodes) });
}

/**
 * REQUIRE_VERIFIED_EMAIL and its default. Production with mail on: required, so an account's address
 * is proven before the account is used (and before a reset or a notice is trusted to reach its owner).
 * Development and test: off, so a developer is not stopped at every new account. Without mail it cannot
 * be on: no one could ever verify, and every new account would be locked out, so asking for it is a
 * configuration error rather than a silent lock-out.
 */
function verifiedEmailRequired(e: z.infer<typeof envSchema>, mail: MailConfig, problems: string[]): boolean {
  const mailOn = mail.transport !== 'off';
  if (e.REQUIRE_VERIFIED_EMAIL === true && !mailOn) {
    problems.push(
      'REQUIRE_VERIFIED_EMAIL=true needs mail (SMTP_URL): without it no one could verify an address',
    );
  }
  return e.REQUIRE_VERIFIED_EMAIL ?? (e.NODE_ENV === 'production' && mailOn);
}

/** A key id: short, and safe to store next to a ciphertext and to show in a log line. */
const MFA_KEY_ID = /^[a-z0-9-]{1,32}$/;

/**
 * MFA_ENCRYPTION_KEYS: `id:key` entries separated by commas, each key 32 random bytes in base64
 * (`openssl rand -base64 32`). The first entry seals new TOTP secrets; every entry opens the secrets
 * sealed under its id, so a key is rotated by putting a new one first and dropping the old one once no
 * row names it (docs/decisions, "TOTP secrets encrypted with a key ring"). Every mode refuses a key
 * that is not exactly 256 bits (AES-256-GCM takes nothing else) and a repeated id; production also
 * refuses a key whose bytes are all alike (an example's `AAAA…=`), which anyone can guess. Unset: null, and no one can enrol (src/mfa).
 */
export function mfaKeyRing(
  value: string | undefined,
  isProduction: boolean,
  problems: string[],
): MfaKey[] | null {
  if (value === undefined) return null;
  const keys: MfaKey[] = [];
  value.split(',').forEach((raw, index) => {
    const entry = raw.trim();
    // Named by position, never echoed: the entry is a secret.
    const which = `MFA_ENCRYPTION_KEYS entry ${index + 1}`;
    const colon = entry.indexOf(':');
    const id = entry.slice(0, colon);
    const encoded = entry.slice(colon + 1);
    if (colon < 0 || !MFA_KEY_ID.test(id)) {
      problems.push(`${which} must be id:key, the id 1-32 characters of a-z 0-9 -`);
      return;
    }
    const key = Buffer.from(encoded, 'base64');
    if (!/^[A-Za-z0-9+/]{43}=$/.test(encoded) || key.length !== 32) {
      problems.push(`${which} (${id}) must be 32 bytes in base64 (openssl rand -base64 32)`);
      return;
    }
    if (keys.some((k) => k.id === id)) problems.push(`${which}: the id ${id} is given twice`);
    if (isProduction && key.every((byte) => byte === key[0])) {
      problems.push(`${which} (${id}) is not a random key (every byte is the same)`);
    }
    keys.push(Object.freeze({ id, key }));
  });
  return Object.freeze(keys) as MfaKey[];
}

/**
 * REQUIRE_MFA_FOR_ADMINS and its default: on in production whenever a second factor can be enrolled
 * (MFA_ENCRYPTION_KEYS is set), off otherwise, as REQUIRE_VERIFIED_EMAIL follows mail. An admin
 * account is the one whose stolen password costs the most, so once the app can hold a second factor,
 * production asks admins for one. It cannot be on without keys (no admin could ever comply), so
 * asking for it then is an error, and production without keys says at start that admins sign in with
 * a password alone.
 */
function mfaRequiredForAdmins(
  e: z.infer<typeof envSchema>,
  keys: readonly MfaKey[] | null,
  problems: string[],
  warnings: string[],
): boolean {
  if (e.REQUIRE_MFA_FOR_ADMINS === true && keys === null) {
    problems.push('REQUIRE_MFA_FOR_ADMINS=true needs MFA_ENCRYPTION_KEYS: without it no admin could enrol');
  }
  if (keys === null && e.NODE_ENV === 'production') {
    warnings.push(
      'MFA_ENCRYPTION_KEYS is not set: no one can enrol a second factor, and admins sign in with a password alone',
    );
  }
  return e.REQUIRE_MFA_FOR_ADMINS ?? (e.NODE_ENV === 'production' && keys !== null);
}

/** The sender a development log transport shows when MAIL_FROM is not set; it never reaches a server. */
const DEVELOPMENT_MAIL_FROM: MailAddress = Object.freeze({ name: undefined, address: 'no-reply@localhost' });

/** The one URL parameter SMTP_URL may carry, spelled as nodemailer spells the option. */
const SMTP_URL_PARAMETERS = new Set(['requireTLS']);

/**
 * The mail settings and their rules. Without SMTP_URL, development writes mails to the log and every
 * other mode turns mail off (and with it the flows that need it). With it, production refuses a
 * connection that could carry mail and SMTP credentials in clear text over a network: smtp:// to a
 * host other than this machine needs `?requireTLS=true` (STARTTLS or no mail: a man in the middle who
 * strips the STARTTLS offer gets a failed send, not a plaintext one); smtps:// is TLS from the start.
 */
function mailSettings(e: z.infer<typeof envSchema>, problems: string[], warnings: string[]): MailConfig {
  const from = e.MAIL_FROM === undefined ? undefined : parseMailbox(e.MAIL_FROM);
  if (from === null) problems.push('MAIL_FROM: must be an address or "Name <address>"');

  if (e.SMTP_URL === undefined) {
    if (e.NODE_ENV === 'development') {
      warnings.push(
        'SMTP_URL is not set: mails are written to the log instead of being sent, links included (development only)',
      );
      return { transport: 'log', from: from ?? DEVELOPMENT_MAIL_FROM };
    }
    warnings.push(
      'SMTP_URL is not set: mail is off, and so are the flows that need it (password reset, email verification; email changes take effect at once, unconfirmed)',
    );
    return { transport: 'off' };
  }

  if (from === undefined)
    problems.push('MAIL_FROM is required with SMTP_URL: the address mails are sent from');
  const url = new URL(e.SMTP_URL);
  const secure = url.protocol === 'smtps:';
  // The WHATWG parser keeps an IPv6 literal's brackets; the socket wants the bare address.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  let requireTLS = false;
  for (const [name, value] of url.searchParams) {
    // Named, never echoed: a value in the wrong place could be a password.
    if (!SMTP_URL_PARAMETERS.has(name))
      problems.push(`SMTP_URL: unknown parameter ${name} (only requireTLS)`);
    else if (value !== 'true' && value !== 'false')
      problems.push('SMTP_URL: requireTLS must be true or false');
    else requireTLS = value === 'true';
  }
  if ((url.pathname !== '' && url.pathname !== '/') || url.hash) {
    problems.push(
      'SMTP_URL: must not have a path or fragment (smtp://user:password@host:port?requireTLS=true)',
    );
  }
  if (e.NODE_ENV === 'production' && !secure && !requireTLS && !isLoopback(host)) {
    problems.push(
      `SMTP_URL: smtp:// to ${host} would send mail and credentials in clear text: ` +
        'add ?requireTLS=true (STARTTLS or nothing) or use smtps://',
    );
  }
  return {
    transport: 'smtp',
    // Without MAIL_FROM a problem is reported above and this configuration is never used.
    from: from ?? DEVELOPMENT_MAIL_FROM,
    smtp: Object.freeze({
      host,
      // 465 is SMTP over TLS and 587 mail submission with STARTTLS (RFC 8314); 25 is for relays.
      port: url.port === '' ? (secure ? 465 : 587) : Number(url.port),
      secure,
      requireTLS,
      auth: smtpCredentials(url, problems),
    }),
  };
}

/** The user name and password of SMTP_URL, percent-decoded (an `@` in a user name is written %40). */
function smtpCredentials(url: URL, problems: string[]): SmtpSettings['auth'] {
  if (url.username === '') return undefined;
  try {
    return Object.freeze({ user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) });
  } catch {
    problems.push('SMTP_URL: the user name or password has a malformed %-escape');
    return undefined;
  }
}

/**
 * `address` or `Name <address>` (the name optionally in double quotes). Parsed by position, not by a
 * pattern, and the name may not hold quotes, angle brackets or control characters: nodemailer encodes
 * it as a header word, so what is configured is exactly what recipients see. null: not a mailbox.
 */
function parseMailbox(value: string): MailAddress | null {
  const text = value.trim();
  let name: string | undefined;
  let address = text;
  if (text.endsWith('>')) {
    const open = text.lastIndexOf('<');
    if (open < 0) return null;
    address = text.slice(open + 1, -1).trim();
    const quoted = text.slice(0, open).trim();
    name =
      quoted.startsWith('"') && quoted.endsWith('"') && quoted.length >= 2 ? quoted.slice(1, -1) : quoted;
    if (name === '') name = undefined;
  }
  if (!z.email().max(254).safeParse(address).success) return null;
  if (name !== undefined && (name.length > 100 || /["<>\p{Cc}]/u.test(name))) return null;
  return Object.freeze({ name, address });
}

/** libuv's thread pool size: its own variable, read by libuv at start (4 unless set, at most 1024). */
function threadPoolSize(env: Env): number {
  const size = Number(env.UV_THREADPOOL_SIZE);
  return Number.isInteger(size) && size >= 1 ? Math.min(size, 1024) : 4;
}

/**
 * The argon2 bound's defaults. Concurrency: one hash per core but one, so under a login flood the event
 * loop keeps a core for every other request (a hash is CPU-bound for its whole ~10 ms, and the
 * scheduler shares a core evenly between a hashing thread and the event loop); and one libuv thread
 * fewer than the pool, since argon2 runs on that pool, which file reads and DNS lookups need too. The
 * line: 16 places per slot, so a burst of real sign-ins (or of an admin's creations) waits instead of
 * failing, and the last in line waits about 16 hashes (~160-320 ms). The wait: 750 ms, reached only when
 * hashing runs several times slower than it should (a starved machine, a flood); then refusing is
 * kinder than an answer that comes after the user gave up. Short of 1 s by a hash or two slowed by a
 * busy core, so a login admitted to the line is answered within a second (ADR 0008).
 */
function hashingLimits(e: z.infer<typeof envSchema>, env: Env, warnings: string[]): AppConfig['hashing'] {
  const pool = threadPoolSize(env);
  const concurrency = e.HASH_CONCURRENCY ?? Math.max(1, Math.min(availableParallelism() - 1, pool - 1));
  if (concurrency >= pool) {
    warnings.push(
      `HASH_CONCURRENCY ${concurrency} can take every libuv thread (UV_THREADPOOL_SIZE ${pool}): ` +
        'file reads and DNS lookups would wait behind password hashes; set UV_THREADPOOL_SIZE above it',
    );
  }
  return {
    concurrency,
    queueMax: e.HASH_QUEUE_MAX ?? 16 * concurrency,
    maxWaitMs: e.HASH_QUEUE_WAIT_MS,
    threadNice: e.HASH_THREAD_NICE,
    refusalDelayMs: e.HASH_REFUSAL_DELAY_MS,
  };
}

/** The rules that make production refuse to start instead of running with weak or missing settings. */
function productionProblems(env: Env): string[] {
  const problems: string[] = [];
  for (const name of ['DATABASE_URL', 'PUBLIC_URL'] as const) {
    if (env[name] === undefined) problems.push(`${name} is required in production`);
  }
  if (env.REDIS_URL === undefined && env.REDIS_SENTINELS === undefined)
    problems.push('REDIS_URL is required in production (or REDIS_SENTINELS with REDIS_MASTER_NAME)');
  const publicUrl = env.PUBLIC_URL;
  if (publicUrl !== undefined && !publicUrl.toLowerCase().startsWith('https://')) {
    problems.push('PUBLIC_URL must be https in production');
  }
  // The app speaks plain HTTP, so in production a TLS proxy is always in front. Not trusting it
  // means req.secure is never true: no Secure cookie is ever issued (every login silently fails),
  // and every client shares the proxy's address in the rate limits.
  if ((env.TRUST_PROXY ?? '0') === '0') {
    problems.push('TRUST_PROXY must be 1 or more in production: the number of proxies in front of the app');
  }
  const secret = env.SESSION_SECRET;
  if (secret === undefined) {
    problems.push(
      `SESSION_SECRET is required in production (at least ${MIN_SECRET_LENGTH} random characters)`,
    );
  } else {
    secret.split(',').forEach((raw, index) => {
      const entry = raw.trim();
      const which = `SESSION_SECRET entry ${index + 1}`;
      if (entry === SESSION_SECRET_PLACEHOLDER) problems.push(`${which} is the .env.example placeholder`);
      else if (entry.length < MIN_SECRET_LENGTH)
        problems.push(`${which} is shorter than ${MIN_SECRET_LENGTH} characters`);
    });
  }
  return problems;
}
