import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../../config/config';

export type { Logger };

/**
 * Credentials never reach the log: cookies, authorization headers, issued session cookies and any
 * password-like field (OWASP Logging Cheat Sheet: "data to exclude").
 */
const SECRET_FIELDS = ['password', 'currentPassword', 'newPassword', 'passwordHash', 'password_hash'];
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
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  if (pretty && !destination) {
    // pino-pretty is a development dependency: only loaded when a developer asks for pretty output.
    // The request id follows the message on every line that has one (an access line, a security
    // event, an error), so a developer can grep one request's lines without reading a JSON tail.
    const prettyOptions = {
      singleLine: true,
      messageFormat: '{msg}{if requestId} {requestId}{end}',
      ignore: 'requestId',
    };
    return pino({ ...options, transport: { target: 'pino-pretty', options: prettyOptions } });
  }
  return destination ? pino(options, destination) : pino(options);
}
