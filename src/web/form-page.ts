import type { Request, Response } from 'express';
import type { Csrf } from './csrf';
import type { Views } from './views';

/**
 * The script of every page a mailed link opens: it moves the link's `#token=` fragment into the form's
 * hidden field and off the address bar (ADR 0015).
 */
export const LINK_TOKEN_SCRIPT = '/static/link-token.js';

export type RenderForm = (req: Request, res: Response, status: number, view: string, data: object) => void;

/**
 * Renders a page that holds a form: the view gets a CSRF token bound to the visitor as it is now
 * (anonymous, or the session after a login), so every form the pages show can be posted back.
 */
export function createFormRenderer(views: Views, csrf: Csrf): RenderForm {
  return (req, res, status, view, data) => {
    const csrfToken = csrf.tokenFor(req, res);
    res
      .status(status)
      .type('html')
      .send(views.render(view, { csrfToken, ...data }));
  };
}
