-- Up Migration
-- The address a token was mailed for: the account's address when the link was issued. A link works
-- only while the account still has that address (the consuming UPDATE compares it with users.email,
-- holding the user row). Without it, a link outlives a change of address: a reset mailed to an old
-- mailbox, one the owner moved away from because someone else reads it, would still set the
-- password; a verification link mailed to the old address would mark the new one verified.
--
-- Links issued before this migration are bound to the account's address as it is now.
ALTER TABLE account_tokens ADD COLUMN account_email text;
UPDATE account_tokens t SET account_email = u.email FROM users u WHERE u.id = t.user_id;
ALTER TABLE account_tokens ALTER COLUMN account_email SET NOT NULL;

-- Down Migration
ALTER TABLE account_tokens DROP COLUMN account_email;
