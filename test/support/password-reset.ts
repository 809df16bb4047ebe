import type { ParsedMail } from 'mailparser';
import request, { type Response } from 'supertest';
import { PASSWORD_RESET_ACCEPTED } from '../../src/auth/auth.schemas';
import { startSmtpServer, type TestSmtpServer } from './smtp';
import type { TestApp } from './test-app';

/** The password reset flow driven as a client would, with the mails read from a real SMTP server. */

export const MAIL_FROM = 'Example App <no-reply@example.test>';
export const RESET_SUBJECT = 'Reset your password';
export const CHANGED_SUBJECT = 'Your password was changed';

/** The environment of an app that mails through `smtp`, with `extra` settings. */
export const mailingThrough =
  (smtp: { readonly server: TestSmtpServer }, extra: Record<string, string> = {}) =>
  () => ({ SMTP_URL: smtp.server.url, MAIL_FROM, ...extra });

/**
 * A real SMTP server for the describe block. Call it before useTestApp: its hook must start the
 * server before the app's hook reads the server's URL.
 */
export function useSmtpServer(): { readonly server: TestSmtpServer } {
  let server: TestSmtpServer | undefined;
  beforeAll(async () => {
    server = await startSmtpServer();
  });
  afterAll(() => server?.stop());
  return {
    get server() {
      if (!server) throw new Error('the SMTP server exists inside tests only');
      return server;
    },
  };
}

const addressesOf = (mail: ParsedMail): string[] =>
  [mail.to ?? []].flat().flatMap((to) => to.value.map((mailbox) => mailbox.address ?? ''));

export const mailsTo = (smtp: TestSmtpServer, email: string, subject: string): ParsedMail[] =>
  smtp.mails.filter((mail) => mail.subject === subject && addressesOf(mail).includes(email));

/** The `nth` mail with `subject` that `email` received (1 is the first), once it has arrived. */
export async function nthMailTo(
  smtp: TestSmtpServer,
  email: string,
  subject: string,
  nth = 1,
): Promise<ParsedMail> {
  await smtp.waitForMail(() => mailsTo(smtp, email, subject).length >= nth);
  return mailsTo(smtp, email, subject)[nth - 1]!;
}

/** The link to `page` (the reset page unless told) in a mail's text body, as the user would click it. */
export function linkIn(mail: ParsedMail, page = '/reset-password'): URL {
  const match = new RegExp(`(\\S+${page}#token=\\S+)`).exec(mail.text ?? '');
  if (!match) throw new Error(`no ${page} link in:\n${mail.text}`);
  return new URL(match[1]!);
}

/** The token of a link: it rides in the fragment, `#token=…`, never in the query. */
export const tokenOf = (link: URL): string => new URLSearchParams(link.hash.slice(1)).get('token')!;

export const tokenIn = (mail: ParsedMail): string => tokenOf(linkIn(mail));

/**
 * Forgeries of a mailed token, each with the reason the log gives for refusing it: one character
 * changed (the issued shape, no such token), one added and none at all (not the issued shape).
 */
export const alterationsOf = (token: string) =>
  [
    [`${token[0] === 'A' ? 'B' : 'A'}${token.slice(1)}`, 'unknown'],
    [`${token}A`, 'malformed'],
    ['', 'malformed'],
  ] as const;

export const askForReset = (t: TestApp, email: string, headers: Record<string, string> = {}) =>
  request(t.app).post('/api/auth/password-reset').set(headers).send({ email });

export const confirmReset = (
  t: TestApp,
  token: string,
  newPassword: string,
  headers: Record<string, string> = {},
) => request(t.app).post('/api/auth/password-reset/confirm').set(headers).send({ token, newPassword });

export const loginStatus = async (t: TestApp, email: string, password: string) =>
  (await request(t.app).post('/api/auth/login').send({ email, password })).status;

/** The reset request's answer, which must be the same for every address. */
export function expectAccepted(res: Response): void {
  expect({ status: res.status, body: res.body as unknown }).toEqual({
    status: 202,
    body: PASSWORD_RESET_ACCEPTED,
  });
}
