import { ConnectionTimeoutError, ErrorReply, SocketClosedUnexpectedlyError } from 'redis';
import { ServiceUnavailableError } from '../../src/errors';
import { asServiceUnavailable } from '../../src/lib/outages';

/** Errors shaped like the ones pg and Node's sockets raise, for the classification alone. */
const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('asServiceUnavailable: which errors are an outage (503) and whose', () => {
  test.each([
    ['a refused connection', withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
    ['a server shutting down (57P01)', withCode('terminating connection', '57P01')],
    ['a statement timeout (57014)', withCode('canceling statement due to statement timeout', '57014')],
    ['a pool that cannot connect in time', new Error('timeout exceeded when trying to connect')],
  ])('when Postgres fails with %s, then it is a database outage', (_case, error) => {
    expect(asServiceUnavailable(error)).toMatchObject({ status: 503, service: 'database', cause: error });
  });

  test.each([
    ['a connect timeout', new ConnectionTimeoutError()],
    ['a socket closed mid-command', new SocketClosedUnexpectedlyError()],
    ['a replica refusing writes', new ErrorReply('READONLY You can not write against a read only replica.')],
  ])('when Redis fails with %s, then it is a redis outage, never blamed on the database', (_case, error) => {
    expect(asServiceUnavailable(error)).toMatchObject({ status: 503, service: 'redis' });
  });

  test.each([
    ['a unique violation', withCode('duplicate key value violates unique constraint', '23505')],
    ['a syntax error', withCode('syntax error at or near "SELEC"', '42601')],
    [
      'a Redis reply to a wrong command',
      new ErrorReply('WRONGTYPE Operation against a key holding the wrong kind of value'),
    ],
    ['a plain bug', new TypeError("Cannot read properties of undefined (reading 'id')")],
  ])('when the error is %s, then it is not an outage (a 500 or a domain error)', (_case, error) => {
    expect(asServiceUnavailable(error)).toBeUndefined();
  });

  test('when the error already is a ServiceUnavailableError, then it is kept as it is', () => {
    const outage = new ServiceUnavailableError('redis');
    expect(asServiceUnavailable(outage)).toBe(outage);
  });
});
