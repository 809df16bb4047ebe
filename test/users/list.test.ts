import { expectError } from '../support/assertions';
import { signedIn } from '../support/factories';
import { useTestApp, type TestSuite } from '../support/use-test-app';
import { insertUsers, USER_JSON_KEYS, type UserJson } from '../support/users';

interface Page {
  data: UserJson[];
  nextCursor: string | null;
}

/**
 * Follows nextCursor from the first page, newest first, until the last page or until `done` says the
 * walk has seen enough (other test files add users to the shared database while this one runs).
 */
async function walkPages(
  t: TestSuite,
  cookie: string,
  limit: number,
  done: (seenIds: string[]) => boolean = () => false,
): Promise<{ pages: Page[]; ids: string[] }> {
  const pages: Page[] = [];
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const query: Record<string, string> = cursor
      ? { limit: String(limit), cursor }
      : { limit: String(limit) };
    const res = await t.api().get('/api/users').query(query).set('Cookie', cookie);
    expect(res.status).toBe(200);
    const page = res.body as Page;
    expect(page.data.length).toBeLessThanOrEqual(limit);
    pages.push(page);
    ids.push(...page.data.map((u) => u.id));
    cursor = page.nextCursor;
  } while (cursor !== null && !done(ids) && pages.length < 10_000);
  return { pages, ids };
}

const inOrderOf = (ids: string[], mine: string[]) => ids.filter((id) => mine.includes(id));

