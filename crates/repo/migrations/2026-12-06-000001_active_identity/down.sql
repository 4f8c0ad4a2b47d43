-- Exact reverse of up.sql. settings.activeDid was not modified by up.sql (the
-- transition triggers kept it current since), so nothing needs reading back from
-- active_identity before it is dropped. Quarantined accounts return with their ids.

-- 0. Preflight: refuses, before anything is written, what this SQL cannot take back
--    without loss. The first query reads the schema only, the second idstore's rows.
DROP TABLE IF EXISTS temp.idstore_preflight;
CREATE TEMP TABLE idstore_preflight (token TEXT NOT NULL);
CREATE TEMP TRIGGER idstore_preflight_refuse BEFORE INSERT ON idstore_preflight
BEGIN
    SELECT RAISE(ABORT, 'idstore:not_applied: the file does not have this step (no accounts_quarantine), so there is nothing to revert; nothing was changed') WHERE NEW.token = 'not_applied';
    SELECT RAISE(ABORT, 'idstore:later_step_applied: settings.activeDid is gone, so the cleanup step is still applied; nothing was changed: revert idstore_2026-12-06-000002_drop_settings_active_did first') WHERE NEW.token = 'later_step_applied';
    SELECT RAISE(ABORT, 'idstore:foreign_objects: the file has a trigger of another program that would fire on the revert''s inserts into accounts; nothing was changed: drop it first') WHERE NEW.token = 'foreign_objects';
    SELECT RAISE(ABORT, 'idstore:needs_idstore_rollback: the file holds the definitions of the app''s own objects that idstore adopted (its active_identity, an index), which only `idstore rollback` can put back; nothing was changed: roll the file back with idstore rollback') WHERE NEW.token = 'needs_idstore_rollback';
    SELECT RAISE(ABORT, 'idstore:decisions_would_be_undone: the decision log records restores whose replaced accounts still wait in accounts_quarantine, and a later migration would undo them; nothing was changed: discard the replaced accounts first, or roll back with idstore rollback --forget-decisions') WHERE NEW.token = 'decisions_would_be_undone';
    SELECT RAISE(ABORT, 'idstore:quarantine_waiting: the quarantine holds what reverting would lose (a pointer value kept nowhere else, or an account whose id another account now has); nothing was changed: decide on each item first (idstore quarantine list)') WHERE NEW.token = 'quarantine_waiting';
END;
INSERT INTO temp.idstore_preflight (token)
SELECT token FROM (
    SELECT 1 AS rank, 'not_applied' AS token
     WHERE NOT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'accounts_quarantine')
    UNION ALL
    SELECT 2, 'later_step_applied'
     WHERE NOT EXISTS (SELECT 1 FROM pragma_table_info('settings') WHERE name = 'activeDid')
    UNION ALL
    SELECT 3, 'foreign_objects'
     WHERE EXISTS (
               -- Another program's trigger that would fire on the revert's inserts
               -- into accounts (the quarantined rows coming back), read from its
               -- head as up.sql reads it.
               SELECT 1 FROM (
                   SELECT CASE WHEN instr(h, ' ON ') > 0 THEN substr(h, 1, instr(h, ' ON ')) END AS head
                     FROM (SELECT ' ' || upper(replace(replace(replace(replace(sql, char(13), ' '), char(10), ' '), char(9), ' '), '(', ' (')) || ' ' AS h
                             FROM sqlite_master
                            WHERE type = 'trigger' AND tbl_name = 'accounts'
                              AND name NOT IN ('accounts_guard_active_delete', 'accounts_guard_active_did_update',
                                               'accounts_guard_active_replace', 'accounts_guard_active_id_update'))
               )
                WHERE head IS NULL OR head LIKE '%/*%' OR head LIKE '%--%' OR head LIKE '%"%'
                   OR head LIKE '%`%' OR head LIKE '%[%' OR head LIKE '% INSERT %')
) ORDER BY rank;
INSERT INTO temp.idstore_preflight (token)
SELECT token FROM (
    SELECT 4 AS rank, 'needs_idstore_rollback' AS token
     WHERE EXISTS (SELECT 1 FROM idstore_original_schema WHERE reason = 'adopted')
    UNION ALL
    SELECT 5, 'decisions_would_be_undone'
     WHERE EXISTS (SELECT 1 FROM quarantine_decisions AS d
                    WHERE d.decision = 'restore' AND d.itemKind = 'account'
                      AND EXISTS (SELECT 1 FROM accounts_quarantine AS q WHERE q.id = d.keptAsideId))
    UNION ALL
    SELECT 6, 'quarantine_waiting'
     WHERE EXISTS (SELECT 1 FROM active_did_quarantine AS q
                    WHERE q.activeDid IS NOT (SELECT activeDid FROM settings WHERE id = 1)
                      AND NOT EXISTS (SELECT 1 FROM idstore_adopted_active_identity AS a
                                       WHERE a.activeDid = q.activeDid)
                      AND q.activeDid IS NOT (SELECT legacyActiveDid FROM idstore_adoption
                                               WHERE pointerAfter IS (SELECT activeDid FROM active_identity WHERE id = 1)))
        OR EXISTS (SELECT 1 FROM accounts_quarantine AS q JOIN accounts AS a ON a.id = q.id)
) ORDER BY rank;
DROP TABLE temp.idstore_preflight;

DROP TABLE quarantine_decisions;
DROP TABLE idstore_adoption;
DROP TABLE idstore_adopted_active_identity;
DROP TABLE idstore_original_schema;

DROP TRIGGER settings_active_did_sync_on_insert;
DROP TRIGGER settings_active_did_sync_on_update;
DROP TRIGGER active_identity_sync_to_settings_on_update;
DROP TRIGGER active_identity_sync_to_settings_on_insert;
DROP TRIGGER accounts_guard_active_id_update;
DROP TRIGGER accounts_guard_active_replace;
DROP TRIGGER accounts_guard_active_did_update;
DROP TRIGGER accounts_guard_active_delete;
DROP TRIGGER active_identity_empty_means_none_on_insert;
DROP TRIGGER active_identity_empty_means_none_on_update;
DROP TRIGGER active_identity_guard_update;
DROP TRIGGER active_identity_guard_insert;
DROP TRIGGER active_identity_guard_row_id;
DROP TRIGGER active_identity_guard_row;
DROP TRIGGER active_identity_keep_row;
DROP TRIGGER active_identity_touch_last_updated;

DROP TABLE active_did_quarantine;
DROP INDEX idx_active_identity_activeDid;
DROP TABLE active_identity;

DROP INDEX idx_accounts_did_unique;
-- Any INSERT into an AUTOINCREMENT table writes its sqlite_sequence row, even one
-- that inserts nothing: keep the counter exactly as it was.
CREATE TEMP TABLE idstore_accounts_sequence AS
SELECT seq FROM sqlite_sequence WHERE name = 'accounts';
INSERT INTO accounts (id, dateCreated, derivationPath, did, identityEncrBase64,
                      mnemonicEncrBase64, passkeyCredIdHex, publicKeyHex)
SELECT id, dateCreated, derivationPath, did, identityEncrBase64,
       mnemonicEncrBase64, passkeyCredIdHex, publicKeyHex
FROM accounts_quarantine
ORDER BY id;
DELETE FROM sqlite_sequence WHERE name = 'accounts';
INSERT INTO sqlite_sequence (name, seq) SELECT 'accounts', seq FROM temp.idstore_accounts_sequence;
DROP TABLE temp.idstore_accounts_sequence;
DROP TABLE accounts_quarantine;
