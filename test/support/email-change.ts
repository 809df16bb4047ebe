import type { ParsedMail } from 'mailparser';
import request from 'supertest';
import type { TestUser } from './factories';
import { linkIn, tokenOf } from './password-reset';
import type { TestApp } from './test-app';

/** The email change flow driven as a client would, with the mails read from a real SMTP server. */

export const CONFIRM_SUBJECT = 'Confirm your new email address';
export const NOTICE_SUBJECT = 'A change of your email address was asked for';
export const CONFIRM_PAGE = '/confirm-email';

/** Asks, as the signed-in `user` (cookie), to move to `newEmail`, giving the current password. */
export const askForEmailChange = (
  t: TestApp,
  user: TestUser & { cookie: string },
  newEmail: string,
  {
    headers = {},
    password = user.password,
    name,
  }: { headers?: Record<string, string>; password?: string; name?: string } = {},
) =>
  request(t.app)
    .patch(`/api/users/${user.user.id}`)
    .set('Cookie', user.cookie)
    .set(headers)
    .send({ email: newEmail, currentPassword: password, ...(name === undefined ? {} : { name }) });

export const confirmEmailChange = (t: TestApp, token: string) =>
  request(t.app).post('/api/auth/email-change/confirm').send({ token });

/** The confirmation link of a mail, as the user would click it. */
export const confirmLinkIn = (mail: ParsedMail): URL => linkIn(mail, CONFIRM_PAGE);

export const confirmTokenIn = (mail: ParsedMail): string => tokenOf(confirmLinkIn(mail));

/** Sets the user's address verified, as an earlier confirmation would have, to watch it reset. */
export async function markVerified(t: TestApp, userId: string): Promise<void> {
  await t.db.query('UPDATE users SET email_verified_at = now() WHERE id = $1', [userId]);
}

/** The user's email tokens (verification, change) that are still live, by purpose. */
export async function liveTokenPurposes(t: TestApp, userId: string): Promise<string[]> {
  const rows = await t.db.query<{ purpose: string }>(
    'SELECT purpose FROM account_tokens WHERE user_id = $1 AND used_at IS NULL ORDER BY purpose',
    [userId],
  );
  return rows.map((row) => row.purpose);
}
