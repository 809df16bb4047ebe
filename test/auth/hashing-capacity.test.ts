import request, { type Response } from 'supertest';
import { createOpenApiDocument } from '../../src/openapi/openapi';
import { expectError } from '../support/assertions';
import { createUser, signedIn, uniqueEmail } from '../support/factories';
import { createHeldHasher, until } from '../support/held-hasher';
import { eventsNamed } from '../support/log-lines';
import { createResponseChecker } from '../support/openapi';
import { fromIp, uniqueIp } from '../support/rate-limit';
import type { TestApp } from '../support/test-app';
import { useTestApp } from '../support/use-test-app';

/**
 * The bound in front of argon2 (src/lib/password-queue.ts): CONCURRENCY hashes at once, QUEUE more
 * admitted to wait, the rest refused at once with 503 `service_busy`. The app's hasher is the real one
 * behind a gate (test/support/held-hasher.ts): while the gate is shut the admitted requests keep their
 * places, so what is refused is decided by counts, never by timing. Each login comes from an address
 * of its own (through the trusted proxy header), as in a distributed flood.
 */
const CONCURRENCY = 2;
const QUEUE = 3;
const BEYOND = 3;
const WRONG = 'not the password at all';
const described = createResponseChecker(createOpenApiDocument());

interface Sent {
  ip: string;
  answer: Promise<Response>;
}

interface Burst {
  sent: Sent[];
  /** The answers in the order they came back. */
  answered: Response[];
  /** Every answer, in the order sent; rejects if any request got no answer at all. */
  all(): Promise<Response[]>;
}

/** Sends one wrong-password login per email, all at once, each from an address of its own. */
function burstOfLogins(t: TestApp, emails: string[]): Burst {
  const answered: Response[] = [];
  const sent = emails.map((email) => {
    const ip = uniqueIp();
    const answer = request(t.app)
      .post('/api/auth/login')
      .set(fromIp(ip))
      .send({ email, password: WRONG })
      .then((res) => {
        answered.push(res);
        return res;
      });
    return { ip, answer };
  });
  return { sent, answered, all: () => Promise.all(sent.map((s) => s.answer)) };
}

/** The refusal beyond the bound: the envelope, Retry-After, and an answer the API description lists. */
function expectBusy(res: Response, operation = 'POST /api/auth/login'): void {
  expectError(res, 503, 'service_busy');
  expect(res.headers['retry-after']).toBe('1');
  described.check(operation, res);
}

const statusCounts = (answers: Response[]) =>
  answers.reduce<Record<number, number>>((counts, res) => {
    counts[res.status] = (counts[res.status] ?? 0) + 1;
    return counts;
  }, {});

/** The per-client request counter (every route) as Redis holds it: null when the client never spent one. */
const requestCounter = (t: TestApp, ip: string) =>
  t.redis.get(`${t.config.redisKeyPrefix}rl:ip-minute:${ip}`);

/** The per-client daily login counter as Redis holds it: null when the client never spent a point. */
const dailyLoginCounter = (t: TestApp, ip: string) =>
  t.redis.get(`${t.config.redisKeyPrefix}rl:login-ip-day:${ip}`);

