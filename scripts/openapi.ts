import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as prettier from 'prettier';
import { createOpenApiDocument } from '../src/openapi/openapi';

/**
 * Writes docs/openapi.json from the zod schemas (ADR 0007). Keys keep the order the document is built
 * in, so regenerating an unchanged API gives the same bytes; prettier formats it as it formats every
 * other file, so `npm run lint` passes. test/openapi fails while the committed file is stale.
 */
async function main(): Promise<void> {
  const file = path.resolve(__dirname, '..', 'docs', 'openapi.json');
  const options = await prettier.resolveConfig(file);
  const text = await prettier.format(JSON.stringify(createOpenApiDocument()), { ...options, filepath: file });
  writeFileSync(file, text);
  process.stdout.write(`openapi: wrote ${path.relative(process.cwd(), file)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`openapi: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
