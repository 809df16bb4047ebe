import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/lib/logger';
import type { LogLevel } from '../../config/config';

export type LogLine = Record<string, unknown> & { level: string; msg?: string; event?: string };

export interface CapturedLogger {
  /** The app's real logger (JSON lines, redaction included), writing to memory. */
  logger: Logger;
  /** Every line written, parsed. */
  logs: LogLine[];
  /** The raw log text, for "this never appears anywhere" assertions. */
  rawLogs(): string;
}

/** A logger as createLogger makes it, whose lines the test can read. */
export function createCapturedLogger(level: LogLevel = 'info'): CapturedLogger {
  const chunks: string[] = [];
  const logs: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      const text = chunk.toString();
      chunks.push(text);
      for (const line of text.split('\n')) if (line.trim()) logs.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return {
    logger: createLogger({ level, pretty: false, destination }),
    logs,
    rawLogs: () => chunks.join(''),
  };
}
