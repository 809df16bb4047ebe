import { z } from 'zod';

/** Six digits, as every authenticator app shows them; spaces a user may type between groups are dropped. */
export const totpCode = z
  .string()
  .max(20)
  .transform((code) => code.replace(/\s/g, ''))
  .pipe(z.string().regex(/^\d{6}$/, 'must be the 6 digits your authenticator app shows'));

/** Bounded here; its exact shape is checked where codes are, and a wrong one is `invalid_mfa_code`. */
export const recoveryCode = z.string().max(64);

/** The code step of a login, and the proof disabling asks for: an app's code or a recovery code. */
export const secondFactorProof = z.union([
  z.strictObject({ code: totpCode }),
  z.strictObject({ recoveryCode }),
]);

export const mfaLoginBody = secondFactorProof;

export const startEnrolmentBody = z.strictObject({ currentPassword: z.string().max(1024) });

export const confirmEnrolmentBody = z.strictObject({ code: totpCode });

export const regenerateRecoveryCodesBody = z.strictObject({ currentPassword: z.string().max(1024) });

export const disableMfaBody = z.union([
  z.strictObject({ currentPassword: z.string().max(1024), code: totpCode }),
  z.strictObject({ currentPassword: z.string().max(1024), recoveryCode }),
]);

/** The password step's answer when a second factor is needed (202: the login is not finished). */
export const mfaRequiredResponse = z.strictObject({ mfaRequired: z.literal(true) });

export const mfaStatusResponse = z.strictObject({
  enabled: z.boolean(),
  recoveryCodesLeft: z.number().int(),
});

export const enrolmentResponse = z.strictObject({
  otpauthUri: z.string(),
  secret: z.string(),
  qrCodeSvg: z.string(),
});

export const recoveryCodesResponse = z.strictObject({ recoveryCodes: z.array(z.string()) });
