import { Client } from 'pg';
import request from 'supertest';
import { createUsersRepository } from '../../src/users/users.repository';
import { USER_CACHE_APPLICATION_NAME, type UserCache } from '../../src/users/user-cache';
import { createIsolatedDatabase } from '../support/databases';
import { runEnv } from '../support/env';
import { login, me, signedIn, sleep } from '../support/factories';
import { createTcpProxy, databaseUrlThrough, type TcpProxy } from '../support/tcp-proxy';
import { createTestApp, type TestApp } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';
import { insertUsers } from '../support/users';

// The signed-in user served from memory (src/users/user-cache.ts, ADR 0044), against the real Postgres:
// what makes it drop a user (migration 0008's notifications, the app's own writes, a lost connection,
// its TTL), and what it never keeps (a read that a change overtook).

/** SQL of the test's own, on a connection of its own: a change made behind the app's back. */
async function behindTheAppsBack(t: TestApp, sql: string, params: unknown[] = []): Promise<void> {
  // The app's database without the app's proxy, when it has one: the test's own connection.
  const url = new URL(t.config.databaseUrl);
  url.port = new URL(runEnv().databaseUrl).port;
  const client = new Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query(sql, params);
  } finally {
    await client.end();
  }
}

const nameOnMe = async (t: TestApp, cookie: string) => {
  const res = await me(t, cookie);
  expect(res.status).toBe(200);
  return (res.body as { name: string }).name;
};

const cacheOf = (t: TestApp): UserCache => {
  if (!t.userCache) throw new Error('the test app has no user cache');
  return t.userCache;
};

