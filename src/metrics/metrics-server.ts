import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/**
 * The metrics listener: `GET /metrics` in Prometheus's text format, 404 for anything else. A server of
 * its own on its own port (METRICS_PORT), never a route of the app: the proxy forwards to the app's
 * port only, so no `location` added to nginx for the app, catch-alls included, can expose the
 * internals these numbers describe (pool sizes, lock counts, memory). No session, no limiter: who may
 * scrape is decided by where it listens (METRICS_HOST) and the network around it.
 */
export function createMetricsServer(registry: Registry): Server {
  const server = createServer((req, res) => {
    // Nothing here is for a browser or a cache, should one ever reach it.
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not found\n');
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(body),
      () => res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Metrics failed\n'),
    );
  });
  // A scrape is one short request; nothing should hold a socket open.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  return server;
}
