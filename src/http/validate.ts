import type { z } from 'zod';
import { ValidationError } from '../errors';

/**
 * Parses untrusted input with a zod schema and returns the parsed value, which is what handlers use
 * (never the raw input). Failures become 400 `validation_failed` with one detail per problem.
 */
export function validate<S extends z.ZodType>(
  schema: S,
  input: unknown,
  where: 'body' | 'query' | 'params',
): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw new ValidationError(
    result.error.issues.map((issue) => ({
      path: [where, ...issue.path.map(String)].join('.'),
      message: issue.message,
    })),
  );
}
