import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSecretBox } from '../../src/mfa/secret-box';
import { ComposeProject, serviceOf, type DockerContainer } from '../support/compose-project';
import { log } from './docker-setup';
import { awayFromStepEdge, codeAt, enrolTotpThrough, type PostAsUser } from '../support/mfa';
import { describeLogShipping } from './log-shipping';
import { requestEdge, type EdgeAnswer as Answer } from '../support/nginx-edge';
import { ROOT } from '../support/run-script';

/**
 * `docker compose up` on a real engine, as a new user runs it: a fresh copy of the repository, no .env,
 * the README's commands. The tests run in order against one stack: each step leaves it as the next
 * expects. Images are the official ones or the stand-ins (TEST_IMAGES; run.ts prepares them).
 */

const project = new ComposeProject();
const secretsVolume = (name: string) => `${project.name}_${name}-secrets`;
/** data-certs-init's volume for a consumer's certificates and keys (ADR 0035). */
const tlsVolume = (name: string) => `${project.name}_${name}-tls`;
const ADMIN_EMAIL = `admin-${randomBytes(3).toString('hex')}@example.com`;
const ADMIN_PASSWORD = `wander ${randomBytes(6).toString('hex')} orchard`;
const IMAGES = process.env.TEST_IMAGES ?? 'unknown';

let https443 = 0;
let http80 = 0;
/** The certificate nginx serves (self-signed for localhost): the one CA the client trusts. */
let certificate = '';
let adminCookie = '';
/** The admin's TOTP secret, as their authenticator app holds it once they have enrolled. */
let adminTotpSecret = '';
const secrets: Record<string, string> = {};

