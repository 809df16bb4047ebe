import { loadConfig } from '../../config/config';
import { PRODUCTION, problemsOf } from '../support/config';

describe('PASSWORD_CONTEXT_WORDS (ASVS 6.1.2, 6.2.11)', () => {
  test('when it is unset, then the list is empty, and only production warns at start', () => {
    expect(loadConfig({}).passwordContextWords).toEqual([]);
    expect(loadConfig({}).warnings.join('\n')).not.toMatch(/PASSWORD_CONTEXT_WORDS/);
    expect(loadConfig(PRODUCTION).warnings.join('\n')).toMatch(
      /PASSWORD_CONTEXT_WORDS is empty: passwords built on the product or organisation name are not refused/,
    );
  });

  test('when it lists words, then they are trimmed, lowercased and each kept once', () => {
    const config = loadConfig({
      ...PRODUCTION,
      PASSWORD_CONTEXT_WORDS: ' Quantiva , Acme Corp,quantiva,QNTV ',
    });

    expect(config.passwordContextWords).toEqual(['quantiva', 'acme corp', 'qntv']);
    expect(config.warnings.join('\n')).not.toMatch(/PASSWORD_CONTEXT_WORDS/);
  });

  test.each([
    ['a word under three characters', 'quantiva,qv', 'word 2 must be 3-64 characters'],
    ['an empty entry', 'quantiva,,acme', 'word 2 must be 3-64 characters'],
    ['a word over 64 characters', 'q'.repeat(65), 'word 1 must be 3-64 characters'],
    ['more than 100 words', Array.from({ length: 101 }, (_, i) => `word${i}`).join(','), 'at most 100 words'],
  ])('when it has %s, then the start is refused naming the problem', (_what, value, problem) => {
    expect(problemsOf({ PASSWORD_CONTEXT_WORDS: value })).toEqual([`PASSWORD_CONTEXT_WORDS: ${problem}`]);
  });
});

describe('PASSWORD_BREACH_API_URL and PASSWORD_BREACH_TIMEOUT_MS (ASVS 6.2.12)', () => {
  test('when it is unset, then there is no lookup', () => {
    expect(loadConfig(PRODUCTION).passwordBreachApi).toBeNull();
  });

  test.each([
    ['https://api.pwnedpasswords.com', 'https://api.pwnedpasswords.com'],
    ['https://api.pwnedpasswords.com/', 'https://api.pwnedpasswords.com'],
    ['https://mirror.example.test/pwned/', 'https://mirror.example.test/pwned'],
  ])('when it is %s, then lookups go under %s with a 2 s deadline', (value, url) => {
    expect(loadConfig({ ...PRODUCTION, PASSWORD_BREACH_API_URL: value }).passwordBreachApi).toEqual({
      url,
      timeoutMs: 2000,
    });
  });

  test('when PASSWORD_BREACH_TIMEOUT_MS is set, then it is the deadline, within 100-10000 ms', () => {
    const base = { PASSWORD_BREACH_API_URL: 'https://api.pwnedpasswords.com' };

    expect(loadConfig({ ...base, PASSWORD_BREACH_TIMEOUT_MS: '500' }).passwordBreachApi?.timeoutMs).toBe(500);
    expect(problemsOf({ ...base, PASSWORD_BREACH_TIMEOUT_MS: '99' })).toEqual([
      'PASSWORD_BREACH_TIMEOUT_MS: Too small: expected number to be >=100',
    ]);
    expect(problemsOf({ ...base, PASSWORD_BREACH_TIMEOUT_MS: '10001' })).toHaveLength(1);
  });

  test('when production points it at another host over http, then the start is refused', () => {
    expect(problemsOf({ ...PRODUCTION, PASSWORD_BREACH_API_URL: 'http://pwned.example.test' })).toEqual([
      'PASSWORD_BREACH_API_URL: must be https in production (or a server on this machine), not http://pwned.example.test',
    ]);
  });

  test.each(['http://127.0.0.1:8080', 'http://localhost:8080/hibp', 'http://[::1]:8080'])(
    'when production points it at %s over http, then it is accepted: the lookup never leaves the machine',
    (value) => {
      expect(problemsOf({ ...PRODUCTION, PASSWORD_BREACH_API_URL: value })).toEqual([]);
    },
  );

  test('when development points it at another host over http, then it is accepted', () => {
    expect(loadConfig({ PASSWORD_BREACH_API_URL: 'http://pwned.example.test' }).passwordBreachApi?.url).toBe(
      'http://pwned.example.test',
    );
  });

  test.each([
    ['not a URL', 'api.pwnedpasswords.com', /must be an absolute URL/],
    ['another scheme', 'ftp://api.pwnedpasswords.com', /without credentials, query or fragment/],
    ['credentials', 'https://user:secret@api.pwnedpasswords.com', /without credentials, query or fragment/],
    ['a query', 'https://api.pwnedpasswords.com/?mode=ntlm', /without credentials, query or fragment/],
    ['a fragment', 'https://api.pwnedpasswords.com/#range', /without credentials, query or fragment/],
  ])('when it has %s, then the start is refused, without echoing the value', (_what, value, problem) => {
    const problems = problemsOf({ PASSWORD_BREACH_API_URL: value });

    expect(problems).toEqual([expect.stringMatching(problem)]);
    expect(problems.join()).not.toContain('secret');
  });
});
