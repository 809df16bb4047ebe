import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import request from 'supertest';
import { chain } from '../../src/http/chain';

/**
 * http/chain.ts: several middlewares as one router layer must behave as the same middlewares mounted
 * one by one. Each case mounts a chain between a layer before and a layer after, with an error handler
 * that names the error it got.
 */
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
const ran = new WeakMap<object, string[]>();
function stepsOf(req: object): string[] {
  if (!ran.has(req)) ran.set(req, []);
  return ran.get(req)!;
}
const step =
  (name: string): RequestHandler =>
  (req, _res, next) => {
    stepsOf(req).push(name);
    next();
  };

describe('chain', () => {
  test('when every middleware calls next, then they run in order and the request goes on to the next layer', async () => {
    const res = await request(appWith(chain(step('a'), step('b'), step('c')))).get('/');
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
    const thrown = await request(appWith(chain(step('a'), throwing, step('c')))).get('/');
    expect(thrown.body).toEqual({ error: 'thrown', ran: ['before', 'a'] });
    const rejected = await request(appWith(chain(step('a'), rejecting, step('c')))).get('/');
    expect(rejected.body).toEqual({ error: 'rejected', ran: ['before', 'a'] });
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

  test('when a router is one of the middlewares, then its routes answer and a path it does not serve goes on', async () => {
    const router = express.Router();
    router.get('/probe', (_req, res) => {
      res.json({ probe: true });
    });
    const app = appWith(chain(step('a'), router, step('c')));
    expect((await request(app).get('/probe')).body).toEqual({ probe: true });
    expect((await request(app).get('/other')).body).toEqual({ ran: ['before', 'a', 'c', 'after'] });
  });
});
