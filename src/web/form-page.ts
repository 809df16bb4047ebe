import type { Request, Response } from 'express';
import type { Csrf } from './csrf';
import type { Views } from './views';

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
