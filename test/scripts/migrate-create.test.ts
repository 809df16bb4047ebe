import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCommand, type CommandResult } from '../support/commands';
import { ROOT } from '../support/run-script';

/**
 * `npm run migrate:create NAME` (scripts/migrate-create.ts), the real script, run from a scratch folder
 * holding a copy of migrations/: npm runs scripts from the project root, so the script works on the
 * migrations/ of the folder it runs in, and the repository's own folder is never written.
 */

const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const SCRIPT = path.join(ROOT, 'scripts', 'migrate-create.ts');
const REAL_MIGRATIONS = path.join(ROOT, 'migrations');

const listing = (dir: string) => readdirSync(dir).sort();
/** The number after the highest one in the repository, as the runner orders files. */
const nextNumber = (offset = 1) =>
  String(
    Math.max(...listing(REAL_MIGRATIONS).map((file) => Number(/^\d+/.exec(file)![0]))) + offset,
  ).padStart(4, '0');

describe('migrate:create', () => {
  const realBefore = listing(REAL_MIGRATIONS);
  let work: string;
  let migrations: string;
  beforeEach(() => {
    work = mkdtempSync(path.join(tmpdir(), 'migrate-create-'));
    migrations = path.join(work, 'migrations');
    cpSync(REAL_MIGRATIONS, migrations, { recursive: true });
  });
  afterEach(() => rmSync(work, { recursive: true, force: true }));
  afterAll(() => expect(listing(REAL_MIGRATIONS)).toEqual(realBefore));

  const create = (...args: string[]): Promise<CommandResult> =>
    runCommand(TSX, [SCRIPT, ...args], { cwd: work, timeoutMs: 20_000 });

  test('when given a kebab-case name, then it writes the next numbered file in the format of the existing migrations and prints its path', async () => {
    const before = listing(migrations);

    const result = await create('create-notes');

    const expected = `${nextNumber()}_create-notes.sql`;
    expect(result).toEqual({ code: 0, stdout: `created migrations/${expected}\n`, stderr: '' });
    expect(listing(migrations)).toEqual([...before, expected].sort());
    const text = readFileSync(path.join(migrations, expected), 'utf8');
    // The markers node-pg-migrate splits a SQL file on, in the order the existing files use them.
    expect(text.startsWith('-- Up Migration\n')).toBe(true);
    expect(text.indexOf('\n-- Down Migration\n')).toBeGreaterThan(0);
    expect(text).toMatch(/one concern per migration/i);
    expect(text).toMatch(/advisory lock/);
    expect(text).toMatch(/transaction/);
    for (const existing of before) {
      expect(readFileSync(path.join(migrations, existing), 'utf8')).toMatch(
        /^-- Up Migration\n[^]*\n-- Down Migration\n/,
      );
    }
  });

  test('when it runs twice, then the second file gets the number after the first', async () => {
    expect((await create('create-notes')).code).toBe(0);

    const second = await create('notes-pinned');

    expect(second.stdout).toBe(`created migrations/${nextNumber(2)}_notes-pinned.sql\n`);
    expect(listing(migrations)).toEqual(
      expect.arrayContaining([`${nextNumber()}_create-notes.sql`, `${nextNumber(2)}_notes-pinned.sql`]),
    );
  });

  test.each([
    ['uppercase letters', 'Create-Notes'],
    ['underscores', 'create_notes'],
    ['a space', 'create notes'],
    ['a path', '../create-notes'],
    ['a slash', 'notes/create'],
    ['a leading hyphen', '-create-notes'],
    ['a trailing hyphen', 'create-notes-'],
    ['two hyphens in a row', 'create--notes'],
    ['a leading digit', '0003-create-notes'],
    ['an extension', 'create-notes.sql'],
    ['no characters', ''],
    ['too many words', 'a-b-c-d-e-f-g-h-i'],
    ['over 60 characters', `create-${'n'.repeat(60)}`],
  ])('when the name has %s, then it exits 1 with the usage and writes nothing', async (_label, name) => {
    const before = listing(migrations);

    const result = await create(name);

    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('kebab-case');
    expect(listing(migrations)).toEqual(before);
  });

  test.each([
    ['no name', []],
    ['two names', ['create-notes', 'create-tags']],
  ])('when it is given %s, then it exits 1 with the usage and writes nothing', async (_label, args) => {
    const before = listing(migrations);

    const result = await create(...args);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('usage: npm run migrate:create NAME');
    expect(listing(migrations)).toEqual(before);
  });

  test('when a migration with the same name exists, then it exits 1 naming that file and writes nothing', async () => {
    const existing = listing(migrations)[0]!;
    const before = listing(migrations);

    const result = await create(existing.replace(/^\d+_/, '').replace(/\.sql$/, ''));

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`migrations/${existing} already has this name`);
    expect(listing(migrations)).toEqual(before);
  });

  test('when the next file name is already taken, then it refuses to overwrite it', async () => {
    // A folder is not a migration, so it does not move the numbering, but it does hold the name the
    // next file would get: the same collision as two runs racing for one number.
    const taken = path.join(migrations, `${nextNumber()}_create-notes.sql`);
    mkdirSync(taken);

    const result = await create('create-notes');

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `migrations/${nextNumber()}_create-notes.sql exists: refusing to overwrite it`,
    );
    expect(statSync(taken).isDirectory()).toBe(true);
  });

  test('when it runs outside the project root, then it exits 1 and creates no migrations folder', async () => {
    const elsewhere = path.join(work, 'src');
    mkdirSync(elsewhere);

    const result = await runCommand(TSX, [SCRIPT, 'create-notes'], { cwd: elsewhere, timeoutMs: 20_000 });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('run it from the project root');
    expect(listing(elsewhere)).toEqual([]);
  });
});
