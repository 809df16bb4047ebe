import net from 'node:net';
import { runEnv } from './env';

/**
 * A TCP proxy on a free 127.0.0.1 port in front of a real server (the shared Postgres), which a test
 * can cut and restore to make a real outage without touching the server itself.
 */
export interface TcpProxy {
  port: number;
  /** Refuses: every open connection is destroyed and the port stops listening (ECONNREFUSED). */
  cut(): Promise<void>;
  /**
   * Black hole: open connections stay open but nothing crosses them any more, and new connections
   * are accepted and never answered, like a network partition or a server that froze.
   */
  stall(): void;
  /** Forwards again, on the same port; connections from before a stall are destroyed. */
  restore(): Promise<void>;
  /** Destroys everything and stops listening for good. */
  close(): Promise<void>;
  /**
   * The open connections whose first message from the client contains `marker` (a Postgres startup
   * message carries the application_name in the clear), to act on one connection and not the others.
   */
  connectionsWith(marker: string): ProxiedConnection[];
  /** Ends every new connection whose first message contains `marker`, until called with undefined. */
  refuseConnectionsWith(marker: string | undefined): void;
}

/** One client connection through the proxy. */
export interface ProxiedConnection {
  /** Keeps what the server sends from reaching the client, in order, until released. */
  holdReplies(): void;
  /** Delivers what was held, then forwards again. */
  releaseReplies(): void;
  /** Ends both sides at once, as a reset would. */
  destroy(): void;
}

interface Connection extends ProxiedConnection {
  firstChunk: string;
}

type Mode = 'forward' | 'stall' | 'cut';

export async function createTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: Mode = 'forward';
  const sockets = new Set<net.Socket>();
  const connections = new Set<Connection>();
  let refusedMarker: string | undefined;
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy()); // a reset on one side just ends the pair
  };

  function onConnection(client: net.Socket): void {
    if (mode === 'cut') {
      client.destroy();
      return;
    }
    track(client);
    if (mode === 'stall') return; // accepted, never answered
    const upstream = net.connect(target.port, target.host);
    track(upstream);
    let held: Buffer[] | undefined;
    const connection: Connection = {
      firstChunk: '',
      holdReplies: () => {
        held ??= [];
      },
      releaseReplies: () => {
        const chunks = held ?? [];
        held = undefined;
        for (const chunk of chunks) client.write(chunk);
      },
      destroy: () => {
        client.destroy();
        upstream.destroy();
      },
    };
    connections.add(connection);
    // Chunks cross only while forwarding: a stall drops them silently, and nothing answers.
    client.on('data', (chunk: Buffer) => {
      if (connection.firstChunk === '') {
        connection.firstChunk = chunk.toString('latin1');
        if (refusedMarker !== undefined && connection.firstChunk.includes(refusedMarker)) {
          connection.destroy();
          return;
        }
      }
      if (mode === 'forward') upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (mode !== 'forward') return;
      if (held) held.push(chunk);
      else client.write(chunk);
    });
    client.on('close', () => {
      connections.delete(connection);
      upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
  }

  let server: net.Server | undefined;
  function listen(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const next = net.createServer(onConnection);
      next.once('error', reject);
      next.listen(port, '127.0.0.1', () => {
        server = next;
        resolve((next.address() as net.AddressInfo).port);
      });
    });
  }
  function stopListening(): Promise<void> {
    const current = server;
    server = undefined;
    return new Promise((resolve) => (current ? current.close(() => resolve()) : resolve()));
  }
  function destroyAll(): void {
    for (const socket of sockets) socket.destroy();
  }

  const port = await listen(0);
  return {
    port,
    connectionsWith: (marker) => [...connections].filter((c) => c.firstChunk.includes(marker)),
    refuseConnectionsWith: (marker) => {
      refusedMarker = marker;
    },
    async cut() {
      mode = 'cut';
      const closed = stopListening();
      destroyAll();
      await closed;
    },
    stall() {
      mode = 'stall';
    },
    async restore() {
      destroyAll();
      mode = 'forward';
      if (!server) await listen(port);
    },
    async close() {
      mode = 'cut';
      const closed = stopListening();
      destroyAll();
      await closed;
    },
  };
}

/** The run's database, reached through `proxy` (a proxy in front of the shared Postgres). */
export function databaseUrlThrough(proxy: TcpProxy): string {
  const url = new URL(runEnv().databaseUrl);
  url.host = `127.0.0.1:${proxy.port}`;
  return url.toString();
}
