import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../support/run-script';

/**
 * docs/asvs.md kept honest. The page maps every Level 1 and Level 2 requirement of the ASVS 5.0.0
 * chapters below to a status, the code that meets it and the test that proves it; these tests fail
 * when the mapping says more than the repository can show:
 * - every id of the list below appears exactly once, with its level, and no other id does;
 * - a status is one of `met`, `n/a`, `accepted risk`, `not met`;
 * - every path named in the code and test columns (in backticks) exists;
 * - every named test file mentions the requirement's id as text ("6.3.3" matches "ASVS 6.3.3" but not
 *   "16.3.3" or "6.3.31"), so a reader of the test finds which requirement it proves;
 * - a `met` row names some code and at least one test file under test/;
 * - an `n/a` or `not met` row says why in its note;
 * - an `accepted risk` row names an ADR under docs/decisions/ that exists.
 */

/** id:level of every Level 1 and 2 requirement of V1-V4, V6-V8, V11-V14 and V16 (ASVS 5.0.0). */
const REQUIREMENTS = `
  1.1.1:2 1.1.2:2 1.2.1:1 1.2.2:1 1.2.3:1 1.2.4:1 1.2.5:1 1.2.6:2 1.2.7:2 1.2.8:2 1.2.9:2 1.3.1:1 1.3.2:1 1.3.3:2 1.3.4:2 1.3.5:2 1.3.6:2 1.3.7:2 1.3.8:2 1.3.9:2 1.3.10:2 1.3.11:2 1.4.1:2 1.4.2:2 1.4.3:2 1.5.1:1 1.5.2:2
  2.1.1:1 2.1.2:2 2.1.3:2 2.2.1:1 2.2.2:1 2.2.3:2 2.3.1:1 2.3.2:2 2.3.3:2 2.3.4:2 2.4.1:2
  3.2.1:1 3.2.2:1 3.3.1:1 3.3.2:2 3.3.3:2 3.3.4:2 3.4.1:1 3.4.2:1 3.4.3:2 3.4.4:2 3.4.5:2 3.4.6:2 3.5.1:1 3.5.2:1 3.5.3:1 3.5.4:2 3.5.5:2 3.7.1:2 3.7.2:2
  4.1.1:1 4.1.2:2 4.1.3:2 4.2.1:2 4.3.1:2 4.3.2:2 4.4.1:1 4.4.2:2 4.4.3:2 4.4.4:2
  6.1.1:1 6.1.2:2 6.1.3:2 6.2.1:1 6.2.2:1 6.2.3:1 6.2.4:1 6.2.5:1 6.2.6:1 6.2.7:1 6.2.8:1 6.2.9:2 6.2.10:2 6.2.11:2 6.2.12:2 6.3.1:1 6.3.2:1 6.3.3:2 6.3.4:2 6.4.1:1 6.4.2:1 6.4.3:2 6.4.4:2 6.5.1:2 6.5.2:2 6.5.3:2 6.5.4:2 6.5.5:2 6.6.1:2 6.6.2:2 6.6.3:2 6.8.1:2 6.8.2:2 6.8.3:2 6.8.4:2
  7.1.1:2 7.1.2:2 7.1.3:2 7.2.1:1 7.2.2:1 7.2.3:1 7.2.4:1 7.3.1:2 7.3.2:2 7.4.1:1 7.4.2:1 7.4.3:2 7.4.4:2 7.4.5:2 7.5.1:2 7.5.2:2 7.6.1:2 7.6.2:2
  8.1.1:1 8.1.2:2 8.2.1:1 8.2.2:1 8.2.3:2 8.3.1:1 8.4.1:2
  11.1.1:2 11.1.2:2 11.2.1:2 11.2.2:2 11.2.3:2 11.3.1:1 11.3.2:1 11.3.3:2 11.4.1:1 11.4.2:2 11.4.3:2 11.4.4:2 11.5.1:2 11.6.1:2
  12.1.1:1 12.1.2:2 12.1.3:2 12.2.1:1 12.2.2:1 12.3.1:2 12.3.2:2 12.3.3:2 12.3.4:2
  13.1.1:2 13.2.1:2 13.2.2:2 13.2.3:2 13.2.4:2 13.2.5:2 13.3.1:2 13.3.2:2 13.4.1:1 13.4.2:2 13.4.3:2 13.4.4:2 13.4.5:2
  14.1.1:2 14.1.2:2 14.2.1:1 14.2.2:2 14.2.3:2 14.2.4:2 14.3.1:1 14.3.2:2 14.3.3:2
  16.1.1:2 16.2.1:2 16.2.2:2 16.2.3:2 16.2.4:2 16.2.5:2 16.3.1:2 16.3.2:2 16.3.3:2 16.3.4:2 16.4.1:2 16.4.2:2 16.4.3:2 16.5.1:2 16.5.2:2 16.5.3:2
`;

const STATUSES = ['met', 'n/a', 'accepted risk', 'not met'] as const;

const EXPECTED = new Map(
  REQUIREMENTS.trim()
    .split(/\s+/)
    .map((entry) => {
      const [id, level] = entry.split(':');
      return [id!, level!] as const;
    }),
);

interface Row {
  id: string;
  level: string;
  status: string;
  code: string[];
  tests: string[];
  note: string;
}

/** The backticked repository paths of a cell (a path may end with `/` for a folder). */
const pathsIn = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

