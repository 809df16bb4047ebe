import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ENV_VARIABLES } from '../../config/config';
import { errorCodesRaisedInSources } from '../support/error-codes';

const ROOT = path.resolve(__dirname, '..', '..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

describe('the documented configuration', () => {
  test('when .env.example is read, then it sets exactly the variables the schema knows, each with a comment', () => {
    const lines = read('.env.example').split('\n');
    const assigned = lines.flatMap((line, i) => {
      const match = /^([A-Z][A-Z0-9_]*)=/.exec(line);
      return match ? [{ name: match[1]!, commented: lines[i - 1]?.startsWith('#') ?? false }] : [];
    });
    expect(assigned.map((a) => a.name).sort()).toEqual([...ENV_VARIABLES].sort());
    for (const a of assigned) expect(a).toEqual({ name: a.name, commented: true });
  });

  test('when the README configuration table is read, then every variable appears in it', () => {
    const readme = read('README.md');
    for (const name of ENV_VARIABLES)
      expect({ name, listed: readme.includes(`\`${name}\``) }).toEqual({ name, listed: true });
  });
});

describe('the documented error codes', () => {
  test('when the sources raise an error code, then the README error table lists it', () => {
    const codes = errorCodesRaisedInSources();
    expect(codes.size).toBeGreaterThanOrEqual(17);
    const table = read('README.md')
      .split('\n')
      .filter((line) => /^\| [45]\d\d /.test(line))
      .join('\n');
    for (const code of codes)
      expect({ code, listed: table.includes(`\`${code}\``) }).toEqual({ code, listed: true });
  });
});
