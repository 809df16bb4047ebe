import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../config/config';
import { PRODUCTION, problemsOf } from '../support/config';

const key = () => randomBytes(32).toString('base64');

describe('MFA_ENCRYPTION_KEYS (ASVS 5.0 11.3.2, 13.3.1)', () => {
  test('when several keys are given, then the first one seals and every one is kept by its id', () => {
    const [a, b] = [key(), key()];

    const keys = loadConfig({
      NODE_ENV: 'test',
      MFA_ENCRYPTION_KEYS: `new-2026:${a}, old-2025:${b}`,
    }).mfaKeys;

    expect(keys?.map((k) => [k.id, k.key.toString('base64')])).toEqual([
      ['new-2026', a],
      ['old-2025', b],
    ]);
  });

  test('when it is unset, then there are no keys and start goes on (enrolment is off)', () => {
    expect(loadConfig({ NODE_ENV: 'test' }).mfaKeys).toBeNull();
    expect(loadConfig(PRODUCTION).warnings).toContain(
      'MFA_ENCRYPTION_KEYS is not set: no one can enrol a second factor, and admins sign in with a password alone',
    );
  });

  test.each([
    ['no id', key(), 'MFA_ENCRYPTION_KEYS entry 1 must be id:key, the id 1-32 characters of a-z 0-9 -'],
    [
      'an id with capitals',
      `Key:${key()}`,
      'MFA_ENCRYPTION_KEYS entry 1 must be id:key, the id 1-32 characters of a-z 0-9 -',
    ],
    [
      '16 bytes (AES-128)',
      `k1:${randomBytes(16).toString('base64')}`,
      'MFA_ENCRYPTION_KEYS entry 1 (k1) must be 32 bytes in base64 (openssl rand -base64 32)',
    ],
    [
      'not base64',
      `k1:${'!'.repeat(43)}=`,
      'MFA_ENCRYPTION_KEYS entry 1 (k1) must be 32 bytes in base64 (openssl rand -base64 32)',
    ],
    ['the same id twice', `k1:${key()},k1:${key()}`, 'MFA_ENCRYPTION_KEYS entry 2: the id k1 is given twice'],
  ])('when an entry has %s, then start is refused without echoing the key', (_case, value, problem) => {
    const problems = problemsOf({ NODE_ENV: 'test', MFA_ENCRYPTION_KEYS: value });

    expect(problems).toEqual([problem]);
    expect(problems.join()).not.toContain(value.slice(value.indexOf(':') + 1));
  });

  test('when production is given a key whose bytes are all alike, then start is refused; test mode accepts it', () => {
    const weak = `k1:${Buffer.alloc(32).toString('base64')}`;

    expect(problemsOf({ ...PRODUCTION, MFA_ENCRYPTION_KEYS: weak })).toEqual([
      'MFA_ENCRYPTION_KEYS entry 1 (k1) is not a random key (every byte is the same)',
    ]);
    expect(problemsOf({ NODE_ENV: 'test', MFA_ENCRYPTION_KEYS: weak })).toEqual([]);
  });

  test('when it comes from MFA_ENCRYPTION_KEYS_FILE, then the file holds the keys', () => {
    const value = `k1:${key()}`;
    const files: Record<string, string> = { '/run/secrets/mfa_keys': `${value}\n` };

    const config = loadConfig(
      { NODE_ENV: 'test', MFA_ENCRYPTION_KEYS_FILE: '/run/secrets/mfa_keys' },
      (p) => files[p]!,
    );

    expect(config.mfaKeys?.[0]?.id).toBe('k1');
  });
});

describe('REQUIRE_MFA_FOR_ADMINS', () => {
  const keys = { MFA_ENCRYPTION_KEYS: `k1:${key()}` };

  test.each([
    ['production with keys', true, { ...PRODUCTION, ...keys }],
    ['production without keys', false, PRODUCTION],
    ['development with keys', false, keys],
    ['test with keys', false, { NODE_ENV: 'test', ...keys }],
  ])('when it is unset in %s, then it is %s', (_mode, expected, env) => {
    expect(loadConfig(env).requireMfaForAdmins).toBe(expected);
  });

  test.each([
    ['production with keys', false, { ...PRODUCTION, ...keys, REQUIRE_MFA_FOR_ADMINS: 'false' }],
    ['test with keys', true, { NODE_ENV: 'test', ...keys, REQUIRE_MFA_FOR_ADMINS: 'true' }],
  ])('when it is set in %s to %s, then that is the setting', (_mode, expected, env) => {
    expect(loadConfig(env).requireMfaForAdmins).toBe(expected);
  });

  test('when it is true without keys, then start is refused: no admin could ever enrol', () => {
    expect(problemsOf({ NODE_ENV: 'test', REQUIRE_MFA_FOR_ADMINS: 'true' })).toEqual([
      'REQUIRE_MFA_FOR_ADMINS=true needs MFA_ENCRYPTION_KEYS: without it no admin could enrol',
    ]);
  });
});
