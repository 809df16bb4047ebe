import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import dotenv from 'dotenv';
import { ConfigError, loadConfig, type AppConfig } from '../config/config';
import { buildApp } from './app';
import { createDb } from './lib/db';
import { createLogger } from './lib/logger';
import { createPasswordHasher } from './lib/passwords';
import { createRedisClient } from './lib/redis';

/** The only module that touches process state: environment, signals, exit codes. */
function readConfig(): AppConfig {
  // A .env file is a development convenience; real deployments set the environment. `quiet` keeps
  // dotenv from printing to stdout, which would corrupt JSON log output.
  dotenv.config({ quiet: true });
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      // Every problem at once, no stack trace: this is an operator's mistake, not a bug.
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}

function main(): void {
  const config = readConfig();
  const logger = createLogger({ level: config.logLevel, pretty: config.env === 'development' });
  for (const warning of config.warnings) logger.warn(warning);

  const db = createDb({ url: config.databaseUrl, logger });
  const redis = createRedisClient({ url: config.redisUrl, logger });
  // Not awaited: the app starts even while Redis is down (readiness says so) and connects when it can.
  redis.connect().catch((err: unknown) => logger.error({ err }, 'redis connect failed'));

  const lifecycle = { shuttingDown: false };
  const app = buildApp({ config, db, redis, logger, passwords: createPasswordHasher(), lifecycle });

  const server = app.listen(config.port, config.host, (error?: Error) => {
    if (error) {
      // A port already in use, a host that does not exist: say so, and stop.
      logger.fatal({ err: error }, 'cannot listen');
      process.exit(1);
    }
    const { address, port } = server.address() as AddressInfo;
    logger.info({ address, port, env: config.env }, 'listening');
  });
  // Slow clients cannot hold sockets forever; keep-alive outlives the proxy's idle upstream timeout (60 s).
  server.requestTimeout = 30_000;
  server.headersTimeout = 20_000;
  server.keepAliveTimeout = 65_000;

  // A response sent with `Connection: keep-alive` during shutdown leaves its socket open, and that socket
  // holds server.close() (so the exit) until the shutdown timeout. Once shutdown begins, responses not
  // yet started say `Connection: close` instead, and Node ends their socket after them (RFC 9112 9.6).
  // Prepended so it runs before Express answers.
  const openResponses = new Set<ServerResponse>();
  server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (lifecycle.shuttingDown) res.setHeader('Connection', 'close');
    openResponses.add(res);
    res.once('close', () => openResponses.delete(res));
  });

  async function shutdown(signal: NodeJS.Signals): Promise<void> {
    if (lifecycle.shuttingDown) {
      logger.warn({ signal }, 'second signal during shutdown: exiting now');
      process.exit(1);
    }
    lifecycle.shuttingDown = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    const force = setTimeout(() => {
      logger.warn({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timeout: closing remaining connections');
      server.closeAllConnections();
    }, config.shutdownTimeoutMs);
    for (const res of openResponses) if (!res.headersSent) res.setHeader('Connection', 'close');
    // Stops accepting; idle keep-alive sockets close now, busy ones after their response.
    await new Promise<void>((resolve) => server.close(() => resolve()));
    clearTimeout(force);
    await Promise.allSettled([db.close(), redis.close()]);
    logger.info('shutdown complete');
    process.exit(0);
  }
  process.on('SIGTERM', (signal) => void shutdown(signal));
  process.on('SIGINT', (signal) => void shutdown(signal));

  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason }, 'unhandled promise rejection');
    process.exit(1);
  });
}

main();
