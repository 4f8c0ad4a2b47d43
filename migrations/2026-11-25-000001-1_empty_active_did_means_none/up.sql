-- The active identity, from any writer: an empty string means "no active identity".
-- The app clears the pointer by writing '' (`$updateActiveDid(null)`, and newer
-- builds' `newDid || ""`), by UPDATE, INSERT OR REPLACE or UPSERT; the column keeps
-- NULL for none (its CHECK refuses ''), so each such write is turned into NULL.
-- And no writer may leave the pointer naming no account, REPLACE included: a
-- REPLACE deletes the row it replaces without firing delete triggers (unless
-- recursive_triggers is on), so the delete guard never sees it.
--
-- It runs at the transition step and at the final one alike (it touches neither
-- settings nor its transition triggers), so its version sorts between them.
-- Nothing is written to any row: a pointer of '' cannot be stored before it.

-- 1. '' means none. A BEFORE trigger cannot change NEW, so it writes NULL itself
--    and drops the write of ''. An insert of '' for the existing row (a plain
--    INSERT, OR REPLACE, an UPSERT) clears the pointer; a new row gets NULL.
CREATE TRIGGER active_identity_empty_means_none_on_update
BEFORE UPDATE OF activeDid ON active_identity
FOR EACH ROW WHEN NEW.activeDid = ''
BEGIN
    UPDATE active_identity SET activeDid = NULL, lastUpdated = NEW.lastUpdated
     WHERE id = OLD.id;
    SELECT RAISE(IGNORE);
END;

CREATE TRIGGER active_identity_empty_means_none_on_insert
BEFORE INSERT ON active_identity
FOR EACH ROW WHEN NEW.activeDid = ''
BEGIN
    INSERT INTO active_identity (id, activeDid, lastUpdated)
    VALUES (NEW.id, NULL, coalesce(NEW.lastUpdated, strftime('%Y-%m-%d %H:%M:%f', 'now')))
    ON CONFLICT (id) DO UPDATE SET activeDid = NULL, lastUpdated = excluded.lastUpdated;
    SELECT RAISE(IGNORE);
END;

-- 2. The guard against REPLACE: an insert that would replace the active account
--    (by its id, or its DID) with a row of another DID, and an update that moves
--    another row onto the active account's id, are refused.
CREATE TRIGGER accounts_guard_active_replace
BEFORE INSERT ON accounts
FOR EACH ROW WHEN EXISTS (
    SELECT 1 FROM accounts AS a JOIN active_identity AS p ON p.activeDid = a.did
     WHERE a.id = NEW.id AND a.did IS NOT NEW.did)
BEGIN
    SELECT RAISE(ABORT, 'the active identity''s account cannot be replaced by another DID: switch active_identity to another account (or NULL) first');
END;

CREATE TRIGGER accounts_guard_active_id_update
BEFORE UPDATE OF id ON accounts
FOR EACH ROW WHEN NEW.id IS NOT OLD.id AND EXISTS (
    SELECT 1 FROM accounts AS a JOIN active_identity AS p ON p.activeDid = a.did
     WHERE a.id = NEW.id AND a.did IS NOT NEW.did)
BEGIN
    SELECT RAISE(ABORT, 'the active identity''s account cannot be replaced by another DID: switch active_identity to another account (or NULL) first');
END;
