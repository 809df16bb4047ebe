import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../config/config';
import { createMailTemplates } from '../../src/mail/mail-templates';
import { createMailTransport, type MailTransport } from '../../src/mail/mail-transport';
import { createMailer, type Mailer } from '../../src/mail/mailer';
import { createOutbox, type Outbox, type OutboxOptions } from '../../src/mail/outbox';
import { createCapturedLogger, type CapturedLogger, type LogLine } from '../support/captured-logger';
import { uniqueEmail } from '../support/factories';
import { freePort } from '../support/ports';
import { startSmtpServer, type TestSmtpServer } from '../support/smtp';

/**
 * Mail through the real pieces: configuration, nodemailer, the outbox and a real SMTP server on
 * loopback, whose received mails are parsed with mailparser.
 */

const PUBLIC_URL = 'https://app.example.test';
const MAIL_FROM = 'Example App <no-reply@example.test>';

interface MailStack extends CapturedLogger {
  outbox: Outbox;
  mailer: Mailer;
}

const stacks: MailStack[] = [];
const servers: TestSmtpServer[] = [];

/** The mail pieces as the app wires them, for SMTP_URL `smtpUrl`; quick retries unless told otherwise. */
function mailStack(smtpUrl: string, outboxOptions: Partial<OutboxOptions> = {}): MailStack {
  const config = loadConfig({ NODE_ENV: 'test', PUBLIC_URL, SMTP_URL: smtpUrl, MAIL_FROM });
  const captured = createCapturedLogger();
  const transport = createMailTransport(config.mail, captured.logger)!;
  const outbox = createOutbox({
    transport,
    logger: captured.logger,
    retryDelaysMs: [20, 40],
    ...outboxOptions,
  });
  const templates = createMailTemplates({ publicOrigin: config.publicOrigin, cache: true });
  const stack = { ...captured, outbox, mailer: createMailer({ templates, outbox, logger: captured.logger }) };
  stacks.push(stack);
  return stack;
}

async function smtpServer(options?: Parameters<typeof startSmtpServer>[0]): Promise<TestSmtpServer> {
  const server = await startSmtpServer(options);
  servers.push(server);
  return server;
}