/** A cached lookup of `t` whose reads of Postgres wait, once read, until `release()`. */
function heldLookup(t: TestApp) {
  const repository = createUsersRepository(t.db);
  let read!: () => void;
  const readDone = new Promise<void>((resolve) => (read = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let reads = 0;
  const find = cacheOf(t).through(async (id) => {
    reads += 1;
    const found = await repository.findById(id);
    read();
    await released;
    return found;
  });
  return { find, readDone, release, reads: () => reads };
}

/** Until `check` holds, within `ms`. */
async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

// Databases of their own: notifications are per database, so changes other files make in the shared
// one (and their `*`) cannot drop what these tests expect to be kept.
describe('the user cache and changes made elsewhere', () => {
  const t = useTestApp({}, { isolatedDatabase: 'user_cache' });
  const shortLived = useTestApp({ USER_CACHE_TTL_S: '5' }, { isolatedDatabase: 'user_cache_ttl' });
  beforeAll(() => until(() => cacheOf(t).serving && cacheOf(shortLived).serving));

  test('when SQL of its own changes a signed-in user (an operator, a script, another instance), then the first request after the notification reads the new row', async () => {
    const { user, cookie } = await signedIn(t);
    expect(await nameOnMe(t, cookie)).toBe(user.name);
    expect(cacheOf(t).has(user.id)).toBe(true);

    await behindTheAppsBack(t, "UPDATE users SET name = 'Renamed By Hand' WHERE id = $1", [user.id]);
    await cacheOf(t).sync();

    expect(await nameOnMe(t, cookie)).toBe('Renamed By Hand');
  });

  test('when a signed-in user is deleted by hand, then the next request after the notification is signed out', async () => {
    const { user, cookie } = await signedIn(t);
    expect(await nameOnMe(t, cookie)).toBe(user.name);
    expect(cacheOf(t).has(user.id)).toBe(true);

    await behindTheAppsBack(t, 'DELETE FROM users WHERE id = $1', [user.id]);
    await cacheOf(t).sync();

    expect((await me(t, cookie)).status).toBe(401);
  });

  test('when a second factor is confirmed by hand, then the user as the next request sees it has one', async () => {
    const { user, cookie } = await signedIn(t);
    const find = cacheOf(t).through(createUsersRepository(t.db).findById);
    expect(await nameOnMe(t, cookie)).toBe(user.name);
    expect((await find(user.id))?.mfaEnabled).toBe(false);
    expect(cacheOf(t).has(user.id)).toBe(true);

    await behindTheAppsBack(
      t,
      `INSERT INTO user_totp (user_id, secret_ciphertext, key_id, confirmed_at)
       VALUES ($1, decode(repeat('00', 60), 'hex'), 'test', now())`,
      [user.id],
    );
    await cacheOf(t).sync();

    expect((await find(user.id))?.mfaEnabled).toBe(true);
  });

  test('when a change announces nothing (its triggers disabled), then the cached user is served until USER_CACHE_TTL_S and read anew after it', async () => {
    // The proof that entries are served from memory at all, and of the bound that holds when nothing
    // else does. A 5 s TTL, in an app of its own.
    const { user, cookie } = await signedIn(shortLived);
    expect(await nameOnMe(shortLived, cookie)).toBe(user.name);
    expect(cacheOf(shortLived).has(user.id)).toBe(true);

    await behindTheAppsBack(
      shortLived,
      `BEGIN; SET LOCAL session_replication_role = replica;
       UPDATE users SET name = 'Changed Silently' WHERE id = '${user.id}'; COMMIT`,
    );
    await cacheOf(shortLived).sync();

    expect(await nameOnMe(shortLived, cookie)).toBe(user.name);
    await sleep(5100);
    expect(await nameOnMe(shortLived, cookie)).toBe('Changed Silently');
  });
  test('when a session is of a newer epoch than the cached row (a password changed where no notification came from), then the row is read anew before the session is judged', async () => {
    const signedInUser = await signedIn(t);
    const { user, cookie: before } = signedInUser;
    expect(await nameOnMe(t, before)).toBe(user.name);
    expect(cacheOf(t).has(user.id)).toBe(true);
    // The epoch moves without a notification, as it does for this instance until one arrives; a new
    // login reads its user from Postgres and gets a session of the new epoch.
    await behindTheAppsBack(
      t,
      `BEGIN; SET LOCAL session_replication_role = replica;
       UPDATE users SET session_epoch = session_epoch + 1 WHERE id = '${user.id}'; COMMIT`,
    );
    const after = await login(t, signedInUser);
    expect(cacheOf(t).has(user.id)).toBe(true);

    expect((await me(t, after)).status).toBe(200);
    // Read anew, the row now ends the session of the old epoch.
    expect((await me(t, before)).status).toBe(401);
  });

  test('when a read of a user is overtaken by a change of that user, then what it read is returned but not kept', async () => {
    const { user } = await signedIn(t);
    const { find, readDone, release, reads } = heldLookup(t);

    const overtaken = find(user.id);
    await readDone;
    await behindTheAppsBack(t, "UPDATE users SET name = 'Changed Meanwhile' WHERE id = $1", [user.id]);
    await cacheOf(t).sync();
    release();

    expect((await overtaken)?.name).toBe(user.name);
    expect((await find(user.id))?.name).toBe('Changed Meanwhile');
    expect(reads()).toBe(2);
    // Kept now, and frozen: every request of this user shares the object.
    const kept = await find(user.id);
    expect(reads()).toBe(2);
    expect(Object.isFrozen(kept)).toBe(true);
  });

  test('when another user changes while a read is under way, then what it read is kept', async () => {
    const { user } = await signedIn(t);
    const other = await signedIn(t);
    const { find, readDone, release, reads } = heldLookup(t);

    const underWay = find(user.id);
    await readDone;
    await behindTheAppsBack(t, "UPDATE users SET name = 'Someone Else' WHERE id = $1", [other.user.id]);
    await cacheOf(t).sync();
    release();
    await underWay;

    expect(cacheOf(t).has(user.id)).toBe(true);
    await find(user.id);
    expect(reads()).toBe(1);
  });
});

describe('the user cache and changes of many users at once', () => {
  const t = useTestApp({}, { isolatedDatabase: 'user_cache_all' });
  beforeAll(() => until(() => cacheOf(t).serving));

  // The cached user is left out of both statements: only the `*` can drop it.
  test.each([
    [
      'an update of more users than one notification names',
      'UPDATE users SET updated_at = now() WHERE id <> $1',
    ],
    ['TRUNCATE of user_totp', 'TRUNCATE user_totp CASCADE'],
  ])('when %s commits, then the whole cache is dropped', async (_name, sql) => {
    await insertUsers(t, 201);
    const { user, cookie } = await signedIn(t);
    await nameOnMe(t, cookie);
    expect(cacheOf(t).has(user.id)).toBe(true);

    await behindTheAppsBack(t, sql, sql.includes('$1') ? [user.id] : []);
    await cacheOf(t).sync();

    expect(cacheOf(t).has(user.id)).toBe(false);
    expect(cacheOf(t).size).toBe(0);
  });
});

describe('the user cache and its notification connection', () => {
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await createTcpProxy({ host: '127.0.0.1', port: 5432 });
  });
  afterAll(() => {
    proxy?.refuseConnectionsWith(undefined);
    return proxy?.restore();
  });
  const t = useTestApp(() => ({ DATABASE_URL: databaseUrlThrough(proxy) }));
  afterAll(() => proxy?.close());
  beforeEach(() => until(() => cacheOf(t).serving));

  const listenerConnection = () => {
    const found = proxy.connectionsWith(USER_CACHE_APPLICATION_NAME);
    expect(found).toHaveLength(1);
    return found[0]!;
  };

  test('when the connection is lost, then nothing cached is served, a change made meanwhile is read, and caching resumes once it listens again', async () => {
    const { user, cookie } = await signedIn(t);
    expect(await nameOnMe(t, cookie)).toBe(user.name);

    // No new listening connection gets through until the test says so: nothing is served meanwhile.
    proxy.refuseConnectionsWith(USER_CACHE_APPLICATION_NAME);
    listenerConnection().destroy();
    await until(() => !cacheOf(t).serving);
    // Announced to nobody in this app: its connection is gone.
    await behindTheAppsBack(t, "UPDATE users SET name = 'Changed While Deaf' WHERE id = $1", [user.id]);

    expect(cacheOf(t).size).toBe(0);
    expect(await nameOnMe(t, cookie)).toBe('Changed While Deaf');
    expect(cacheOf(t).size).toBe(0);
    expect(t.logs.some((line) => /user cache off/.test(String(line.msg)))).toBe(true);

    proxy.refuseConnectionsWith(undefined);
    await until(() => cacheOf(t).serving);
    await nameOnMe(t, cookie);
    expect(cacheOf(t).has(user.id)).toBe(true);
  });

  test('when the app changes a user while the notification is held up, then its own write returns only once the cache cannot serve the old row, and the next request reads the new one', async () => {
    const { user, cookie } = await signedIn(t);
    expect(await nameOnMe(t, cookie)).toBe(user.name);
    expect(cacheOf(t).has(user.id)).toBe(true);
    const held = listenerConnection();
    held.holdReplies();
    try {
      const res = await request(t.app)
        .patch(`/api/users/${user.id}`)
        .set('Cookie', cookie)
        .send({ name: 'Changed By The App' });
      expect(res.status).toBe(200);

      expect(await nameOnMe(t, cookie)).toBe('Changed By The App');
    } finally {
      held.releaseReplies();
    }
  });
});

