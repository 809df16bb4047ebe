import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../support/run-script';

/**
 * The README shows the latest benchmark, and a reader compares the two: the summary pasted into its
 * Performance section (the table, the verdict on the load generator, the machine) must be the one in
 * bench/results/latest.md, which `npm run bench` rewrites. A new run without the README updated fails here.
 */
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

/** From the "Each row:" line to the "Machine:" line, both included. */
function summaryOf(markdown: string, file: string): string {
  const lines = markdown.split('\n');
  const start = lines.findIndex((line) => line.startsWith('Each row:'));
  const end = lines.findIndex((line, i) => i > start && line.startsWith('Machine:'));
  if (start < 0 || end < 0) throw new Error(`${file} has no benchmark summary (Each row: ... Machine:)`);
  return lines.slice(start, end + 1).join('\n');
}

describe('the README`s benchmark table', () => {
  test('when the README and bench/results/latest.md are compared, then the README shows the latest summary as written', () => {
    const readme = read('README.md');
    const performance = readme.slice(readme.indexOf('## Performance'));

    expect(summaryOf(performance, 'README.md')).toBe(
      summaryOf(read('bench/results/latest.md'), 'bench/results/latest.md'),
    );
  });
});