/** The first line that matches, once it is written (the outbox works after enqueue has returned). */
async function eventually(
  logs: LogLine[],
  matches: (line: LogLine) => boolean,
  timeoutMs = 10_000,
): Promise<LogLine> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = logs.find(matches);
    if (line) return line;
    if (Date.now() > deadline)
      throw new Error(`no such line within ${timeoutMs} ms:\n${JSON.stringify(logs)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const event = (name: string) => (line: LogLine) => line.event === name;
const RETRYING = 'mail attempt failed: retrying';

const resetMessage = (name = 'Alice', token = randomBytes(32).toString('base64url')) =>
  ({ kind: 'password_reset', name, token, validForMinutes: 30 }) as const;

afterEach(async () => {
  await Promise.all(stacks.splice(0).map((s) => s.outbox.drain(1000)));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

describe('the outbox over real SMTP', () => {
  test('when a password reset mail is sent, then it arrives with both bodies and a link built from PUBLIC_URL, and the event names neither token nor address', async () => {
    const server = await smtpServer();
    const { mailer, logs, rawLogs } = mailStack(server.url);
    const to = uniqueEmail('reset');
    const message = resetMessage();

    mailer.send(to, message, { userId: 'user-1', requestId: 'req-1' });
    const [mail] = await server.waitForMails(1);

    const link = `${PUBLIC_URL}/reset-password#token=${message.token}`;
    expect(mail!.from?.value).toEqual([{ name: 'Example App', address: 'no-reply@example.test' }]);
    expect(mail!.to).toMatchObject({ value: [{ address: to, name: '' }] });
    expect(mail!.subject).toBe('Reset your password');
    expect(mail!.text).toContain(`\n${link}\n`);
    expect(mail!.html).toContain(`<a href="${link}">`);
    // Every link in the mail leads to the configured origin.
    const hrefs = [...String(mail!.html).matchAll(/href="([^"]*)"/g)].map((m) => m[1]!);
    expect(hrefs.length).toBeGreaterThan(0);
    for (const href of hrefs) expect(new URL(href).origin).toBe(PUBLIC_URL);
    expect(await eventually(logs, event('mail.sent'))).toEqual(
      expect.objectContaining({
        level: 'info',
        event: 'mail.sent',
        kind: 'password_reset',
        userId: 'user-1',
        requestId: 'req-1',
        recipient: expect.stringMatching(/^[0-9a-f]{16}$/),
        attempts: 1,
      }),
    );
    expect(rawLogs()).not.toContain(message.token);
    expect(rawLogs()).not.toContain(to);
  });

  // ASVS 5.0 1.3.11: a hostile display name cannot add headers or lines.
  test('when the display name is hostile, then the HTML body shows it as text and the text body keeps it on its line', async () => {
    const server = await smtpServer();
    const { mailer } = mailStack(server.url);
    const name = '<img src=x onerror=alert(1)> "Eve" & co\r\n\r\nClick https://evil.example.test now';

    mailer.send(uniqueEmail('hostile'), resetMessage(name), { userId: null });
    const [mail] = await server.waitForMails(1);

    expect(mail!.html).toContain('Hello &lt;img src=x onerror=alert(1)&gt; &quot;Eve&quot; &amp; co');
    expect(mail!.html).not.toMatch(/<img|href="https:\/\/evil/);
    const lines = String(mail!.text).split(/\r?\n/);
    expect(lines).toContain(
      'Hello <img src=x onerror=alert(1)> "Eve" & co    Click https://evil.example.test now,',
    );
    expect(lines.filter((line) => line.startsWith('Click'))).toEqual([]);
  });

  test('when nothing listens at SMTP_URL, then send returns before any attempt, three attempts are made, then mail.send_failed is logged', async () => {
    const { mailer, logs } = mailStack(`smtp://127.0.0.1:${await freePort()}`);

    expect(() => mailer.send(uniqueEmail('down'), resetMessage(), { userId: 'user-2' })).not.toThrow();
    // Nothing about the mail is known yet when send returns: the attempts run after the caller moved on.
    const linesWhenReturned = logs.length;
    const failed = await eventually(logs, event('mail.send_failed'));

    expect(linesWhenReturned).toBe(0);
    expect(failed).toEqual(
      expect.objectContaining({
        level: 'warn',
        kind: 'password_reset',
        userId: 'user-2',
        attempts: 3,
        reason: 'smtp',
        errorCode: 'ESOCKET',
      }),
    );
    expect(logs.filter((l) => l.msg === RETRYING).map((l) => l.attempt)).toEqual([1, 2]);
    expect(logs.filter((l) => l.event === 'mail.sent')).toEqual([]);
  });

  test('when the server refuses the recipient, then each attempt reaches it and the failure is logged with its reply code only', async () => {
    const server = await smtpServer({ rejectRecipientsWith: 550 });
    const { mailer, logs, rawLogs } = mailStack(server.url);
    const to = uniqueEmail('refused');

    mailer.send(to, resetMessage(), { userId: 'user-3' });
    const failed = await eventually(logs, event('mail.send_failed'));

    expect(server.envelopes()).toBe(3);
    expect(failed).toEqual(
      expect.objectContaining({ attempts: 3, responseCode: 550, errorCode: 'EENVELOPE' }),
    );
    // The server's reply text, which often repeats the address, stays out of the log.
    expect(rawLogs()).not.toContain('Recipient refused by the test server');
    expect(rawLogs()).not.toContain(to);
  });

  test('when STARTTLS is required and the server does not offer it, then nothing is sent in clear text', async () => {
    const server = await smtpServer();
    const { mailer, logs } = mailStack(`${server.url}?requireTLS=true`);

    mailer.send(uniqueEmail('cleartext'), resetMessage(), { userId: 'user-4' });
    const failed = await eventually(logs, event('mail.send_failed'));

    expect(failed).toEqual(expect.objectContaining({ attempts: 3, errorCode: 'ETLS' }));
    expect(server.envelopes()).toBe(0);
    expect(server.mails).toEqual([]);
  });
});

describe('the outbox bounds', () => {
  /** A transport whose sends all hang until released: what a stalled relay looks like. */
  function heldTransport(): MailTransport & { release(): void } {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    return { send: () => released, release: () => release(), close() {} };
  }

  test('when more mails are pending than the outbox holds, then the extra one is refused with an event, not queued', async () => {
    const { logger, logs } = createCapturedLogger();
    const transport = heldTransport();
    const outbox = createOutbox({ transport, logger, concurrency: 1, maxPending: 2 });
    const mail = { to: uniqueEmail('full'), subject: 's', text: 't', html: 'h' };

    for (const userId of ['a', 'b', 'c']) outbox.enqueue(mail, { kind: 'password_changed', userId });
    const refused = logs.filter((l) => l.event === 'mail.send_failed');
    transport.release();
    await outbox.drain(1000);

    expect(refused).toEqual([expect.objectContaining({ userId: 'c', reason: 'outbox_full', attempts: 0 })]);
    expect(logs.filter((l) => l.event === 'mail.sent').map((l) => l.userId)).toEqual(['a', 'b']);
  });

  test('when the outbox drains during a long wait between retries, then the retries run at once and drain reports nothing left', async () => {
    const { mailer, outbox, logs } = mailStack(`smtp://127.0.0.1:${await freePort()}`, {
      retryDelaysMs: [60_000, 60_000],
    });
    mailer.send(uniqueEmail('drain'), resetMessage(), { userId: 'user-5' });
    // The first attempt failed: the mail now waits a minute for its second.
    await eventually(logs, (line) => line.msg === RETRYING);

    const started = Date.now();
    const unsent = await outbox.drain(5000);

    expect(Date.now() - started).toBeLessThan(5000);
    expect(unsent).toBe(0);
    expect(logs.find((l) => l.event === 'mail.send_failed')).toEqual(
      expect.objectContaining({ attempts: 3 }),
    );
  });
});
