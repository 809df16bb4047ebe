import path from 'node:path';
import { Eta } from 'eta';

/** Templates sit next to this file, in src/ under tsx and jest and in dist/ once built (`npm run build` copies them). */
const TEMPLATES_DIR = path.join(__dirname, 'templates');

/** The mails the app sends, each with exactly the values its templates show. */
export type MailMessage =
  | { kind: 'password_reset'; name: string; token: string; validForMinutes: number }
  | { kind: 'password_changed'; name: string }
  | { kind: 'verify_email'; name: string; token: string; validForHours: number }
  | { kind: 'email_change_confirm'; name: string; token: string; newEmail: string; validForHours: number }
  | { kind: 'email_change_notice'; name: string; maskedNewEmail: string }
  | { kind: 'mfa_reset'; name: string };

export type MailKind = MailMessage['kind'];

/** A message ready for a transport: both bodies of one content, for one recipient. */
export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

/** Fixed per kind: a subject never carries a user's value, so no name can forge a header's wording. */
const SUBJECTS: Readonly<Record<MailKind, string>> = {
  password_reset: 'Reset your password',
  password_changed: 'Your password was changed',
  verify_email: 'Confirm your email address',
  email_change_confirm: 'Confirm your new email address',
  email_change_notice: 'A change of your email address was asked for',
  mfa_reset: 'Your second factor was removed',
};

/**
 * The pages the links open (served by the web routes): where a reset is asked for and where it is
 * done (password-reset.pages.ts), where an address is verified (email-verification.pages.ts), and
 * where a new address is confirmed (email-change.pages.ts).
 */
const FORGOT_PASSWORD_PAGE = '/forgot-password';
const RESET_PASSWORD_PAGE = '/reset-password';
const VERIFY_EMAIL_PAGE = '/verify-email';
const CONFIRM_EMAIL_PAGE = '/confirm-email';

/**
 * Plain text has no markup to escape, but a value can still forge content: a display name holding
 * line breaks could add a paragraph of fake instructions below the greeting. Every control and line
 * separator character becomes a space, so a value stays on the line the template put it on.
 */
export function escapeText(value: unknown): string {
  return String(value).replace(/[\p{Cc}\u2028\u2029]/gu, ' ');
}

/**
 * A link into the app: the origin is PUBLIC_URL's, never a request's Host or X-Forwarded-Host, which
 * a client chooses (a reset link pointing at an attacker's host would hand them the token; OWASP
 * Forgot Password Cheat Sheet). The token travels in the fragment (`#token=…`), which a browser never
 * sends to any server: it cannot land in nginx's access log (whose `$request` includes the query
 * string), the app's log, a proxy's log or a Referer. The reset page's own script moves it into the
 * form and takes it off the address bar (src/web/static/link-token.js; ADR 0015).
 */
export function linkTo(publicOrigin: string, page: string, token?: string): string {
  const url = new URL(page, publicOrigin);
  // `page` is one of this module's constants; a protocol-relative one ('//host/...') would still leave.
  if (url.origin !== publicOrigin) throw new Error(`a mail link must stay on ${publicOrigin}: ${page}`);
  if (token !== undefined) url.hash = new URLSearchParams({ token }).toString();
  return url.toString();
}

export type MailTemplates = ReturnType<typeof createMailTemplates>;

/**
 * Renders a message's subject, plain-text and HTML bodies from `templates/<kind>.text.eta` and
 * `templates/<kind>.html.eta` (kind in kebab-case). Both engines escape every `<%= %>` value: HTML
 * with Eta's own escaping, as the pages do (docs/decisions/0005-templates-eta.md), text with
 * escapeText(). Templates get the values the route built field by field, and links made here.
 */
export function createMailTemplates({ publicOrigin, cache }: { publicOrigin: string; cache: boolean }) {
  const html = new Eta({ views: TEMPLATES_DIR, autoEscape: true, cache });
  // No trimming after tags: in plain text every line break the template holds is meant.
  const text = new Eta({
    views: TEMPLATES_DIR,
    autoEscape: true,
    escapeFunction: escapeText,
    autoTrim: false,
    cache,
  });

  return {
    render(message: MailMessage): RenderedMail {
      const subject = SUBJECTS[message.kind];
      const file = message.kind.replaceAll('_', '-');
      const data = { subject, ...templateData(publicOrigin, message) };
      return {
        subject,
        text: text.render(`./${file}.text.eta`, data),
        html: html.render(`./${file}.html.eta`, data),
      };
    },
  };
}

/** What a template may show: the raw token never reaches a template, only the link built from it. */
function templateData(publicOrigin: string, message: MailMessage): Record<string, string> {
  switch (message.kind) {
    case 'password_reset':
      return {
        name: message.name,
        link: linkTo(publicOrigin, RESET_PASSWORD_PAGE, message.token),
        validFor: `${message.validForMinutes} minutes`,
      };
    case 'password_changed':
      return { name: message.name, link: linkTo(publicOrigin, FORGOT_PASSWORD_PAGE) };
    case 'verify_email':
      return {
        name: message.name,
        link: linkTo(publicOrigin, VERIFY_EMAIL_PAGE, message.token),
        validFor: `${message.validForHours} hours`,
      };
    case 'email_change_confirm':
      return {
        name: message.name,
        newEmail: message.newEmail,
        link: linkTo(publicOrigin, CONFIRM_EMAIL_PAGE, message.token),
        validFor: `${message.validForHours} hours`,
      };
    // The notice goes to the old address, which may no longer be the owner's: it carries no token,
    // only the way to take the account back (a reset mailed to the address still signed in with).
    case 'email_change_notice':
      return {
        name: message.name,
        maskedNewEmail: message.maskedNewEmail,
        link: linkTo(publicOrigin, FORGOT_PASSWORD_PAGE),
      };
    // An admin removed the second factor: the owner learns it, and how to take the account back if
    // they did not ask for it (the password alone now signs in).
    case 'mfa_reset':
      return { name: message.name, link: linkTo(publicOrigin, FORGOT_PASSWORD_PAGE) };
  }
}
