-- Up Migration
-- Single-use tokens mailed to a user: a password reset, an address verification, an email change.
-- Only the SHA-256 of a token is stored, so someone who reads this table (a backup, a replica, an
-- injection elsewhere) holds no usable link (ASVS 5.0 6.3.x; OWASP Forgot Password Cheat Sheet).
-- A token is spent by setting used_at; spent and expired rows stay until the sweep deletes them, so
-- a second use can be told apart from a forged token in the security log.
CREATE TABLE account_tokens (
  id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  purpose    text        NOT NULL,
  token_hash bytea       NOT NULL,
  -- The address an email change moves to, confirmed by the token mailed there.
  new_email  text,
  expires_at timestamptz NOT NULL,
  used_at    timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT account_tokens_purpose_check CHECK (purpose IN ('password_reset', 'verify_email', 'change_email')),
  CONSTRAINT account_tokens_hash_length CHECK (octet_length(token_hash) = 32),
  -- A new address belongs to an email change, and an email change always has one, stored normalized
  -- like users.email.
  CONSTRAINT account_tokens_new_email_check CHECK (
    (purpose = 'change_email') = (new_email IS NOT NULL)
    AND (new_email IS NULL OR (new_email = lower(btrim(new_email)) AND char_length(new_email) BETWEEN 3 AND 254))
  )
);

-- A token is found by its hash only.
CREATE UNIQUE INDEX account_tokens_token_hash_key ON account_tokens (token_hash);

-- At most one live token per user and purpose: issuing a new one replaces the old one in the same
-- statement (INSERT ... ON CONFLICT), so two requests at once cannot leave two valid links.
CREATE UNIQUE INDEX account_tokens_live_key ON account_tokens (user_id, purpose) WHERE used_at IS NULL;

-- The sweep deletes expired tokens and spent ones.
CREATE INDEX account_tokens_expires_at_idx ON account_tokens (expires_at);
CREATE INDEX account_tokens_used_at_idx ON account_tokens (used_at) WHERE used_at IS NOT NULL;

-- Down Migration
DROP TABLE account_tokens;
