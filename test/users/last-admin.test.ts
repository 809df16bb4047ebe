import { expectError } from '../support/assertions';
import { createUser, signedIn } from '../support/factories';
import { adminIds, userRow } from '../support/users';
import { useTestApp } from '../support/use-test-app';

/**
 * The whole run shares one database where other files create admins all the time, so "the last admin"
 * only exists in a database of its own: each test here gets a fresh one and knows every admin in it.
 */
// ASVS 5.0 2.3.3, 2.3.4: the last admin is checked under a lock, in a transaction.
describe('the last admin', () => {
  const t = useTestApp({}, { isolatedDatabase: 'users_lastadmin', freshPerTest: true });

  test('when the only admin deletes themselves, then 409 last_admin and they remain an admin, signed in', async () => {
    const admin = await signedIn(t, 'admin');

    const res = await t.api().delete(`/api/users/${admin.user.id}`).set('Cookie', admin.cookie);

    expectError(res, 409, 'last_admin');
    expect(await adminIds(t)).toEqual([admin.user.id]);
    expect((await t.api().get('/api/auth/me').set('Cookie', admin.cookie)).status).toBe(200);
  });

  test('when the only admin demotes themselves, then 409 last_admin, the role stays and the session lives', async () => {
    const admin = await signedIn(t, 'admin');

    const res = await t
      .api()
      .patch(`/api/users/${admin.user.id}`)
      .set('Cookie', admin.cookie)
      .send({ role: 'user' });

    expectError(res, 409, 'last_admin');
    expect((await userRow(t, admin.user.id))!.role).toBe('admin');
    const me = await t.api().get('/api/auth/me').set('Cookie', admin.cookie);
    expect(me.status).toBe(200);
    expect(me.body.role).toBe('admin');
  });

  test('when the only admin demotes or deletes plain users, then that is allowed', async () => {
    const admin = await signedIn(t, 'admin');
    const [a, b] = [await createUser(t), await createUser(t)];

    const demote = await t
      .api()
      .patch(`/api/users/${a.user.id}`)
      .set('Cookie', admin.cookie)
      .send({ role: 'user' });
    const remove = await t.api().delete(`/api/users/${b.user.id}`).set('Cookie', admin.cookie);

    expect(demote.status).toBe(200);
    expect(remove.status).toBe(204);
    expect(await adminIds(t)).toEqual([admin.user.id]);
  });

  test('when one of two admins demotes the other, then 200; demoting themselves next is 409 last_admin', async () => {
    const a = await signedIn(t, 'admin');
    const b = await createUser(t, { role: 'admin' });

    const first = await t
      .api()
      .patch(`/api/users/${b.user.id}`)
      .set('Cookie', a.cookie)
      .send({ role: 'user' });
    const second = await t
      .api()
      .patch(`/api/users/${a.user.id}`)
      .set('Cookie', a.cookie)
      .send({ role: 'user' });

    expect(first.status).toBe(200);
    expectError(second, 409, 'last_admin');
    expect(await adminIds(t)).toEqual([a.user.id]);
  });

  test('when one of two admins deletes the other, then 204; deleting themselves next is 409 last_admin', async () => {
    const a = await signedIn(t, 'admin');
    const b = await createUser(t, { role: 'admin' });

    const first = await t.api().delete(`/api/users/${b.user.id}`).set('Cookie', a.cookie);
    const second = await t.api().delete(`/api/users/${a.user.id}`).set('Cookie', a.cookie);

    expect(first.status).toBe(204);
    expectError(second, 409, 'last_admin');
    expect(await adminIds(t)).toEqual([a.user.id]);
  });

  /**
   * The loser of a race is refused by the admin lock (409), or finds its own session already revoked
   * (401), or is loaded as the plain user it just became and may no longer see the other account (404).
   */
  const LOSING_ANSWERS = [
    [409, 'last_admin'],
    [401, 'unauthenticated'],
    [404, 'not_found'],
  ];
  const outcome = (res: { status: number; body: { error?: { code: string } } }) => [
    res.status,
    res.body.error?.code,
  ];

  type Admin = Awaited<ReturnType<typeof signedIn>>;
  type Race = (
    survivor: Admin,
    challenger: Admin,
  ) => Promise<{ status: number; body: { error?: { code: string } } }[]>;

  /**
   * Five rounds of the same race, each starting from exactly two admins: the survivor of the last round
   * and a new challenger. After every round exactly one request won and exactly one admin is left.
   */
  async function raceRounds(race: Race, winningStatus: number): Promise<void> {
    let survivor = await signedIn(t, 'admin');
    for (let round = 0; round < 5; round++) {
      const challenger = await signedIn(t, 'admin');
      expect(await adminIds(t)).toHaveLength(2);

      const results = await race(survivor, challenger);

      expect(results.filter((r) => r.status === winningStatus)).toHaveLength(1);
      const lost = results.find((r) => r.status !== winningStatus)!;
      expect(LOSING_ANSWERS).toContainEqual(outcome(lost));
      const admins = await adminIds(t);
      expect(admins).toHaveLength(1);
      survivor = admins[0] === survivor.user.id ? survivor : challenger;
      expect(admins).toEqual([survivor.user.id]);
    }
  }

  test('when two admins demote each other at the same time, round after round, then one admin always remains', async () => {
    await raceRounds(
      (a, b) =>
        Promise.all([
          t.api().patch(`/api/users/${b.user.id}`).set('Cookie', a.cookie).send({ role: 'user' }),
          t.api().patch(`/api/users/${a.user.id}`).set('Cookie', b.cookie).send({ role: 'user' }),
        ]),
      200,
    );
  });

  test('when two admins demote themselves at the same time, round after round, then one admin always remains', async () => {
    await raceRounds(
      (a, b) =>
        Promise.all([
          t.api().patch(`/api/users/${a.user.id}`).set('Cookie', a.cookie).send({ role: 'user' }),
          t.api().patch(`/api/users/${b.user.id}`).set('Cookie', b.cookie).send({ role: 'user' }),
        ]),
      200,
    );
  });

  test('when two admins delete each other at the same time, round after round, then one admin always remains', async () => {
    await raceRounds(
      (a, b) =>
        Promise.all([
          t.api().delete(`/api/users/${b.user.id}`).set('Cookie', a.cookie),
          t.api().delete(`/api/users/${a.user.id}`).set('Cookie', b.cookie),
        ]),
      204,
    );
  });

  test('when two admins delete themselves at the same time, round after round, then one admin always remains', async () => {
    await raceRounds(
      (a, b) =>
        Promise.all([
          t.api().delete(`/api/users/${a.user.id}`).set('Cookie', a.cookie),
          t.api().delete(`/api/users/${b.user.id}`).set('Cookie', b.cookie),
        ]),
      204,
    );
  });
});
