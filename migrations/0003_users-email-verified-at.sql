-- Up Migration
-- When the account's email address was last proven to reach its owner (a verification link opened,
-- or an email change confirmed from the new address); NULL until then. New accounts start unverified.
--
-- Accounts that exist before this migration are marked verified as of the upgrade: their addresses
-- were accepted under the rules of their time, and leaving them NULL would lock every one of them out
-- the moment an operator turns on REQUIRE_VERIFIED_EMAIL. An operator who wants them re-verified sets
-- the column back to NULL. The default fills existing rows without rewriting the table (now() is
-- evaluated once, at this ALTER, and stored as the column's missing value); dropping it in the same
-- transaction leaves new rows unverified.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz DEFAULT now();
ALTER TABLE users ALTER COLUMN email_verified_at DROP DEFAULT;

-- Down Migration
ALTER TABLE users DROP COLUMN email_verified_at;
