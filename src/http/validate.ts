import type { Request } from 'express';
import type { z } from 'zod';
import { ValidationError } from '../errors';
import { logRefusal } from './security-events';

/**
 * Parses untrusted input with a zod schema and returns the parsed value, which is what handlers use
 * (never the raw input). Failures become 400 `validation_failed` with one detail per problem, and the
 * error handler logs them as one `request.validation_failed` event (ValidationError).
 */
export function validate<S extends z.ZodType>(
  schema: S,
  input: unknown,
  where: 'body' | 'query' | 'params',
): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw validationError(result.error, where);
}

/**
 * The ValidationError of a failed parse: where each problem is, zod's message for the client and its
 * issue code for the log. Forms that answer a failed parse themselves log this through logRefusal.
 */
export function validationError(error: z.ZodError, where: 'body' | 'query' | 'params'): ValidationError {
  return new ValidationError(
    error.issues.map((issue) => ({
      path: [where, ...issue.path.map(String)].join('.'),
      message: issue.message,
      code: issue.code,
    })),
  );
}

/**
 * For an HTML form that answers its own failed parse (it re-renders itself instead of throwing): logs
 * the same `request.validation_failed` event the API's error handler would, so both pathways log alike.
 */
export function logInvalidForm(req: Request, error: z.ZodError): void {
  logRefusal(req, validationError(error, 'body'));
}
