import { loadConfig } from '../../config/config';
import { PRODUCTION, problemsOf } from '../support/config';

const MAIL = {
  SMTP_URL: 'smtps://mailer:s3cret@smtp.example.test',
  MAIL_FROM: 'Example <no-reply@example.test>',
};

describe('mail configuration', () => {
  test('when development has no SMTP_URL, then mails go to the log and the start-up warnings say so', () => {
    const config = loadConfig({});

    expect(config.mail).toEqual({
      transport: 'log',
      from: { name: undefined, address: 'no-reply@localhost' },
    });
    expect(config.warnings.join('\n')).toMatch(/SMTP_URL is not set: mails are written to the log/);
  });

  test.each(['production', 'test'])(
    'when %s has no SMTP_URL, then mail is off and the start-up warnings say which flows are off',
    (mode) => {
      const config = loadConfig(mode === 'production' ? PRODUCTION : { NODE_ENV: mode });

      expect(config.mail).toEqual({ transport: 'off' });
      expect(config.warnings.join('\n')).toMatch(
        /SMTP_URL is not set: mail is off, and so are the flows that need it \(password reset, email verification; email changes take effect at once, unconfirmed\)/,
      );
    },
  );

  test.each([
    [
      'smtps:// (TLS from the start), then port 465 and the credentials decoded',
      'smtps://mailer%40example.test:p%40ss%3Aword@smtp.example.test',
      {
        port: 465,
        secure: true,
        requireTLS: false,
        auth: { user: 'mailer@example.test', pass: 'p@ss:word' },
      },
    ],
    [
      'smtp:// with requireTLS=true, then STARTTLS is required on port 587',
      'smtp://smtp.example.test?requireTLS=true',
      { port: 587, secure: false, requireTLS: true, auth: undefined },
    ],
  ])('when production has %s', (_what, url, expected) => {
    const config = loadConfig({ ...PRODUCTION, ...MAIL, SMTP_URL: url });

    expect(config.mail).toEqual({
      transport: 'smtp',
      from: { name: 'Example', address: 'no-reply@example.test' },
      smtp: { host: 'smtp.example.test', ...expected },
    });
    expect(config.warnings.join('\n')).not.toMatch(/SMTP_URL/);
    expect(Object.isFrozen(config.mail)).toBe(true);
  });

  test.each(['smtp://smtp.example.test:587', 'smtp://10.0.0.5:25?requireTLS=false'])(
    'when production has %s (clear text to another machine), then start is refused',
    (url) => {
      expect(problemsOf({ ...PRODUCTION, ...MAIL, SMTP_URL: url })).toEqual([
        expect.stringMatching(/^SMTP_URL: smtp:\/\/ to \S+ would send mail and credentials in clear text/),
      ]);
    },
  );

  test.each(['smtp://localhost:25', 'smtp://127.0.0.1:2525', 'smtp://[::1]:25'])(
    'when production has %s (a relay on this machine), then clear text is accepted',
    (url) => {
      const config = loadConfig({ ...PRODUCTION, ...MAIL, SMTP_URL: url });

      expect(config.mail).toMatchObject({ transport: 'smtp', smtp: { secure: false, requireTLS: false } });
    },
  );

  test('when development has smtp:// to another machine without requireTLS, then it loads (the rule is production only)', () => {
    const config = loadConfig({ ...MAIL, SMTP_URL: 'smtp://smtp.example.test' });

    expect(config.mail).toMatchObject({ transport: 'smtp', smtp: { requireTLS: false } });
  });

  test('when SMTP_URL is set without MAIL_FROM, then start is refused in any mode', () => {
    expect(problemsOf({ SMTP_URL: MAIL.SMTP_URL })).toEqual([
      'MAIL_FROM is required with SMTP_URL: the address mails are sent from',
    ]);
  });

  test.each([
    [
      'a password in a parameter',
      'smtps://smtp.example.test?pass=hunter2',
      /^SMTP_URL: unknown parameter pass/,
    ],
    [
      'requireTLS=yes',
      'smtp://smtp.example.test?requireTLS=yes',
      /^SMTP_URL: requireTLS must be true or false$/,
    ],
    ['a path', 'smtps://smtp.example.test/inbox', /^SMTP_URL: must not have a path/],
    [
      'a broken %-escape in the password',
      'smtps://mailer:hunter2%zz@smtp.example.test',
      /^SMTP_URL: the user name or password has a malformed %-escape$/,
    ],
    [
      'another scheme',
      'https://smtp.example.test',
      /^SMTP_URL: must be a URL starting with smtp:\/\/ or smtps:\/\//,
    ],
  ])('when SMTP_URL has %s, then it is refused and no value is echoed', (_what, url, message) => {
    const problems = problemsOf({ ...MAIL, SMTP_URL: url });

    expect(problems).toEqual([expect.stringMatching(message)]);
    expect(problems.join('\n')).not.toContain('hunter2');
  });

  test('when SMTP_URL comes from SMTP_URL_FILE, then the file content is used', () => {
    const config = loadConfig(
      { ...PRODUCTION, MAIL_FROM: MAIL.MAIL_FROM, SMTP_URL_FILE: '/run/secrets/smtp' },
      (p) => (p === '/run/secrets/smtp' ? `${MAIL.SMTP_URL}\n` : ''),
    );

    expect(config.mail).toMatchObject({
      transport: 'smtp',
      smtp: { auth: { user: 'mailer', pass: 's3cret' } },
    });
  });

  test('when SMTP_URL_FILE names an empty file, then mail is off, as without SMTP_URL (how compose turns it off)', () => {
    const config = loadConfig({ ...PRODUCTION, SMTP_URL_FILE: '/run/secrets/app/smtp_url' }, () => '\n');

    expect(config.mail).toEqual({ transport: 'off' });
    expect(config.warnings.join('\n')).toMatch(/SMTP_URL is not set: mail is off/);
  });

  test.each([
    ['no-reply@example.test', { name: undefined, address: 'no-reply@example.test' }],
    ['"Example App" <no-reply@example.test>', { name: 'Example App', address: 'no-reply@example.test' }],
    ['  <no-reply@example.test> ', { name: undefined, address: 'no-reply@example.test' }],
  ])('when MAIL_FROM is %p, then the sender is read from it', (from, expected) => {
    expect(loadConfig({ ...MAIL, MAIL_FROM: from }).mail).toMatchObject({ from: expected });
  });

  test.each([
    'not an address',
    'Example no-reply@example.test>',
    'Ex"ample <no-reply@example.test>',
    'Example\r\nBcc: victim@example.test <no-reply@example.test>',
  ])('when MAIL_FROM is %p, then it is refused', (from) => {
    expect(problemsOf({ ...MAIL, MAIL_FROM: from })).toEqual([
      'MAIL_FROM: must be an address or "Name <address>"',
    ]);
  });

  test('when the per-address mail limit is not set, then 5 an hour apply; out of range, it is refused', () => {
    expect(loadConfig({}).rateLimits.mailsPerAddressPerHour).toBe(5);
    expect(loadConfig({ MAIL_MAX_PER_ADDRESS_PER_HOUR: '2' }).rateLimits.mailsPerAddressPerHour).toBe(2);
    expect(problemsOf({ MAIL_MAX_PER_ADDRESS_PER_HOUR: '0' })).toEqual([
      expect.stringMatching(/^MAIL_MAX_PER_ADDRESS_PER_HOUR:/),
    ]);
  });
});
