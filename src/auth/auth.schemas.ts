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

export const passwordResetBody = z.strictObject({
  email: emailSchema,
});

export const passwordResetConfirmBody = z.strictObject({
  // Bounded here; its exact shape is checked where tokens are, and a wrong one is `invalid_token`.
  token: z.string().max(100),
  newPassword: newPasswordSchema,
});

/** The one answer to a reset request, whether or not an account uses the address. */
export const passwordResetAccepted = z.strictObject({ message: z.string() });

export const PASSWORD_RESET_ACCEPTED: z.output<typeof passwordResetAccepted> = {
  message: 'If an account uses this address, a link to reset its password is on its way.',
};

export const verifyEmailBody = z.strictObject({
  // Bounded here; its exact shape is checked where tokens are, and a wrong one is `invalid_token`.
  token: z.string().max(100),
});

/** The answer to a resend that queued a mail. */
export const verificationMailQueued = z.strictObject({ message: z.string() });

export const VERIFICATION_MAIL_QUEUED: z.output<typeof verificationMailQueued> = {
  message: 'A new link to confirm your address is on its way.',
};
