import { loadConfig } from '../../config/config';
import { PRODUCTION, problemsOf } from '../support/config';

const MAIL = {
  SMTP_URL: 'smtps://mailer:s3cret@smtp.example.test',
  MAIL_FROM: 'Example <no-reply@example.test>',
};

describe('REQUIRE_VERIFIED_EMAIL configuration', () => {
  test.each([
    ['production with mail', true, { ...PRODUCTION, ...MAIL }],
    ['production without mail', false, PRODUCTION],
    ['development (mail to the log)', false, {}],
    ['development with SMTP', false, MAIL],
    ['test with SMTP', false, { NODE_ENV: 'test', ...MAIL }],
    ['test without mail', false, { NODE_ENV: 'test' }],
  ])('when it is unset in %s, then it is %s', (_mode, expected, env) => {
    expect(loadConfig(env).requireVerifiedEmail).toBe(expected);
  });

  test.each([
    ['production with mail', false, { ...PRODUCTION, ...MAIL, REQUIRE_VERIFIED_EMAIL: 'false' }],
    ['test with SMTP', true, { NODE_ENV: 'test', ...MAIL, REQUIRE_VERIFIED_EMAIL: 'true' }],
    ['development (mail to the log)', true, { REQUIRE_VERIFIED_EMAIL: 'true' }],
    ['production without mail', false, { ...PRODUCTION, REQUIRE_VERIFIED_EMAIL: 'false' }],
  ])('when it is set in %s to %s, then that is the setting', (_mode, expected, env) => {
    expect(loadConfig(env).requireVerifiedEmail).toBe(expected);
  });

  test.each([
    ['production', PRODUCTION],
    ['test', { NODE_ENV: 'test' }],
  ])('when it is true in %s while mail is off, then start is refused: no one could verify', (_mode, env) => {
    expect(problemsOf({ ...env, REQUIRE_VERIFIED_EMAIL: 'true' })).toEqual([
      'REQUIRE_VERIFIED_EMAIL=true needs mail (SMTP_URL): without it no one could verify an address',
    ]);
  });

  test('when it is neither true nor false, then start is refused naming it', () => {
    expect(problemsOf({ REQUIRE_VERIFIED_EMAIL: 'yes' })).toEqual([
      expect.stringMatching(/^REQUIRE_VERIFIED_EMAIL: /),
    ]);
  });
});
