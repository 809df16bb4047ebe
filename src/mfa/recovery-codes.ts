import { createHash, randomBytes } from 'node:crypto';

/** How many recovery codes a user holds after enrolment or regeneration. */
export const RECOVERY_CODE_COUNT = 10;

/** RFC 4648 base32 without padding: no 0/1/8/9, so O, I, B and g are never misread as digits. */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** 15 random bytes: 120 bits, exactly 24 base32 characters. */
const CODE_BYTES = 15;
const CODE_CHARACTERS = 24;

function base32(bytes: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

/**
 * Ten single-use codes that stand in for the authenticator when it is lost (ASVS 5.0 6.5.x lookup
 * secrets). Each has 120 bits from a CSPRNG (6.5.3), more than the 112 bits ASVS 5.0 6.5.2 asks for
 * a secret that is stored with a fast hash, so guessing one is out of reach and SHA-256 is enough to
 * store it. Shown in groups of four (`ABCD-EFGH-…`) for reading aloud and typing.
 */
export function newRecoveryCodes(): string[] {
  return Array.from({ length: RECOVERY_CODE_COUNT }, () =>
    base32(randomBytes(CODE_BYTES)).match(/.{4}/g)!.join('-'),
  );
}

/**
 * The stored form of a code as typed: case, spaces and hyphens do not matter. null: it cannot be a
 * code (wrong length or alphabet), so no lookup is made. Found by hash (a primary key lookup), the
 * comparison leaks no timing about how much of a code matched.
 */
export function recoveryCodeHash(typed: string): Buffer | null {
  const normalised = typed.toUpperCase().replace(/[\s-]/g, '');
  if (normalised.length !== CODE_CHARACTERS || ![...normalised].every((c) => ALPHABET.includes(c))) {
    return null;
  }
  return createHash('sha256').update(normalised).digest();
}
