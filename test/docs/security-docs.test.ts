import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../config/config';
import { MAX_RENEWAL_INTERVAL_S } from '../../src/auth/sessions';
import { ROOT } from '../support/run-script';

/**
 * The documents under docs/security/ answer the ASVS requirements that are documentation. Each block
 * below ties one of them to the code it describes, so that a change to the code that the document
 * does not follow fails here: a new schema, event, column, crypto call or way to start a session.
 */

const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const doc = (name: string) => read(`docs/security/${name}.md`);

/** Every .ts and .js file under a folder of the repository, as repository paths. */
function sourcesUnder(folder: string): string[] {
  return readdirSync(path.join(ROOT, folder), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.(ts|js)$/.test(entry.name))
    .map((entry) => path.relative(ROOT, path.join(entry.parentPath, entry.name)))
    .sort();
}

const SOURCES = [...sourcesUnder('src'), ...sourcesUnder('config'), ...sourcesUnder('scripts')];
const backticked = (text: string, name: string) => text.includes(`\`${name}\``);
/** The defaults of the configuration, as a fresh development start has them. */
const defaults = loadConfig({ NODE_ENV: 'development', SESSION_SECRET: 'x'.repeat(32) });

/** A line of `text` holding both `name` (in backticks) and `value` as a number of its own. */
const lineWith = (text: string, name: string, value: number) =>
  text
    .split('\n')
    .some((line) => line.includes(`\`${name}\``) && new RegExp(`(?<![\\d.])${value}(?![\\d])`).test(line));

