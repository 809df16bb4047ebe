import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../../config/config';

export type { Logger };

/**
 * Credentials never reach the log: cookies, authorization headers, issued session cookies and any
 * password-like field (OWASP Logging Cheat Sheet: "data to exclude").
 */
const SECRET_FIELDS = ['password', 'currentPassword', 'newPassword', 'passwordHash', 'password_hash'];
/** What a redacted value reads as, wherever the app censors one. */
export const REDACTED = '[redacted]';

const REDACT_PATHS = [
  'req.headers.cookie',
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  ...SECRET_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]),
];

export interface LoggerOptions {
  level: LogLevel;
  /** Human-readable output for a developer's terminal; JSON lines otherwise. */
  pretty: boolean;
  /** Where lines go (tests capture them); stdout by default. */
  destination?: DestinationStream;
}

export function createLogger({ level, pretty, destination }: LoggerOptions): Logger {
  const options: pino.LoggerOptions = {
    level,
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    base: undefined,
    // ASVS 16.2.2: every line's time in UTC, ISO 8601 (`"time":"2026-11-30T12:00:00.000Z"`), whatever the
    // host's time zone, so lines of several hosts and services sort and correlate as they are. pino's
    // default is epoch milliseconds, which a reader cannot read and a collector may take for seconds.
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  if (pretty && !destination) {
    // pino-pretty is a development dependency: only loaded when a developer asks for pretty output.
    // The request id follows the message on every line that has one (an access line, a security
    // event, an error), so a developer can grep one request's lines without reading a JSON tail.
    const prettyOptions = {
      singleLine: true,
      // The same UTC ISO 8601 time as the JSON lines; pino-pretty's default is the local time of day.
      translateTime: "UTC:yyyy-mm-dd'T'HH:MM:ss.l'Z'",
      messageFormat: '{msg}{if requestId} {requestId}{end}',
      ignore: 'requestId',
    };
    return pino({ ...options, transport: { target: 'pino-pretty', options: prettyOptions } });
  }
  return pino(options, destination ?? coalescedStdout());
}

/** Lines past this many bytes are written at once, without waiting for the end of the turn. */
const COALESCE_MAX_BYTES = 8192;

/**
 * Standard output, with the lines of one event-loop turn written together at its end (`setImmediate`),
 * synchronously, in one write(2). Under load a turn finishes several responses, and a system call per
 * access line was about a twentieth of a signed-in read's CPU (ADR 0011). A line waits for the end of the
 * turn it was logged in, never for a timer; `flush()` writes what waits at once, and main.ts calls it
 * on exit, so `process.exit` and a crash keep every line. Only a SIGKILL can lose lines: those of the
 * turn it interrupts.
 */
function coalescedStdout(): DestinationStream & { flush(): void } {
  // sonic-boom (pino's own destination) buffers up to minLength and writes synchronously, retrying
  // EAGAIN when stdout is a non-blocking pipe.
  const out = pino.destination({ dest: 1, sync: true, minLength: COALESCE_MAX_BYTES });
  let pending = false;
  const flush = () => {
    if (!pending) return;
    pending = false;
    out.flush();
  };
  return {
    write(line: string) {
      out.write(line);
      if (pending) return;
      pending = true;
      setImmediate(flush);
    },
    flush,
  };
}
