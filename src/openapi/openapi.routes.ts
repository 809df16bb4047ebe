import { Router } from 'express';
import { createOpenApiDocument } from './openapi';

/**
 * `GET /api/openapi.json`, mounted in development only: a local client generator or viewer reads it from
 * the running server. Production does not advertise its surface (the committed docs/openapi.json is the
 * reference there). The document is built on first request, so starting the app costs nothing.
 */
export function createOpenApiRouter(): Router {
  const router = Router();
  let document: ReturnType<typeof createOpenApiDocument> | undefined;
  router.get('/openapi.json', (_req, res) => {
    document ??= createOpenApiDocument();
    res.json(document);
  });
  return router;
}
