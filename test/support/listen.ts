import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';

export interface Listening {
  server: Server;
  port: number;
  /** `http://127.0.0.1:<port>`, for `request(url)`. */
  url: string;
  close(): Promise<void>;
}

/**
 * Starts the app on a real port and waits until it listens. supertest binds 127.0.0.1 by itself; `host`
 * '::' is how main.ts-like deployments listen, where an IPv4 client shows up as `::ffff:127.0.0.1`.
 */
export function listen(app: Express, host = '127.0.0.1'): Promise<Listening> {
  return new Promise((resolve, reject) => {
    const server = app.listen(0, host, (error?: Error) => {
      if (error) return reject(error);
      const { port } = server.address() as AddressInfo;
      resolve({
        server,
        port,
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done, fail) => {
            server.closeAllConnections();
            server.close((err) => (err ? fail(err) : done()));
          }),
      });
    });
  });
}
