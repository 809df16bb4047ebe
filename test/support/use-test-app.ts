import request from 'supertest';
import type { PasswordHasher } from '../../src/lib/passwords';
import { createIsolatedDatabase } from './databases';
import { recordResponses, type RecordedResponse } from './response-recorder';
import { createTestApp, type TestApp } from './test-app';

type Env = Record<string, string>;

/**
 * The environment of the app, or a function giving it: a function runs inside the hook that builds the
 * app, so it can read what earlier hooks of the file set up (a proxy's port, a private Redis).
 */
export type TestEnv = Env | (() => Env | Promise<Env>);

export interface UseTestAppOptions {
  /** A migrated database of its own, `<run database>_<name>`, for tests that count rows or admins. */
  isolatedDatabase?: string;
  /** A new app (and with isolatedDatabase a new database) for each test instead of one per describe. */
  freshPerTest?: boolean;
  /** The app's password hasher instead of the shared one: a wrapper of the real one that holds or counts. */
  passwords?: PasswordHasher;
}

/**
 * The app of the current describe block. It is a TestApp itself, so the helpers take it as one; its
 * `app` is the recording front of the real app, so `request(t.app)`, `listen(t.app)` and
 * `createBrowser(t.app)` are all checked for leaks. `close()` is there for that type only: the hooks
 * close the app.
 */
export interface TestSuite extends TestApp {
  /** supertest against the app: the same as `request(t.app)`. */
  api(): ReturnType<typeof request>;
}

interface RecordedApp {
  t: TestApp;
  takeLeaks(): RecordedResponse[];
}

/** The real app behind a recorder: every response it sends, whoever asked, is kept for the leak check. */
async function startRecordedApp(env: Env, passwords?: PasswordHasher): Promise<RecordedApp> {
  const t = await createTestApp(env, passwords ? { passwords } : {});
  const recorder = recordResponses(t.app);
  return { t: { ...t, app: recorder.app }, takeLeaks: recorder.takeLeaks };
}

/** No response of any kind, error or success, may carry a password hash. */
function expectNoLeaks(leaks: RecordedResponse[]): void {
  expect(leaks.map((r) => `${r.method} ${r.url} -> ${r.status}: ${r.text}`)).toEqual([]);
}

let isolatedCount = 0;

/**
 * Builds the real app for the enclosing describe block (beforeAll/afterAll, or beforeEach/afterEach with
 * `freshPerTest`) and checks after every test that no response the app sent carried a password hash.
 * Call it in the describe body; several calls give several apps.
 */
export function useTestApp(env: TestEnv = {}, options: UseTestAppOptions = {}): TestSuite {
  let current: RecordedApp | undefined;

  const start = async () => {
    const resolved = { ...(typeof env === 'function' ? await env() : env) };
    if (options.isolatedDatabase) {
      const name = options.freshPerTest
        ? `${options.isolatedDatabase}_${++isolatedCount}`
        : options.isolatedDatabase;
      resolved.DATABASE_URL = await createIsolatedDatabase(name);
    }
    current = await startRecordedApp(resolved, options.passwords);
  };
  const stop = async () => {
    const running = current;
    current = undefined;
    await running?.t.close();
  };

  if (options.freshPerTest) beforeEach(start);
  else beforeAll(start);
  afterEach(async () => {
    const leaks = current?.takeLeaks() ?? [];
    if (options.freshPerTest) await stop();
    expectNoLeaks(leaks);
  });
  if (!options.freshPerTest) {
    afterAll(async () => {
      // What no afterEach saw: jest runs no *Each hooks around concurrent tests.
      const leaks = current?.takeLeaks() ?? [];
      await stop();
      expectNoLeaks(leaks);
    });
  }

  const running = (): TestApp => {
    if (!current) throw new Error('the app exists inside tests and the hooks after useTestApp() only');
    return current.t;
  };
  return {
    get app() {
      return running().app;
    },
    get config() {
      return running().config;
    },
    get db() {
      return running().db;
    },
    get redis() {
      return running().redis;
    },
    get lifecycle() {
      return running().lifecycle;
    },
    get metrics() {
      return running().metrics;
    },
    get userCache() {
      return running().userCache;
    },
    get logs() {
      return running().logs;
    },
    rawLogs: () => running().rawLogs(),
    close: () => running().close(),
    api: () => request(running().app),
  };
}

/**
 * One app for one test, with the same recording and leak check, closed after `body`: for concurrent
 * tests (hooks do not order before them) and for a setting only that test needs.
 */
export async function withTestApp<T>(env: Env, body: (t: TestApp) => Promise<T>): Promise<T> {
  const { t, takeLeaks } = await startRecordedApp(env);
  try {
    const result = await body(t);
    expectNoLeaks(takeLeaks());
    return result;
  } finally {
    await t.close();
  }
}

/**
 * A real fault, not a simulated one: a production-mode app and a development-mode app on one database
 * whose schema was never migrated, so every users query fails inside Postgres ("relation does not
 * exist"). Both modes, to compare what a 500 shows.
 */
export function useUnmigratedApps(suffix: string): { production: TestSuite; development: TestSuite } {
  let database: Promise<string> | undefined;
  const url = () => (database ??= createIsolatedDatabase(suffix, { migrate: false }));
  const production = useTestApp(async () => ({
    NODE_ENV: 'production',
    TRUST_PROXY: '1',
    DATABASE_URL: await url(),
    PUBLIC_URL: 'https://app.example.test',
    SESSION_SECRET: 'production-secret-0123456789-abcdefghijklmnop',
  }));
  const development = useTestApp(async () => ({ NODE_ENV: 'development', DATABASE_URL: await url() }));
  return { production, development };
}
