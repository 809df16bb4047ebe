import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface TestSmtpServer {
  port: number;
  /** SMTP_URL for this server: plain smtp:// on loopback, which every mode accepts. */
  url: string;
  /** Every mail accepted so far, parsed as a mail client would. */
  mails: ParsedMail[];
  /** How many times a client got as far as MAIL FROM: whatever the reply, the message was on its way. */
  envelopes(): number;
  /** The user names clients signed in with (only with `credentials`). */
  signedIn: string[];
  /** Resolves with the mails once `count` have arrived; rejects after `timeoutMs`. */
  waitForMails(count: number, timeoutMs?: number): Promise<ParsedMail[]>;
  /** Resolves with the first mail that `matches`, once it has arrived; rejects after `timeoutMs`. */
  waitForMail(matches: (mail: ParsedMail) => boolean, timeoutMs?: number): Promise<ParsedMail>;
  stop(): Promise<void>;
}

export interface TestSmtpOptions {
  /** Answer every RCPT TO with this reply code (550: mailbox unavailable, 451: try again later). */
  rejectRecipientsWith?: number;
  /** With rejectRecipientsWith: refuse only the first this many RCPT TO, then accept (a relay back up). */
  rejectFirst?: number;
  /** Require AUTH with exactly these (offered over plain text: this server is loopback only). */
  credentials?: { user: string; pass: string };
}

/**
 * A real SMTP server (npm smtp-server) on a free loopback port, for the mail tests. It never offers
 * STARTTLS: mail to loopback is plain by design, and a client that requires STARTTLS must refuse to
 * send here. AUTH is offered only when `credentials` are given. Received mails are parsed with mailparser, so tests read headers and both
 * bodies decoded, never the raw MIME.
 */
export function startSmtpServer({
  rejectRecipientsWith,
  rejectFirst = Infinity,
  credentials,
}: TestSmtpOptions = {}): Promise<TestSmtpServer> {
  const mails: ParsedMail[] = [];
  const signedIn: string[] = [];
  const listeners = new Set<() => void>();
  let envelopes = 0;
  let rejected = 0;
  const server = new SMTPServer({
    disabledCommands: credentials ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    authOptional: !credentials,
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, callback) {
      if (!credentials || auth.username !== credentials.user || auth.password !== credentials.pass) {
        return callback(Object.assign(new Error('Invalid credentials'), { responseCode: 535 }));
      }
      signedIn.push(credentials.user);
      callback(null, { user: credentials.user });
    },
    onMailFrom(_address, _session, callback) {
      envelopes++;
      callback();
    },
    onRcptTo(_address, _session, callback) {
      if (rejectRecipientsWith === undefined || rejected >= rejectFirst) return callback();
      rejected++;
      callback(
        Object.assign(new Error('Recipient refused by the test server'), {
          responseCode: rejectRecipientsWith,
        }),
      );
    },
    onData(stream, _session, callback) {
      simpleParser(stream)
        .then((mail) => {
          mails.push(mail);
          listeners.forEach((listener) => listener());
          callback();
        })
        .catch(callback);
    },
  });

  /** Resolves with what `found` gives once a mail makes it give something; rejects after `timeoutMs`. */
  const arrival = <T>(found: () => T | undefined, timeoutMs: number, failure: () => string): Promise<T> =>
    new Promise((done, fail) => {
      const check = () => {
        const result = found();
        if (result === undefined) return;
        clearTimeout(timer);
        listeners.delete(check);
        done(result);
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        fail(new Error(failure()));
      }, timeoutMs);
      listeners.add(check);
      check();
    });

  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.server.address() as AddressInfo;
      resolve({
        port,
        url: `smtp://127.0.0.1:${port}`,
        mails,
        envelopes: () => envelopes,
        signedIn,
        waitForMails: (count, timeoutMs = 10_000) =>
          arrival(
            () => (mails.length >= count ? mails.slice(0, count) : undefined),
            timeoutMs,
            () => `${mails.length} of ${count} mails arrived within ${timeoutMs} ms`,
          ),
        waitForMail: (matches, timeoutMs = 10_000) =>
          arrival(
            () => mails.find(matches),
            timeoutMs,
            () => `none of the ${mails.length} mails that arrived within ${timeoutMs} ms matched`,
          ),
        stop: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}