describe('password hashing at capacity', () => {
  const held = createHeldHasher();
  const t = useTestApp(
    {
      TRUST_PROXY: '1',
      HASH_CONCURRENCY: String(CONCURRENCY),
      HASH_QUEUE_MAX: String(QUEUE),
      // Far beyond any test: here only the count of places decides.
      HASH_QUEUE_WAIT_MS: '60000',
    },
    { passwords: held.hasher },
  );
  afterEach(() => held.release());

  /**
   * Shuts the gate and sends `emails` at once; resolves once `refused` answers came back and CONCURRENCY
   * hashes wait at the gate.
   */
  async function heldBurst(emails: string[], refused: number): Promise<Burst & { hashesBefore: number }> {
    const hashesBefore = held.calls.length;
    held.hold();
    const burst = burstOfLogins(t, emails);
    await until(
      () => burst.answered.length === refused && held.calls.length - hashesBefore === CONCURRENCY,
      `${refused} refusals and ${CONCURRENCY} hashes at the gate`,
    );
    return { ...burst, hashesBefore };
  }

  test.each([
    ['a registered email', 'verify', true],
    ['an unknown email', 'verifyAgainstDummy', false],
  ])(
    'when CONCURRENCY + QUEUE + k logins for %s arrive together, then exactly k are refused at once with 503 service_busy and Retry-After, none is hashed, and every request is answered',
    async (_case, hashCall, registered) => {
      const email = registered ? (await createUser(t)).email : uniqueEmail('unknown');
      const emails = Array<string>(CONCURRENCY + QUEUE + BEYOND).fill(email);

      const burst = await heldBurst(emails, BEYOND);
      // Answered while every admitted hash is still held: the refusal waited for no hash.
      const refusedAtOnce = [...burst.answered];
      held.release();
      const answers = await burst.all();

      for (const res of refusedAtOnce) expectBusy(res);
      expect(statusCounts(answers)).toEqual({ 401: CONCURRENCY + QUEUE, 503: BEYOND });
      // Only the admitted ones reached argon2, each once, and an unknown email through the same line.
      expect(held.calls.slice(burst.hashesBefore)).toEqual(Array(CONCURRENCY + QUEUE).fill(hashCall));
    },
  );

  test('when logins are refused for capacity, then they are refused before the login throttle counts them, and the admitted ones are counted', async () => {
    const { email } = await createUser(t);

    const burst = await heldBurst(Array<string>(CONCURRENCY + QUEUE + BEYOND).fill(email), BEYOND);
    held.release();
    await burst.all();

    const points = await Promise.all(
      burst.sent.map(async ({ ip, answer }) => ({
        status: (await answer).status,
        counter: await dailyLoginCounter(t, ip),
      })),
    );
    // A 503 is not a guess: it must not bring anyone nearer a lock, an attacker's target or not. It is
    // refused before the throttle runs at all (no counter was ever written), so a flood of refusals
    // costs Redis nothing either.
    expect(points.filter((p) => p.status === 503)).toEqual(
      Array(BEYOND).fill({ status: 503, counter: null }),
    );
    expect(points.filter((p) => p.status === 401)).toEqual(
      Array(CONCURRENCY + QUEUE).fill({ status: 401, counter: '1' }),
    );
  });

  test('when the line is full, then a login by the API or the form is refused before the request limiter, the cross-origin guard and the body parser spend anything on it', async () => {
    const burst = await heldBurst(Array<string>(CONCURRENCY + QUEUE).fill(uniqueEmail()), 0);
    const [api, form] = [uniqueIp(), uniqueIp()];
    // A body no parser accepts and no CSRF token: either would be refused with 400 or 403 once read.
    const refusedApi = await request(t.app)
      .post('/api/auth/login')
      .set(fromIp(api))
      .set('Content-Type', 'application/json')
      .send('{"email": not json');
    const refusedForm = await request(t.app)
      .post('/login')
      .set(fromIp(form))
      .set('Origin', 'https://elsewhere.example')
      .type('form')
      .send('email=a%40b.example&password=x');
    const counters = { api: await requestCounter(t, api), form: await requestCounter(t, form) };
    held.release();
    await burst.all();
    const admitted = uniqueIp();
    const later = await request(t.app)
      .post('/api/auth/login')
      .set(fromIp(admitted))
      .set('Content-Type', 'application/json')
      .send('{"email": not json');

    expectBusy(refusedApi);
    expect(refusedForm.status).toBe(503);
    expect(refusedForm.headers['content-type']).toMatch(/^text\/html/);
    expect(refusedForm.headers['retry-after']).toBe('1');
    expect(counters).toEqual({ api: null, form: null });
    // With room in the line, the same request goes the whole way again: counted, parsed, refused as bad.
    expect(later.status).toBe(400);
    expect(await requestCounter(t, admitted)).toBe('1');
  });

  test('when two bursts are refused one after the other, then hash.busy is logged once per burst, at warn, by a refused request', async () => {
    const { email } = await createUser(t);
    const emails = Array<string>(CONCURRENCY + QUEUE + BEYOND).fill(email);
    const logged = () => eventsNamed(t, 'hash.busy').length;
    const before = logged();

    const first = await heldBurst(emails, BEYOND);
    held.release();
    await first.all();
    const afterFirst = logged();
    const second = await heldBurst(emails, BEYOND);
    held.release();
    await second.all();

    expect({ first: afterFirst - before, second: logged() - afterFirst }).toEqual({ first: 1, second: 1 });
    const refusedIds = [...first.answered, ...second.answered]
      .filter((res) => res.status === 503)
      .map((res) => res.headers['x-request-id'] as string);
    for (const line of eventsNamed(t, 'hash.busy').slice(before)) {
      expect(line).toMatchObject({
        level: 'warn',
        reason: 'queue_full',
        concurrency: CONCURRENCY,
        queueMax: QUEUE,
        method: 'POST',
        path: '/api/auth/login',
      });
      expect(refusedIds).toContain(line.requestId);
    }
  });

  test('when hashing is at capacity, then a password change is refused with 503 before it spends the per-user budget, and succeeds once the burst has passed', async () => {
    const { user, cookie, password } = await signedIn(t);
    const change = () =>
      request(t.app)
        .put('/api/auth/password')
        .set('Cookie', cookie)
        .send({ currentPassword: password, newPassword: 'seven amber kites over the harbour' });
    const budgetKey = `${t.config.redisKeyPrefix}rl:password-user:${user.id}`;

    const burst = await heldBurst(Array<string>(CONCURRENCY + QUEUE + 1).fill(uniqueEmail()), 1);
    const refused = await change();
    const budgetWhileBusy = await t.redis.get(budgetKey);
    held.release();
    await burst.all();
    const later = await change();

    expectBusy(refused, 'PUT /api/auth/password');
    expect(budgetWhileBusy).toBeNull();
    expect(later.status).toBe(204);
  });
});

