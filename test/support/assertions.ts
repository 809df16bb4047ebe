import type { Response } from 'supertest';

/**
 * An error answer of the API: `status`, and the one envelope every error has, with the stable `code`,
 * a message, the request id the response header carries and, when there are any, the details (which
 * field, what is wrong). Nothing else: no stack, no driver text.
 */
export function expectError(res: Response, status: number, code: string): void {
  const details = (res.body as { error?: { details?: unknown } } | undefined)?.error?.details;
  // One comparison, so a wrong status shows the body that came with it.
  expect({ status: res.status, body: res.body }).toEqual({
    status,
    body: {
      error: {
        code,
        message: expect.any(String),
        requestId: res.headers['x-request-id'],
        ...(details === undefined ? {} : { details: expect.any(Array) }),
      },
    },
  });
  expect(res.headers['x-request-id']).toEqual(expect.any(String));
  for (const detail of (details ?? []) as unknown[]) {
    expect(detail).toEqual({ path: expect.any(String), message: expect.any(String) });
  }
}

/** The 503 an outage must produce: the standard envelope, a Retry-After, nothing from the driver. */
export function expectServiceUnavailable(res: Response): void {
  expectError(res, 503, 'service_unavailable');
  expect(res.body.error.details).toBeUndefined();
  expect(res.headers['retry-after']).toBe('5');
}
