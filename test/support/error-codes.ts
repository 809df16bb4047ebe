import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './run-script';

const sourceFiles = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    return statSync(file).isDirectory() ? sourceFiles(file) : file.endsWith('.ts') ? [file] : [];
  });

/**
 * The error codes src/ can answer with, read from the sources themselves: an AppError built anywhere
 * (`new AppError(status, 'code'`, `super(status, 'code'`, over line breaks too) or a `code: '…'`.
 * Schema files are skipped, since `code:` there is a zod issue code, and so is the API description,
 * which is checked against this list rather than being part of it.
 */
export function errorCodesRaisedInSources(): Set<string> {
  const sources = sourceFiles(path.join(ROOT, 'src'))
    .filter(
      (file) => !/\.(schemas|openapi)\.ts$/.test(file) && !file.includes(`${path.sep}openapi${path.sep}`),
    )
    .map((file) => readFileSync(file, 'utf8'))
    .join('\n');
  const pattern =
    /\b(?:AppError|super)\(\s*[^,()]+,\s*'([a-z]+(?:_[a-z]+)*)'|\bcode: '([a-z]+(?:_[a-z]+)*)'/g;
  return new Set([...sources.matchAll(pattern)].map((m) => m[1] ?? m[2]!));
}