describe('password hashing: a wait beyond HASH_QUEUE_WAIT_MS', () => {
  const held = createHeldHasher();
  const t = useTestApp(
    {
      TRUST_PROXY: '1',
      HASH_CONCURRENCY: '1',
      HASH_QUEUE_MAX: '2',
      HASH_QUEUE_WAIT_MS: '50',
      // Only a refusal on arrival is delayed: one that waited its turn out leaves at once, long before this.
      HASH_REFUSAL_DELAY_MS: '5000',
    },
    { passwords: held.hasher },
  );
  afterEach(() => held.release());

  test('when the hash being computed outlasts the wait of those in line, then they are refused with the same 503, unhashed, and give their throttle points back', async () => {
    const { email } = await createUser(t);
    const before = eventsNamed(t, 'hash.busy').length;
    held.hold();

    // One takes the only slot and is held there; the two admitted behind it wait past the bound.
    const burst = burstOfLogins(t, [email, email, email]);
    const sentAt = Date.now();
    await until(() => burst.answered.length === 2 && held.calls.length === 1, 'two refusals from the line');
    expect(Date.now() - sentAt).toBeLessThan(4000);
    const refusedInLine = [...burst.answered];
    held.release();
    const answers = await burst.all();

    for (const res of refusedInLine) expectBusy(res);
    expect(statusCounts(answers)).toEqual({ 401: 1, 503: 2 });
    expect(held.calls).toEqual(['verify']);
    const points = await Promise.all(
      burst.sent.map(async ({ ip, answer }) => [(await answer).status, await dailyLoginCounter(t, ip)]),
    );
    // These were counted when admitted (the throttle runs before the hash) and given the point back.
    expect(points.sort()).toEqual([
      [401, '1'],
      [503, '0'],
      [503, '0'],
    ]);
    expect(eventsNamed(t, 'hash.busy').slice(before)).toEqual([
      expect.objectContaining({ level: 'warn', reason: 'wait_exceeded', maxWaitMs: 50 }),
    ]);
  });
});

