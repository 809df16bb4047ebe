import { z } from 'zod';
import { emailSchema, nameSchema, newPasswordSchema } from '../users/users.schemas';

export const loginBody = z.strictObject({
  // No format check at login: any string is simply "wrong credentials", which reveals nothing.
  email: z
    .string()
    .trim()
    .toLowerCase()
    .max(254)
    // Postgres refuses NUL in text (a 500 otherwise); no real address has control characters.
    .refine((email) => !/\p{Cc}/u.test(email), 'must not contain control characters'),
  password: z.string().max(1024),
});

export const registerBody = z.strictObject({
  email: emailSchema,
  password: newPasswordSchema,
  name: nameSchema,
});

export const changePasswordBody = z.strictObject({
  currentPassword: z.string().max(1024),
  newPassword: newPasswordSchema,
});
