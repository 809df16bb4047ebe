import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { describeResult, runCommand, type CommandResult } from '../support/commands';
import { createIsolatedDatabase } from '../support/databases';
import { databaseUrlFor, TEST_DATABASE_URL, TEST_REDIS_URL } from '../support/env';
import { IGNORE_DOTENV, ROOT } from '../support/run-script';

/**
 * docs/extending.md kept honest: its code blocks are applied to a copy of the repository exactly as a
 * reader would (new files written, existing files edited next to the line the block names), then the
 * copy is typechecked and linted, the guide's migration runs through the real migrate script on a
 * database of its own, the real `npm run openapi` regenerates the description, and the guide's tests
 * run with jest against Postgres and Redis next to the project's own OpenAPI test.
 *
 * A block's fence names its file: "```ts file=src/notes/notes.service.ts" is a new file; a trailing
 * `after` (`before`) means the block's first (last) line is a line of the existing file, matched with
 * runs of spaces collapsed (prettier pads markdown tables), and the other lines go below (above) it;
 * `end` appends the block to the file. A "```diff file=…" block changes a line that cannot be added to
 * (one object literal on one line): its ` ` and `-` lines must follow each other once in the file, the
 * `-` lines go and the `+` lines take their place.
 */

const GUIDE_PATH = path.join(ROOT, 'docs', 'extending.md');
const MODES = ['new', 'after', 'before', 'end', 'diff'] as const;
type Mode = (typeof MODES)[number];

interface Block {
  file: string;
  mode: Mode;
  lines: string[];
  /** 1-based line of the opening fence in the guide, for failure messages. */
  at: number;
}

/** What the copy needs to build, typecheck and test: sources, harness, configs; not the other tests. */
const COPIED = [
  'src',
  'config',
  'scripts',
  'migrations',
  'test/support',
  // The project's own check that the README error table lists every code in src/errors.ts.
  'test/config/documentation.test.ts',
  // The project's own check that every registered /api route and every raised code is described and
  // that docs/openapi.json is not stale: with the guide applied, it passes only if step 8 is complete.
  // test/openapi/answers.test.ts stays out on purpose: its last test requires every described operation
  // and code to have been met by its own scenarios, and the guide's notes operations are not among them.
  'test/openapi/openapi.test.ts',
  'docs/openapi.json',
  'package.json',
  'tsconfig.json',
  'jest.config.js',
  'eslint.config.mjs',
  '.prettierrc.json',
  'README.md',
  '.env.example',
];

function parseBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  let open: Block | undefined;
  markdown.split('\n').forEach((line, index) => {
    if (open) {
      if (line === '```') {
        blocks.push(open);
        open = undefined;
      } else open.lines.push(line);
      return;
    }
    const fence = /^```(\S*)(.*)$/.exec(line);
    if (!fence) return;
    const words = fence[2]!.trim().split(/\s+/).filter(Boolean);
    const file = words.find((word) => word.startsWith('file='))?.slice('file='.length);
    const mode = (words.find((word) => !word.startsWith('file=')) ??
      (fence[1] === 'diff' ? 'diff' : 'new')) as Mode;
    if (file !== undefined && !MODES.includes(mode)) {
      throw new Error(`docs/extending.md:${index + 1}: unknown block mode "${mode}"`);
    }
    open = { file: file ?? '', mode, lines: [], at: index + 1 };
  });
  return blocks.filter((block) => block.file !== '');
}

const normalize = (line: string) => line.trim().replace(/\s+/g, ' ');
const indentOf = (line: string) => /^ */.exec(line)![0].length;
const reindent = (line: string, shift: number) =>
  line.trim() === '' ? '' : ' '.repeat(Math.max(0, indentOf(line) + shift)) + line.trimStart();

/** Inserts a block next to its anchor line, re-indented to where the anchor sits in the file. */
function insertNextToAnchor(text: string, block: Block): string {
  const lines = text.split('\n');
  const anchor = block.mode === 'after' ? block.lines[0]! : block.lines.at(-1)!;
  const added = block.mode === 'after' ? block.lines.slice(1) : block.lines.slice(0, -1);
  const found = lines.flatMap((line, i) => (normalize(line) === normalize(anchor) ? [i] : []));
  if (found.length !== 1) {
    throw new Error(
      `docs/extending.md:${block.at}: the line "${anchor.trim()}" appears ${found.length} times in ` +
        `${block.file} (once expected): update the guide to the file as it is now`,
    );
  }
  const at = found[0]!;
  const shift = indentOf(lines[at]!) - indentOf(anchor);
  lines.splice(block.mode === 'after' ? at + 1 : at, 0, ...added.map((line) => reindent(line, shift)));
  return lines.join('\n');
}

/** Applies a diff block where its unchanged and removed lines, in order, are found once in the file. */
function applyDiff(text: string, block: Block): string {
  const lines = text.split('\n');
  const marked = block.lines.map((line) => {
    const sign = line[0] ?? ' ';
    if (!' -+'.includes(sign)) {
      throw new Error(`docs/extending.md:${block.at}: a diff line starts with " ", "-" or "+": "${line}"`);
    }
    return { sign, line: line.slice(1) };
  });
  const old = marked.filter((m) => m.sign !== '+').map((m) => m.line);
  const matchesAt = (i: number) =>
    old.every((line, k) => i + k < lines.length && normalize(lines[i + k]!) === normalize(line));
  const found = lines.flatMap((_, i) => (old.length > 0 && matchesAt(i) ? [i] : []));
  if (found.length !== 1) {
    throw new Error(
      `docs/extending.md:${block.at}: the unchanged and removed lines of the diff appear together ` +
        `${found.length} times in ${block.file} (once expected): update the guide to the file as it is now`,
    );
  }
  const at = found[0]!;
  const shift = indentOf(lines[at]!) - indentOf(old[0]!);
  // Unchanged lines stay as the file has them; added lines take the file's indentation.
  const replaced: string[] = [];
  let next = at;
  for (const { sign, line } of marked) {
    if (sign === '+') replaced.push(reindent(line, shift));
    else if (sign === ' ') replaced.push(lines[next++]!);
    else next++;
  }
  lines.splice(at, old.length, ...replaced);
  return lines.join('\n');
}

const MIGRATION_FILE = /^migrations\/\d{4}_([a-z0-9-]+)\.sql$/;

describe('docs/extending.md', () => {
  const guide = readFileSync(GUIDE_PATH, 'utf8');
  const blocks = parseBlocks(guide);
  let work: string;
  const bin = (name: string) => path.join(work, 'node_modules', '.bin', name);
  const touched = new Set<string>();
  const newFiles: string[] = [];

  const runDatabase = process.env.TEST_RUN_DATABASE_NAME;
  const guideDatabase = `${runDatabase}_extending`;
  const databaseUrl = databaseUrlFor(guideDatabase);

  /** tsc over the whole copy; ESLint and prettier over the TypeScript files the guide wrote or changed. */
  let staticChecks: Promise<Record<string, string>> | undefined;
  const checkStatically = async () => {
    const code = [...touched].filter((file) => file.endsWith('.ts'));
    const [typecheck, lint] = await Promise.all([
      runCommand(bin('tsc'), ['--noEmit', '-p', 'tsconfig.json'], { cwd: work, timeoutMs: 120_000 }),
      runCommand(bin('eslint'), ['--max-warnings=0', ...code], { cwd: work, timeoutMs: 60_000 }),
    ]);
    const format = await runCommand(bin('prettier'), ['--check', ...code], { cwd: work, timeoutMs: 30_000 });
    const results = { typecheck, lint, format };
    return Object.fromEntries(
      Object.entries(results).map(([name, result]) => [
        name,
        result.code === 0 ? 'ok' : describeResult(result),
      ]),
    );
  };

  beforeAll(async () => {
    if (!runDatabase) throw new Error('run the tests through jest');
    work = mkdtempSync(path.join(tmpdir(), 'extending-guide-'));
    for (const entry of COPIED) cpSync(path.join(ROOT, entry), path.join(work, entry), { recursive: true });
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(work, 'node_modules'), 'dir');

    for (const block of blocks) {
      const target = path.join(work, block.file);
      const content = `${block.lines.join('\n')}\n`;
      const migration = MIGRATION_FILE.exec(block.file);
      if (block.mode === 'new' && migration) {
        // The step as the guide tells it: the script makes the file, the block is what it becomes.
        const created = await runCommand('npm', ['run', '--silent', 'migrate:create', migration[1]!], {
          cwd: work,
          env: { npm_config_update_notifier: 'false' },
          timeoutMs: 30_000,
        });
        if (created.stdout !== `created ${block.file}\n`) {
          throw new Error(
            `docs/extending.md:${block.at}: the guide names ${block.file}, but migrate:create said:\n` +
              describeResult(created),
          );
        }
        writeFileSync(target, content);
      } else if (block.mode === 'new') {
        if (existsSync(target)) {
          throw new Error(`docs/extending.md:${block.at}: ${block.file} exists already in the repository`);
        }
        mkdirSync(path.dirname(target), { recursive: true });
        writeFileSync(target, content);
      } else if (block.mode === 'end') {
        writeFileSync(target, `${readFileSync(target, 'utf8').trimEnd()}\n\n${content}`);
      } else if (block.mode === 'diff') {
        writeFileSync(target, applyDiff(readFileSync(target, 'utf8'), block));
      } else {
        writeFileSync(target, insertNextToAnchor(readFileSync(target, 'utf8'), block));
      }
      touched.add(block.file);
      if (block.mode === 'new') newFiles.push(block.file);
    }
    // tsc is the slowest step and single-threaded: it runs while the database tests below do.
    staticChecks = checkStatically();
    staticChecks.catch(() => undefined);
  }, 60_000);

  afterAll(async () => {
    await staticChecks?.catch(() => undefined);
    // rmSync removes the node_modules link, never what it points to.
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('when the guide is read, then it has a block for every layer of a resource, and its command', () => {
    const files = [...touched];
    for (const expected of [
      MIGRATION_FILE,
      /^src\/notes\/notes\.repository\.ts$/,
      /^src\/notes\/notes\.service\.ts$/,
      /^src\/notes\/notes\.schemas\.ts$/,
      /^src\/notes\/notes\.routes\.ts$/,
      /^src\/notes\/notes\.openapi\.ts$/,
      /^src\/openapi\/openapi\.ts$/,
      /^src\/openapi\/responses\.ts$/,
      /^src\/app\.ts$/,
      /^src\/errors\.ts$/,
      /^test\/notes\/.+\.test\.ts$/,
      /^README\.md$/,
    ]) {
      expect({ expected: String(expected), found: files.some((file) => expected.test(file)) }).toEqual({
        expected: String(expected),
        found: true,
      });
    }
    const migration = newFiles.find((file) => MIGRATION_FILE.test(file))!;
    expect(guide).toContain(`npm run migrate:create ${MIGRATION_FILE.exec(migration)![1]}`);
    expect(guide).toContain(`created ${migration}`);
    expect(guide).toContain('`npm run openapi`');
  });

  const migrate = () =>
    runCommand(bin('tsx'), ['scripts/migrate.ts'], {
      cwd: work,
      env: { ...IGNORE_DOTENV, NODE_ENV: 'test', DATABASE_URL: databaseUrl },
      timeoutMs: 30_000,
    });
  const tableExists = async (table: string) => {
    const client = new Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ found: string | null }>('SELECT to_regclass($1) AS found', [
        table,
      ]);
      return rows[0]!.found !== null;
    } finally {
      await client.end();
    }
  };

  test("when npm run migrate runs on a fresh database, then it applies the guide's migration, whose Down section undoes it", async () => {
    // Empty (the guide's own migrate run fills it), named after the run's database so global-teardown
    // drops it.
    expect(await createIsolatedDatabase('extending', { migrate: false })).toBe(databaseUrl);
    const migration = path.basename(
      newFiles.find((file) => MIGRATION_FILE.test(file))!,
      '.sql',
    );

    const up = await migrate();
    expect({ code: up.code, stderr: up.stderr }).toEqual({ code: 0, stderr: '' });
    expect(up.stdout).toContain(migration);
    expect(await tableExists('notes')).toBe(true);

    // The rollback the template names: node-pg-migrate's own CLI, one step down.
    const down = await runCommand(bin('node-pg-migrate'), ['down'], {
      cwd: work,
      env: { DATABASE_URL: databaseUrl },
      timeoutMs: 30_000,
    });
    expect(down.code === 0 ? '' : describeResult(down)).toBe('');
    expect(await tableExists('notes')).toBe(false);
    expect(await tableExists('users')).toBe(true);

    const again = await migrate();
    expect(again.code === 0 ? '' : describeResult(again)).toBe('');
    expect(again.stdout).toContain(`applied ${migration}`);
  }, 90_000);

  const openApiFile = () => path.join(work, 'docs', 'openapi.json');
  const committedOpenApi = readFileSync(path.join(ROOT, 'docs', 'openapi.json'), 'utf8');

  test('when npm run openapi runs in the copy, then docs/openapi.json gains the operations of the guide', async () => {
    const run = await runCommand('npm', ['run', '--silent', 'openapi'], {
      cwd: work,
      env: { npm_config_update_notifier: 'false' },
      timeoutMs: 60_000,
    });

    expect(run.code === 0 ? '' : describeResult(run)).toBe('');
    const written = JSON.parse(readFileSync(openApiFile(), 'utf8')) as { paths: Record<string, object> };
    const committed = JSON.parse(committedOpenApi) as { paths: Record<string, object> };
    const added = Object.keys(written.paths).filter((p) => !(p in committed.paths));
    expect(added.sort()).toEqual(['/api/notes', '/api/notes/{id}']);
  }, 90_000);

  // The project's OpenAPI test runs with them: it fails if a route of the guide is not described, if a
  // code the guide raises is missing from the description, or if docs/openapi.json is not what the
  // schemas generate.
  const PROJECT_TESTS = ['test/config/documentation.test.ts', 'test/openapi/openapi.test.ts'];

  test("when the guide's tests and the project's documentation tests run with jest in the copy, then every one passes", async () => {
    if (!(await tableExists('notes').catch(() => false))) {
      throw new Error("the guide's database was not migrated: see the migration test above");
    }
    if (readFileSync(openApiFile(), 'utf8') === committedOpenApi) {
      throw new Error("the copy's docs/openapi.json was not regenerated: see the npm run openapi test above");
    }
    const testFiles = newFiles.filter((file) => file.endsWith('.test.ts'));
    // The copy's jest configuration, minus the global setup: the database migrated above is this
    // run's database, and the keys go under this run's prefix, so global-teardown removes both.
    writeFileSync(
      path.join(work, 'jest.guide.config.js'),
      "module.exports = { ...require('./jest.config.js'), globalSetup: undefined, globalTeardown: undefined };\n",
    );
    const resultFile = path.join(work, 'jest-result.json');

    const run: CommandResult = await runCommand(
      bin('jest'),
      [
        '--config=jest.guide.config.js',
        '--ci',
        '--runInBand',
        '--json',
        `--outputFile=${resultFile}`,
        ...testFiles,
        ...PROJECT_TESTS,
      ],
      {
        cwd: work,
        env: {
          TEST_DATABASE_URL,
          TEST_REDIS_URL,
          TEST_RUN_DATABASE_NAME: guideDatabase,
          TEST_RUN_DATABASE_URL: databaseUrl,
          TEST_RUN_KEY_PREFIX: `${process.env.TEST_RUN_KEY_PREFIX}extending:`,
        },
        timeoutMs: 90_000,
      },
    );

    expect(run.code === 0 ? '' : describeResult(run)).toBe('');
    const result = JSON.parse(readFileSync(resultFile, 'utf8')) as {
      numFailedTests: number;
      numPassedTests: number;
      testResults: { name: string; status: string; assertionResults: { status: string }[] }[];
    };
    expect(result.numFailedTests).toBe(0);
    const ran = result.testResults.map((file) => ({
      file: path.relative(work, file.name),
      status: file.status,
      passed: file.assertionResults.filter((a) => a.status === 'passed').length > 0,
    }));
    expect(ran.sort((a, b) => a.file.localeCompare(b.file))).toEqual(
      [...testFiles, ...PROJECT_TESTS].sort().map((file) => ({ file, status: 'passed', passed: true })),
    );
  }, 120_000);

  test('when the guide has been applied, then the copy typechecks, lints and is formatted', async () => {
    expect(await staticChecks).toEqual({ typecheck: 'ok', lint: 'ok', format: 'ok' });
  }, 150_000);
});
