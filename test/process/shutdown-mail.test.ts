import { uniqueEmail } from '../support/factories';
import { killServers, serverEnv, startServer } from '../support/server-process';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp';

/**
 * The real process (src/main.ts) at shutdown with a mail still in its outbox: the server stops taking
 * requests, then the outbox gets the rest of SHUTDOWN_TIMEOUT_MS to send what it holds.
 */

describe('mail at shutdown of the server process', () => {
  let smtp: TestSmtpServer | undefined;
  afterEach(async () => {
    await killServers();
    await smtp?.stop();
  });

  test('when SIGTERM comes while a mail waits to be retried, then it is sent without the wait and the process exits 0', async () => {
    // The relay refuses the first attempt with "try again later": the outbox would wait 5 s to retry.
    smtp = await startSmtpServer({ rejectRecipientsWith: 451, rejectFirst: 1 });
    const server = await startServer(
      serverEnv({
        SMTP_URL: smtp.url,
        MAIL_FROM: 'App <no-reply@example.test>',
        SHUTDOWN_TIMEOUT_MS: '4000',
      }),
    );
    const api = (path: string, body: object) =>
      fetch(`http://127.0.0.1:${server.port}${path}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
    const email = uniqueEmail('shutdown-mail');
    const registered = await api('/api/auth/register', {
      email,
      password: 'plain old passphrase 42',
      name: 'Shutdown Mail',
    });
    expect(registered.status).toBe(201);

    expect((await api('/api/auth/password-reset', { email })).status).toBe(202);
    await server.waitForLog('mail attempt failed: retrying');
    const signalledAt = Date.now();
    server.child.kill('SIGTERM');

    expect(await server.waitForExit(8000)).toEqual({ code: 0, signal: null });
    // Well before the 5 s pause would have ended: the drain skipped it.
    expect(Date.now() - signalledAt).toBeLessThan(4000);
    const [mail] = await smtp.waitForMails(1, 1000);
    expect(mail!.subject).toBe('Reset your password');
    const messages = server.logs.map((line) => line.event ?? line.msg);
    expect(messages).toContain('mail.sent');
    expect(messages.indexOf('mail.sent')).toBeLessThan(messages.indexOf('shutdown complete'));
  });
});
