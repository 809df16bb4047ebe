import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  APP_IMAGE,
  loadCompose,
  loadRawCompose,
  referencesIn,
  requireService,
  stringsIn,
} from '../support/compose';
import { ROOT } from '../support/run-script';

/**
 * docker-compose.yml's variables: a fresh clone needs no .env, and the app's environment only holds
 * variables config/config.ts validates.
 */

const app = requireService(loadCompose({}), 'app');

describe('compose variables', () => {
  test('when the file refers to variables, then each has a default, so a fresh clone needs no .env', () => {
    const references = stringsIn(loadRawCompose()).flatMap(({ path: at, value }) =>
      referencesIn(value).map((r) => ({ at, ...r })),
    );
    expect(references.length).toBeGreaterThan(0);
    for (const r of references) {
      expect({ at: r.at, name: r.name, operator: r.operator }).toEqual({
        at: r.at,
        name: r.name,
        operator: ':-',
      });
    }
    // Only deployment variables: the development values of .env.example (HOST, PUBLIC_URL, TRUST_PROXY
    // ...) must never leak into the production stack through compose's .env interpolation.
    const defaults = Object.fromEntries(references.map((r) => [r.name, r.fallback]));
    expect(defaults).toEqual({
      SERVER_NAME: 'localhost',
      APP_IMAGE: APP_IMAGE,
      BUILD_CA_FILE: './docker/no-build-ca.pem',
      // Mail settings that are no secret; empty means unset (config/config.ts), and 5 is config's own.
      MAIL_FROM: '',
      MAIL_MAX_PER_ADDRESS_PER_HOUR: '5',
    });
    const docs = readFileSync(path.join(ROOT, 'docs/deploy.md'), 'utf8');
    for (const name of Object.keys(defaults)) expect(docs).toContain(`\`${name}\``);
  });

  test('when the app`s environment is read, then every variable is one config/config.ts knows', () => {
    const source = readFileSync(path.join(ROOT, 'config/config.ts'), 'utf8');
    const schema = source.slice(
      source.indexOf('const envSchema = z.object({'),
      source.indexOf('\n});', source.indexOf('const envSchema')),
    );
    const known = new Set([...schema.matchAll(/^ {2}([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1]!));
    const fileSecrets = /FILE_SECRETS = \[([^\]]+)\]/.exec(source)![1]!.match(/[A-Z_]+/g)!;
    for (const name of fileSecrets) known.add(`${name}_FILE`);
    expect(known.has('SHUTDOWN_TIMEOUT_MS')).toBe(true);
    for (const name of Object.keys(app.environment!))
      expect({ name, known: known.has(name) }).toEqual({ name, known: true });
  });
});
