-- Up Migration
-- Accounts. Emails are stored trimmed and lowercased (the constraint makes the rule hold even for
-- writes that bypass the app), so the unique index makes "Alice@x" and "alice@x" the same account.
CREATE TABLE users (
  id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  email         text        NOT NULL,
  name          text        NOT NULL,
  role          text        NOT NULL DEFAULT 'user',
  password_hash text        NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT users_role_check CHECK (role IN ('user', 'admin')),
  CONSTRAINT users_email_normalized CHECK (email = lower(btrim(email)) AND char_length(email) BETWEEN 3 AND 254),
  CONSTRAINT users_name_length CHECK (char_length(name) BETWEEN 1 AND 100)
);

CREATE UNIQUE INDEX users_email_key ON users (email);

-- Keyset pagination, newest first: (created_at, id) is unique and matches the ORDER BY.
CREATE INDEX users_created_at_id_idx ON users (created_at DESC, id DESC);

-- Down Migration
DROP TABLE users;
