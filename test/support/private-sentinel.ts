import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { createPrivateRedis, type PrivateRedis } from './private-redis';
import { createTcpProxy, type TcpProxy } from './tcp-proxy';

/**
 * A Sentinel deployment of the test's own on loopback: a master, one replica and three sentinels that
 * need two votes to fail over, with short timings so a failover takes seconds. Nothing is on disk but
 * the sentinels' config files (they rewrite them), in a temporary directory removed by stop().
 */
export interface PrivateSentinel {
  readonly masterName: string;
  readonly master: PrivateRedis;
  readonly replica: PrivateRedis;
  readonly sentinels: readonly PrivateRedis[];
  /** With `replicationProxy`: the replication link from the replica to the master, to stall. */
  readonly replicationLink: TcpProxy | undefined;
  /** REDIS_SENTINELS for the app: 127.0.0.1:port,… */
  readonly sentinelsEnv: string;
  /** The port the sentinels currently name as master (asks the first sentinel that answers). */
  currentMasterPort(): Promise<number>;
  /**
   * What each sentinel thinks of the master and its replicas, and the last lines each one logged: for
   * the message of a test whose wait on Sentinel ran out.
   */
  describe(): Promise<string>;
  /** Kills every process and removes the directory. */
  stop(): Promise<void>;
}

/** A master is declared down after this much silence; small, so the test's failover is quick. */
const DOWN_AFTER_MS = 1000;
const FAILOVER_TIMEOUT_MS = 3000;

/**
 * `replicationProxy`: the replica reaches its master through a TCP proxy of the test's, which can
 * stall the link so that writes the master acknowledges never reach the replica (the writes an
 * asynchronous failover loses). Clients and sentinels still reach both servers directly.
 */
export async function startPrivateSentinel({
  masterName = 'app-master',
  replicationProxy = false,
}: { masterName?: string; replicationProxy?: boolean } = {}): Promise<PrivateSentinel> {
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-'));
  const started: { kill(): Promise<void> }[] = [];
  try {
    // No 5 s pause before the first full sync (Redis's default for diskless sync): the replica is in
    // step within a moment, and so is the old master when it returns as a replica.
    // --dir: a replica's full sync writes the received snapshot to its directory, never the cwd.
    const dataArgs = ['--repl-diskless-sync-delay', '0', '--dir', dir];
    const master = await createPrivateRedis({ args: dataArgs });
    await master.start();
    started.push(master);
    const replicationLink = replicationProxy
      ? await createTcpProxy({ host: '127.0.0.1', port: master.port })
      : undefined;
    if (replicationLink) started.push({ kill: () => replicationLink.close() });
    const replica = await createPrivateRedis({
      args: [...dataArgs, '--replicaof', '127.0.0.1', String(replicationLink?.port ?? master.port)],
    });
    await replica.start();
    started.push(replica);
    await untilInSync(replica);
    const sentinels: PrivateRedis[] = [];
    for (let i = 0; i < 3; i += 1) {
      const file = join(dir, `sentinel-${i}.conf`);
      writeFileSync(
        file,
        [
          `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${masterName} ${DOWN_AFTER_MS}`,
          `sentinel failover-timeout ${masterName} ${FAILOVER_TIMEOUT_MS}`,
          `sentinel parallel-syncs ${masterName} 1`,
          '',
        ].join('\n'),
      );
      const sentinel = await createPrivateRedis({ command: 'redis-sentinel', args: [file] });
      await sentinel.start();
      started.push(sentinel);
      sentinels.push(sentinel);
    }
    return {
      masterName,
      master,
      replica,
      sentinels,
      replicationLink,
      sentinelsEnv: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
      currentMasterPort: () => askMasterPort(sentinels, masterName),
      describe: () => describeSentinels(sentinels, masterName),
      async stop() {
        await Promise.all(started.map((p) => p.kill()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await Promise.all(started.map((p) => p.kill()));
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Resolves once the replica's link to its master is up (its first full sync is done), within 10 s. */
async function untilInSync(replica: PrivateRedis): Promise<void> {
  const client = createClient({ url: replica.url });
  client.on('error', () => {});
  await client.connect();
  try {
    const until = Date.now() + 10_000;
    while (!(await client.info('replication')).includes('master_link_status:up')) {
      if (Date.now() > until) throw new Error('the replica did not sync with its master within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    await client.close();
  }
}

async function askMasterPort(sentinels: readonly PrivateRedis[], masterName: string): Promise<number> {
  for (const sentinel of sentinels) {
    const client = createClient({ url: sentinel.url, socket: { reconnectStrategy: false } });
    client.on('error', () => {});
    try {
      await client.connect();
      const reply = (await client.sendCommand([
        'SENTINEL',
        'GET-MASTER-ADDR-BY-NAME',
        masterName,
      ])) as string[];
      return Number(reply[1]);
    } catch {
      // The next sentinel.
    } finally {
      if (client.isOpen) await client.close();
    }
  }
  throw new Error('no sentinel answered');
}

/** Each sentinel's view (`SENTINEL MASTER` and `SENTINEL REPLICAS`, the fields that explain a wait) and log tail. */
async function describeSentinels(sentinels: readonly PrivateRedis[], masterName: string): Promise<string> {
  const fields = [
    ...['ip', 'port', 'flags', 'role-reported', 'role-reported-time', 'info-refresh'],
    ...['last-ok-ping-reply', 's-down-time', 'master-link-status', 'failover-state'],
  ];
  // A flat list of names and values, or (as node-redis gives it here) an object of them.
  const pick = (reply: unknown) => {
    const list = Array.isArray(reply) ? (reply as string[]) : Object.entries(reply as object).flat();
    const entries: string[] = [];
    for (let i = 0; i + 1 < list.length; i += 2) {
      if (fields.includes(String(list[i]))) entries.push(`${list[i]}=${list[i + 1]}`);
    }
    return entries.join(' ');
  };
  const parts: string[] = [];
  for (const [index, sentinel] of sentinels.entries()) {
    // Short deadlines: this runs when a test's own time is nearly spent, and must not outlast it.
    const client = createClient({
      url: sentinel.url,
      socket: { reconnectStrategy: false, connectTimeout: 2000 },
      commandOptions: { timeout: 2000 },
    });
    client.on('error', () => {});
    let view: string;
    try {
      await client.connect();
      const master = await client.sendCommand(['SENTINEL', 'MASTER', masterName]);
      const replicas = (await client.sendCommand(['SENTINEL', 'REPLICAS', masterName])) as unknown[];
      view = [`master: ${pick(master)}`, ...replicas.map((r) => `replica: ${pick(r)}`)].join('\n');
    } catch (error) {
      view = `no answer: ${(error as Error).message}`;
    } finally {
      if (client.isOpen) await client.close();
    }
    const log = sentinel.recentOutput().split('\n').slice(-40).join('\n');
    parts.push(`sentinel ${index} (port ${sentinel.port})\n${view}\n${log}`);
  }
  return parts.join('\n\n');
}
