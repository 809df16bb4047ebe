import { createServer } from 'node:http';

/**
 * The ceiling: Node's HTTP server answering the same body as /healthz and nothing else. If the load
 * generator cannot push this far above the app, the app's figures measure the generator.
 */
const BODY = JSON.stringify({ status: 'ok' });

createServer((_req, res) => {
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.end(BODY);
}).listen(Number(process.env.PORT), process.env.HOST ?? '127.0.0.1');
