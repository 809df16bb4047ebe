import request from 'supertest';
import { expectError } from '../support/assertions';
import { createBrowser, signInThroughForm } from '../support/browser';
import { createUser } from '../support/factories';
import { useTestApp } from '../support/use-test-app';

/**
 * ASVS 6.2.8: the password is verified exactly as received, without truncation or case
 * transformation. The password below has what a careless implementation changes: spaces at both ends
 * (trimmed by a `.trim()` in a schema), capitals (lost to case folding), more than 64 characters
 * (truncated by a bounded field or an old hashing API) and a precomposed "é" (changed by Unicode
 * normalization). The app applies no normalization at all: the string the user sent is the string
 * argon2 hashes, as UTF-8 bytes. ASVS would allow a documented normalization; none is needed here,
 * since browsers send what the keyboard typed, the same way on every sign-in.
 */

const PASSWORD = '  Über-Otters juggle BRASS lanterns beneath the crooked pier at dawn, café 42  ';
const codePoints = [...PASSWORD];

/** Each way of changing the password that must not sign in, named for the failure message. */
const ALTERED: Array<[string, string]> = [
  ['trimmed', PASSWORD.trim()],
  ['without its leading spaces', PASSWORD.trimStart()],
  ['without its trailing spaces', PASSWORD.trimEnd()],
  ['truncated to its first 64 characters', codePoints.slice(0, 64).join('')],
  ['without its last character', codePoints.slice(0, -1).join('')],
  ['upper-cased', PASSWORD.toUpperCase()],
  ['lower-cased', PASSWORD.toLowerCase()],
  ['NFD-normalized (é as e + combining accent)', PASSWORD.normalize('NFD')],
];

describe('ASVS 6.2.8: the password is verified exactly as typed', () => {
  const t = useTestApp();

  test('when the password is measured, then it has what the alterations below change', () => {
    expect(codePoints.length).toBeGreaterThan(64);
    expect(PASSWORD).not.toBe(PASSWORD.trim());
    expect(PASSWORD).not.toBe(PASSWORD.normalize('NFD'));
    for (const [, altered] of ALTERED) expect(altered).not.toBe(PASSWORD);
  });

  test('when the exact password is sent, then 200', async () => {
    const { email } = await createUser(t, { password: PASSWORD });

    const res = await request(t.app).post('/api/auth/login').send({ email, password: PASSWORD });

    expect(res.status).toBe(200);
  });

  test.each(ALTERED)('when the password is sent %s, then 401 invalid_credentials', async (_how, altered) => {
    const { email } = await createUser(t, { password: PASSWORD });

    const res = await request(t.app).post('/api/auth/login').send({ email, password: altered });

    expectError(res, 401, 'invalid_credentials');
  });

  test('when the form sign-in sends the password trimmed, then it is refused, and the exact one signs in', async () => {
    const { email } = await createUser(t, { password: PASSWORD });

    const trimmed = await signInThroughForm(createBrowser(t.app), { email, password: PASSWORD.trim() });
    const exact = await signInThroughForm(createBrowser(t.app), { email, password: PASSWORD });

    expect(trimmed.status).toBe(401);
    expect(exact.status).toBe(303);
  });
});
