import path from 'node:path';
import { Eta } from 'eta';
import type { AppConfig } from '../../config/config';

/** Templates sit next to this file, in src/ under tsx and jest and in dist/ once built (`npm run build` copies them). */
const VIEWS_DIR = path.join(__dirname, 'views');

export interface Views {
  /** Renders `views/<name>.eta` with `data` as `it`. */
  render(name: string, data: object): string;
}

/**
 * Eta with auto-escaping on (docs/decisions/0005-templates-eta.md): `<%= %>` HTML-escapes & < > " ',
 * so a user's name or an echoed email renders as text (OWASP XSS Prevention Cheat Sheet, rule 1;
 * ASVS 5.0 1.2.1). `<%~ %>` (raw) is for the layout's body only. It is set explicitly so a change of
 * the library's default cannot switch it off.
 */
export function createViews(config: AppConfig): Views {
  const eta = new Eta({
    views: VIEWS_DIR,
    autoEscape: true,
    // Development picks up edited templates without a restart; elsewhere each is compiled once.
    cache: config.env !== 'development',
  });
  return { render: (name, data) => eta.render(name, data) };
}
