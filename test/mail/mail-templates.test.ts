import { createMailTemplates, escapeText, linkTo } from '../../src/mail/mail-templates';

const PUBLIC_ORIGIN = 'https://app.example.test:8443';

describe('mail templates', () => {
  const templates = createMailTemplates({ publicOrigin: PUBLIC_ORIGIN, cache: true });

  test('when a password changed notice is rendered, then its one link is the forgot-password page of the public origin', () => {
    const mail = templates.render({ kind: 'password_changed', name: 'Bob' });

    expect(mail.subject).toBe('Your password was changed');
    expect(mail.text).toContain(`${PUBLIC_ORIGIN}/forgot-password\n`);
    expect([...mail.html.matchAll(/href="([^"]*)"/g)].map((m) => m[1])).toEqual([
      `${PUBLIC_ORIGIN}/forgot-password`,
    ]);
    expect(mail.text).not.toContain('token');
  });

  test('when a verification mail is rendered, then its one link is the verify-email page with the token in the fragment, and a name cannot add markup or lines', () => {
    const token = 'T'.repeat(43);
    const mail = templates.render({
      kind: 'verify_email',
      name: '<b>Eve</b>\nClick evil.example',
      token,
      validForHours: 24,
    });

    expect(mail.subject).toBe('Confirm your email address');
    expect(mail.text).toContain(`${PUBLIC_ORIGIN}/verify-email#token=${token}\n`);
    expect(mail.text).toContain('for 24 hours');
    expect(mail.text).toContain('Hello <b>Eve</b> Click evil.example,');
    expect([...mail.html.matchAll(/href="([^"]*)"/g)].map((m) => m[1])).toEqual([
      `${PUBLIC_ORIGIN}/verify-email#token=${token}`,
    ]);
    expect(mail.html).toContain('&lt;b&gt;Eve&lt;/b&gt;');
  });

  test('when a reset token has characters a URL reserves, then the link carries it encoded in the fragment', () => {
    expect(linkTo(PUBLIC_ORIGIN, '/reset-password', 'a+b&c=d')).toBe(
      `${PUBLIC_ORIGIN}/reset-password#token=a%2Bb%26c%3Dd`,
    );
  });

  test.each(['//evil.example.test/reset', 'https://evil.example.test/reset'])(
    'when a page would lead off the public origin (%s), then no link is made',
    (page) => {
      expect(() => linkTo(PUBLIC_ORIGIN, page, 'token')).toThrow(
        /must stay on https:\/\/app\.example\.test:8443/,
      );
    },
  );

  test('when a text value holds line breaks or other control characters, then each becomes a space', () => {
    expect(escapeText('a\r\nb\tc\u0000d\u2028e\u2029f\u0085g')).toBe('a  b c d e f g');
    expect(escapeText('<b>&"\'</b>')).toBe('<b>&"\'</b>');
  });
});
