import { z } from 'zod';
import type { ZodOpenApiPathsObject } from 'zod-openapi';
import { json, requestIdHeader } from '../openapi/responses';

const check = z.enum(['ok', 'fail']);

const liveness = z.strictObject({ status: z.literal('ok') });
const readiness = z.strictObject({
  status: z.enum(['ready', 'unavailable']),
  checks: z.strictObject({ database: check, redis: check }),
});

const headers = z.object({ 'X-Request-Id': requestIdHeader });

/**
 * The description of health.ts. The probes sit outside /api and before the limiter and the session: no
 * rate-limit headers, no cookie, no error envelope.
 */
export const healthPaths: ZodOpenApiPathsObject = {
  '/healthz': {
    get: {
      operationId: 'getLiveness',
      tags: ['health'],
      summary: 'Liveness: the process runs (restart it if this fails)',
      responses: { 200: { description: 'Alive.', headers, content: json(liveness) } },
    },
  },
  '/readyz': {
    get: {
      operationId: 'getReadiness',
      tags: ['health'],
      summary: 'Readiness: Postgres and Redis answer within a second and no shutdown has begun',
      responses: {
        200: { description: 'Ready for traffic.', headers, content: json(readiness) },
        503: { description: 'Not ready: send no traffic here.', headers, content: json(readiness) },
      },
    },
  },
};
