import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Express } from 'express';
import request from 'supertest';

/** What a password hash looks like wherever it might leak: the argon2 PHC string or the column name. */
const SECRET_MARKERS = [/\$argon2/i, /password_hash/i, /passwordHash/i];

export interface RecordedResponse {
  method: string;
  url: string;
  status: number;
  /** The response headers and body as sent, for "this never appears anywhere" checks. */
  text: string;
}

export interface ResponseRecorder {
  /**
   * The app behind a recording front: still the Express app (listen(), settings) wherever one is
   * taken, and every request it handles, however it arrives, is recorded.
   */
  app: Express;
  /** supertest bound to the recording app. */
  request(): ReturnType<typeof request>;
  /** The recorded responses that carry a secret marker; clears the record. */
  takeLeaks(): RecordedResponse[];
  /** How many responses were recorded since the last `takeLeaks()`. */
  count(): number;
}

/**
 * Wraps the app so every response it sends through this recorder is captured server-side, whatever
 * the test asserts about it. useTestApp checks the record after each test: no response of any
 * kind, error or success, may carry a password hash.
 */
export function recordResponses(app: Express): ResponseRecorder {
  let recorded: RecordedResponse[] = [];
  const record = (req: IncomingMessage, res: ServerResponse) => {
    const end = res.end;
    res.end = function (this: ServerResponse, ...args: unknown[]) {
      const [chunk] = args;
      const body = typeof chunk === 'string' || Buffer.isBuffer(chunk) ? chunk.toString() : '';
      recorded.push({
        method: req.method ?? '',
        url: req.url ?? '',
        status: res.statusCode,
        text: `${JSON.stringify(res.getHeaders())}\n${body}`,
      });
      return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as ServerResponse['end'];
  };
  // A Proxy rather than a wrapper function, so a suite cannot bypass the record by accident: code that
  // takes an Express app (app.listen() passes `this` to http.createServer) gets this one too.
  const recording = new Proxy(app, {
    apply(target, thisArg, args: Parameters<Express>) {
      record(args[0] as IncomingMessage, args[1] as ServerResponse);
      return Reflect.apply(target, thisArg, args) as unknown;
    },
  });
  return {
    app: recording,
    request: () => request(recording),
    takeLeaks() {
      const leaks = recorded.filter((r) => SECRET_MARKERS.some((marker) => marker.test(r.text)));
      recorded = [];
      return leaks;
    },
    count: () => recorded.length,
  };
}
