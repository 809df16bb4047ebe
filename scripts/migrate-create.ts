import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * `npm run migrate:create NAME` writes migrations/NNNN_NAME.sql in the format of the migrations already
 * there. The number comes from node-pg-migrate itself (the highest prefix in the folder plus one,
 * padded to four digits), so it matches the order `npm run migrate` applies files in. The file is
 * written here rather than by the library's own `create`, which copies a template without refusing an
 * existing file.
 */

// A few lowercase words joined by hyphens. The name becomes a file name and a row in pgmigrations:
// no paths, no spaces, nothing whose case a file system might fold.
const NAME = /^[a-z][a-z0-9]*(?:-[a-z0-9]+){0,7}$/;
const MAX_NAME_LENGTH = 60;
const USAGE = 'usage: npm run migrate:create NAME (a short kebab-case description, e.g. create-notes)';

const TEMPLATE = `-- Up Migration
-- Replace these lines with why this change is needed. One concern per migration (a table, a column,
-- an index), so each one can be reviewed, applied and reverted on its own.
-- npm run migrate applies this section and records it in pgmigrations in one transaction, while
-- holding an advisory lock (a second run waits, then finds nothing to do): a failing statement leaves
-- nothing behind. Statements that refuse to run in a transaction (CREATE INDEX CONCURRENTLY) do not
-- belong in these files. Files apply in number order, and a file numbered below one that is already
-- applied stops the run: renumber it if another migration was merged first.

-- Down Migration
-- Undo exactly what the Up section did. npm run migrate only goes up; this runs when a release is
-- rolled back by hand (npx node-pg-migrate down).
`;

function fail(message: string): never {
  process.stderr.write(`migrate:create: ${message}\n`);
  process.exit(1);
}

async function main(args: string[]): Promise<void> {
  if (args.length !== 1) fail(USAGE);
  const name = args[0]!;
  if (name.length > MAX_NAME_LENGTH || !NAME.test(name)) {
    fail(`"${name}" is not a short kebab-case name (lowercase words joined by hyphens).\n${USAGE}`);
  }

  // npm runs scripts from the project root; a run from anywhere else must not scatter migrations.
  const dir = path.resolve('migrations');
  if (!existsSync(dir)) fail(`no migrations/ folder here: run it from the project root. ${USAGE}`);
  const sameName = readdirSync(dir, { withFileTypes: true }).find(
    (entry) => entry.isFile() && entry.name.replace(/^\d+_/, '') === `${name}.sql`,
  );
  if (sameName) fail(`migrations/${sameName.name} already has this name: say what this one changes`);

  // node-pg-migrate 9 is ESM-only; a dynamic import loads it from this CommonJS script.
  const { Migration } = await import('node-pg-migrate');
  const prefix = await Migration.getFilePrefix('index', dir);
  const file = path.join(dir, `${prefix}_${name}.sql`);
  const relative = path.relative(process.cwd(), file);
  try {
    // 'wx': create only. An existing file (a concurrent run, a stray folder) is never overwritten.
    writeFileSync(file, TEMPLATE, { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    fail(`${relative} exists: refusing to overwrite it`);
  }
  process.stdout.write(`created ${relative}\n`);
}

main(process.argv.slice(2)).catch((error: unknown) => fail((error as Error).message));