const ERASE_LINE = `${String.fromCharCode(27)}[2K`;
const json = (a: Answer) => JSON.parse(a.body) as Record<string, unknown>;
const api = (
  method: string,
  pathAndQuery: string,
  { cookie, body }: { cookie?: string; body?: unknown } = {},
) =>
  requestEdge({ port: https443, secure: true, ca: certificate, timeoutMs: 30_000 }, pathAndQuery, {
    method,
    headers: {
      ...(cookie ? { Cookie: cookie } : {}),
      ...(body ? { 'Content-Type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
const cookieFrom = (a: Answer): string | undefined =>
  [a.headers['set-cookie'] ?? []]
    .flat()
    .find((c) => c.startsWith('__Host-sid='))
    ?.split(';')[0];

async function login(email = ADMIN_EMAIL, password = ADMIN_PASSWORD): Promise<Answer> {
  return api('POST', '/api/auth/login', { body: { email, password } });
}

/** The last TOTP time step the admin's sign-ins used (the app refuses a step twice: replay). */
let lastCodeStep = 0;
const stepNow = () => Math.floor(Date.now() / 30_000);

/** The admin's whole sign-in once they have a second factor: password (202), then a code (200). */
async function loginWithCode(): Promise<string> {
  const password = await login();
  expect(password.status).toBe(202);
  expect(json(password)).toEqual({ mfaRequired: true });
  // One step ahead of now, within the window the app accepts, and after every step used before: two
  // sign-ins within 30 s would otherwise send the same step, which the app rightly refuses.
  while (stepNow() + 1 <= lastCodeStep) await new Promise((resolve) => setTimeout(resolve, 1000));
  await awayFromStepEdge();
  lastCodeStep = stepNow() + 1;
  const code = await api('POST', '/api/auth/login/mfa', {
    cookie: cookieFrom(password),
    body: { code: await codeAt(adminTotpSecret, 1) },
  });
  expect({ status: code.status, body: code.status === 200 ? 'signed in' : code.body }).toEqual({
    status: 200,
    body: 'signed in',
  });
  return cookieFrom(code)!;
}

/** psql as the superuser, inside the postgres container (its local socket): one value per line. */
const sql = async (query: string) =>
  (
    await project.mustCompose([
      'exec',
      '-T',
      'postgres',
      'psql',
      '-U',
      'postgres',
      '-d',
      'app',
      '-tAc',
      query,
    ])
  ).trim();

/** After a start: the published ports (new ones after every `up`) and the served certificate. */
async function connect(): Promise<void> {
  https443 = await project.port('nginx', 443);
  http80 = await project.port('nginx', 80);
  certificate = await project.nginxCertificate();
  await project.until('nginx answers over https', async () => (await api('GET', '/healthz')).status === 200);
}

async function up(): Promise<number> {
  const started = Date.now();
  await project.mustCompose(['up', '--detach', '--wait'], { timeoutMs: 900_000 });
  const seconds = (Date.now() - started) / 1000;
  await connect();
  return seconds;
}

/** A helper container that reads a volume as root, with no network. */
const readVolume = (volume: string, command: string) =>
  project.docker([
    'run',
    '--rm',
    '--network',
    'none',
    '--user',
    '0',
    '--entrypoint',
    'sh',
    '-v',
    `${volume}:/v:ro`,
    project.appImage,
    '-c',
    command,
  ]);

async function readSecrets(): Promise<Record<string, string>> {
  const file = (volume: string, name: string) => readVolume(secretsVolume(volume), `cat /v/${name}`);
  const found = {
    sessionSecret: (await file('app', 'session_secret')).trim(),
    appDbPassword: (await file('postgres', 'app_password')).trim(),
    superuserPassword: (await file('postgres', 'superuser_password')).trim(),
    redisPassword: new URL((await file('app', 'redis_url')).trim()).password,
    redisHealthcheckPassword: (await file('redis', 'healthcheck_password')).trim(),
    redisAdminPassword: (await file('redis', 'admin_password')).trim(),
    mfaEncryptionKeys: (await file('app', 'mfa_encryption_keys')).trim(),
  };
  for (const value of Object.values(found)) expect(value.length).toBeGreaterThanOrEqual(32);
  // The app logs in to Postgres with its certificate (ADR 0035): its URL carries no password.
  expect((await file('app', 'database_url')).trim()).toBe(
    'postgres://app@postgres:5432/app?sslmode=verify-full',
  );
  return found;
}

/** The pid, inside the app container, of the server process (node … dist/src/main.js; PID 1 is the init). */
const SERVER_PID = `for p in /proc/[0-9]*; do case "$(tr '\\0' ' ' < "$p/cmdline" 2>/dev/null)" in 'node '*'dist/src/main.js '*) echo "\${p#/proc/}";; esac; done`;

const all = async (): Promise<DockerContainer[]> => project.inspect(await project.containers());
/** A shell line run in the redis or postgres container, as its user; its output, or a failure. */
const inRedis = (line: string) => project.mustCompose(['exec', '-T', 'redis', 'sh', '-c', line]);
const inPostgres = (line: string) => project.compose(['exec', '-T', 'postgres', 'sh', '-c', line]);
/** redis-cli over TLS presenting `user`'s client certificate (ADR 0035): admin and healthcheck have one. */
const redisCli = (user: string) =>
  `redis-cli --tls --cacert /run/tls/redis/ca.crt --cert /run/tls/redis/${user}.crt --key /run/tls/redis/${user}.key`;
const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256;
/** The one line of docs/deploy.md that `pattern` matches: the command a reader of the guide runs. */
function guideLine(pattern: RegExp): string {
  const found = pattern.exec(readFileSync(path.join(ROOT, 'docs', 'deploy.md'), 'utf8'))?.[0];
  expect({ pattern: String(pattern), found: found !== undefined }).toEqual({
    pattern: String(pattern),
    found: true,
  });
  return found!;
}

afterAll(async () => {
  // The last test removes everything and checks it; this is for a run that stopped before it.
  if (!cleanedUp) await project.destroy();
}, 300_000);
let cleanedUp = false;

describe('docker compose up, as a new user runs it', () => {
  test('when the stack starts from nothing, then every service is up and healthy, build included', async () => {
    const seconds = await up();
    const size = Number(
      await project.docker(['image', 'inspect', '--format', '{{.Size}}', project.appImage]),
    );
    log(
      `images: ${IMAGES}; docker compose up -d --wait took ${seconds.toFixed(0)} s; app image ${(size / 1e6).toFixed(0)} MB`,
    );

    const containers = await all();
    const state = Object.fromEntries(
      containers.map((c) => [serviceOf(c), c.State.Health?.Status ?? c.State.Status]),
    );
    expect(state).toEqual({
      'secrets-init': 'exited',
      'data-certs-init': 'exited',
      'certs-init': 'exited',
      migrate: 'exited',
      postgres: 'healthy',
      redis: 'healthy',
      app: 'healthy',
      nginx: 'healthy',
      certbot: 'healthy',
    });
    for (const c of containers.filter((c) => c.State.Status === 'exited'))
      expect({ service: serviceOf(c), code: c.State.ExitCode }).toEqual({ service: serviceOf(c), code: 0 });
  });

  test('when nginx is asked over https, then it serves the app with the generated certificate, HSTS once', async () => {
    expect(new X509Certificate(certificate).subject).toContain('Temporary self-signed certificate');
    const health = await api('GET', '/healthz');
    expect(health.status).toBe(200);
    expect(json(health)).toEqual({ status: 'ok' });
    const hsts = health.rawHeaders.filter(
      (_, i) => i % 2 === 0 && health.rawHeaders[i]!.toLowerCase() === 'strict-transport-security',
    );
    expect(hsts).toHaveLength(1);
    expect(health.headers.server).toBe('nginx');

    const page = await api('GET', '/login');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toMatch(/<form[^>]+method="post"/i);
    expect(page.rawHeaders.filter((h) => h.toLowerCase() === 'strict-transport-security')).toHaveLength(1);
  });

  test('when the served certificate expires sooner than the threshold, then the certbot service`s health check fails', async () => {
    // The placeholder is valid for 30 days: the check passes with the 14 days the file sets, and fails
    // when asked for 31, as it will when renewals stop working.
    const check = (await project.container('certbot')).Config.Healthcheck!.Test;
    expect(check[0]).toBe('CMD-SHELL');
    const run = (days: number) =>
      project.compose(['exec', '-T', '-e', `CERT_MIN_VALID_DAYS=${days}`, 'certbot', 'sh', '-c', check[1]!]);
    expect((await run(14)).code).toBe(0);
    expect((await run(31)).code).not.toBe(0);
  });

  test('when nginx is asked over plain http, then it redirects to https', async () => {
    const answer = await requestEdge({ port: http80, secure: false }, '/login?next=%2F');
    expect(answer.status).toBe(301);
    expect(answer.headers.location).toBe('https://localhost/login?next=%2F');
  });

  test('when the README`s admin command runs, then the admin exists and signs in through nginx with a __Host- cookie', async () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const command = /^docker compose run --rm -e ADMIN_EMAIL=\S+ -e ADMIN_PASSWORD migrate$/m.exec(
      readme,
    )?.[0];
    expect(command).toBeDefined();
    const created = await project.shell(
      command!.replace(/ADMIN_EMAIL=\S+/, `ADMIN_EMAIL=${ADMIN_EMAIL}`),
      { ADMIN_PASSWORD },
      300_000,
    );
    expect({ code: created.code, output: created.stdout + created.stderr }).toEqual({
      code: 0,
      output: expect.stringContaining(`created admin ${ADMIN_EMAIL}`) as string,
    });

    const signedIn = await login();
    expect(signedIn.status).toBe(200);
    const setCookie = [signedIn.headers['set-cookie'] ?? []].flat().find((c) => c.startsWith('__Host-sid='));
    expect(setCookie).toMatch(/; Path=\//);
    expect(setCookie).toMatch(/; HttpOnly/i);
    expect(setCookie).toMatch(/; Secure/i);
    expect(setCookie).not.toMatch(/; Domain=/i);
    adminCookie = cookieFrom(signedIn)!;
    expect(json(await api('GET', '/api/auth/me', { cookie: adminCookie }))).toMatchObject({
      email: ADMIN_EMAIL,
      role: 'admin',
    });
  });

  // ASVS 5.0 6.3.3: admins need a second factor, on by default once secrets-init has made the key.
  test('when the admin has no second factor yet, then admin actions answer 403 mfa_required; once enrolled through nginx, they work, and the next sign-in asks for a code', async () => {
    const refused = await api('GET', '/api/users', { cookie: adminCookie });
    expect(refused.status).toBe(403);
    expect(json(refused)).toMatchObject({ error: { code: 'mfa_required' } });

    // As the admin would with an authenticator app: the otpauth:// URI's secret gives the codes.
    const post: PostAsUser = async (at, body) => {
      const answer = await api('POST', at, { cookie: adminCookie, body });
      return { status: answer.status, body: json(answer) };
    };
    await awayFromStepEdge();
    const enrolled = await enrolTotpThrough(post, ADMIN_PASSWORD);
    adminTotpSecret = enrolled.secret;
    expect(enrolled.recoveryCodes.length).toBeGreaterThan(0);
    expect((await api('GET', '/api/users', { cookie: adminCookie })).status).toBe(200);

    expect((await api('POST', '/api/auth/logout', { cookie: adminCookie })).status).toBe(204);
    expect((await api('GET', '/api/auth/me', { cookie: adminCookie })).status).toBe(401);
    adminCookie = await loginWithCode();
    expect(json(await api('GET', '/api/auth/me', { cookie: adminCookie }))).toMatchObject({
      email: ADMIN_EMAIL,
      role: 'admin',
    });
    expect((await api('GET', '/api/users', { cookie: adminCookie })).status).toBe(200);
  });

  // ASVS 5.0 11.3.2: the TOTP secret at rest is ciphertext under the key secrets-init generated.
  test('when Postgres is read, then the admin`s TOTP secret is ciphertext under the generated key`s id, and only that key opens it', async () => {
    const [userId, keyId, hex] = (
      await sql(
        `SELECT u.id || ' ' || t.key_id || ' ' || encode(t.secret_ciphertext, 'hex') FROM user_totp t JOIN users u ON u.id = t.user_id WHERE u.email = '${ADMIN_EMAIL}' AND t.confirmed_at IS NOT NULL`,
      )
    ).split(' ');
    const ring = (await readVolume(secretsVolume('app'), 'cat /v/mfa_encryption_keys')).trim();
    const [generatedId, generatedKey] = ring.split(':');
    expect(keyId).toBe(generatedId);
    const ciphertext = Buffer.from(hex!, 'hex');
    for (const clear of [adminTotpSecret, Buffer.from(adminTotpSecret, 'utf8').toString('hex')])
      expect(ciphertext.toString('latin1')).not.toContain(clear);
    const open = (key: Buffer) =>
      createSecretBox([{ id: keyId!, key }]).open(userId!, { keyId: keyId!, ciphertext });
    expect(open(Buffer.from(generatedKey!, 'base64'))).toBe(adminTotpSecret);
    expect(() => open(randomBytes(32))).toThrow();
  });

  test('when someone tries to sign up, then the production stack has no public registration', async () => {
    const attempt = await api('POST', '/api/auth/register', {
      body: {
        email: `self-${randomBytes(3).toString('hex')}@example.com`,
        password: ADMIN_PASSWORD,
        name: 'Self',
      },
    });
    expect(attempt.status).toBe(404);
    expect(json(attempt)).toMatchObject({ error: { code: 'not_found' } });
  });

  test('when an admin manages users through nginx, then create, read, update, list and delete work', async () => {
    const email = `user-${randomBytes(3).toString('hex')}@example.com`;
    const created = await api('POST', '/api/users', {
      cookie: adminCookie,
      body: {
        email,
        password: `copper ${randomBytes(6).toString('hex')} kettle`,
        name: 'Compose User',
        role: 'user',
      },
    });
    expect(created.status).toBe(201);
    const id = json(created).id as string;
    expect((await api('GET', `/api/users/${id}`, { cookie: adminCookie })).status).toBe(200);
    const renamed = await api('PATCH', `/api/users/${id}`, {
      cookie: adminCookie,
      body: { name: 'Renamed' },
    });
    expect(json(renamed)).toMatchObject({ id, name: 'Renamed' });
    const list = json(await api('GET', '/api/users?limit=100', { cookie: adminCookie })) as {
      data: { email: string }[];
    };
    expect(list.data.map((u) => u.email)).toEqual(expect.arrayContaining([email, ADMIN_EMAIL]));
    expect((await api('DELETE', `/api/users/${id}`, { cookie: adminCookie })).status).toBe(204);
    expect((await api('GET', `/api/users/${id}`, { cookie: adminCookie })).status).toBe(404);
  });
});

describe('secrets', () => {
  test('when the stack has started, then each secret exists, long and random, once', async () => {
    Object.assign(secrets, await readSecrets());
    expect(new Set(Object.values(secrets)).size).toBe(7);
  });

  test('when compose`s view, the containers, the image history and every log are searched, then no secret value is in them', async () => {
    // The MFA key alone too, without its id: a log line could carry the key and not the entry.
    const values = [...Object.values(secrets), secrets.mfaEncryptionKeys!.split(':')[1]!, ADMIN_PASSWORD];
    const places: Record<string, string> = {
      'docker compose config': await project.mustCompose(['config']),
      'docker inspect (every container)': JSON.stringify(await all()),
      'docker history': await project.docker([
        'history',
        '--no-trunc',
        '--format',
        '{{.CreatedBy}}',
        project.appImage,
      ]),
      'docker image inspect': await project.docker(['image', 'inspect', project.appImage]),
      'docker compose logs': await project.mustCompose(['logs', '--no-color', '--timestamps']),
    };
    expect(places['docker compose logs']).toContain('listening');
    for (const [place, text] of Object.entries(places)) {
      for (const value of values)
        expect({ place, leaks: text.includes(value) }).toEqual({ place, leaks: false });
    }
  });

  test('when mounts are inspected, then every volume is one the compose file names (no anonymous volume to leak data or be left behind)', async () => {
    const volumes = (await all()).flatMap((c) =>
      c.Mounts.filter((m) => m.Type === 'volume').map((m) => m.Name!),
    );
    expect(volumes.length).toBeGreaterThan(0);
    for (const name of volumes) expect(name).toMatch(new RegExp(`^${project.name}_[a-z-]+$`));
  });

  test('when mounts are inspected, then each secrets volume is mounted by its consumers only, read-only but for secrets-init, and each tls volume likewise but for data-certs-init', async () => {
    const mounts: Record<string, string[]> = {};
    for (const c of await all()) {
      for (const m of c.Mounts.filter(
        (m) => m.Type === 'volume' && /-(secrets|tls)$|_data-ca$/.test(m.Name!),
      )) {
        (mounts[m.Name!] ??= []).push(`${serviceOf(c)}${m.RW ? ' rw' : ''}`);
      }
    }
    for (const list of Object.values(mounts)) list.sort();
    expect(mounts).toEqual({
      [secretsVolume('app')]: ['app', 'migrate', 'secrets-init rw'],
      [secretsVolume('postgres')]: ['postgres', 'secrets-init rw'],
      [secretsVolume('redis')]: ['redis', 'secrets-init rw'],
      [tlsVolume('app')]: ['app', 'data-certs-init rw', 'migrate'],
      [tlsVolume('postgres')]: ['data-certs-init rw', 'postgres'],
      [tlsVolume('redis')]: ['data-certs-init rw', 'redis'],
      [`${project.name}_data-ca`]: ['data-certs-init rw'],
    });
  });

  test('when the volumes are listed, then each is 0700 with 0600 files, owned by its consumer`s user', async () => {
    const owners = { app: '1000:1000', postgres: '999:999', redis: '999:999' };
    for (const [volume, owner] of Object.entries(owners).flatMap(([v, o]) => [
      [secretsVolume(v), o],
      [tlsVolume(v), o],
    ])) {
      const listing = (await readVolume(volume!, 'stat -c "%a %u:%g %n" /v /v/*')).trim().split('\n');
      expect(listing.length).toBeGreaterThan(1);
      for (const line of listing) {
        const [mode, who, file] = line.split(' ');
        expect({ file, mode, who }).toEqual({ file, mode: file === '/v' ? '700' : '600', who: owner });
      }
    }
  });
});

describe('least privilege', () => {
  test('when the app container is inspected, then it runs as a non-root user, read-only, with no capabilities and no privilege gain', async () => {
    const app = await project.container('app');
    expect(app.State.Health?.Status).toBe('healthy');
    expect(app.HostConfig.ReadonlyRootfs).toBe(true);
    expect(app.HostConfig.CapDrop).toEqual(['ALL']);
    expect(app.HostConfig.CapAdd ?? []).toEqual([]);
    expect(app.HostConfig.SecurityOpt).toContain('no-new-privileges:true');
    expect(app.HostConfig.Privileged).toBe(false);
    // What the kernel says about the running processes, not only what was asked for.
    const status = await project.mustCompose([
      'exec',
      '-T',
      'app',
      'sh',
      '-c',
      `pid=$(${SERVER_PID}); awk '/^Uid:/ { print $2 }' /proc/$pid/status; grep -E "^(Cap(Eff|Prm|Bnd)|NoNewPrivs):" /proc/$pid/status`,
    ]);
    const [uid, ...fields] = status.trim().split('\n');
    expect(Number(uid)).toBe(1000);
    expect(Object.fromEntries(fields.map((f) => f.split(/:\s+/)))).toEqual({
      CapPrm: '0000000000000000',
      CapEff: '0000000000000000',
      CapBnd: '0000000000000000',
      NoNewPrivs: '1',
    });
    const write = await project.compose(['exec', '-T', 'app', 'sh', '-c', 'touch /app/dist/x']);
    expect(write.code).not.toBe(0);
    expect(write.stderr).toMatch(/Read-only file system/);
  });

  test('when the data stores and nginx run, then their servers run as their own users, not as root', async () => {
    // With too few capabilities the redis image silently keeps running as root: the uids prove the
    // cap_add lists of docker-compose.yml are enough.
    const uids = async (service: string, command: RegExp) => {
      // docker top needs the pid column.
      const top = await project.docker(['top', (await project.container(service)).Id, '-o', 'pid,uid,args']);
      return [
        ...new Set(
          top
            .split('\n')
            .slice(1)
            .filter((line) => command.test(line))
            .map((line) => line.trim().split(/\s+/)[1]),
        ),
      ];
    };
    expect(await uids('redis', /redis-server/)).toEqual(['999']);
    expect(await uids('postgres', /postgres/)).toEqual(['999']);
    expect(await uids('nginx', /nginx: worker process/)).toEqual(['101']);
    expect(await uids('nginx', /nginx: master process/)).toEqual(['0']);
  });

  test('when Redis is asked as each of its users, then the app reaches only its own keys, the health check only PINGs, a client without a user nothing, and the stack`s own traffic was refused nothing (ASVS 13.2.2)', async () => {
    // In the redis container, with the passwords from its secrets volume (never on a command line),
    // over TLS with that user's client certificate.
    const asRedisUser = (user: string, command: string) =>
      `REDISCLI_AUTH="$(cat /run/secrets/redis/${user}_password)" ${redisCli(user)} --user ${user} ${command}`;
    // First: everything so far (sign-ins, sessions, rate limits, user management) ran without one
    // refusal, on the compose file's own Redis version.
    expect((await inRedis(asRedisUser('admin', 'ACL LOG'))).trim()).toBe('');
    expect(await inRedis(`${asRedisUser('admin', 'DBSIZE')}`)).toMatch(/^[1-9]\d*\s*$/);
    expect(await inRedis(`${redisCli('admin')} PING`)).toMatch(/^NOAUTH/);
    expect(await inRedis(asRedisUser('healthcheck', 'PING'))).toMatch(/^PONG/);
    expect(await inRedis(asRedisUser('healthcheck', 'GET app:x'))).toMatch(/^NOPERM/);

    // The app's own credentials, from inside the app container, beyond what the app does.
    const probe = [
      "const { createClient } = require('redis');",
      "const read = (name) => require('node:fs').readFileSync(process.env[name], 'utf8').trim();",
      "const url = read('REDIS_URL_FILE');",
      "const tls = { tls: true, ca: read('REDIS_CA_FILE'), cert: read('REDIS_CLIENT_CERT_FILE'), key: read('REDIS_CLIENT_KEY_FILE') };",
      'const client = createClient({ url, socket: tls, disableClientInfo: true });',
      "const commands = [['GET', 'other:key'], ['FLUSHALL'], ['CONFIG', 'GET', 'dir'], ['KEYS', '*'], ['ACL', 'LIST']];",
      'client.connect().then(async () => {',
      '  const replies = [];',
      '  for (const command of commands) replies.push(await client.sendCommand(command).then(() => "ok", (e) => e.message.split(" ")[0]));',
      '  console.log(JSON.stringify(replies));',
      '  await client.close();',
      '});',
    ].join('\n');
    const replies = await project.mustCompose(['exec', '-T', 'app', 'node', '-e', probe]);
    expect(JSON.parse(replies)).toEqual(['NOPERM', 'NOPERM', 'NOPERM', 'NOPERM', 'NOPERM']);
  });

  test('when ports are inspected, then only nginx publishes any, and only on loopback here', async () => {
    const published = Object.fromEntries(
      (await all()).map((c) => [
        serviceOf(c),
        Object.values(c.NetworkSettings.Ports ?? {})
          .flatMap((bindings) => bindings ?? [])
          .map((b) => b.HostIp),
      ]),
    );
    expect(
      Object.entries(published)
        .filter(([, hosts]) => hosts.length > 0)
        .map(([s]) => s),
    ).toEqual(['nginx']);
    expect(new Set(published.nginx)).toEqual(new Set(['127.0.0.1']));
  });

  test('when networks are inspected, then edge and data are internal, and only nginx and certbot are on the public one', async () => {
    const networks = await project.inspect<{
      Name: string;
      Internal: boolean;
      Containers: Record<string, { Name: string }>;
    }>(
      ['public', 'edge', 'data'].map((n) => `${project.name}_${n}`),
      'network',
    );
    const members = async (n: { Containers: Record<string, unknown> }) =>
      (await project.inspect(Object.keys(n.Containers))).map(serviceOf).sort();
    expect(networks.map((n) => [n.Name.slice(project.name.length + 1), n.Internal])).toEqual([
      ['public', false],
      ['edge', true],
      ['data', true],
    ]);
    expect(await members(networks[0]!)).toEqual(['certbot', 'nginx']);
    expect(await members(networks[1]!)).toEqual(['app', 'nginx']);
    expect(await members(networks[2]!)).toEqual(['app', 'postgres', 'redis']);
  });
});

// ASVS 13.2.1, 12.3.1 (ADR 0035): the app authenticates to its data stores with client certificates
// over verified TLS; a password alone, or a connection without TLS, gets nothing.
describe('data stores over mutual TLS', () => {
  test('when the app connects with its configuration, then Postgres sees its role over TLS, logged in by its certificate (ASVS 13.2.1)', async () => {
    const probe = [
      "const { loadConfig } = require('./dist/config/config.js');",
      "const { postgresConnection } = require('./dist/src/lib/db.js');",
      'const config = loadConfig(process.env);',
      "const client = new (require('pg').Client)(postgresConnection(config.databaseUrl, config.databaseTls));",
      "const sql = 'SELECT current_user AS role, ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()';",
      'client.connect().then(() => client.query(sql)).then(async (r) => { console.log(JSON.stringify(r.rows)); await client.end(); });',
    ].join('\n');
    const rows = await project.mustCompose(['exec', '-T', 'app', 'node', '-e', probe]);
    expect(JSON.parse(rows)).toEqual([{ role: 'app', ssl: true, client_dn: '/CN=app' }]);
    // Redis listens on its TLS port only and asks every client for a certificate.
    const settings = await inRedis(
      `REDISCLI_AUTH="$(cat /run/secrets/redis/admin_password)" ${redisCli('admin')} --user admin CONFIG GET port tls-port tls-auth-clients`,
    );
    const pairs = settings.trim().split('\n');
    const values = Object.fromEntries(pairs.flatMap((v, i) => (i % 2 === 0 ? [[v, pairs[i + 1]]] : [])));
    expect(values).toEqual({ port: '0', 'tls-port': '6379', 'tls-auth-clients': 'yes' });
  });

  test('when a client offers only a password, then Postgres refuses the app role, over TLS and without, and the superuser from the network (ASVS 13.2.1)', async () => {
    // From inside the postgres container but through its network address, as another container
    // would come; the passwords are read from its volume, never put on a command line.
    const psql = (password: string, conninfo: string) =>
      inPostgres(
        `PGPASSWORD="$(cat /run/secrets/postgres/${password})" psql -X -At "host=postgres dbname=app ${conninfo}" -c 'SELECT 1'`,
      );
    const verified = 'sslmode=verify-full sslrootcert=/run/tls/postgres/ca.crt';
    const noCertificate = await psql('app_password', `user=app ${verified}`);
    expect({ code: noCertificate.code, stderr: noCertificate.stderr }).toEqual({
      code: 2,
      stderr: expect.stringContaining('connection requires a valid client certificate'),
    });
    const plain = await psql('app_password', 'user=app sslmode=disable');
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(
      /no pg_hba.conf entry for host "[^"]+", user "app", database "app", no encryption/,
    );
    const superuser = await psql('superuser_password', `user=postgres ${verified}`);
    expect(superuser.code).toBe(2);
    expect(superuser.stderr).toMatch(
      /no pg_hba.conf entry for host "[^"]+", user "postgres", database "app", SSL encryption/,
    );
  });

  test('when a client offers only a password, then Redis refuses it, over TLS without a certificate and in plain text (ASVS 13.2.1)', async () => {
    const auth = 'REDISCLI_AUTH="$(cat /run/secrets/redis/admin_password)"';
    // The same password and user with the certificate: PONG, so what is refused below is the missing certificate.
    expect(await inRedis(`${auth} ${redisCli('admin')} -h redis --user admin PING`)).toMatch(/^PONG/);
    const noCertificate = await inRedis(
      `${auth} redis-cli --tls --cacert /run/tls/redis/ca.crt -h redis --user admin PING 2>&1 || true`,
    );
    expect(noCertificate).not.toMatch(/PONG/);
    expect(noCertificate).toMatch(/error|reset|closed|SSL/i);
    const plain = await inRedis(`${auth} redis-cli -h redis --user admin PING 2>&1 || true`);
    expect(plain).not.toMatch(/PONG/);
    expect(plain).toMatch(/error|reset|closed/i);
  });
});

// ADR 0035: what data-certs-init renews or replaces on an `up` must not stop the next `up`, and the
// guide's commands must bring every service onto the new certificates.
describe('data store certificates renewed and replaced', () => {
  const caFingerprint = async () =>
    fingerprintOf(await readVolume(`${project.name}_data-ca`, 'cat /v/ca.crt'));
  const dataCertsInit = (variable: string) =>
    project.mustCompose(['run', '--rm', '--no-deps', '-e', variable, 'data-certs-init']);
  /** Postgres (the user's lookup) and Redis (the rate limits) answer through nginx: the first step of a sign-in. */
  const passwordStepWorks = async () => {
    await connect();
    expect((await login()).status).toBe(202);
  };

  test('when the CA nears its end, then an `up` renews its certificate for the same key and the stack keeps working without a restart', async () => {
    const before = await caFingerprint();
    // Every CA has less than 4000 days left: this run renews it, as the default 400 days will one day.
    expect(await dataCertsInit('CA_RENEW_DAYS=4000')).toMatch(/renewed the CA certificate/);
    expect(await caFingerprint()).not.toBe(before);
    // migrate (on every up) trusts the renewed CA certificate; postgres still holds the old one.
    await project.mustCompose(['up', '--detach', '--wait'], { timeoutMs: 300_000 });
    await passwordStepWorks();
  });

  test('when every certificate is within its renewal window, then an `up` issues them again and still works, and the guide`s restart loads them', async () => {
    expect(await dataCertsInit('RENEW_DAYS=400')).toMatch(/issued postgres\/server\.crt/);
    await project.mustCompose(['up', '--detach', '--wait'], { timeoutMs: 300_000 });
    await passwordStepWorks();
    const restart = await project.shell(
      guideLine(/^docker compose restart postgres redis app$/m),
      {},
      300_000,
    );
    expect(restart.code).toBe(0);
    await project.until(
      'the app is healthy again',
      async () => (await project.container('app')).State.Health?.Status === 'healthy',
    );
    await passwordStepWorks();
  });

  test('when the guide`s commands replace the CA, then every service runs on the new one and the admin signs in through nginx', async () => {
    const before = await caFingerprint();
    const remove = await project.shell(
      guideLine(/^docker compose run --rm .*data-certs-init -c 'rm \/ca\/ca\.crt'$/m),
    );
    expect(remove.code).toBe(0);
    const started = Date.now();
    const recreate = await project.shell(
      guideLine(/^docker compose up -d --force-recreate postgres redis app$/m),
      {},
      600_000,
    );
    log(
      `data stores' CA replaced: the guide's recreate took ${((Date.now() - started) / 1000).toFixed(0)} s`,
    );
    expect({ code: recreate.code, output: recreate.code === 0 ? '' : recreate.stderr }).toEqual({
      code: 0,
      output: '',
    });
    expect(await caFingerprint()).not.toBe(before);
    await connect();
    await project.until(
      'nginx serves the recreated app',
      async () => (await api('GET', '/api/auth/me', { cookie: adminCookie })).status === 200,
    );
    // A whole sign-in, second factor included: Postgres and Redis both under the new CA.
    expect((await api('GET', '/api/auth/me', { cookie: await loginWithCode() })).status).toBe(200);
    // What the app presents now chains to the new CA only: the old one is gone everywhere.
    const appCa = fingerprintOf(await readVolume(tlsVolume('app'), 'cat /v/ca.crt'));
    expect(appCa).toBe(await caFingerprint());
  });
});

describe('restarts', () => {
  test('when the app is restarted, then users and sessions are kept', async () => {
    await project.mustCompose(['restart', 'app']);
    await project.until(
      'the app is healthy again',
      async () => (await project.container('app')).State.Health?.Status === 'healthy',
    );
    // Compose restarts nginx with the app (depends_on ... restart: true), so its ephemeral ports change.
    await connect();
    const me = await api('GET', '/api/auth/me', { cookie: adminCookie });
    expect(me.status).toBe(200);
    expect(json(me)).toMatchObject({ email: ADMIN_EMAIL });
  });

  test('when the app process dies, then its restart policy brings it back and nginx serves again without a restart of its own', async () => {
    const nginxBefore = await project.container('nginx');
    const appBefore = await project.container('app');
    // A crash: the server process gets SIGKILL, which it cannot catch, sent from inside the container
    // by its own user. `docker kill` would not do: Docker treats it as a deliberate stop, which no
    // restart policy undoes.
    const killed = await project.compose(['exec', '-T', 'app', 'sh', '-c', `kill -KILL "$(${SERVER_PID})"`]);
    expect(killed.code).toBe(0);
    const appAfter = await project.until('the app restarted', async () => {
      const c = await project.container('app');
      return c.RestartCount > appBefore.RestartCount && c.State.Health?.Status === 'healthy' && c;
    });
    expect(appAfter.Id).toBe(appBefore.Id);
    await project.until(
      'nginx serves the app again',
      async () => (await api('GET', '/api/auth/me', { cookie: adminCookie })).status === 200,
    );
    const nginxAfter = await project.container('nginx');
    expect({ started: nginxAfter.State.StartedAt, restarts: nginxAfter.RestartCount }).toEqual({
      started: nginxBefore.State.StartedAt,
      restarts: nginxBefore.RestartCount,
    });
  });

  test('when the app is stopped with requests in flight, then every one of them completes and it exits 0', async () => {
    // Hashing and scoring a new password makes each of these take a while: the stop lands among them.
    // Eight, not more: hashes queue one behind another (HASH_CONCURRENCY), and a burst that cannot be
    // hashed within HASH_QUEUE_WAIT_MS is refused with 503 by design, which is not what this test is about.
    const creations = Array.from({ length: 8 }, (_, i) =>
      api('POST', '/api/users', {
        cookie: adminCookie,
        body: {
          email: `inflight-${i}-${randomBytes(3).toString('hex')}@example.com`,
          password: `amber ${randomBytes(6).toString('hex')} harbor`,
          name: 'In Flight',
          role: 'user',
        },
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    const stop = project.mustCompose(['stop', 'app']);
    const answers = await Promise.all(creations);
    await stop;
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 201));
    const app = await project.container('app');
    expect({ status: app.State.Status, code: app.State.ExitCode }).toEqual({ status: 'exited', code: 0 });

    // The stop really came while requests were being served: the app's own log says so.
    // Compose starts each line with an erase-line sequence (ESC [2K) even with --no-color.
    const lines = (await project.mustCompose(['logs', '--no-color', '--no-log-prefix', 'app']))
      .replaceAll(ERASE_LINE, '')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map(
        (l) =>
          JSON.parse(l) as {
            /** ISO 8601, so comparable as strings. */
            time: string;
            msg: string;
            res?: { statusCode: number };
            req?: { method: string };
          },
      );
    const shutdown = lines.findLast((l) => l.msg.startsWith('shutting down'));
    expect(shutdown).toBeDefined();
    const servedAfter = lines.filter(
      (l) => l.time >= shutdown!.time && l.req?.method === 'POST' && l.res?.statusCode === 201,
    );
    expect(servedAfter.length).toBeGreaterThan(0);
    log(`graceful stop: ${servedAfter.length} of ${answers.length} requests finished after SIGTERM`);

    await project.mustCompose(['up', '--detach', '--wait']);
    await connect();
  });

  test('when the app is scaled to two replicas, then nginx reloads itself for the new one and both serve requests', async () => {
    const reloadLines = async () =>
      (await project.mustCompose(['logs', '--no-color', 'nginx']))
        .split('\n')
        .filter((line) => line.includes('reloading nginx')).length;
    const reloadsBefore = await reloadLines();

    await project.mustCompose(['up', '--detach', '--wait', '--scale', 'app=2']);
    // Compose may restart nginx along with the app (depends_on ... restart: true): its ports may change.
    await connect();
    await project.until(
      'nginx reloaded for the new replica',
      async () => (await reloadLines()) > reloadsBefore,
    );
    const ids = await project.containers('app');
    expect(ids).toHaveLength(2);
    const answers = [];
    for (let i = 0; i < 12; i++) answers.push(await api('GET', '/api/auth/me', { cookie: adminCookie }));
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));

    // Each replica logged some of those requests, and every request was logged by one replica only
    // (found by the request id nginx gave it).
    const requestIds = answers.map((a) => a.headers['x-request-id'] as string);
    const served = await Promise.all(
      ids.map(async (id) => {
        const logs = await project.docker(['logs', id]);
        return requestIds.filter((r) => logs.includes(r)).length;
      }),
    );
    expect(served.map((count) => count > 0)).toEqual([true, true]);
    expect(served[0]! + served[1]!).toBe(requestIds.length);

    await project.mustCompose(['up', '--detach', '--wait', '--scale', 'app=1']);
    await connect();
    await project.until(
      'nginx serves the remaining replica',
      async () => (await api('GET', '/api/auth/me', { cookie: adminCookie })).status === 200,
    );
  });

  test('when the stack goes down and up again, then users, sessions, secrets and the certificate are kept', async () => {
    const served = fingerprintOf(certificate);
    await project.mustCompose(['down']);
    await up();
    expect(fingerprintOf(certificate)).toBe(served);
    // The MFA key ring included: the admin's TOTP secret still opens, so the code still signs in.
    expect(await readSecrets()).toEqual(secrets);
    expect((await api('GET', '/api/auth/me', { cookie: adminCookie })).status).toBe(200);
    expect((await api('GET', '/api/auth/me', { cookie: await loginWithCode() })).status).toBe(200);
  });

  test('when docs/deploy.md`s MFA key backup and rotation run, then the copy is the ring, the old key still opens the admin`s factor, and the guide`s query counts its row', async () => {
    const line = guideLine;
    // The guide's directory is replaced by one of the test's; the copy never passes through the output.
    const keysDir = mkdtempSync(path.join(tmpdir(), 'stack-keys-'));
    const backup = await project.shell(
      line(/^docker compose run --rm --no-deps -v "\$KEYS_DIR:\/backup" secrets-init .*mfa-key\.txt'$/m),
      { KEYS_DIR: keysDir },
    );
    expect(backup.code).toBe(0);
    expect(backup.stdout).not.toContain(secrets.mfaEncryptionKeys!.split(':')[1]!);
    expect(readFileSync(path.join(keysDir, 'mfa-key.txt'), 'utf8').trim()).toBe(secrets.mfaEncryptionKeys);
    rmSync(keysDir, { recursive: true, force: true });

    const rotate = await project.shell(
      line(/^docker compose run --rm secrets-init .+ rotate-mfa-key$/m),
      {},
      300_000,
    );
    expect(rotate.code).toBe(0);
    const ring = (await readVolume(secretsVolume('app'), 'cat /v/mfa_encryption_keys')).trim().split(',');
    expect(ring).toHaveLength(2);
    expect(ring[1]).toBe(secrets.mfaEncryptionKeys);
    const newId = ring[0]!.split(':')[0]!;
    expect(rotate.stdout).toContain(newId);
    await project.mustCompose(['up', '--detach', '--wait', '--force-recreate', 'app']);
    await connect();

    // The admin's row is still under the old key, so the guide's query says "not yet" (1, not 0)...
    const count = await project.shell(
      line(/^docker compose exec -T postgres psql .*\\\n.*<the first id>.*$/m).replace(
        '<the first id>',
        newId,
      ),
    );
    expect({ code: count.code, count: count.stdout.trim() }).toEqual({ code: 0, count: '1' });
    // ...and the old key, second in the ring now, still opens it: the admin signs in with a code.
    expect((await api('GET', '/api/auth/me', { cookie: await loginWithCode() })).status).toBe(200);
  });

  test('when the stack goes down with its volumes, then it starts clean: no users, new secrets, a new certificate', async () => {
    const served = fingerprintOf(certificate);
    await project.mustCompose(['down', '--volumes']);
    await up();
    expect(fingerprintOf(certificate)).not.toBe(served);
    const fresh = await readSecrets();
    for (const [name, value] of Object.entries(fresh))
      expect({ name, same: value === secrets[name] }).toEqual({ name, same: false });
    expect((await login()).status).toBe(401);
    expect((await api('GET', '/api/auth/me', { cookie: adminCookie })).status).toBe(401);
  });
});

// Last: log shipping (ASVS 16.4.3): the overlay recreates every container with Docker`s syslog driver,
// against a real syslog receiver (test/compose/log-shipping.ts).
describeLogShipping(project);

describe('clean up', () => {
  test('when the project is taken down, then no container, network, volume or app image of it is left', async () => {
    await project.destroy();
    cleanedUp = true;
    const label = `label=com.docker.compose.project=${project.name}`;
    const left = {
      containers: await project.docker(['ps', '--all', '--quiet', '--filter', label]),
      networks: await project.docker(['network', 'ls', '--quiet', '--filter', label]),
      volumes: await project.docker(['volume', 'ls', '--quiet', '--filter', label]),
      images: await project.docker(['image', 'ls', '--quiet', project.appImage]),
    };
    expect(left).toEqual({ containers: '', networks: '', volumes: '', images: '' });
  });
});