describe('GET /api/users', () => {
  const t = useTestApp();

  test('when an admin lists users, then 200 with data and nextCursor, each user in the public shape only', async () => {
    const admin = await signedIn(t, 'admin');
    const res = await t.api().get('/api/users').set('Cookie', admin.cookie);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['data', 'nextCursor']);
    expect(res.body.data.length).toBeGreaterThan(0);
    for (const user of res.body.data as UserJson[]) expect(Object.keys(user).sort()).toEqual(USER_JSON_KEYS);
    expect(res.body.nextCursor === null || typeof res.body.nextCursor === 'string').toBe(true);
  });

  test('when no limit is given, then a page holds 20 users and a cursor points to the next', async () => {
    const admin = await signedIn(t, 'admin');
    await insertUsers(t, 21); // so at least 21 exist whatever else the run created
    const res = await t.api().get('/api/users').set('Cookie', admin.cookie);
    expect(res.status).toBe(200);
    expect(res.body.data).toHaveLength(20);
    expect(typeof res.body.nextCursor).toBe('string');
  });

  test('when limit=100, then it is accepted as the maximum page size', async () => {
    const admin = await signedIn(t, 'admin');
    const res = await t.api().get('/api/users?limit=100').set('Cookie', admin.cookie);
    expect(res.status).toBe(200);
    expect(res.body.data.length).toBeGreaterThan(0);
    expect(res.body.data.length).toBeLessThanOrEqual(100);
  });

  test('when pages are walked with nextCursor, then each of my users appears exactly once, newest first', async () => {
    const admin = await signedIn(t, 'admin');
    // One statement each, so each gets its own created_at; created in this order, listed in reverse.
    const mine = (await insertUsers(t, 5)).map((u) => u.id);

    const { pages, ids } = await walkPages(t, admin.cookie, 2, (seen) =>
      mine.every((id) => seen.includes(id)),
    );

    expect(inOrderOf(ids, mine)).toEqual([...mine].reverse());
    expect(new Set(ids).size).toBe(ids.length); // no page repeats a user of an earlier page
    const createdAts = pages.flatMap((p) => p.data.map((u) => Date.parse(u.createdAt)));
    expect(createdAts).toEqual([...createdAts].sort((a, b) => b - a));
  });

  test('when users share one creation time, then the id breaks the tie and no page skips or repeats one', async () => {
    const admin = await signedIn(t, 'admin');
    const mine = (await insertUsers(t, 4, { oneTransaction: true })).map((u) => u.id);

    const { ids } = await walkPages(t, admin.cookie, 1, (seen) => mine.every((id) => seen.includes(id)));

    expect(inOrderOf(ids, mine)).toEqual([...mine].sort().reverse());
    expect(new Set(ids).size).toBe(ids.length);
  });

  // ASVS 5.0 8.2.1: listing users is an admin's function.
  test('when a non-admin lists users, then 403 forbidden', async () => {
    const user = await signedIn(t, 'user');
    const res = await t.api().get('/api/users').set('Cookie', user.cookie);
    expectError(res, 403, 'forbidden');
    expect(res.body.data).toBeUndefined();
  });

  test('when nobody is signed in, then 401 unauthenticated', async () => {
    const res = await t.api().get('/api/users');
    expectError(res, 401, 'unauthenticated');
  });

  const cursor = (text: string) => `cursor=${Buffer.from(text).toString('base64url')}`;
  // ASVS 5.0 1.1.1, 1.4.2: the cursor is decoded once inside its schema, and limits are bounded by digits and range.
  test.each([
    ['limit=0', 'limit=0', 'query.limit'],
    ['limit=101', 'limit=101', 'query.limit'],
    ['limit=abc', 'limit=abc', 'query.limit'],
    ['limit=-1', 'limit=-1', 'query.limit'],
    ['limit=1.5', 'limit=1.5', 'query.limit'],
    ['a repeated limit', 'limit=1&limit=2', 'query.limit'],
    ['an array-style key', 'limit[]=1', 'query'],
    ['an unknown key', 'sort=email', 'query'],
    ['a garbage cursor', 'cursor=garbage', 'query.cursor'],
    ['an empty cursor', 'cursor=', 'query.cursor'],
    ['a repeated cursor', 'cursor=a&cursor=b', 'query.cursor'],
    ['a cursor without an id', cursor('123.not-a-uuid'), 'query.cursor'],
    ['a cursor carrying SQL', cursor('1) OR 1=1--.00000000-0000-0000-0000-000000000000'), 'query.cursor'],
    ['a cursor over 200 characters', `cursor=${'x'.repeat(201)}`, 'query.cursor'],
  ])('when the query has %s, then 400 validation_failed', async (_label, query, path) => {
    const admin = await signedIn(t, 'admin');
    const res = await t.api().get(`/api/users?${query}`).set('Cookie', admin.cookie);
    expectError(res, 400, 'validation_failed');
    expect(res.body.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path })]));
  });

  test('when a cursor is well-formed but was never issued, then it is just a position: 200, not an error', async () => {
    const admin = await signedIn(t, 'admin');
    const res = await t
      .api()
      .get(`/api/users?limit=1&${cursor('999999999999999999.ffffffff-ffff-ffff-ffff-ffffffffffff')}`)
      .set('Cookie', admin.cookie);
    expect(res.status).toBe(200);
    expect(res.body.data).toHaveLength(1);
  });
});

describe('GET /api/users in a database of its own', () => {
  // Nothing else writes here, so the walk can be compared with the whole table.
  const t = useTestApp({}, { isolatedDatabase: 'users_list' });

  test('when every page is walked, then every user is visited exactly once, in newest-first order', async () => {
    const admin = await signedIn(t, 'admin');
    await insertUsers(t, 4);
    await insertUsers(t, 3, { oneTransaction: true });
    await insertUsers(t, 2);
    const table = await t.db.query<{ id: string }>('SELECT id FROM users ORDER BY created_at DESC, id DESC');

    const { pages, ids } = await walkPages(t, admin.cookie, 3);

    expect(ids).toEqual(table.map((r) => r.id));
    for (const page of pages.slice(0, -1)) expect(page.data).toHaveLength(3);
    expect(pages.at(-1)!.nextCursor).toBeNull();
  });

  test('when the last page is exactly full, then its cursor leads to an empty page with no cursor', async () => {
    const admin = await signedIn(t, 'admin');
    const [row] = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM users');

    const { pages, ids } = await walkPages(t, admin.cookie, row!.n);

    expect(ids).toHaveLength(row!.n);
    expect(pages.map((p) => p.data.length)).toEqual([row!.n, 0]);
    expect(pages[1]!.nextCursor).toBeNull();
  });
});
