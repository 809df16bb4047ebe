import { createMailTemplates, escapeText, linkTo } from '../../src/mail/mail-templates';
import { maskAddress } from '../../src/mail/recipient';

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

  // ASVS 5.0 1.1.2, 1.3.11: a name cannot add markup to a mail; fixed subject, structured addresses.
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

  test('when an email change confirmation is rendered, then its one link is the confirm page of the public origin with the token in the fragment', () => {
    const mail = templates.render({
      kind: 'email_change_confirm',
      name: 'Bob',
      token: 'T'.repeat(43),
      newEmail: 'bob.new@example.test',
      validForHours: 24,
    });

    const link = `${PUBLIC_ORIGIN}/confirm-email#token=${'T'.repeat(43)}`;
    expect(mail.subject).toBe('Confirm your new email address');
    expect(mail.text).toContain(`${link}\n`);
    expect(mail.text).toContain('bob.new@example.test');
    expect(mail.text).toContain('24 hours');
    expect([...mail.html.matchAll(/href="([^"]*)"/g)].map((m) => m[1])).toEqual([link]);
  });

  test('when an email change notice is rendered, then it names the new address masked and links only to the forgot-password page', () => {
    const mail = templates.render({
      kind: 'email_change_notice',
      name: 'Bob',
      maskedNewEmail: maskAddress('mallory@example.test'),
    });

    expect(mail.subject).toBe('A change of your email address was asked for');
    expect(mail.text).toContain('m***@example.test');
    expect(mail.text).not.toContain('mallory');
    expect(mail.text).toContain('If this was not you');
    expect([...mail.html.matchAll(/href="([^"]*)"/g)].map((m) => m[1])).toEqual([
      `${PUBLIC_ORIGIN}/forgot-password`,
    ]);
    expect(`${mail.text}${mail.html}`).not.toContain('token');
  });

  test.each([
    ['alice@example.test', 'a***@example.test'],
    ['a@b.test', 'a***@b.test'],
    ['"odd@local"@example.test', '"***@example.test'],
  ])('when %s is masked, then %s', (address, masked) => {
    expect(maskAddress(address)).toBe(masked);
  });

  // ASVS 5.0 1.2.2, 14.2.1: the link is built from PUBLIC_URL, the token encoded, in the fragment.
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

  // ASVS 5.0 1.3.3: control characters are flattened before the text body.
  test('when a text value holds line breaks or other control characters, then each becomes a space', () => {
    expect(escapeText('a\r\nb\tc\u0000d\u2028e\u2029f\u0085g')).toBe('a  b c d e f g');
    expect(escapeText('<b>&"\'</b>')).toBe('<b>&"\'</b>');
  });
});
