import { z } from 'zod';
import { ROLES, type User } from './user';
import type { UserPosition } from './users.repository';

const CONTROL_CHARACTERS = /[\p{Cc}\p{Cf}\u2028\u2029]/u;

/** Trimmed and lowercased before anything compares or stores it: one account per mailbox, any case. */
export const emailSchema = z
  .string()
  .trim()
  .toLowerCase()
  .max(254)
  .pipe(z.email('must be a valid email address'));
export const nameSchema = z
  .string()
  .trim()
  .min(1)
  .max(100)
  .refine((name) => !CONTROL_CHARACTERS.test(name), 'must not contain control characters');
/** The password policy (length and more) is applied by the service, so every failure is `password_rejected`. */
export const newPasswordSchema = z.string();
export const roleSchema = z.enum(ROLES);

// Postgres compares uuids case-insensitively but JavaScript compares strings exactly: one canonical
// (lowercase) form, or `id === actor.id` checks miss an upper-cased id that Postgres still matches.
export const userIdParams = z.strictObject({
  id: z.uuid('must be a user id').transform((id) => id.toLowerCase()),
});

export const createUserBody = z.strictObject({
  email: emailSchema,
  password: newPasswordSchema,
  name: nameSchema,
  role: roleSchema.default('user'),
});

export const updateUserBody = z
  .strictObject({
    name: nameSchema.optional(),
    email: emailSchema.optional(),
    role: roleSchema.optional(),
    currentPassword: z.string().max(1024).optional(),
  })
  .refine((b) => b.name !== undefined || b.email !== undefined || b.role !== undefined, {
    message: 'give at least one of name, email, role',
  });

/** Cursors are opaque to clients: base64url of the last row's position. */
export function encodeCursor(position: UserPosition): string {
  return Buffer.from(`${position.createdUs}.${position.id}`).toString('base64url');
}

const cursorSchema = z
  .string()
  .max(200)
  .transform((value, ctx): UserPosition => {
    const decoded = Buffer.from(value, 'base64url').toString('utf8');
    const match = /^(\d{1,18})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.exec(
      decoded,
    );
    if (!match) {
      ctx.addIssue({ code: 'custom', message: 'is not a cursor this API returned' });
      return z.NEVER;
    }
    return { createdUs: match[1]!, id: match[2]! };
  });

export const listUsersQuery = z.strictObject({
  limit: z
    .string()
    .regex(/^\d{1,3}$/, 'must be a whole number from 1 to 100')
    .transform(Number)
    .pipe(z.number().int().min(1).max(100))
    .default(20)
    .meta({ description: 'Users per page, 1 to 100 (default 20).' }),
  cursor: cursorSchema.optional().meta({ description: "The previous page's `nextCursor`." }),
});

/**
 * The only shape a user leaves the API in: no hash, no internal columns. toUserResponse is typed by it,
 * so the published description (src/openapi) and what the routes send cannot drift apart.
 */
export const userResponse = z.strictObject({
  id: z.uuid(),
  email: z.email(),
  name: z.string(),
  role: roleSchema,
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  emailVerifiedAt: z.iso.datetime().nullable().meta({
    description: 'When the address was proven to reach its owner by a mailed link; null until then.',
  }),
});
export type UserResponse = z.output<typeof userResponse>;

/** A user whose own change of address awaits the link mailed to the new one. */
export const pendingEmailUserResponse = userResponse.extend({
  pendingEmail: z.email().meta({
    description:
      'The address asked for: `email` stays the sign-in address until the link mailed here is followed.',
  }),
});

/** The body of `POST /api/auth/email-change/confirm`. */
export const emailChangeConfirmBody = z.strictObject({
  // Bounded here; its exact shape is checked where tokens are, and a wrong one is `invalid_token`.
  token: z.string().max(100),
});

/** A page of `GET /api/users`; `nextCursor` is null on the last page. */
export const userListResponse = z.strictObject({
  data: z.array(userResponse),
  nextCursor: z.string().nullable(),
});

export function toUserResponse(user: User): UserResponse {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    role: user.role,
    createdAt: user.createdAt.toISOString(),
    updatedAt: user.updatedAt.toISOString(),
    emailVerifiedAt: user.emailVerifiedAt?.toISOString() ?? null,
  };
}