function readRows(markdown: string): Row[] {
  return markdown
    .split('\n')
    .filter((line) => /^\| \d+\.\d+\.\d+ /.test(line))
    .map((line) => {
      const cells = line
        .slice(1, -1)
        .split('|')
        .map((cell) => cell.trim());
      expect({ line, cells: cells.length }).toEqual({ line, cells: 7 });
      const [id, level, , status, code, tests, note] = cells as [
        string,
        string,
        string,
        string,
        string,
        string,
        string,
      ];
      return { id, level, status, code: pathsIn(code), tests: pathsIn(tests), note };
    });
}

const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const exists = (file: string) => existsSync(path.join(ROOT, file));
const escape = (id: string) => id.replace(/\./g, '\\.');
/** The id as text of its own: not a part of a longer id on either side. */
const mentions = (text: string, id: string) =>
  new RegExp(`(?<![\\d.])${escape(id)}(?![\\d]|\\.\\d)`).test(text);

describe('the ASVS mapping (docs/asvs.md)', () => {
  const rows = readRows(read('docs/asvs.md'));

  test('when the rows are read, then every Level 1 and 2 requirement of the chapters is there once, with its level', () => {
    const seen = new Map<string, number>();
    for (const row of rows) seen.set(row.id, (seen.get(row.id) ?? 0) + 1);
    expect([...seen].filter(([, count]) => count > 1)).toEqual([]);
    expect([...EXPECTED.keys()].filter((id) => !seen.has(id))).toEqual([]);
    expect([...seen.keys()].filter((id) => !EXPECTED.has(id))).toEqual([]);
    for (const row of rows)
      expect({ id: row.id, level: row.level }).toEqual({ id: row.id, level: EXPECTED.get(row.id) });
    expect(rows).toHaveLength(EXPECTED.size);
  });

  test('when a status is read, then it is one of the four the page defines', () => {
    for (const row of rows)
      expect({ id: row.id, status: STATUSES.includes(row.status as never) }).toEqual({
        id: row.id,
        status: true,
      });
  });

  test('when a row names files, then each exists', () => {
    const missing = rows.flatMap((row) =>
      [...row.code, ...row.tests].filter((file) => !exists(file)).map((file) => `${row.id}: ${file}`),
    );
    expect(missing).toEqual([]);
  });

  test('when a row names a test file, then that file mentions the requirement id', () => {
    const silent = rows.flatMap((row) =>
      row.tests
        .filter(
          (file) => exists(file) && statSync(path.join(ROOT, file)).isFile() && !mentions(read(file), row.id),
        )
        .map((file) => `${row.id}: ${file}`),
    );
    expect(silent).toEqual([]);
  });

  test('when a row is met, then it names code and at least one test file under test/', () => {
    for (const row of rows.filter((r) => r.status === 'met')) {
      expect({ id: row.id, code: row.code.length > 0 }).toEqual({ id: row.id, code: true });
      expect({
        id: row.id,
        tests: row.tests.length > 0 && row.tests.every((t) => /^test\/.+\.test\.ts$/.test(t)),
      }).toEqual({ id: row.id, tests: true });
    }
  });

  test('when a row is n/a or not met, then its note says why', () => {
    for (const row of rows.filter((r) => r.status === 'n/a' || r.status === 'not met'))
      expect({ id: row.id, note: row.note.length >= 10 }).toEqual({ id: row.id, note: true });
  });

  test('when a row is an accepted risk, then its note names an ADR that exists', () => {
    const accepted = rows.filter((r) => r.status === 'accepted risk');
    expect(accepted.length).toBeGreaterThan(0);
    for (const row of accepted) {
      const adrs = pathsIn(row.note).filter((file) => /^docs\/decisions\/\d{4}-.+\.md$/.test(file));
      expect({ id: row.id, adr: adrs.length > 0 && adrs.every(exists) }).toEqual({ id: row.id, adr: true });
    }
  });

  test('when the checker is given an id, then it does not match a longer id that contains it', () => {
    expect(mentions('ASVS 5.0 6.3.3: MFA', '6.3.3')).toBe(true);
    expect(mentions('(ASVS 6.3.3).', '6.3.3')).toBe(true);
    expect(mentions('ASVS 16.3.3', '6.3.3')).toBe(false);
    expect(mentions('ASVS 6.3.31', '6.3.3')).toBe(false);
    expect(mentions('ASVS 6.3.3.1', '6.3.3')).toBe(false);
  });
});

describe('links to the mapping', () => {
  test('when SECURITY.md is read, then it links to docs/asvs.md', () => {
    expect(read('SECURITY.md')).toMatch(/\]\(docs\/asvs\.md(#[^)]*)?\)/);
  });

  test('when docs/asvs.md and the security documents link to files of the repository, then each exists', () => {
    const pages = [
      'docs/asvs.md',
      ...[
        'data-classification',
        'crypto-inventory',
        'logging',
        'session-timeouts',
        'input-validation',
        'login-pathways',
      ].map((name) => `docs/security/${name}.md`),
    ];
    const broken = pages.flatMap((page) =>
      [...read(page).matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)]
        .map((m) => m[1]!)
        .filter((target) => !/^[a-z]+:/.test(target))
        .filter((target) => !exists(path.join(path.dirname(page), target)))
        .map((target) => `${page}: ${target}`),
    );
    expect(broken).toEqual([]);
  });
});
