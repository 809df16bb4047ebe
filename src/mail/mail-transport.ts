import { createTransport } from 'nodemailer';
import type { MailAddress, MailConfig, SmtpSettings } from '../../config/config';
import type { Logger } from '../lib/logger';
import type { RenderedMail } from './mail-templates';

/** One rendered message to one recipient. */
export interface OutgoingMail extends RenderedMail {
  to: string;
}

/** Where mail leaves the process. send() rejects when the mail was not accepted. */
export interface MailTransport {
  send(mail: OutgoingMail): Promise<void>;
  close(): void;
}

/**
 * Bounds on one delivery attempt. nodemailer's defaults (2 minutes to connect, 10 of silence) would
 * let a black-holed relay hold a mail, and the outbox slot it uses, for minutes per attempt.
 */
export interface SmtpTimeouts {
  /** Opening the connection, DNS lookup included. */
  connectionTimeoutMs: number;
  /** From connected to the server's 220 greeting (and a STARTTLS upgrade). */
  greetingTimeoutMs: number;
  /** Silence on an open connection. */
  socketTimeoutMs: number;
}

export const SMTP_TIMEOUTS: SmtpTimeouts = {
  connectionTimeoutMs: 10_000,
  greetingTimeoutMs: 10_000,
  socketTimeoutMs: 20_000,
};

/**
 * Mail over SMTP with nodemailer, from explicit options: config/config.ts has already parsed
 * SMTP_URL, so no URL parameter can reach the library and switch its transport or its TLS checks.
 * Certificates are verified (nodemailer's default, left alone) and TLS below 1.2 is refused. With
 * `requireTLS`, a server that does not offer STARTTLS gets no message at all, never one in clear.
 */
export function createSmtpTransport(
  smtp: SmtpSettings,
  from: MailAddress,
  timeouts: SmtpTimeouts = SMTP_TIMEOUTS,
): MailTransport {
  const transporter = createTransport(
    {
      host: smtp.host,
      port: smtp.port,
      secure: smtp.secure,
      requireTLS: smtp.requireTLS,
      ...(smtp.auth ? { auth: { user: smtp.auth.user, pass: smtp.auth.pass } } : {}),
      tls: { minVersion: 'TLSv1.2' },
      connectionTimeout: timeouts.connectionTimeoutMs,
      dnsTimeout: timeouts.connectionTimeoutMs,
      greetingTimeout: timeouts.greetingTimeoutMs,
      socketTimeout: timeouts.socketTimeoutMs,
    },
    {
      from: { name: from.name ?? '', address: from.address },
      // The app's mails are text it rendered: no field may make the library read a file or fetch a URL.
      disableFileAccess: true,
      disableUrlAccess: true,
    },
  );
  return {
    async send(mail) {
      await transporter.sendMail({ to: mail.to, subject: mail.subject, text: mail.text, html: mail.html });
    },
    close: () => transporter.close(),
  };
}

/**
 * Development without SMTP_URL: the mail goes to the log, link included, so a developer can follow
 * it. config/config.ts chooses this in development only; a log line with a live reset link would be
 * a leak anywhere logs are shipped and kept.
 */
export function createLogTransport(logger: Logger, from: MailAddress): MailTransport {
  return {
    async send(mail) {
      logger.info(
        { mail: { from: from.address, to: mail.to, subject: mail.subject, text: mail.text } },
        'mail written to the log, not sent (development without SMTP_URL)',
      );
    },
    close() {},
  };
}

/** The transport the configuration asks for; null when mail is off. */
export function createMailTransport(mail: MailConfig, logger: Logger): MailTransport | null {
  switch (mail.transport) {
    case 'smtp':
      return createSmtpTransport(mail.smtp, mail.from);
    case 'log':
      return createLogTransport(logger, mail.from);
    case 'off':
      return null;
  }
}
