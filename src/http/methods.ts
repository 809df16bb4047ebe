import type { RequestHandler } from 'express';
import { MethodNotAllowedError } from '../errors';

/** Every method some route of the app answers (OPTIONS: Express answers it for each route itself). */
export const SERVED_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/**
 * TRACE asks the server to echo the request back, headers included: a script that can send it reads
 * cookies and credentials it could not otherwise see (Cross-Site Tracing), and behind a proxy it shows
 * what the proxy added. No route answers it today; refusing it here, before any router, keeps a later
 * `router.all()` or catch-all from ever doing so (ASVS 13.4.4). 405 with Allow, in the JSON envelope
 * or the HTML error page like every other refusal. The nginx edge refuses it too, before the app.
 *
 * The other two diagnostic or tunnelling methods never reach Express: Node's parser (llhttp) does not
 * know TRACK (IIS's TRACE) and answers it 400 itself, and a CONNECT request becomes the server's
 * 'connect' event, which nothing listens to, so Node closes the connection without an answer.
 */
export const refuseTrace: RequestHandler = (req, _res, next) => {
  next(req.method === 'TRACE' ? new MethodNotAllowedError(SERVED_METHODS) : undefined);
};
