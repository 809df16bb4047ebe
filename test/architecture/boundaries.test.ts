import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../support/run-script';

/**
 * The layering that the folder names promise (DESIGN: cross-cutting HTTP pieces under src/http, features
 * in their own folders, SQL only in repositories), checked on the import lines themselves.
 */

const SRC = path.join(ROOT, 'src');
const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    return statSync(file).isDirectory() ? files(file) : file.endsWith('.ts') ? [file] : [];
  });
const importsOf = (file: string) =>
  [...readFileSync(file, 'utf8').matchAll(/^import [^;]*? from '([^']+)';/gms)].map((m) => m[1]!);

describe('module boundaries', () => {
  test('when src/http imports, then never from a repository: guards and middleware know the domain types only', () => {
    const offending = files(path.join(SRC, 'http')).flatMap((file) =>
      importsOf(file)
        .filter((from) => from.endsWith('.repository'))
        .map((from) => `${path.relative(ROOT, file)} -> ${from}`),
    );
    expect(offending).toEqual([]);
  });

  // ASVS 5.0 1.2.4: SQL lives only in the database adapter and the repositories.
  test('when anything imports pg, then it is the database adapter or a repository', () => {
    const users = files(SRC)
      .filter((file) => importsOf(file).includes('pg'))
      .map((file) => path.relative(ROOT, file));
    expect(users.length).toBeGreaterThan(0);
    for (const file of users) expect(file).toMatch(/^src\/(lib\/db\.ts|.+\.repository\.ts)$/);
  });
});
