import { types } from 'node:util';
import { Client, Pool, type ClientConfig, type PoolClient, type QueryResultRow } from 'pg';
import type { DataStoreTls } from '../../config/config';
import { tlsConnectionOptions } from './data-store-tls';
import type { Logger } from './logger';

/**
 * What repositories see of Postgres: parameterized queries and transactions, nothing else. A wrapper
 * (tracing, counting) passes `options` on: dropping it silently turns a prepared statement back into
 * one parsed on every call.
 */
export interface Queryable {
  query<R extends QueryResultRow>(
    text: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<R[]>;
}

/** A statement that only reads: the one kind that may be prepared, and that writes need not wait for. */
export const isSelect = (text: string): boolean => /^\s*SELECT\b/i.test(text);

/** A row as queries return it (pg's type, for modules that must not import pg). */
export type Row = QueryResultRow;

export interface QueryOptions {
  /**
   * A statement the app runs on nearly every request: Postgres parses and plans it once per connection
   * under this name instead of on every call (ADR 0043). A constant SELECT only, one name per text
   * (both checked: anything else throws). Honoured outside transactions; inside one the statement
   * runs unnamed (see `prepared` below).
   */
  prepare?: string;
}

export interface Db extends Queryable {
  withTransaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  /** `SELECT 1`, for readiness. */
  ping(): Promise<void>;
  /** The pool's counts, read by the metrics when scraped. */
  poolStats(): PoolStats;
  close(): Promise<void>;
}

/** Connections open and idle, and queries waiting for a connection (the pool is full). */
export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

export interface DbOptions {
  url: string;
  /** AppConfig.databaseTls: undefined for a plain connection. */
  tls: DataStoreTls | undefined;
  logger: Logger;
  /** Bounded so a request waits seconds, not minutes, for an unreachable database. */
  connectionTimeoutMs?: number;
  statementTimeoutMs?: number;
  max?: number;
}

/**
 * What every connection to the app's database is made with: the app, the seed and the migrations
 * (scripts/migrate.ts), so none of them connects with weaker TLS than the others. `ssl` is always
 * explicit: pg would otherwise read PGSSLMODE from the environment behind the configuration's back.
 */
export function postgresConnection(url: string, tls: DataStoreTls | undefined): ClientConfig {
  return { connectionString: url, ssl: tls === undefined ? false : tlsConnectionOptions(tls) };
}

export function createDb({
  url,
  tls,
  logger,
  connectionTimeoutMs = 2000,
  statementTimeoutMs = 5000,
  max = 10,
}: DbOptions): Db {
  const pool = new Pool({
    ...postgresConnection(url, tls),
    max,
    connectionTimeoutMillis: connectionTimeoutMs,
    idleTimeoutMillis: 30_000,
    // Server side: a runaway statement is cancelled; a transaction left idle cannot hold locks forever.
    statement_timeout: statementTimeoutMs,
    idle_in_transaction_session_timeout: statementTimeoutMs * 2,
    // Client side: a query on a connection that went silent (network cut) fails instead of hanging.
    query_timeout: statementTimeoutMs + 1000,
    application_name: 'express-hardened-starter',
  });
  // An idle client losing its connection emits 'error' on the pool; unhandled, it would crash the process.
  pool.on('error', (err) => logger.warn({ err }, 'postgres idle client error'));

  const run = async <R extends QueryResultRow>(
    client: Pool | PoolClient,
    text: string,
    params?: readonly unknown[],
  ) => {
    const result = await client.query<R>(text, params as unknown[] | undefined);
    return result.rows;
  };

  /**
   * A named statement (QueryOptions.prepare), with one way out: when a migration changed the type of a
   * column the statement returns, Postgres refuses to run the plan a connection prepared before ("cached
   * plan must not change result type", SQLSTATE 0A000). pg-pool ends a connection whose query failed, so
   * that connection is gone; the query is run again unnamed, planned afresh, and the next connection
   * prepares the statement anew. Each connection open during the migration costs one such retry.
   * Only that refusal is retried (it comes before the statement runs, so nothing ran twice), and only
   * a SELECT may be named, so a retry never repeats a write. A change to a parameter's column type
   * is another error and fails that request, once per connection.
   */
  const texts = new Map<string, string>();
  const prepared = async <R extends QueryResultRow>(
    name: string,
    text: string,
    params?: readonly unknown[],
  ) => {
    // node-postgres itself notices a name reused with another text only on a connection that has
    // parsed the first one: checked here on every call (a map lookup; the text is checked once, when
    // its name is first seen), so the mistake shows in the first test.
    const known = texts.get(name);
    if (known === undefined) {
      if (!isSelect(text)) throw new Error(`prepared statement ${name}: only a SELECT is prepared`);
      texts.set(name, text);
    } else if (known !== text) {
      throw new Error(`prepared statement ${name} is already another text`);
    }
    try {
      const result = await pool.query<R>({ name, text, values: params as unknown[] | undefined });
      return result.rows;
    } catch (error) {
      const { code, routine } = error as { code?: unknown; routine?: unknown };
      // Postgres's plan cache refusing a plan whose result type changed (plancache.c), nothing else.
      if (code !== '0A000' || routine !== 'RevalidateCachedQuery') throw error;
      logger.warn({ statement: name }, 'prepared statement outdated by a migration; run unnamed');
      return run<R>(pool, text, params);
    }
  };

  return {
    query: (text, params, options) =>
      options?.prepare ? prepared(options.prepare, text, params) : run(pool, text, params),

    async withTransaction(work) {
      const client = await pool.connect();
      let broken = false;
      // pg-pool detaches its own 'error' listener while a client is checked out; a connection lost
      // mid-transaction (failover, network reset, idle-in-transaction timeout) would then be an
      // uncaught exception that kills the process. Listen, and destroy the client on release.
      const onLost = (err: Error) => {
        broken = true;
        logger.warn({ err }, 'postgres connection lost during a transaction');
      };
      client.on('error', onLost);
      try {
        await run(client, 'BEGIN');
        const result = await work({ query: (text, params) => run(client, text, params) });
        await run(client, 'COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw error;
      } finally {
        client.off('error', onLost);
        // A client whose ROLLBACK failed is in an unknown state: destroy it instead of reusing it.
        client.release(broken);
      }
    },

    async ping() {
      await run(pool, 'SELECT 1');
    },

    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),

    close: () => pool.end(),
  };
}

/** A connection that listens to one notification channel (listenTo). */
export interface ChannelListener {
  /** Closes the connection; `onLost` is not called for it. */
  end(): Promise<void>;
}

export interface ListenOptions {
  url: string;
  tls: DataStoreTls | undefined;
  /** The channel, exactly as notifiers name it (quoted as an identifier, so case counts). */
  channel: string;
  /** What the connection calls itself in pg_stat_activity. */
  applicationName: string;
  onNotification(payload: string): void;
  /** The connection failed or ended after it listened: called once, and nothing arrives after it. */
  onLost(err?: unknown): void;
}

/**
 * A connection of its own, outside the pool (a pooled one is shared, and LISTEN belongs to a session),
 * listening to `channel`. Resolves once Postgres has confirmed the LISTEN; rejects, with the connection
 * closed, when it cannot connect or listen. TCP keepalive finds a peer that vanished without a reset.
 */
export async function listenTo(options: ListenOptions): Promise<ChannelListener> {
  const client = new Client({
    ...postgresConnection(options.url, options.tls),
    application_name: options.applicationName,
    connectionTimeoutMillis: 5_000,
    // A server that accepted the connection and then went silent fails the LISTEN instead of hanging.
    query_timeout: 5_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  let state: 'starting' | 'listening' | 'over' = 'starting';
  const lose = (err?: unknown) => {
    if (state === 'listening') options.onLost(err);
    state = 'over';
    client.removeAllListeners('notification');
  };
  // Errors before the LISTEN is confirmed reject below; an 'error' event must still be listened to.
  client.on('error', lose);
  client.on('end', () => lose());
  client.on('notification', ({ channel, payload }) => {
    if (state === 'listening' && channel === options.channel) options.onNotification(payload ?? '');
  });
  // Ends the connection, politely for at most a second: on a connection that went silent, pg's end()
  // waits for the socket to close, which the kernel may take minutes to decide.
  const end = async () => {
    state = 'over';
    client.removeAllListeners('notification');
    let timer: NodeJS.Timeout | undefined;
    const polite = client.end().then(
      () => true,
      () => true,
    );
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), 1_000);
    });
    const ended = await Promise.race([polite, late]);
    clearTimeout(timer);
    if (!ended)
      (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  };
  try {
    await client.connect();
    // LISTEN takes no parameter: the channel goes in as an identifier, quoted by pg's own escaping.
    await client.query(`LISTEN ${client.escapeIdentifier(options.channel)}`);
  } catch (error) {
    await end();
    throw error;
  }
  // Lost between the LISTEN's answer and here: as if it had never listened.
  if ((state as string) === 'over') {
    await end();
    throw new Error('the listening connection ended as it started');
  }
  state = 'listening';
  return { end };
}

/**
 * Errors that mean "try again later" rather than "this query is wrong": socket errors, pool/connect
 * timeouts, and the SQLSTATEs below. They become 503 with Retry-After instead of 500 (lib/outages.ts).
 */
export function isPostgresUnavailableError(error: unknown): boolean {
  // Not `instanceof Error`: socket errors are made by Node's own modules, which under a vm-based runner
  // (jest) belong to another realm, so the check failed there and an outage was answered with 500.
  if (!types.isNativeError(error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    // 08: connection exception; 57P: server shutting down; 53300: too many connections;
    // 57014: statement timeout (overload); 40001/40P01: serialization failure/deadlock (retry).
    if (/^(08|57P)/.test(code) || ['53300', '57014', '40001', '40P01'].includes(code)) return true;
    if (/^E[A-Z_]+$/.test(code)) return true; // ECONNREFUSED, ECONNRESET, ETIMEDOUT, EAI_AGAIN ...
  }
  return /timeout exceeded when trying to connect|Connection terminated|Query read timeout|connection timeout/i.test(
    error.message,
  );
}
