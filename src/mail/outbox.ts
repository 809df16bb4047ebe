import type { Logger } from '../lib/logger';
import type { MailKind } from './mail-templates';
import type { MailTransport, OutgoingMail } from './mail-transport';
import { recipientOf } from './recipient';

/** Security events of mail delivery, logged like the request events (src/http/security-events.ts). */
export type MailEvent = 'mail.sent' | 'mail.send_failed';

/** Who a mail is for and what asked for it, for the events; never the token or the link. */
export interface MailContext {
  kind: MailKind;
  userId: string | null;
  /** The request that queued it, to tie the event to its access line. */
  requestId?: string;
}

export interface Outbox {
  /** Queues a mail and returns at once. Never throws: a failure becomes a mail.send_failed event. */
  enqueue(mail: OutgoingMail, context: MailContext): void;
  /**
   * For shutdown: retries go on without their waits, and this resolves once every queued mail was
   * sent or given up, or after `timeoutMs`; then it closes the transport. Resolves with the number of
   * mails not sent. Call it once, after the server stopped taking requests.
   */
  drain(timeoutMs: number): Promise<number>;
}

export interface OutboxOptions {
  transport: MailTransport;
  logger: Logger;
  /** The waits between attempts: one more attempt than waits. */
  retryDelaysMs?: readonly number[];
  /** Mails sent at once (each an SMTP connection). */
  concurrency?: number;
  /** Mails queued or in flight beyond which new ones are refused, so an outage cannot grow memory without bound. */
  maxPending?: number;
}

/**
 * Three attempts over about half a minute: long enough to ride out a relay's restart or a greylisting
 * 4xx, short enough that the user, who was told the mail is on its way, still has it while waiting.
 */
const RETRY_DELAYS_MS = [5_000, 25_000];
const CONCURRENCY = 2;
const MAX_PENDING = 1000;

/**
 * What an SMTP failure may say in the log: nodemailer's error code (ECONNECTION, ETLS, EAUTH ...) and
 * the server's reply code. Never the message: a server's reply often echoes the recipient's address.
 */
function failureOf(error: unknown): { errorCode: string | null; responseCode: number | null } {
  const { code, responseCode } = (error ?? {}) as { code?: unknown; responseCode?: unknown };
  return {
    errorCode: typeof code === 'string' ? code : null,
    responseCode: typeof responseCode === 'number' ? responseCode : null,
  };
}

/**
 * Sends mail outside the request that asked for it (docs/decisions/0013-an-in-memory-outbox.md): the
 * request answers as soon as the mail is queued, so an SMTP outage never changes the answer or its
 * timing, and a mail that fails is retried a bounded number of times, then logged as an event.
 * The queue lives in this process's memory only: a crash loses what it holds, and the user asks again.
 */
export function createOutbox({
  transport,
  logger,
  retryDelaysMs = RETRY_DELAYS_MS,
  concurrency = CONCURRENCY,
  maxPending = MAX_PENDING,
}: OutboxOptions): Outbox {
  const waiting: { mail: OutgoingMail; context: MailContext }[] = [];
  const inFlight = new Set<Promise<void>>();
  /** Cuts every pending wait between attempts short: set by drain(). */
  const wakeUps = new Set<() => void>();
  let draining = false;
  let settled: (() => void) | undefined;

  function logEvent(event: MailEvent, mail: OutgoingMail, context: MailContext, fields: object): void {
    const level = event === 'mail.send_failed' ? 'warn' : 'info';
    logger[level](
      {
        event,
        kind: context.kind,
        userId: context.userId,
        recipient: recipientOf(mail.to),
        ...(context.requestId === undefined ? {} : { requestId: context.requestId }),
        ...fields,
      },
      event,
    );
  }

  function pause(ms: number): Promise<void> {
    if (draining) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        wakeUps.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      wakeUps.add(wake);
    });
  }

  async function deliver(mail: OutgoingMail, context: MailContext): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await transport.send(mail);
        logEvent('mail.sent', mail, context, { attempts: attempt });
        return;
      } catch (error) {
        if (attempt > retryDelaysMs.length) {
          logEvent('mail.send_failed', mail, context, {
            attempts: attempt,
            reason: 'smtp',
            ...failureOf(error),
          });
          return;
        }
        logger.warn(
          { kind: context.kind, userId: context.userId, attempt, ...failureOf(error) },
          'mail attempt failed: retrying',
        );
        await pause(retryDelaysMs[attempt - 1]!);
      }
    }
  }

  function startWaiting(): void {
    while (inFlight.size < concurrency && waiting.length > 0) {
      const { mail, context } = waiting.shift()!;
      const job: Promise<void> = deliver(mail, context)
        // deliver() handles every send failure; what reaches here is a bug, and it must not be an
        // unhandled rejection, which ends the process.
        .catch((err: unknown) => logger.error({ err }, 'outbox failed to deliver'))
        .finally(() => {
          inFlight.delete(job);
          startWaiting();
          if (inFlight.size === 0 && waiting.length === 0) settled?.();
        });
      inFlight.add(job);
    }
  }

  return {
    enqueue(mail, context) {
      if (inFlight.size + waiting.length >= maxPending) {
        logEvent('mail.send_failed', mail, context, { attempts: 0, reason: 'outbox_full' });
        return;
      }
      waiting.push({ mail, context });
      startWaiting();
    },

    async drain(timeoutMs) {
      draining = true;
      for (const wake of [...wakeUps]) wake();
      if (inFlight.size > 0 || waiting.length > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => (settled = resolve)),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
        ]);
        clearTimeout(timer);
      }
      const unsent = inFlight.size + waiting.length;
      for (const { mail, context } of waiting.splice(0)) {
        logEvent('mail.send_failed', mail, context, { attempts: 0, reason: 'shutdown' });
      }
      transport.close();
      return unsent;
    },
  };
}
