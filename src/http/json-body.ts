import express, { type RequestHandler } from 'express';
import { UnsupportedMediaTypeError } from '../errors';

const JSON_BODY_LIMIT = '100kb';

const parseJson = express.json({ limit: JSON_BODY_LIMIT, strict: true });

/**
 * The API speaks JSON only. A body of any other type is refused with 415 instead of being silently
 * ignored (Express's parser skips what it does not recognise); requests without a body pass.
 */
export const jsonBody: RequestHandler = (req, res, next) => {
  // `Content-Length: 0` is no body (type-is would count it as one), chunked encoding always is.
  const hasBody =
    req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
  // Nothing to parse (a GET, a DELETE): the parser would only find that out again.
  if (!hasBody) return next();
  if (!req.is('application/json')) {
    return next(new UnsupportedMediaTypeError('Send the request body as application/json.'));
  }
  parseJson(req, res, next);
};
