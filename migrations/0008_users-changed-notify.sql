-- Up Migration
-- Each app instance keeps the signed-in users it has read lately in memory (src/users/user-cache.ts,
-- ADR 0044) and drops an entry when Postgres says the row changed. These triggers say so, on the
-- channel `users_changed`, for every change to what the cache holds: a users row, and user_totp,
-- from which `mfa_enabled` is read. Triggers rather than the app's own code, so a change made by
-- hand, by a script or by a later feature that forgets the cache is announced all the same.
--
-- One notification per statement, after it ran: the ids it touched joined by commas, or `*` ("drop
-- everything") when they would not fit in one payload (8000 bytes: 200 uuids of 36 characters and
-- their commas stay well under it) and for TRUNCATE. Postgres sends a notification only when the
-- transaction commits, to every listener, in commit order. Inserts are not announced: the cache
-- holds only users it found, so a new row replaces nothing.
CREATE FUNCTION users_changed_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  ids text;
  touched bigint;
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('users_changed', '*');
    RETURN NULL;
  END IF;
  -- `changed` is the statement's transition table (the rows as they were, or as inserted), named so by
  -- every trigger below; an update also names the rows as they became `changed_new`, since it may move
  -- a row to another user. TG_ARGV[0] names the column holding the user's id in this table.
  EXECUTE format(
    'SELECT count(DISTINCT id), string_agg(DISTINCT id::text, %2$L) FROM (SELECT %1$I AS id FROM changed %3$s) touched',
    TG_ARGV[0], ',',
    CASE WHEN TG_OP = 'UPDATE' THEN format('UNION ALL SELECT %I FROM changed_new', TG_ARGV[0]) ELSE '' END)
    INTO touched, ids;
  IF touched > 200 THEN
    PERFORM pg_notify('users_changed', '*');
  ELSIF touched > 0 THEN
    PERFORM pg_notify('users_changed', ids);
  END IF;
  RETURN NULL;
END
$$;

-- A trigger with a transition table takes a single event, so each event has its own.
CREATE TRIGGER users_changed_on_update AFTER UPDATE ON users
  REFERENCING OLD TABLE AS changed NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION users_changed_notify('id');
CREATE TRIGGER users_changed_on_delete AFTER DELETE ON users
  REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION users_changed_notify('id');
CREATE TRIGGER users_changed_on_truncate AFTER TRUNCATE ON users
  FOR EACH STATEMENT EXECUTE FUNCTION users_changed_notify('id');
CREATE TRIGGER user_totp_changed_on_insert AFTER INSERT ON user_totp
  REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION users_changed_notify('user_id');
CREATE TRIGGER user_totp_changed_on_update AFTER UPDATE ON user_totp
  REFERENCING OLD TABLE AS changed NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION users_changed_notify('user_id');
CREATE TRIGGER user_totp_changed_on_delete AFTER DELETE ON user_totp
  REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION users_changed_notify('user_id');
CREATE TRIGGER user_totp_changed_on_truncate AFTER TRUNCATE ON user_totp
  FOR EACH STATEMENT EXECUTE FUNCTION users_changed_notify('user_id');

-- Down Migration
DROP TRIGGER user_totp_changed_on_truncate ON user_totp;
DROP TRIGGER user_totp_changed_on_delete ON user_totp;
DROP TRIGGER user_totp_changed_on_update ON user_totp;
DROP TRIGGER user_totp_changed_on_insert ON user_totp;
DROP TRIGGER users_changed_on_truncate ON users;
DROP TRIGGER users_changed_on_delete ON users;
DROP TRIGGER users_changed_on_update ON users;
DROP FUNCTION users_changed_notify();
