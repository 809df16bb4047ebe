-- Up Migration
-- A per-user counter that every session carries from its login. Changing the password or the role
-- increments it in the same statement, so every session issued before the change is refused on its
-- next request, whatever happens in Redis (a login racing the change, an outage during revocation).
ALTER TABLE users ADD COLUMN session_epoch integer NOT NULL DEFAULT 0;

-- Down Migration
ALTER TABLE users DROP COLUMN session_epoch;
