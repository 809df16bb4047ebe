import type { Logger } from '../lib/logger';
import type { MailMessage, MailTemplates } from './mail-templates';
import type { MailContext, Outbox } from './outbox';

export interface Mailer {
  /**
   * Renders `message` for `to` and queues it. Returns at once and never throws, so the request that
   * asked answers the same whatever happens to the mail afterwards.
   */
  send(to: string, message: MailMessage, context: Omit<MailContext, 'kind'>): void;
}

/** What the features use to mail a user: templates in front of the outbox. */
export function createMailer({
  templates,
  outbox,
  logger,
}: {
  templates: MailTemplates;
  outbox: Outbox;
  logger: Logger;
}): Mailer {
  return {
    send(to, message, context) {
      try {
        outbox.enqueue({ to, ...templates.render(message) }, { ...context, kind: message.kind });
      } catch (err) {
        // A template that fails to render is a bug; the request still gets its usual answer.
        logger.error({ err, kind: message.kind, userId: context.userId }, 'mail could not be rendered');
      }
    },
  };
}
