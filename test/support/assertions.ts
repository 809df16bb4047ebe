import type { Response } from 'supertest';

/** The 503 an outage must produce: the standard envelope, a Retry-After, nothing from the driver. */
export function expectServiceUnavailable(res: Response): void {
  expect(res.status).toBe(503);
  expect(res.headers['retry-after']).toBe('5');
  expect(res.body).toEqual({
    error: {
      code: 'service_unavailable',
      message: expect.any(String),
      requestId: res.headers['x-request-id'],
    },
  });
}
