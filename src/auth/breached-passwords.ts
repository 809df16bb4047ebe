import { createHash } from 'node:crypto';
import type { AppConfig, PasswordBreachApi } from '../../config/config';
import type { Logger } from '../lib/logger';

/** Why a lookup gave no answer. The password is then accepted (ADR 0025). */
export const BREACH_CHECK_FAILURES = ['timeout', 'unreachable', 'status', 'malformed'] as const;
export type BreachCheckFailure = (typeof BREACH_CHECK_FAILURES)[number];

/**
 * The largest answer read. A range holds about 800-1,000 suffixes of 40 bytes, padded answers alike
 * (~40 KB): anything far beyond is not a range answer, and is not read into memory.
 */
const MAX_BODY_BYTES = 256 * 1024;

/** One line of a range answer: the other 35 hex characters of a SHA-1, a colon, how often it was seen. */
const RANGE_LINE = /^([0-9A-Fa-f]{35}):(\d{1,12})$/;

export interface BreachedPasswords {
  /** true when the password is in the breach corpus; false when it is not, or the lookup failed. */
  isBreached(password: string): Promise<boolean>;
}

/**
 * The breached-password check (ASVS 6.2.12) against a k-anonymity range API in the Have I Been Pwned
 * format: `GET <url>/range/<first 5 hex characters of the password's SHA-1>` answers the other 35
 * characters of every breached hash with that prefix, one `SUFFIX:COUNT` per line. Only the prefix
 * leaves the process, shared by about a million possible passwords; the match is made here. With
 * `Add-Padding: true` the answer also holds made-up suffixes with a count of 0 (ignored), so its size
 * does not narrow the prefix down either.
 *
 * A lookup that cannot answer (timeout, network error, a status other than 200, an answer that is not
 * in the format or too large) accepts the password and logs `password.breach_check_failed`: the other
 * rules have already run, and a third party's outage must not stop sign-ups, changes and resets
 * (ADR 0025). undefined when PASSWORD_BREACH_API_URL is not set.
 */
export function createBreachedPasswords(
  config: Pick<AppConfig, 'passwordBreachApi'>,
  deps: {
    /** The logger to write with at the time of a lookup: the request's, so the line has its id. */
    logger: () => Logger;
    onFailure?: (reason: BreachCheckFailure) => void;
  },
): BreachedPasswords | undefined {
  const api = config.passwordBreachApi;
  if (!api) return undefined;
  return {
    async isBreached(password) {
      // SHA-1 is what the range API indexes; it stands in for the password here, it protects nothing.
      const sha1 = createHash('sha1').update(password, 'utf8').digest('hex').toUpperCase();
      const answer = await fetchRange(api, sha1.slice(0, 5));
      if (!answer.ok) {
        deps
          .logger()
          .warn(
            { event: 'password.breach_check_failed', reason: answer.reason, ...answer.detail },
            'password.breach_check_failed',
          );
        deps.onFailure?.(answer.reason);
        return false;
      }
      const suffix = sha1.slice(5);
      return answer.lines.some((line) => line.suffix === suffix && line.count > 0);
    },
  };
}

type RangeAnswer =
  | { ok: true; lines: Array<{ suffix: string; count: number }> }
  | { ok: false; reason: BreachCheckFailure; detail?: Record<string, unknown> };

async function fetchRange(api: PasswordBreachApi, prefix: string): Promise<RangeAnswer> {
  // One deadline for everything: connecting, the status line and the whole body.
  const signal = AbortSignal.timeout(api.timeoutMs);
  const failed = (error: unknown): RangeAnswer =>
    signal.aborted
      ? { ok: false, reason: 'timeout', detail: { timeoutMs: api.timeoutMs } }
      : { ok: false, reason: 'unreachable', detail: { error: (error as Error).message } };
  try {
    const response = await fetch(`${api.url}/range/${prefix}`, {
      headers: { 'Add-Padding': 'true' },
      // The configured host answers, or nobody: a redirect could lead anywhere, over plain http too.
      redirect: 'error',
      signal,
    });
    if (response.status !== 200) {
      await response.body?.cancel();
      return { ok: false, reason: 'status', detail: { status: response.status } };
    }
    const body = await readBounded(response);
    return body === null ? malformed('the answer is larger than a range') : parseRange(body);
  } catch (error) {
    return failed(error);
  }
}

/** The body as text, or null once it grows past MAX_BODY_BYTES (the rest is never read). */
async function readBounded(response: Response): Promise<string | null> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.byteLength;
    // Leaving the loop cancels the stream and with it the connection.
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseRange(body: string): RangeAnswer {
  const lines = body.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  const parsed: Array<{ suffix: string; count: number }> = [];
  for (const line of lines) {
    const match = RANGE_LINE.exec(line);
    if (!match) return malformed('a line is not SUFFIX:COUNT');
    parsed.push({ suffix: match[1]!.toUpperCase(), count: Number(match[2]) });
  }
  // Every prefix has breached hashes (and padding adds more): an empty answer is not a range.
  return parsed.length === 0 ? malformed('the answer is empty') : { ok: true, lines: parsed };
}

const malformed = (why: string): RangeAnswer => ({ ok: false, reason: 'malformed', detail: { why } });
