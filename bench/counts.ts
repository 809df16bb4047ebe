import type { Case } from './cases';
import type { CountingProxy } from './counting-proxy';

export interface WorkPerRequest {
  /**
   * Redis commands the server sent, per request, as the proxy read them off the wire: an EVAL is one
   * command, and so are MULTI and EXEC.
   */
  redisCommands: number;
  /** Turns of the conversation with Redis (see counting-proxy.ts), per request. */
  redisRoundTrips: number;
  /** Query and Execute messages sent to Postgres, per request: one per statement run. */
  sqlStatements: number;
  sqlRoundTrips: number;
  /** The commands sent, by name, per request. */
  redisSent: Record<string, number>;
  /**
   * What Redis executed, per request, from INFO commandstats: the commands sent plus those that
   * scripts ran (an EVAL of the rate limiter shows as eval, set, incrby and pttl).
   */
  redisExecuted: Record<string, number>;
  redisExecutedTotal: number;
  /** How many requests, sent one after the other, the figures are averaged over. */
  requests: number;
  /** Answers by status during the count (all of them must be the case's expected status). */
  statuses: Record<string, number>;
}

/** The bench's own commands to read and reset the statistics. */
const OWN_COMMANDS = new Set(['info', 'config']);

/** What the count needs of a Redis client connected straight to the bench's Redis. */
interface Redis {
  configResetStat(): Promise<unknown>;
  info(section: string): Promise<unknown>;
}

/** `cmdstat_get:calls=12,usec=…` lines into `{ get: 12 }`, the bench's own commands left out. */
function commandCalls(info: string): Record<string, number> {
  const calls: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    // Subcommands are listed as `config|resetstat`.
    const name = match[1]!.toLowerCase();
    if (!OWN_COMMANDS.has(name.split('|')[0]!)) calls[name] = Number(match[2]);
  }
  return calls;
}

async function send(c: Case, baseUrl: string, n: number): Promise<number> {
  const headers = { ...c.headers };
  // 10.255.x.x: a block the load runs never reach (they number up from 10.0.0.1), so none repeats.
  if (c.uniqueClients) headers['X-Forwarded-For'] = `10.255.${(n >> 8) & 255}.${n & 255}`;
  const response = await fetch(baseUrl + c.path, {
    method: c.method,
    headers,
    body: c.body ?? null,
    redirect: 'manual',
  });
  await response.arrayBuffer();
  return response.status;
}

/**
 * Sends `c.countRequests` requests one after the other, so that everything Redis and Postgres see in
 * the meantime belongs to them, and divides. A few requests first, uncounted, open the connections.
 */
export async function countWork(
  c: Case,
  baseUrl: string,
  deps: { redis: Redis; redisProxy: CountingProxy; postgresProxy: CountingProxy },
): Promise<WorkPerRequest> {
  for (let n = 0; n < 5; n++) await send(c, baseUrl, 60_000 + n);
  await deps.redis.configResetStat();
  deps.redisProxy.reset();
  deps.postgresProxy.reset();

  const statuses: Record<string, number> = {};
  for (let n = 0; n < c.countRequests; n++) {
    const status = await send(c, baseUrl, n);
    statuses[status] = (statuses[status] ?? 0) + 1;
  }
  // Anything a server does right after answering (none is expected) still lands in this count.
  await new Promise((resolve) => setTimeout(resolve, 200));

  const per = (total: number) => total / c.countRequests;
  const perRequest = (calls: Record<string, number>) =>
    Object.fromEntries(Object.entries(calls).map(([name, n]) => [name, per(n)]));
  const sum = (calls: Record<string, number>) => Object.values(calls).reduce((a, b) => a + b, 0);
  const executed = commandCalls(String(await deps.redis.info('commandstats')));
  const redis = deps.redisProxy.counts();
  const postgres = deps.postgresProxy.counts();
  return {
    redisCommands: per(sum(redis.commands)),
    redisRoundTrips: per(redis.roundTrips),
    sqlStatements: per(postgres.statements),
    sqlRoundTrips: per(postgres.roundTrips),
    redisSent: perRequest(redis.commands),
    redisExecuted: perRequest(executed),
    redisExecutedTotal: per(sum(executed)),
    requests: c.countRequests,
    statuses,
  };
}
