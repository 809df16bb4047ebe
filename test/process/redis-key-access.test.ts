import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { createClient } from 'redis';
import { redisAcl } from '../../scripts/redis-acl';
import { createPrivateRedis, type PrivateRedis } from '../support/private-redis';
import { killServers, serverEnv, spawnServer, startServer } from '../support/server-process';
import { sleep } from '../support/factories';

/**
 * The real entry point against a Redis whose `app` user may use the keys under one prefix only, as the
 * compose stack's users.acl allows (scripts/redis-acl.ts): started with another REDIS_KEY_PREFIX, the
 * app would get NOPERM on every session and limiter command while PING (and readiness) still answer.
 * It must refuse to run instead, whenever it (re)connects.
 */
const ALLOWED_PREFIX = 'allowed:';
const APP_PASSWORD = 'app-password-for-this-test';

describe('starting the process against a Redis user for another key prefix', () => {
  let dir: string;
  let redis: PrivateRedis;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'redis-key-access-'));
    const aclFile = path.join(dir, 'users.acl');
    writeFileSync(
      aclFile,
      redisAcl({ app: APP_PASSWORD, healthcheck: 'h-password', admin: 'a-password' }, ALLOWED_PREFIX) +
        // A user of another deployment, with the keys but not every command the app sends.
        `user no-pttl reset on >${APP_PASSWORD} ~${ALLOWED_PREFIX}* +@all -pttl\n`,
    );
    // Not started yet: the first test starts it after the app.
    redis = await createPrivateRedis({ args: ['--aclfile', aclFile] });
  });
  afterEach(() => killServers());
  afterAll(async () => {
    await redis?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  const redisEnv = (keyPrefix: string, user = 'app') => ({
    REDIS_URL: `redis://${user}:${APP_PASSWORD}@127.0.0.1:${redis.port}`,
    REDIS_KEY_PREFIX: keyPrefix,
  });

  test('when Redis comes up after the app and refuses its prefix, then the app exits 1 saying which prefix', async () => {
    // Redis is down at start: the app starts anyway (readiness says so) and learns of the ACL later.
    const server = await startServer(serverEnv(redisEnv('other:')));
    await redis.start();

    expect(await server.waitForExit(30_000)).toEqual({ code: 1, signal: null });
    const fatal = server.logs.find((line) => line.level === 'fatal');
    expect(fatal).toMatchObject({
      msg: expect.stringContaining(
        'redis refuses the keys under REDIS_KEY_PREFIX: its user needs ~<prefix>*',
      ) as string,
      keyPrefix: 'other:',
      reply: expect.stringMatching(/^NOPERM/) as string,
    });
  });

  test('when the prefix is the one the user may use, then the app checks it and keeps serving', async () => {
    await redis.start().catch(() => undefined); // already up after the first test, unless it ran alone
    const admin = createClient({ url: `redis://admin:a-password@127.0.0.1:${redis.port}` });
    await admin.connect();
    // The first test's refused PTTL is counted too (as rejected_calls): start from zero.
    await admin.configResetStat();
    const server = spawnServer(serverEnv(redisEnv(ALLOWED_PREFIX)));
    const listening = await server.waitForLog('listening');
    const app = `http://127.0.0.1:${listening.port as number}`;

    // The check has run once the app's connection was allowed a PTTL.
    try {
      const until = Date.now() + 10_000;
      while (!/cmdstat_pttl:calls=[1-9]/.test(await admin.info('commandstats'))) {
        if (Date.now() > until) throw new Error('the app never checked its keys');
        await sleep(50);
      }
    } finally {
      await admin.close();
    }
    expect((await request(app).get('/readyz')).status).toBe(200);
    expect(server.exit).toBeUndefined();
    expect(server.logs.filter((line) => ['error', 'fatal'].includes(line.level))).toEqual([]);
  });

  test('when the user may use the keys but not the commands, then the app exits 1 naming the commands', async () => {
    await redis.start().catch(() => undefined); // already up after the first test, unless it ran alone
    const server = spawnServer(serverEnv(redisEnv(ALLOWED_PREFIX, 'no-pttl')));

    expect(await server.waitForExit(30_000)).toEqual({ code: 1, signal: null });
    expect(server.logs.find((line) => line.level === 'fatal')).toMatchObject({
      msg: expect.stringContaining('redis refuses the commands of this app') as string,
      reply: expect.stringMatching(/^NOPERM/) as string,
    });
  });
});
