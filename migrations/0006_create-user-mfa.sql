-- Up Migration
-- A user's second factor (ASVS 5.0 6.3.3): a TOTP secret (RFC 6238) and its recovery codes.
--
-- user_totp holds at most one secret per user. The secret is stored encrypted (AES-256-GCM, with the
-- user id as associated data: src/mfa/secret-box.ts), never in the clear, so a read of this table (a
-- backup, a replica, an injection elsewhere) yields no usable seed (ASVS 5.0 11.7.x, 6.5.x). key_id
-- names the key of MFA_ENCRYPTION_KEYS that sealed it, so keys can be rotated: new secrets use the
-- first key, older ones still open with theirs. A row without confirmed_at is an enrolment that has
-- not yet been proven by a first code; it grants nothing and the login ignores it.
-- last_used_step is the RFC 6238 time step of the last code accepted: a code of that step or an
-- earlier one is refused, so an observed code cannot be replayed (ASVS 5.0 6.5.1).
CREATE TABLE user_totp (
  user_id           uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  secret_ciphertext bytea       NOT NULL,
  key_id            text        NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  confirmed_at      timestamptz,
  last_used_step    bigint,
  -- 12-byte IV + 16-byte tag + a 20-byte (160-bit) secret in base32: never shorter than that.
  CONSTRAINT user_totp_ciphertext_length CHECK (octet_length(secret_ciphertext) BETWEEN 60 AND 256),
  CONSTRAINT user_totp_key_id_format CHECK (key_id ~ '^[a-z0-9-]{1,32}$'),
  CONSTRAINT user_totp_step_confirmed CHECK (last_used_step IS NULL OR confirmed_at IS NOT NULL)
);

-- Single-use recovery codes. Each holds 120 random bits, so a plain SHA-256 is enough to keep them
-- useless to a reader of this table (ASVS 5.0 6.5.2: 112 bits or more need no slow hash); using one
-- deletes its row in the statement that finds it, so two requests cannot both spend it.
CREATE TABLE user_recovery_codes (
  user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  code_hash  bytea       NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, code_hash),
  CONSTRAINT user_recovery_codes_hash_length CHECK (octet_length(code_hash) = 32)
);

-- Down Migration
DROP TABLE user_recovery_codes;
DROP TABLE user_totp;
