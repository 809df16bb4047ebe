/**
 * Readers of what a client sends to Redis and to Postgres, fed chunk by chunk as TCP delivers them
 * (a message may span chunks, a chunk may hold many messages). They only need to find message
 * boundaries and names, never to understand the rest.
 */
export type ChunkReader = (chunk: Buffer) => void;

/**
 * The command at the start of `buffer` as RESP frames it: an array of bulk strings (`*2\r\n$3\r\nGET\r\n
 * $1\r\nk\r\n`), as every client library sends, or an inline command line. Undefined while incomplete.
 */
function parseRedisCommand(buffer: Buffer): { name: string; length: number } | undefined {
  let offset = 0;
  const line = (): string | undefined => {
    const end = buffer.indexOf('\r\n', offset);
    if (end < 0) return undefined;
    const text = buffer.toString('latin1', offset, end);
    offset = end + 2;
    return text;
  };
  const header = line();
  if (header === undefined) return undefined;
  if (!header.startsWith('*')) return { name: header.split(' ')[0]!.toLowerCase(), length: offset };
  let name = '';
  for (let i = 0, count = Number(header.slice(1)); i < count; i++) {
    const size = line();
    if (size === undefined) return undefined;
    const start = offset;
    offset += Number(size.slice(1)) + 2;
    if (offset > buffer.length) return undefined;
    if (i === 0) name = buffer.toString('latin1', start, offset - 2).toLowerCase();
  }
  return { name, length: offset };
}

/** Calls `onCommand` with the name of each command a Redis client sends. */
export function redisCommandReader(onCommand: (name: string) => void): ChunkReader {
  let pending = Buffer.alloc(0);
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    for (let command = parseRedisCommand(pending); command; command = parseRedisCommand(pending)) {
      onCommand(command.name);
      pending = pending.subarray(command.length);
    }
  };
}

/** SSLRequest and GSSENCRequest: untyped like the startup message, and followed by another one. */
const ENCRYPTION_REQUESTS = new Set([80877103, 80877104]);

/**
 * Calls `onMessage` with the type of each message a Postgres client sends (protocol v3): after an
 * untyped startup message, one type byte and an int32 length that counts itself.
 */
export function postgresMessageReader(onMessage: (type: string) => void): ChunkReader {
  let pending = Buffer.alloc(0);
  let started = false;
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      if (pending.length < (started ? 5 : 8)) return;
      const length = started ? 1 + pending.readInt32BE(1) : pending.readInt32BE(0);
      if (pending.length < length) return;
      if (started) onMessage(String.fromCharCode(pending[0]!));
      else started = !ENCRYPTION_REQUESTS.has(pending.readInt32BE(4));
      pending = pending.subarray(length);
    }
  };
}
