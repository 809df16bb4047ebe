import net from 'node:net';
import { loadConfig } from '../../config/config';
import { createMailTransport, createSmtpTransport } from '../../src/mail/mail-transport';
import { createCapturedLogger } from '../support/captured-logger';
import { startSmtpServer } from '../support/smtp';

const MAIL = {
  to: 'someone@example.test',
  subject: 'Reset your password',
  text: 'link: L',
  html: '<p>L</p>',
};

describe('the mail transports', () => {
  test('when development has no SMTP_URL, then a mail is written to the log, link included', async () => {
    const { logger, logs } = createCapturedLogger();
    const transport = createMailTransport(loadConfig({}).mail, logger)!;

    await transport.send(MAIL);

    expect(logs).toEqual([
      expect.objectContaining({
        level: 'info',
        msg: 'mail written to the log, not sent (development without SMTP_URL)',
        mail: { from: 'no-reply@localhost', to: MAIL.to, subject: MAIL.subject, text: MAIL.text },
      }),
    ]);
  });

  test('when mail is off, then there is no transport', () => {
    const { logger } = createCapturedLogger();

    expect(createMailTransport(loadConfig({ NODE_ENV: 'test' }).mail, logger)).toBeNull();
  });

  test('when a server accepts the connection but never greets, then the attempt fails at the greeting timeout', async () => {
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    const transport = createSmtpTransport(
      { host: '127.0.0.1', port, secure: false, requireTLS: false, auth: undefined },
      { name: undefined, address: 'no-reply@example.test' },
      { connectionTimeoutMs: 5000, greetingTimeoutMs: 300, socketTimeoutMs: 5000 },
    );

    const started = Date.now();
    const error = await transport.send(MAIL).catch((e: unknown) => e);
    const elapsedMs = Date.now() - started;
    silent.close();

    expect(error).toMatchObject({ code: 'ETIMEDOUT' });
    expect(elapsedMs).toBeGreaterThanOrEqual(250);
    expect(elapsedMs).toBeLessThan(3000);
  });

  test('when SMTP_URL carries credentials, then the client signs in with them, percent-decoded, and the mail is accepted', async () => {
    const server = await startSmtpServer({ credentials: { user: 'mailer@example.test', pass: 'p@ss:word' } });
    const { mail } = loadConfig({
      NODE_ENV: 'test',
      SMTP_URL: `smtp://mailer%40example.test:p%40ss%3Aword@127.0.0.1:${server.port}`,
      MAIL_FROM: 'no-reply@example.test',
    });
    const transport = createMailTransport(mail, createCapturedLogger().logger)!;

    try {
      await transport.send(MAIL);
      expect(server.signedIn).toEqual(['mailer@example.test']);
      expect(server.mails.map((m) => m.subject)).toEqual([MAIL.subject]);
    } finally {
      transport.close();
      await server.stop();
    }
  });
});
