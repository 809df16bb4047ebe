import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Server as NetServer, type AddressInfo } from 'node:net';
import dotenv from 'dotenv';
import { ConfigError, loadConfig, type AppConfig } from '../config/config';
import { buildApp } from './app';
import { createAccountTokens } from './auth/account-tokens';
import { createDb } from './lib/db';
import { createLogger } from './lib/logger';
import { createPasswordHasher } from './lib/passwords';
import { createRedisClient, keyAccessRefusal } from './lib/redis';
import { startSweeps } from './lib/sweeps';
import { setPoolPriority } from './lib/thread-pool';
import { createMailTransport } from './mail/mail-transport';
import { createOutbox } from './mail/outbox';
import { createMetrics } from './metrics/metrics';
import { createMetricsServer } from './metrics/metrics-server';
import { createMfaRepository } from './mfa/mfa.repository';
import { ENROLMENT_LIFETIME_S } from './mfa/mfa.service';
import { userCacheFor } from './users/user-cache';

/** How long a shutting-down server must see no request before it stops listening (see drain()). */
const DRAIN_QUIET_MS = 250;
/** The longest it keeps listening under steady traffic (at most half of SHUTDOWN_TIMEOUT_MS). */
const DRAIN_MAX_MS = 2000;
/** The longest it then keeps its idle connections open, for a request already written to one. */
const IDLE_GRACE_MAX_MS = 1000;

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
  // Lines of the current event-loop turn wait in memory until its end (lib/logger.ts): write them
  // whatever ends the process, process.exit() or an uncaught exception.
  process.on('exit', () => logger.flush());
  for (const warning of config.warnings) logger.warn(warning);

  const db = createDb({ url: config.databaseUrl, tls: config.databaseTls, logger });
  // Signed-in users served from memory while Postgres's change notifications say they are current (ADR 0044).
  const userCache = userCacheFor(config, db, logger);
  const redis = createRedisClient({
    url: config.redisUrl,
    tls: config.redisTls,
    sentinel: config.redisSentinel,
    logger,
  });
  // Rows past their use are deleted by every app instance, every 15 minutes: expired and used account
  // tokens, and second-factor enrolments never confirmed within their lifetime (ADR 0038).
  const tokens = createAccountTokens({ db });
  const mfa = createMfaRepository(db);
  const sweeps = startSweeps({
    sweeps: [
      { what: 'expired and used account tokens', sweep: () => tokens.sweep() },
      {
        what: 'second-factor enrolments never confirmed',
        sweep: () => mfa.sweepExpiredEnrolments(ENROLMENT_LIFETIME_S),
      },
    ],
    logger,
  });
  // A Redis user that may not touch the keys under REDIS_KEY_PREFIX (users.acl written for another
  // prefix) would answer every session and limiter command with NOPERM: sign-ins would fail with 500s
  // while PING, and so readiness, still answered. Like a missing secret, that is an operator's mistake
  // to refuse at once. Checked whenever the client becomes ready, since Redis may only become
  // reachable after start: every connection of the single-node client; with Sentinel, the first one
  // and each change of master (node-redis's Sentinel client says 'ready' for those only).
  redis.on('ready', () => {
    void keyAccessRefusal(redis, config.redisKeyPrefix).then((refusal) => {
      if (refusal === undefined) return;
      logger.fatal(
        { keyPrefix: config.redisKeyPrefix, reply: refusal },
        // NOPERM names what was refused: a key (the ACL's key patterns) or the command itself.
        /\bkeys?\b/i.test(refusal)
          ? 'redis refuses the keys under REDIS_KEY_PREFIX: its user needs ~<prefix>* (users.acl is written for one prefix), or set the prefix it allows'
          : 'redis refuses the commands of this app: its user needs those of scripts/redis-acl.ts (APP_REDIS_COMMANDS)',
      );
      process.exit(1);
    });
  });
  // Not awaited: the app starts even while Redis is down (readiness says so) and connects when it can.
  redis.connect().catch((err: unknown) => logger.error({ err }, 'redis connect failed'));

  // Password hashes yield their core to the event loop when both want it (lib/thread-pool.ts).
  if (config.hashing.threadNice > 0) {
    void setPoolPriority(config.hashing.threadNice).then((outcome) =>
      'threads' in outcome
        ? logger.info(outcome, 'password hashing threads deprioritized')
        : logger.warn({ reason: outcome.skipped }, 'password hashing threads keep their priority'),
    );
  }

  // Mail leaves through the outbox, out of the request path (ADR 0013); none when mail is off.
  const mailTransport = createMailTransport(config.mail, logger);
  const outbox = mailTransport && createOutbox({ transport: mailTransport, logger });

  const lifecycle = { shuttingDown: false };
  // Metrics only when METRICS_PORT is set: otherwise nothing is recorded and no listener opens.
  const metrics = config.metrics ? createMetrics() : undefined;
  const app = buildApp({
    config,
    db,
    redis,
    logger,
    passwords: createPasswordHasher(),
    lifecycle,
    outbox,
    metrics,
    userCache,
  });

  // Its own listener, on its own address (METRICS_HOST), never the app's port (src/metrics/metrics-server.ts).
  const metricsServer = config.metrics && metrics ? createMetricsServer(metrics.registry) : undefined;
  if (config.metrics && metricsServer) {
    // A plain http.Server reports a failed listen as an event, not to the callback (Express's listen does).
    metricsServer.once('error', (error) => {
      logger.fatal({ err: error }, 'cannot listen for metrics');
      process.exit(1);
    });
    metricsServer.listen(config.metrics.port, config.metrics.host, () => {
      const { address, port } = metricsServer.address() as AddressInfo;
      logger.info({ address, port }, 'metrics listening');
    });
  }

  // Node's strict HTTP/1 parser, whatever NODE_OPTIONS says: --insecure-http-parser (a flag that
  // "fixes" a misbehaving client) would accept Transfer-Encoding with Content-Length, obsolete line
  // folding and bare LF, exactly the disagreements about where a request ends that request smuggling
  // uses past a proxy (ASVS 4.2.1). The server's own option wins over the flag.
  const server = createServer({ insecureHTTPParser: false }, app);
  server.once('error', (error) => {
    // A port already in use, a host that does not exist: say so, and stop.
    logger.fatal({ err: error }, 'cannot listen');
    process.exit(1);
  });
  server.listen(config.port, config.host, () => {
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
  let lastRequestAt = 0;
  server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (lifecycle.shuttingDown) res.setHeader('Connection', 'close');
    lastRequestAt = Date.now();
    openResponses.add(res);
    res.once('close', () => openResponses.delete(res));
  });

  // When the signal comes, requests can already be on their way: accepted by the kernel but not yet by
  // Node (the event loop was busy hashing a password), or written to a keep-alive socket and not yet
  // read. Closing at once resets them, and the proxy answers 502 to requests it had already forwarded
  // (test/compose/stack.test.ts caught this). So the server keeps serving, each response with
  // `Connection: close`, until nothing is open and nothing has started for a short quiet moment, with
  // an I/O pass of the event loop between the last check and the close. Steady traffic never goes
  // quiet, so the drain is capped; then the server stops listening and the requests still open get
  // the rest of SHUTDOWN_TIMEOUT_MS.
  async function drain(since: number, limitMs: number): Promise<void> {
    const quietMs = Math.min(DRAIN_QUIET_MS, limitMs);
    const quiet = () => openResponses.size === 0 && Date.now() - Math.max(lastRequestAt, since) >= quietMs;
    while (Date.now() - since < limitMs) {
      if (quiet()) {
        // setImmediate runs after the event loop's I/O phase: connections waiting there are seen first.
        await new Promise((resolve) => setImmediate(resolve));
        if (quiet()) return;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  async function shutdown(signal: NodeJS.Signals): Promise<void> {
    if (lifecycle.shuttingDown) {
      logger.warn({ signal }, 'second signal during shutdown: exiting now');
      process.exit(1);
    }
    lifecycle.shuttingDown = true;
    const started = Date.now();
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    const force = setTimeout(() => {
      logger.warn({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timeout: closing remaining connections');
      server.closeAllConnections();
    }, config.shutdownTimeoutMs);
    for (const res of openResponses) if (!res.headersSent) res.setHeader('Connection', 'close');
    await drain(Date.now(), Math.min(DRAIN_MAX_MS, config.shutdownTimeoutMs / 2));
    // Stops listening first, leaving the idle connections open: a connection the proxy kept between
    // requests is idle to Node, and closing it just as the proxy writes a request to it cuts a request
    // already sent, which the proxy answers 502 rather than send a POST twice (test/process/shutdown.test.ts
    // writes to one just after the listener closed; ADR 0022). A connection refused from now on sent
    // nothing: the proxy retries it on another instance (a PUT or DELETE excepted, ADR 0022), and that
    // failure is also what tells it this instance is gone, so it stops using the connections it kept.
    // Those get a quiet moment like the drain's (at most IDLE_GRACE_MAX_MS: under steady traffic on
    // them the race is back at its end), then idle ones close; busy ones close after their response
    // (both waits end by three quarters of SHUTDOWN_TIMEOUT_MS, so `force` is still armed for them).
    // net.Server's close stops listening only; http.Server's would also close the idle connections.
    const closed = new Promise<void>((resolve) => NetServer.prototype.close.call(server, () => resolve()));
    // Nothing new can arrive without a listener: no wait once every connection is gone.
    await Promise.race([
      drain(Date.now(), Math.min(IDLE_GRACE_MAX_MS, config.shutdownTimeoutMs / 4)),
      closed,
    ]);
    server.closeIdleConnections();
    await closed;
    clearTimeout(force);
    // Scrapes go on while the app drains (they show the drain); the listener closes with the app's.
    if (metricsServer) {
      metricsServer.closeAllConnections();
      await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
    }
    sweeps.stop();
    // The server takes no more requests: the mails they queued get what is left of SHUTDOWN_TIMEOUT_MS
    // to leave, retries without their pauses; the outbox logs each mail it gives up.
    if (outbox) {
      const unsent = await outbox.drain(Math.max(0, config.shutdownTimeoutMs - (Date.now() - started)));
      if (unsent > 0) logger.warn({ unsent }, 'mails not sent before shutdown');
    }
    await Promise.allSettled([userCache?.close(), db.close(), redis.close()]);
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
