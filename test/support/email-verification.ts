import type { ParsedMail } from 'mailparser';
import request from 'supertest';
import { nthMailTo } from './password-reset';
import type { TestSmtpServer } from './smtp';
import type { TestApp } from './test-app';

/** Email verification driven as a client would, with the links read from mails a real SMTP server got. */

export const VERIFY_SUBJECT = 'Confirm your email address';

/** The verification link of a mail's text body, as the user would click it. */
export function verifyLinkIn(mail: ParsedMail): URL {
  const match = /(\S+\/verify-email#token=\S+)/.exec(mail.text ?? '');
  if (!match) throw new Error(`no verification link in:\n${mail.text}`);
  return new URL(match[1]!);
}

/** The token of the `nth` verification mail `email` received, once it has arrived. */
export async function verifyTokenMailedTo(smtp: TestSmtpServer, email: string, nth = 1): Promise<string> {
  const link = verifyLinkIn(await nthMailTo(smtp, email, VERIFY_SUBJECT, nth));
  return new URLSearchParams(link.hash.slice(1)).get('token')!;
}

export const verifyEmail = (t: TestApp, token: unknown) =>
  request(t.app).post('/api/auth/verify-email').send({ token });

export const resendVerification = (t: TestApp, cookie?: string) => {
  const req = request(t.app).post('/api/auth/verify-email/resend');
  return cookie ? req.set('Cookie', cookie) : req;
};
