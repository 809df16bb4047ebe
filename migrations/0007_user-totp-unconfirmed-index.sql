-- Up Migration
-- Enrolments left unconfirmed past their lifetime (ADR 0038) are deleted by a sweep every 15 minutes
-- from each app instance (src/lib/sweeps.ts). This index holds the unconfirmed rows only, so the sweep
-- reads those and never the confirmed factors, however many users have one.
CREATE INDEX user_totp_unconfirmed_created_at ON user_totp (created_at) WHERE confirmed_at IS NULL;

-- Down Migration
DROP INDEX user_totp_unconfirmed_created_at;
