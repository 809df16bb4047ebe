import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import request from 'supertest';
import { concurrently } from '../../src/http/concurrently';

/**
 * http/concurrently.ts: two middlewares started together must go on as the same two run one after
 * the other would: with the first one's failure if it failed, else the second one's, reading every
 * outcome (next, a throw, a rejection) as the router does. Each case mounts the pair before a layer
 * that answers, with an error handler that names the error it got.
 */
const events = new WeakMap<object, string[]>();
function eventsOf(req: object): string[] {
  if (!events.has(req)) events.set(req, []);
  return events.get(req)!;
}
function appWith(middleware: RequestHandler) {
  const app = express();
  app.use(middleware);
  app.use((req, res) => res.json({ events: eventsOf(req) }));
  app.use(((error: Error, req, res, _next) => {
    res.status(500).json({ error: error.message, events: eventsOf(req) });
  }) as ErrorRequestHandler);
  return app;
}
/** Records its start, then its end on a later turn (after `afterMs`), and calls next with `outcome`. */
const waits =
  (name: string, afterMs: number, outcome?: unknown): RequestHandler =>
  (req, _res, next) => {
    eventsOf(req).push(`${name} starts`);
    setTimeout(() => {
      eventsOf(req).push(`${name} ends`);
      next(outcome);
    }, afterMs);
  };

describe('concurrently', () => {
  test('when both take a while, then the second starts before the first ends and the request goes on once both ended', async () => {
    const res = await request(appWith(concurrently(waits('a', 30), waits('b', 5)))).get('/');
    expect(res.status).toBe(200);
    expect(res.body.events).toEqual(['a starts', 'b starts', 'b ends', 'a ends']);
  });

  test('when both fail, then the first one’s error goes on, even when the second failed sooner', async () => {
    const res = await request(
      appWith(concurrently(waits('a', 30, new Error('first')), waits('b', 5, new Error('second')))),
    ).get('/');
    expect(res.status).toBe(500);
    expect(res.body).toEqual({
      error: 'first',
      events: ['a starts', 'b starts', 'b ends', 'a ends'],
    });
  });

  test('when only the second fails, then its error goes on once the first has ended', async () => {
    const res = await request(appWith(concurrently(waits('a', 30), waits('b', 5, new Error('second'))))).get(
      '/',
    );
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: 'second', events: ['a starts', 'b starts', 'b ends', 'a ends'] });
  });

  test('when one throws, returns a promise that rejects with or without a reason, or a thenable that throws, then that is its error', async () => {
    const throws: RequestHandler = () => {
      throw new Error('thrown');
    };
    const rejects: RequestHandler = () => Promise.reject(new Error('rejected'));
    // The router's own case: a rejection without a reason.
    const rejectsEmpty: RequestHandler = () => Promise.reject(undefined);
    // A thenable whose `then` throws: the router takes that as the handler's error too.
    const thenThrows: RequestHandler = () =>
      ({
        then() {
          throw new Error('then threw');
        },
      }) as unknown as void;
    for (const [failing, message] of [
      [throws, 'thrown'],
      [thenThrows, 'then threw'],
      [rejects, 'rejected'],
      [rejectsEmpty, 'Rejected promise'],
    ] as const) {
      const res = await request(appWith(concurrently(waits('a', 5), failing))).get('/');
      expect(res.status).toBe(500);
      expect(res.body).toEqual({ error: message, events: ['a starts', 'a ends'] });
    }
  });

  test('when one passes a falsy value or "route" to next, then that is no error, as for a layer of its own', async () => {
    for (const outcome of [null, 0, '', false, 'route']) {
      const res = await request(appWith(concurrently(waits('a', 5, outcome), waits('b', 5)))).get('/');
      expect(res.status).toBe(200);
      // Not lost either: the second one's error still goes on.
      const failing = await request(
        appWith(concurrently(waits('a', 5, outcome), waits('b', 5, new Error('second')))),
      ).get('/');
      expect(failing.body.error).toBe('second');
    }
  });

  test('when one calls next twice, then the request goes on once', async () => {
    let answered = 0;
    const twice: RequestHandler = (_req, _res, next) => {
      next();
      next();
    };
    const app = express();
    app.use(concurrently(twice, waits('b', 5)));
    app.use((_req, res) => {
      answered += 1;
      if (answered === 1) setTimeout(() => res.json({ answered }), 20);
    });
    const res = await request(app).get('/');
    expect(res.body).toEqual({ answered: 1 });
  });

  test('when given a router or an error handler, then it refuses when built, as chain() does', () => {
    const errorHandler: ErrorRequestHandler = (_error, _req, _res, next) => next();
    expect(() => concurrently(waits('a', 1), express.Router())).toThrow(/router must stay a layer/);
    expect(() => concurrently(errorHandler as unknown as RequestHandler, waits('b', 1))).toThrow(
      /error handler/,
    );
  });
});
