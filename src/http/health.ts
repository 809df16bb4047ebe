import { Router } from 'express';
import type { Db } from '../lib/db';
import { withDeadline } from '../lib/deadline';
import type { RedisClient } from '../lib/redis';

export interface Lifecycle {
  /** True once shutdown began: readiness fails so the load balancer stops sending traffic. */
  shuttingDown: boolean;
}

const READY_TIMEOUT_MS = 1000;
const ALIVE = JSON.stringify({ status: 'ok' });

/** True when `work` succeeds within `ms`; false when it fails or is too slow. */
function answersWithin(work: () => Promise<unknown>, ms: number): Promise<boolean> {
  return withDeadline(Promise.resolve().then(work), ms, () => new Error('no answer in time')).then(
    () => true,
    () => false,
  );
}

/**
 * `/healthz`: the process is alive (restart it if not). `/readyz`: it can serve traffic now, meaning
 * Postgres and Redis both answer within a second, and it is not shutting down. Neither says more than
 * a status, so they reveal nothing to an outsider.
 */
export function createHealthRouter(deps: { db: Db; redis: RedisClient; lifecycle: Lifecycle }): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    // A constant answer, written as is: no serialization and no ETag hash on a path polled constantly.
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(ALIVE);
  });
  router.get('/readyz', async (_req, res) => {
    const [database, redis] = deps.lifecycle.shuttingDown
      ? [false, false]
      : await Promise.all([
          answersWithin(() => deps.db.ping(), READY_TIMEOUT_MS),
          answersWithin(() => deps.redis.ping(), READY_TIMEOUT_MS),
        ]);
    const ready = database && redis;
    res.status(ready ? 200 : 503).json({
      status: ready ? 'ready' : 'unavailable',
      checks: { database: database ? 'ok' : 'fail', redis: redis ? 'ok' : 'fail' },
    });
  });
  return router;
}
