import { AsyncLocalStorage } from 'node:async_hooks';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import request from 'supertest';
import { chain } from '../../src/http/chain';

/**
 * http/chain.ts: several middlewares as one router layer must behave as the same middlewares mounted
 * one by one. Each case mounts a chain between a layer before and a layer after, with an error handler
 * that names the error it got and the steps that ran.
 */
const steps = new WeakMap<object, string[]>();
function stepsOf(req: object): string[] {
  if (!steps.has(req)) steps.set(req, []);
  return steps.get(req)!;
}
function appWith(middleware: RequestHandler) {
  const app = express();
  app.use((req, _res, next) => {
    stepsOf(req).push('before');
    next();
  });
  app.use(middleware);
  app.use((req, res) => {
    stepsOf(req).push('after');
    res.json({ ran: stepsOf(req) });
  });
  app.use(((error: Error, req, res, _next) => {
    res.status(500).json({ error: error.message, ran: stepsOf(req) });
  }) as ErrorRequestHandler);
  return app;
}
const step =
  (name: string): RequestHandler =>
  (req, _res, next) => {
    stepsOf(req).push(name);
    next();
  };
/** Calls next on a later turn, so what follows does not run inside this handler's call. */
const later =
  (name: string): RequestHandler =>
  (req, _res, next) => {
    stepsOf(req).push(name);
    setImmediate(next);
  };

describe('chain', () => {
  test('when every middleware calls next, then they run in order and the request goes on to the next layer', async () => {
    const res = await request(appWith(chain(step('a'), later('b'), step('c')))).get('/');
    expect(res.body).toEqual({ ran: ['before', 'a', 'b', 'c', 'after'] });
  });

  test('when one passes an error to next, then the rest of the chain and the next layer are skipped for the error handler', async () => {
    const failing: RequestHandler = (_req, _res, next) => next(new Error('refused'));
    const res = await request(appWith(chain(step('a'), failing, step('c')))).get('/');
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: 'refused', ran: ['before', 'a'] });
  });

  test('when one throws, or its promise rejects, then the error handler gets that error and nothing after it runs', async () => {
    const throwing: RequestHandler = () => {
      throw new Error('thrown');
    };
    const rejecting: RequestHandler = async () => {
      await Promise.resolve();
      throw new Error('rejected');
    };
    // `later` first: the throw happens on a turn of its own, where only the chain can catch it.
    const thrown = await request(appWith(chain(later('a'), throwing, step('c')))).get('/');
    expect(thrown.body).toEqual({ error: 'thrown', ran: ['before', 'a'] });
    const rejected = await request(appWith(chain(later('a'), rejecting, step('c')))).get('/');
    expect(rejected.body).toEqual({ error: 'rejected', ran: ['before', 'a'] });
  });

  test('when a falsy value is passed, thrown or rejected, then it is read as the router reads it: no error, or "Rejected promise"', async () => {
    const passesFalse: RequestHandler = (req, _res, next) => {
      stepsOf(req).push('false');
      next(false as unknown as Error);
    };
    const throwsUndefined: RequestHandler = (req) => {
      stepsOf(req).push('undefined');
      throw undefined;
    };
    const rejectsEmpty: RequestHandler = () => Promise.reject('') as unknown as void;
    const passed = await request(appWith(chain(later('a'), passesFalse, step('c')))).get('/');
    expect(passed.body).toEqual({ ran: ['before', 'a', 'false', 'c', 'after'] });
    const thrown = await request(appWith(chain(later('a'), throwsUndefined, step('c')))).get('/');
    expect(thrown.body).toEqual({ ran: ['before', 'a', 'undefined', 'c', 'after'] });
    const rejected = await request(appWith(chain(later('a'), rejectsEmpty, step('c')))).get('/');
    expect(rejected.body).toEqual({ error: 'Rejected promise', ran: ['before', 'a'] });
  });

  test('when one answers without calling next, then that answer is the response and nothing after it runs', async () => {
    const answering: RequestHandler = (req, res) => {
      res.status(403).json({ ran: [...stepsOf(req), 'answered'] });
    };
    const res = await request(appWith(chain(step('a'), answering, step('c')))).get('/');
    expect(res.status).toBe(403);
    expect(res.body).toEqual({ ran: ['before', 'a', 'answered'] });
  });

  test("when one calls next('route'), then the chain goes on as separate layers would; next('router') leaves the router", async () => {
    const skipRoute: RequestHandler = (_req, _res, next) => next('route');
    const onRoute = await request(appWith(chain(step('a'), skipRoute, step('c')))).get('/');
    expect(onRoute.body).toEqual({ ran: ['before', 'a', 'c', 'after'] });

    const leaveRouter: RequestHandler = (_req, _res, next) => next('router');
    const inner = express.Router();
    inner.use(chain(step('a'), leaveRouter, step('c')));
    inner.use(step('inner after'));
    const left = await request(appWith(inner)).get('/');
    expect(left.body).toEqual({ ran: ['before', 'a', 'after'] });
  });

  test('when a middleware runs the rest inside an AsyncLocalStorage, then every later middleware sees its store', async () => {
    const storage = new AsyncLocalStorage<string>();
    const context: RequestHandler = (_req, _res, next) => storage.run('request 1', next);
    const reads: RequestHandler = (req, _res, next) => {
      setImmediate(() => {
        stepsOf(req).push(storage.getStore() ?? 'none');
        next();
      });
    };
    const res = await request(appWith(chain(context, later('a'), reads))).get('/');
    expect(res.body).toEqual({ ran: ['before', 'a', 'request 1', 'after'] });
  });

  test('when a router or an error handler is given, then the chain is refused when it is built', () => {
    expect(() => chain(step('a'), express.Router())).toThrow(/router must stay a layer of its own/);
    const errorHandler = ((_error, _req, _res, next) => next()) as ErrorRequestHandler;
    expect(() => chain(step('a'), errorHandler as unknown as RequestHandler)).toThrow(/error handler/);
  });
});