describe('without the user cache', () => {
  const t = useTestApp({ USER_CACHE_TTL_S: '0' });

  test('when USER_CACHE_TTL_S is 0, then the app has no cache and reads every signed-in user from Postgres', async () => {
    expect(t.userCache).toBeUndefined();
    const { user, cookie } = await signedIn(t);
    expect(await nameOnMe(t, cookie)).toBe(user.name);

    await behindTheAppsBack(t, "UPDATE users SET name = 'Read Every Time' WHERE id = $1", [user.id]);

    expect(await nameOnMe(t, cookie)).toBe('Read Every Time');
  });
});

describe('the user cache and the triggers it relies on', () => {
  test.each([
    ['disabled', 'DISABLE TRIGGER', 'user_cache_triggers'],
    [
      'left to replicas only (it fires in no ordinary session)',
      'ENABLE REPLICA TRIGGER',
      'user_cache_replica',
    ],
  ])(
    'when a trigger of migration 0008 is %s, then nothing is served and a warning says why; once it is enabled again, caching starts',
    async (_name, change, database) => {
      const url = await createIsolatedDatabase(database);
      const owner = new Client({ connectionString: url });
      await owner.connect();
      let app: TestApp | undefined;
      try {
        await owner.query(`ALTER TABLE users ${change} users_changed_on_update`);
        app = await createTestApp({ DATABASE_URL: url });
        const started = app;
        await until(() =>
          started.logs.some((line) => /triggers on users and user_totp/.test(JSON.stringify(line))),
        );
        expect(cacheOf(started).serving).toBe(false);
        const { user, cookie } = await signedIn(started);
        expect(await nameOnMe(started, cookie)).toBe(user.name);
        expect(cacheOf(started).size).toBe(0);

        await owner.query('ALTER TABLE users ENABLE TRIGGER users_changed_on_update');

        await until(() => cacheOf(started).serving);
        expect(await nameOnMe(started, cookie)).toBe(user.name);
        expect(cacheOf(started).has(user.id)).toBe(true);
      } finally {
        await app?.close();
        await owner.end();
      }
    },
    60_000,
  );
});
