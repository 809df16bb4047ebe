import net from 'node:net';
import { postgresMessageReader, redisCommandReader, type ChunkReader } from './wire';

/**
 * A TCP proxy in front of Redis or Postgres that counts what crosses it, so the bench can say how many
 * round trips, commands and SQL statements one request costs.
 *
 * A round trip is a turn of the conversation on one connection: the client speaks, then waits for the
 * server. Everything the client writes before the server's next byte belongs to the same turn, so
 * commands written together (node-redis pipelines what one tick issues, a MULTI/EXEC block, an EVAL,
 * pg's Parse/Bind/Execute/Sync) count once, and each command awaited before the next counts once.
 * Chunking cannot change the figure: TCP may split or merge writes, never reorder the two directions.
 */
export interface CountingProxy {
  port: number;
  counts(): Counts;
  reset(): void;
  close(): Promise<void>;
}

export interface Counts {
  roundTrips: number;
  /** Redis: the commands sent, by name. */
  commands: Record<string, number>;
  /** Postgres: Query ('Q', simple protocol) and Execute ('E', extended protocol) messages. */
  statements: number;
}

const zero = (): Counts => ({ roundTrips: 0, commands: {}, statements: 0 });

export async function startCountingProxy(
  target: { host: string; port: number },
  protocol: 'redis' | 'postgres',
): Promise<CountingProxy> {
  let counts = zero();
  const sockets = new Set<net.Socket>();
  const newReader = (): ChunkReader =>
    protocol === 'redis'
      ? redisCommandReader((name) => (counts.commands[name] = (counts.commands[name] ?? 0) + 1))
      : postgresMessageReader((type) => {
          if (type === 'Q' || type === 'E') counts.statements++;
        });

  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());

    const read = newReader();
    let clientsTurn = false;
    client.on('data', (chunk: Buffer) => {
      if (!clientsTurn) counts.roundTrips++;
      clientsTurn = true;
      read(chunk);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      clientsTurn = false;
      client.write(chunk);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });

  return {
    port: (server.address() as net.AddressInfo).port,
    counts: () => structuredClone(counts),
    reset: () => {
      counts = zero();
    },
    close: async () => {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
