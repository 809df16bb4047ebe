import { isLoopback } from './loopback';

/** Where and how long the breached-password lookup runs (src/auth/breached-passwords.ts). */
export interface PasswordBreachApi {
  /** The API's base URL, without a trailing slash: requests go to `${url}/range/<prefix>`. */
  readonly url: string;
  /** The whole lookup (connection, answer, body) ends after this long; the password is then accepted. */
  readonly timeoutMs: number;
}

interface Context {
  isProduction: boolean;
  problems: string[];
  warnings: string[];
}

/** Shorter words turn up inside unrelated passwords ("total" holds "ta") and would refuse them for no gain. */
const MIN_CONTEXT_WORD_LENGTH = 3;
const MAX_CONTEXT_WORD_LENGTH = 64;
/** Each word is searched for in every new password and given to the strength estimate: a bounded list. */
const MAX_CONTEXT_WORDS = 100;

/**
 * PASSWORD_CONTEXT_WORDS: the documented list of words tied to this deployment (product, organisation,
 * system names) that no password may contain (ASVS 6.1.2, 6.2.11). Comma-separated, trimmed and
 * lowercased: the check ignores case. The template cannot know a deployment's names, so the default is
 * empty, and production says so at start.
 */
export function passwordContextWords(raw: string | undefined, { isProduction, problems, warnings }: Context) {
  if (raw === undefined) {
    if (isProduction) {
      warnings.push(
        'PASSWORD_CONTEXT_WORDS is empty: passwords built on the product or organisation name are not refused (ASVS 6.2.11)',
      );
    }
    return Object.freeze([]);
  }
  const words = raw.split(',').map((word) => word.trim().toLowerCase());
  if (words.length > MAX_CONTEXT_WORDS)
    problems.push(`PASSWORD_CONTEXT_WORDS: at most ${MAX_CONTEXT_WORDS} words`);
  for (const [index, word] of words.entries()) {
    const length = [...word].length;
    if (length < MIN_CONTEXT_WORD_LENGTH || length > MAX_CONTEXT_WORD_LENGTH) {
      problems.push(
        `PASSWORD_CONTEXT_WORDS: word ${index + 1} must be ${MIN_CONTEXT_WORD_LENGTH}-${MAX_CONTEXT_WORD_LENGTH} characters`,
      );
    }
  }
  return Object.freeze([...new Set(words)]);
}

/**
 * PASSWORD_BREACH_API_URL: the base URL of a k-anonymity range API in the Have I Been Pwned format
 * (ASVS 6.2.12); unset: no lookup. Only a 5-character hash prefix is sent, but which prefixes a
 * deployment asks for still says something about the passwords its users choose, and an answer changed
 * in transit could refuse every password or none: production wants https, except to this machine (a
 * local mirror). No credentials, query or fragment: the path gets `/range/<prefix>` appended.
 */
export function passwordBreachApi(
  raw: string | undefined,
  timeoutMs: number,
  { isProduction, problems }: Context,
): PasswordBreachApi | null {
  if (raw === undefined) return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    problems.push('PASSWORD_BREACH_API_URL: must be an absolute URL such as https://api.pwnedpasswords.com');
    return null;
  }
  if (!['http:', 'https:'].includes(url.protocol) || url.username || url.password || url.search || url.hash) {
    problems.push('PASSWORD_BREACH_API_URL: must be an http(s) URL without credentials, query or fragment');
    return null;
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isProduction && url.protocol !== 'https:' && !isLoopback(host)) {
    problems.push(
      `PASSWORD_BREACH_API_URL: must be https in production (or a server on this machine), not ${url.origin}`,
    );
    return null;
  }
  // Without its trailing slashes, so `${url}/range/…` has exactly one (trimmed without a pattern: a
  // `/+$` backtracks polynomially on a long run of slashes).
  let base = url.href;
  while (base.endsWith('/')) base = base.slice(0, -1);
  return Object.freeze({ url: base, timeoutMs });
}