describe('password hashing: a refusal on arrival leaves after HASH_REFUSAL_DELAY_MS (ADR 0042)', () => {
  const DELAY_MS = 400;
  const held = createHeldHasher();
  const t = useTestApp(
    {
      TRUST_PROXY: '1',
      HASH_CONCURRENCY: '1',
      HASH_QUEUE_MAX: '0',
      HASH_QUEUE_WAIT_MS: '60000',
      HASH_REFUSAL_DELAY_MS: String(DELAY_MS),
    },
    { passwords: held.hasher },
  );
  afterEach(() => held.release());

  /** Takes the only hashing slot with a held login; resolves once its hash waits at the gate. */
  async function fillTheLine(email: string): Promise<Burst> {
    held.hold();
    const holder = burstOfLogins(t, [email]);
    await until(() => held.calls.length === 1, 'the held hash');
    return holder;
  }

  test('when the line is full, then a login by the API or the form gets its 503 no sooner than the delay, unhashed, and the held login is answered as usual', async () => {
    const { email } = await createUser(t);
    const holder = await fillTheLine(email);

    const timed = async (send: () => Promise<Response>) => {
      const started = Date.now();
      const res = await send();
      return { res, ms: Date.now() - started };
    };
    const [api, form] = await Promise.all([
      timed(() =>
        request(t.app).post('/api/auth/login').set(fromIp(uniqueIp())).send({ email, password: WRONG }),
      ),
      timed(() =>
        request(t.app).post('/login').set(fromIp(uniqueIp())).type('form').send({ email, password: WRONG }),
      ),
    ]);
    held.release();
    const [held401] = await holder.all();

    expectBusy(api.res);
    expect(form.res.status).toBe(503);
    expect(form.res.headers['content-type']).toMatch(/^text\/html/);
    expect(form.res.headers['retry-after']).toBe('1');
    expect(form.res.text).toContain('Too busy right now');
    // Each of them, not only the slower: timers may fire a millisecond early by the wall clock, never a tick.
    expect(api.ms).toBeGreaterThanOrEqual(DELAY_MS - 5);
    expect(form.ms).toBeGreaterThanOrEqual(DELAY_MS - 5);
    expect(held.calls).toEqual(['verify']);
    expect(held401!.status).toBe(401);
  });

  // The timer itself (cleared, nothing answered, its place freed): test/http/delayed-answers.test.ts.
  test('when a refused client goes away during the delay, then no error is logged and the app keeps answering', async () => {
    const { email } = await createUser(t);
    const holder = await fillTheLine(email);
    const errors = () => t.logs.filter((l) => l.level === 'error' || l.level === 'fatal');
    const errorsBefore = errors().length;

    // supertest aborts the request (and its socket) when the timeout passes.
    const gaveUp = await request(t.app)
      .post('/api/auth/login')
      .set(fromIp(uniqueIp()))
      .timeout(50)
      .send({ email, password: WRONG })
      .then(
        () => 'answered',
        (error: { timeout?: number }) => (error.timeout ? 'gave up' : String(error)),
      );
    await new Promise((resolve) => setTimeout(resolve, DELAY_MS + 100));
    held.release();
    await holder.all();

    expect(gaveUp).toBe('gave up');
    expect(errors().slice(errorsBefore)).toEqual([]);
    const after = await request(t.app).get('/healthz');
    expect(after.status).toBe(200);
  });
});
