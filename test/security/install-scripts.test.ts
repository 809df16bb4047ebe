import { readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const read = (file: string) =>
  JSON.parse(readFileSync(path.join(ROOT, file), 'utf8')) as Record<string, unknown>;

/**
 * ADR 0004: no dependency runs code at `npm ci`. npm 11 blocks install scripts that package.json's
 * allowScripts does not cover; we deny each one explicitly, so a new dependency with a script is a
 * decision someone makes in review, not something that slips in.
 */
describe('dependency install scripts', () => {
  const lock = read('package-lock.json') as { packages: Record<string, { hasInstallScript?: boolean }> };
  const allowScripts = (read('package.json').allowScripts ?? {}) as Record<string, unknown>;
  const withScripts = Object.entries(lock.packages)
    .filter(([, meta]) => meta.hasInstallScript)
    .map(([location]) => location.slice(location.lastIndexOf('node_modules/') + 'node_modules/'.length));

  test('when the lockfile is read, then the packages with install scripts are found (the check is not vacuous)', () => {
    expect(withScripts.length).toBeGreaterThan(0);
  });

  test('when a locked package has an install script, then package.json denies it explicitly', () => {
    for (const name of withScripts)
      expect({ name, allowed: allowScripts[name] }).toEqual({ name, allowed: false });
  });

  test('when the image installs dependencies, then it runs no scripts either', () => {
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const installs = dockerfile.split('\n').filter((line) => /\bnpm ci\b/.test(line));
    expect(installs.length).toBeGreaterThan(0);
    for (const line of installs) expect(line).toContain('--ignore-scripts');
  });
});
