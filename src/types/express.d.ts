import type { Logger } from 'pino';
import type { User } from '../users/user';

declare global {
  namespace Express {
    interface Request {
      /** The request id: echoed in X-Request-Id, logged, and put in error bodies. */
      requestId: string;
      /** The client address in one normal form (IPv4-mapped IPv6 unwrapped). */
      clientIp: string;
      /** A logger bound to the request id, made on first use (http/access-log.ts provideRequestLogger). */
      log: Logger;
      /** The signed-in user, from Postgres or the user cache (frozen then: never assign to its fields). */
      user?: User;
    }
  }
}

export {};
