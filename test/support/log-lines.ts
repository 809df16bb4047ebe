import type { LogLine, TestApp } from './test-app';

/** Anything that carries the request id the app answered with: a supertest response, an edge answer. */
interface Answered {
  headers: Record<string, unknown>;
}

/** The log lines written while serving `res`, by its request id. */
export const linesOf = (t: Pick<TestApp, 'logs'>, res: Answered): LogLine[] =>
  t.logs.filter((l) => l.requestId === res.headers['x-request-id']);

/** The line of security event `event` written while serving `res`, if any. */
export const eventOf = (t: Pick<TestApp, 'logs'>, res: Answered, event: string): LogLine | undefined =>
  linesOf(t, res).find((l) => l.event === event);

/**
 * Every line of security event `event` written while serving `res`, oldest first. Fails when `res` has no
 * request id: lines without one would all match.
 */
export function eventsOf(t: Pick<TestApp, 'logs'>, res: Answered, event: string): LogLine[] {
  expect(typeof res.headers['x-request-id']).toBe('string');
  return linesOf(t, res).filter((l) => l.event === event);
}

/** Every line of security event `event`, oldest first. */
export const eventsNamed = (t: Pick<TestApp, 'logs'>, event: string): LogLine[] =>
  t.logs.filter((l) => l.event === event);

/** The access line for `res` (src/http/access-log.ts), if the app saw the request. */
export const accessLineOf = (t: Pick<TestApp, 'logs'>, res: Answered): LogLine | undefined =>
  linesOf(t, res).find((l) => l.msg === 'request completed' || l.msg === 'request errored');

/**
 * The line of security event `event` for `res`, once it is written: work a route does after its answer
 * (src/auth/auth.routes.ts, the reset request) and the outbox's events log after the test has the
 * response. Fails after `timeoutMs`.
 */
export async function waitForEventOf(
  t: Pick<TestApp, 'logs'>,
  res: Answered,
  event: string,
  timeoutMs = 10_000,
): Promise<LogLine> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = eventOf(t, res, event);
    if (line) return line;
    if (Date.now() > deadline) {
      throw new Error(
        `no ${event} for request ${String(res.headers['x-request-id'])} within ${timeoutMs} ms`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