// ASVS 5.0 2.1.1 (rules per data item), 2.1.2 (combined items), 2.1.3 (business limits).
describe('docs/security/input-validation.md', () => {
  const text = doc('input-validation');
  const SCHEMA_FILES = [
    'src/auth/auth.schemas.ts',
    'src/users/users.schemas.ts',
    'src/web/web.routes.ts',
    'src/web/password-reset.pages.ts',
    'src/web/email-verification.pages.ts',
    'src/web/email-change.pages.ts',
    'src/mfa/mfa.schemas.ts',
    'src/web/mfa.pages.ts',
    'src/auth/user-sessions.schemas.ts',
    'src/web/sessions.pages.ts',
  ];
  const inputSchemas = SCHEMA_FILES.flatMap((file) =>
    [...read(file).matchAll(/^(?:export )?const (\w+(?:Body|Query|Params|Form)) = /gm)].map((m) => m[1]!),
  );

  test('when the input schemas of the sources are listed, then the document names each of them (2.1.1)', () => {
    expect(inputSchemas.length).toBeGreaterThanOrEqual(15);
    expect(inputSchemas.filter((name) => !backticked(text, name))).toEqual([]);
  });

  test('when the document names a schema, then the sources define it', () => {
    const named = [...text.matchAll(/`(\w+(?:Body|Query|Params|Form))`/g)].map((m) => m[1]!);
    expect(named.filter((name) => !inputSchemas.includes(name))).toEqual([]);
  });

  test('when the rules that tie fields together are read, then the password policy states the configured minimums (2.1.2)', () => {
    expect(text).toMatch(/## Rules beyond one field/);
    expect(lineWith(text, 'PASSWORD_MIN_LENGTH', defaults.passwordMinLength)).toBe(true);
    expect(lineWith(text, 'PASSWORD_MIN_SCORE', defaults.passwordMinScore)).toBe(true);
  });

  test('when the limits are read, then every rate limit of the configuration is there with its default (2.1.3)', () => {
    const limits = defaults.rateLimits;
    const expected: [string, number][] = [
      ['RATE_LIMIT_PER_MINUTE', limits.requestsPerMinute],
      ['LOGIN_MAX_CONSECUTIVE_FAILS', limits.loginConsecutiveFails],
      ['LOGIN_MAX_FAILS_PER_IP_PER_DAY', limits.loginFailsPerIpPerDay],
      ['REGISTER_MAX_PER_IP_PER_HOUR', limits.registrationsPerIpPerHour],
      ['PASSWORD_CHANGE_MAX_PER_USER_PER_HOUR', limits.passwordChangesPerUserPerHour],
      ['PASSWORD_RESET_MAX_PER_IP_PER_HOUR', limits.passwordResetsPerIpPerHour],
      ['MAIL_MAX_PER_ADDRESS_PER_HOUR', limits.mailsPerAddressPerHour],
    ];
    expect(Object.keys(limits)).toHaveLength(expected.length);
    expect(expected.filter(([name, value]) => !lineWith(text, name, value))).toEqual([]);
  });
});

// ASVS 5.0 6.1.1 (rate limiting and lockout documented), 6.1.3 (every pathway documented with its
// controls), 6.3.4 (no undocumented pathway).
describe('docs/security/login-pathways.md', () => {
  const text = doc('login-pathways');

  test('when a source file starts or rotates a session, then the document names that file (6.1.3, 6.3.4)', () => {
    const starters = SOURCES.filter(
      (file) => file !== 'src/auth/sessions.ts' && /\b(startSession|rotateSession)\(/.test(read(file)),
    );
    expect(starters.length).toBeGreaterThan(0);
    expect(starters.filter((file) => !backticked(text, file))).toEqual([]);
  });

  test('when the API description lists the /api/auth routes, then the document names each (6.3.4)', () => {
    const paths = Object.keys((JSON.parse(read('docs/openapi.json')) as { paths: object }).paths).filter(
      (p) => p.startsWith('/api/auth/'),
    );
    expect(paths.length).toBeGreaterThan(0);
    const named = (p: string) => new RegExp(`\`(?:[A-Z]+ )?${p.replace(/[/.-]/g, '\\$&')}\``).test(text);
    expect(paths.filter((p) => !named(p) && !p.endsWith('/resend'))).toEqual([]);
    expect(text).toContain('`/resend`');
  });

  test('when the lockout is described, then its settings and defaults are the configuration’s (6.1.1)', () => {
    const limits = defaults.rateLimits;
    expect(lineWith(text, 'LOGIN_MAX_CONSECUTIVE_FAILS', limits.loginConsecutiveFails)).toBe(true);
    expect(lineWith(text, 'LOGIN_MAX_FAILS_PER_IP_PER_DAY', limits.loginFailsPerIpPerDay)).toBe(true);
    expect(text).toMatch(/cannot lock the owner\s+out/);
  });
});

// ASVS 5.0 7.1.1: the timeouts documented with their reasons against NIST SP 800-63B.
describe('docs/security/session-timeouts.md', () => {
  const text = doc('session-timeouts');

  test('when the defaults are read, then they are the configuration’s, and the renewal interval is the code’s (7.1.1)', () => {
    expect(lineWith(text, 'SESSION_IDLE_TIMEOUT_S', defaults.session.idleTimeoutS)).toBe(true);
    expect(lineWith(text, 'SESSION_ABSOLUTE_TIMEOUT_S', defaults.session.absoluteTimeoutS)).toBe(true);
    expect(text).toContain(`| ${MAX_RENEWAL_INTERVAL_S} s `);
    expect(text).toMatch(/## Against NIST SP 800-63B/);
  });

  test('when the defaults are compared with 800-63B at AAL2, then they are within 12 hours and 30 minutes (7.1.1)', () => {
    expect(defaults.session.absoluteTimeoutS).toBeLessThanOrEqual(12 * 3600);
    expect(defaults.session.idleTimeoutS).toBeLessThanOrEqual(30 * 60);
  });
});

// ASVS 5.0 11.1.1 (key management policy), 11.1.2 (inventory), 11.2.1 (validated implementations),
// 11.4.1 (approved hash functions only).
describe('docs/security/crypto-inventory.md', () => {
  const text = doc('crypto-inventory');
  const cryptoUsers = SOURCES.filter((file) => /from '(node:)?crypto'/.test(read(file)));

  test('when a source file uses node:crypto, then the inventory names it (11.1.2)', () => {
    expect(cryptoUsers.length).toBeGreaterThan(0);
    expect(cryptoUsers.filter((file) => !backticked(text, file))).toEqual([]);
  });

  test('when hashes and HMACs are made, then SHA-256 is the only algorithm (11.4.1), but for the breach API`s own lookup key and TOTP`s HMAC-SHA1', () => {
    // The range API indexes breached passwords by SHA-1: that one file must speak it, and the
    // inventory says why nothing relies on it there.
    const BREACH_LOOKUP = 'src/auth/breached-passwords.ts';
    // TOTP codes are HMAC-SHA1 (RFC 6238's default, the one authenticator apps support), computed by
    // otplib: that file may name the MAC, written `HMAC-SHA1`, and nothing else of SHA-1; it makes no
    // hash itself, and the inventory says why the MAC is sound.
    const TOTP = 'src/mfa/totp.ts';
    const algorithmsIn = (file: string) =>
      [...read(file).matchAll(/create(?:Hash|Hmac)\(\s*'([^']+)'/g)].map((m) => m[1]!);
    const withoutTotpMac = (file: string) =>
      file === TOTP ? read(file).replaceAll('HMAC-SHA1', '') : read(file);
    const others = SOURCES.filter((file) => file !== BREACH_LOOKUP);
    const algorithms = others.flatMap(algorithmsIn);
    expect(algorithms.length).toBeGreaterThan(0);
    expect(new Set(algorithms)).toEqual(new Set(['sha256']));
    expect(others.filter((file) => /\b(md5|sha1)\b/i.test(withoutTotpMac(file)))).toEqual([]);
    expect(algorithmsIn(BREACH_LOOKUP)).toEqual(['sha1']);
    expect(text).toMatch(/SHA-1 of the password, as the range API indexes it/);
    expect(algorithmsIn(TOTP)).toEqual([]);
    expect(text).toMatch(/HMAC-SHA1 is not broken as a MAC/);
  });

  test('when dependencies are listed, then the only crypto libraries are node:crypto and @node-rs/argon2 (11.2.1)', () => {
    const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    const cryptoLike = Object.keys(pkg.dependencies).filter((name) =>
      /crypt|argon|scrypt|hash|sha|md5|jose|jwt|sodium|forge|tweetnacl/i.test(name),
    );
    expect(cryptoLike).toEqual(['@node-rs/argon2']);
  });

  test('when the password hashing parameters are read, then the inventory states the code’s (11.1.2)', () => {
    const options = /memoryCost: (\d+), timeCost: (\d+), parallelism: (\d+)/.exec(
      read('src/lib/passwords.ts'),
    )!;
    expect(text).toContain(`m = ${options[1]} KiB, t = ${options[2]}, p = ${options[3]}`);
  });

  test('when the policy is read, then it covers the lifecycle: generation, storage, use, rotation, compromise, destruction (11.1.1)', () => {
    expect(text).toMatch(/## Key management policy/);
    for (const stage of [
      'Generation',
      'Distribution and storage',
      'Use',
      'Rotation',
      'Compromise',
      'Destruction',
    ])
      expect(text).toContain(`**${stage}.**`);
  });
});

// ASVS 5.0 16.1.1 (logging inventory), 16.2.3 (logs go only where documented).
describe('docs/security/logging.md', () => {
  const text = doc('logging');
  const union = (file: string, type: string) =>
    [...new RegExp(`type ${type} =([^;]+);`).exec(read(file))![1]!.matchAll(/'([a-z_.]+)'/g)].map(
      (m) => m[1]!,
    );

  test('when the code can log a security or mail event, then the inventory names it (16.1.1)', () => {
    const events = [
      ...union('src/http/security-events.ts', 'SecurityEvent'),
      ...union('src/mail/outbox.ts', 'MailEvent'),
    ];
    expect(events.length).toBeGreaterThan(20);
    expect(events.filter((event) => !backticked(text, event))).toEqual([]);
  });

  test('when fields are redacted or headers allowed in the access line, then the inventory names each (16.1.1)', () => {
    const secretFields = /SECRET_FIELDS = \[([^\]]+)\]/.exec(read('src/lib/logger.ts'))![1]!;
    const headers = /LOGGED_REQUEST_HEADERS = \[([^\]]+)\]/.exec(read('src/http/access-log.ts'))![1]!;
    const names = [...`${secretFields} ${headers}`.matchAll(/'([\w-]+)'/g)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(10);
    expect(names.filter((name) => !text.includes(name))).toEqual([]);
  });

  test('when the sources write anywhere, then it is standard output through the logger only (16.2.3)', () => {
    const writers = SOURCES.filter((file) =>
      /createWriteStream|appendFile|pino\.transport|pino\.destination\(/.test(read(file)),
    );
    expect(writers).toEqual(['src/lib/logger.ts']);
    expect(read('src/lib/logger.ts')).toContain('pino.destination({ dest: 1,');
  });
});

// ASVS 5.0 14.1.1 (data classified), 14.1.2 (protection per level), 8.1.1 and 8.1.2 (access rules).
describe('docs/security/data-classification.md', () => {
  const text = doc('data-classification');

  test('when the migrations create columns, then the classification names each (14.1.1)', () => {
    const migrations = readdirSync(path.join(ROOT, 'migrations')).map((file) => read(`migrations/${file}`));
    const columns = new Set<string>();
    for (const sql of migrations) {
      for (const table of sql.matchAll(/CREATE TABLE \w+ \(([\s\S]+?)\n\);/g))
        for (const column of table[1]!.matchAll(
          /^\s+([a-z_]+)\s+(?:uuid|text|timestamptz|bytea|integer)\b/gm,
        ))
          columns.add(column[1]!);
      for (const added of sql.matchAll(/ADD COLUMN ([a-z_]+)/g)) columns.add(added[1]!);
    }
    expect(columns.size).toBeGreaterThan(10);
    const named = (column: string) => new RegExp(`\`(\\w+\\.)?${column}\``).test(text);
    expect([...columns].filter((column) => !named(column))).toEqual([]);
  });

  test('when the levels are read, then each has its protection requirements and the access rules are there (14.1.2, 8.1.1, 8.1.2)', () => {
    for (const level of ['Secret', 'Personal', 'Internal']) expect(text).toContain(`**${level}**`);
    for (const requirement of [
      'In transit',
      'At rest',
      'Integrity',
      'In logs',
      'Caching',
      'Access',
      'Deletion',
    ])
      expect(text).toMatch(new RegExp(`^\\| ${requirement} +\\|`, 'm'));
    expect(text).toMatch(/## Access rules/);
    for (const field of ['id', 'email', 'name', 'role']) expect(text).toContain(`\`${field}\``);
  });
});

// ASVS 5.0 6.2.10: no periodic rotation. Nothing stores a password's age, so nothing can expire one.
describe('password age', () => {
  test('when the migrations and sources are read, then no password age or expiry exists (6.2.10)', () => {
    const files = [...SOURCES, ...readdirSync(path.join(ROOT, 'migrations')).map((f) => `migrations/${f}`)];
    const pattern = /password_?(changed|set|updated|expires?)_?at|passwordExpir|password_age|passwordAge/i;
    expect(files.filter((file) => pattern.test(read(file)))).toEqual([]);
  });
});

// ASVS 5.0 1.3.2: no dynamic code execution.
describe('dynamic code', () => {
  test('when the sources are read, then none calls eval or builds a Function (1.3.2)', () => {
    const pattern = /(?<![.\w])eval\s*\(|new Function\s*\(|\bvm\.run/;
    expect(SOURCES.filter((file) => pattern.test(read(file)))).toEqual([]);
  });
});

// ASVS 5.0 14.3.3: the browser keeps cookies only, never data in web storage.
describe('browser storage', () => {
  test('when the pages and their script are read, then none uses localStorage, sessionStorage or IndexedDB (14.3.3)', () => {
    const pattern = /localStorage|sessionStorage|indexedDB/;
    const files = [...sourcesUnder('src/web')];
    for (const view of readdirSync(path.join(ROOT, 'src/web/views'))) files.push(`src/web/views/${view}`);
    expect(files.length).toBeGreaterThan(10);
    expect(files.filter((file) => pattern.test(read(file)))).toEqual([]);
  });
});
