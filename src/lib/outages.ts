import { ServiceUnavailableError } from '../errors';
import { isPostgresUnavailableError } from './db';
import { isRedisUnavailableError } from './redis';

/**
 * The one place where an outage becomes a 503: a Postgres or Redis error that means "not now" (each
 * adapter knows its driver's errors) is answered with `service_unavailable` and Retry-After, so a
 * client retries instead of treating a passing outage as a bug. Anything else is left as it is.
 */
export function asServiceUnavailable(error: unknown): ServiceUnavailableError | undefined {
  if (error instanceof ServiceUnavailableError) return error;
  // Redis first: its errors are recognised by class, while Postgres's partly by message, and a message
  // such as node-redis's "Connection timeout" would otherwise be blamed on the database.
  if (isRedisUnavailableError(error)) return new ServiceUnavailableError('redis', error);
  if (isPostgresUnavailableError(error)) return new ServiceUnavailableError('database', error);
  return undefined;
}
