import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { DEFAULT_REDIS_KEY_PREFIX } from '../../config/config';
import { expectError } from '../support/assertions';
import { createUser, login } from '../support/factories';
import { codeAt, codeStep, enrolTotp, MFA_ENV, passwordStep } from '../support/mfa';
import {
  askForReset,
  confirmReset,
  mailingThrough,
  nthMailTo,
  RESET_SUBJECT,
  tokenIn,
  useSmtpServer,
} from '../support/password-reset';
import { createPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { expectRateLimited, fromIp, strongPassword, uniqueIp } from '../support/rate-limit';
import { runScript } from '../support/run-script';
import { describeWithTool } from '../support/tools';
import { useTestApp } from '../support/use-test-app';

/**
 * ASVS 13.2.1, 13.2.2: the compose stack's Redis users, as scripts/deploy-secrets.ts writes them
 * (users.acl, from scripts/redis-acl.ts) and redis-server loads them (`--aclfile`, as in
 * docker-compose.yml). The whole app runs as the `app` user against a Redis of this file's own, and
 * every refusal the ACL promises is asked for, over raw RESP so that no client library is in the way.
 */

/**
 * One command over a fresh connection, after AUTH when `user` is given: the first line of its reply, or
 * of a bulk string its content (`+OK`, `-NOPERM …`, `*0`, the text of ACL DRYRUN's answer).
 */
async function replyTo(
  port: number,
  user: { name: string; password: string } | undefined,
  command: readonly string[],
): Promise<string> {
  const encode = (args: readonly string[]) =>
    `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  const socket = net.connect(port, '127.0.0.1');
  try {
    let received = '';
    const lines: string[] = [];
    const nextLine = () =>
      new Promise<string>((resolve, reject) => {
        const take = () => {
          const end = received.indexOf('\r\n');
          if (end < 0) return false;
          resolve(received.slice(0, end));
          received = received.slice(end + 2);
          return true;
        };
        if (take()) return;
        const onData = (chunk: Buffer) => {
          received += chunk.toString();
          if (take()) socket.off('data', onData).off('error', reject);
        };
        socket.on('data', onData).once('error', reject);
      });
    if (user) {
      socket.write(encode(['AUTH', user.name, user.password]));
      lines.push(await nextLine());
      if (lines[0] !== '+OK') return lines[0]!;
    }
    socket.write(encode(command));
    const line = await nextLine();
    return /^\$\d+$/.test(line) ? await nextLine() : line;
  } finally {
    socket.destroy();
  }
}

/** How Redis refuses a command or key to a user, directly or inside a script. */
const REFUSED = /^-(NOPERM |ERR The user executing the script can't )/;

describeWithTool(
  'redis-server',
  'apt-get install redis-server',
  'the compose stack`s Redis users (ASVS 13.2.1, 13.2.2)',
  () => {
    let dir: string;
    let redis: PrivateRedis;
    let passwords: { app: string; healthcheck: string; admin: string };
    const secret = (volume: string, name: string) =>
      readFileSync(path.join(dir, volume, name), 'utf8').trim();
    const as = (name: keyof typeof passwords) => ({ name, password: passwords[name] });
    /** The ACL decision for a command without running it (DEBUG is refused by another check first). */
    const dryRun = (user: string, ...command: string[]) =>
      replyTo(redis.port, as('admin'), ['ACL', 'DRYRUN', user, ...command]);

    beforeAll(async () => {
      dir = mkdtempSync(path.join(tmpdir(), 'redis-acl-'));
      expect(await runScript('scripts/deploy-secrets.ts', { SECRETS_DIR: dir })).toMatchObject({ code: 0 });
      passwords = {
        app: new URL(secret('app', 'redis_url')).password,
        healthcheck: secret('redis', 'healthcheck_password'),
        admin: secret('redis', 'admin_password'),
      };
      redis = await createPrivateRedis({ args: ['--aclfile', path.join(dir, 'redis/users.acl')] });
      await redis.start();
    });
    afterAll(async () => {
      await redis?.kill();
      rmSync(dir, { recursive: true, force: true });
    });

    const smtp = useSmtpServer();
    const t = useTestApp(() => {
      // The app's REDIS_URL as compose gives it, with the compose host name swapped for this server.
      // Plain here: this file is about the ACL; the certificate in front of it is tested in
      // test/lib/data-store-mtls.test.ts and on the running stack (test/compose/stack.test.ts).
      const url = new URL(secret('app', 'redis_url'));
      expect(url.protocol).toBe('rediss:');
      url.protocol = 'redis:';
      url.host = `127.0.0.1:${redis.port}`;
      return mailingThrough(smtp, {
        REDIS_URL: url.toString(),
        // The shipped default, which users.acl was rendered for.
        REDIS_KEY_PREFIX: DEFAULT_REDIS_KEY_PREFIX,
        TRUST_PROXY: '1',
        RATE_LIMIT_PER_MINUTE: '30',
        LOGIN_MAX_CONSECUTIVE_FAILS: '2',
        SESSION_MAX_PER_USER: '2',
        ...MFA_ENV,
      })();
    });

    test('when the app runs as the app user, then sign-in, reads, a password change, a reset, lockout, rate limits, sign-out, the session limit and list and a second factor work, and Redis refused it nothing', async () => {
      expect((await request(t.app).get('/readyz')).status).toBe(200);
      const { email, password } = await createUser(t);
      const client = fromIp(uniqueIp());

      // Sign-in, a signed-in read, a refused and an accepted password change (session rotation and
      // revocation: EVAL, MULTI, ZRANGE), sign-out.
      const cookie = await login(t, { email, password }, client);
      expect((await request(t.app).get('/api/auth/me').set(client).set('Cookie', cookie)).status).toBe(200);
      const wrong = await request(t.app)
        .put('/api/auth/password')
        .set(client)
        .set('Cookie', cookie)
        .send({ currentPassword: 'not the current one', newPassword: strongPassword() });
      expectError(wrong, 403, 'invalid_current_password');
      const changed = strongPassword();
      const change = await request(t.app)
        .put('/api/auth/password')
        .set(client)
        .set('Cookie', cookie)
        .send({ currentPassword: password, newPassword: changed });
      expect(change.status).toBe(204);
      const rotated = await login(t, { email, password: changed }, client);
      expect((await request(t.app).post('/api/auth/logout').set(client).set('Cookie', rotated)).status).toBe(
        204,
      );
      expect((await request(t.app).get('/api/auth/me').set(client).set('Cookie', rotated)).status).toBe(401);

      // A password reset (the mail address limit, then every session revoked).
      expect((await askForReset(t, email, client)).status).toBe(202);
      const reset = strongPassword();
      expect(
        (await confirmReset(t, tokenIn(await nthMailTo(smtp.server, email, RESET_SUBJECT)), reset, client))
          .status,
      ).toBe(204);

      // Lockout: two wrong passwords in a row lock (email, client) even for the right one.
      const guesser = fromIp(uniqueIp());
      for (let i = 0; i < 2; i++) {
        const res = await request(t.app)
          .post('/api/auth/login')
          .set(guesser)
          .send({ email, password: 'wrong guess' });
        expectError(res, 401, 'invalid_credentials');
      }
      const locked = await request(t.app)
        .post('/api/auth/login')
        .set(guesser)
        .send({ email, password: reset });
      expectRateLimited(locked, { min: 1, max: 3600 });

      // The per-client request limit.
      const flooder = fromIp(uniqueIp());
      const answers = [];
      for (let i = 0; i < 31; i++)
        answers.push((await request(t.app).get('/api/auth/me').set(flooder)).status);
      expect(answers.slice(0, 30).every((status) => status === 401)).toBe(true);
      expect(answers[30]).toBe(429);

      // Another user: three sign-ins over a limit of two (the limit script ends the oldest), the list
      // of sessions (ZRANGE, MGET), and a second factor: enrolment, then a login with a wrong code and
      // the right one (the code step's own counters).
      const other = await createUser(t);
      const oldest = await login(t, other, client);
      await login(t, other, client);
      const newest = await login(t, other, client);
      expect((await request(t.app).get('/api/auth/me').set(client).set('Cookie', oldest)).status).toBe(401);
      const listed = await request(t.app).get('/api/auth/sessions').set(client).set('Cookie', newest);
      expect(listed.status).toBe(200);
      expect(listed.body.data).toHaveLength(2);
      const { secret } = await enrolTotp(t, newest, other.password);
      const pending = await passwordStep(t, other);
      const right = await codeAt(secret, 1);
      const wrongCode = String((Number(right) + 1) % 1_000_000).padStart(6, '0');
      expectError(await codeStep(t, pending, { code: wrongCode }), 401, 'invalid_mfa_code');
      expect((await codeStep(t, pending, { code: right })).status).toBe(200);

      // The flow wrote to Redis, and nothing was refused on the way: a refusal the app swallowed (an
      // insurance limiter taking over, a failed save) would be in the ACL log.
      expect(await replyTo(redis.port, as('admin'), ['DBSIZE'])).toMatch(/^:[1-9]/);
      expect(await replyTo(redis.port, as('admin'), ['ACL', 'LOG'])).toBe('*0');
    });

    test.each([
      ['read a key outside its prefix', ['GET', 'other:session']],
      ['write a key outside its prefix', ['SET', 'other:session', 'x']],
      ['delete a key outside its prefix', ['DEL', 'other:session']],
      ['reach a key outside its prefix from a script', ['EVAL', "return redis.call('GET', 'other:x')", '0']],
      ['run a refused command from a script', ['EVAL', "return redis.call('FLUSHALL')", '0']],
      ['flush the server', ['FLUSHALL']],
      ['read the configuration', ['CONFIG', 'GET', '*']],
      ['rewrite where Redis saves', ['CONFIG', 'SET', 'dir', '/tmp']],
      ['list keys', ['KEYS', '*']],
      ['scan keys', ['SCAN', '0']],
      ['read the users', ['ACL', 'LIST']],
      ['shut Redis down', ['SHUTDOWN', 'NOSAVE']],
      ['watch every command', ['MONITOR']],
      ['subscribe to a channel', ['SUBSCRIBE', 'app:events']],
      ['switch database', ['SELECT', '1']],
      ['list the clients', ['CLIENT', 'LIST']],
    ])('when the app user tries to %s, then Redis refuses it (NOPERM)', async (_what, command) => {
      expect(await replyTo(redis.port, as('app'), command)).toMatch(REFUSED);
    });

    test.each([
      ['DEBUG', 'SLEEP', '0'],
      ['MODULE', 'LOAD', '/tmp/module.so'],
    ])('when the app user asks for %s, then the ACL refuses it', async (...command) => {
      // Redis refuses these two (enable-debug-command, enable-module-command) before it consults the
      // ACL: ask the ACL itself, which would decide once an operator enabled them.
      expect(await dryRun('app', ...command)).toMatch(/^This user has no permissions to run the '\w+/);
      expect(await dryRun('app', 'GET', `${DEFAULT_REDIS_KEY_PREFIX}x`)).toBe('+OK');
    });

    test('when the healthcheck user connects, then it may PING and nothing else', async () => {
      expect(await replyTo(redis.port, as('healthcheck'), ['PING'])).toBe('+PONG');
      for (const command of [
        ['GET', `${DEFAULT_REDIS_KEY_PREFIX}sess:x`],
        ['SET', `${DEFAULT_REDIS_KEY_PREFIX}x`, '1'],
        ['INFO'],
        ['CONFIG', 'GET', '*'],
        ['FLUSHALL'],
        ['EVAL', 'return 1', '0'],
      ])
        expect({ command, reply: await replyTo(redis.port, as('healthcheck'), command) }).toEqual({
          command,
          reply: expect.stringMatching(REFUSED),
        });
    });

    test('when a client sends no user, a wrong password or the default user, then it gets nothing', async () => {
      expect(await replyTo(redis.port, undefined, ['PING'])).toMatch(/^-NOAUTH/);
      expect(await replyTo(redis.port, undefined, ['AUTH', passwords.admin])).toMatch(/^-WRONGPASS/);
      expect(await replyTo(redis.port, { name: 'default', password: '' }, ['PING'])).toMatch(/^-WRONGPASS/);
      expect(await replyTo(redis.port, { name: 'app', password: passwords.healthcheck }, ['PING'])).toMatch(
        /^-WRONGPASS/,
      );
    });

    test('when users.acl is read, then it holds hashes, never a password', () => {
      const acl = secret('redis', 'users.acl');
      for (const password of Object.values(passwords)) expect(acl).not.toContain(password);
      expect(acl).toMatch(/^user app reset on #[0-9a-f]{64} /m);
    });
  },
);
