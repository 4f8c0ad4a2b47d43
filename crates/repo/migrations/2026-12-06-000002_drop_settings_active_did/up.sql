-- Cleanup, phase 4 of the plan: settings.activeDid and the transition triggers go.
-- Values of the column that cannot be derived from active_identity (an override
-- row's value, a master value of '' or naming no account) are archived first, so
-- down.sql can put every byte back.

-- 0. Preflight (the schema only): refuses, before anything is written, a file this
--    step cannot take over.
DROP TABLE IF EXISTS temp.idstore_preflight;
CREATE TEMP TABLE idstore_preflight (token TEXT NOT NULL);
CREATE TEMP TRIGGER idstore_preflight_refuse BEFORE INSERT ON idstore_preflight
BEGIN
    SELECT RAISE(ABORT, 'idstore:missing_step: the file does not have idstore_2026-12-06-000001_active_identity; nothing was changed: run it first') WHERE NEW.token = 'missing_step';
    SELECT RAISE(ABORT, 'idstore:already_applied: the file already has this step (settings has no activeDid column), so nothing was changed; record the step as applied and go on') WHERE NEW.token = 'already_applied';
    SELECT RAISE(ABORT, 'idstore:foreign_objects: the file has a trigger, view or index of another program that uses settings.activeDid, which could not stand without it; nothing was changed: drop it first') WHERE NEW.token = 'foreign_objects';
END;
INSERT INTO temp.idstore_preflight (token)
SELECT token FROM (
    SELECT 1 AS rank, 'missing_step' AS token
     WHERE NOT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'active_identity_keep_row')
    UNION ALL
    SELECT 2, 'already_applied'
     WHERE NOT EXISTS (SELECT 1 FROM pragma_table_info('settings') WHERE name = 'activeDid')
        OR EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'settings_active_did_archive')
    UNION ALL
    SELECT 3, 'foreign_objects'
     WHERE EXISTS (SELECT 1 FROM sqlite_master
                    WHERE type IN ('trigger', 'view', 'index') AND upper(sql) LIKE '%ACTIVEDID%'
                      AND name NOT IN (
                              'idx_active_identity_activeDid', 'active_identity_keep_row',
                              'active_identity_touch_last_updated',
                              'active_identity_guard_row', 'active_identity_guard_row_id',
                              'active_identity_guard_insert', 'active_identity_guard_update',
                              'active_identity_empty_means_none_on_insert',
                              'active_identity_empty_means_none_on_update',
                              'accounts_guard_active_delete', 'accounts_guard_active_did_update',
                              'accounts_guard_active_replace', 'accounts_guard_active_id_update',
                              'active_identity_sync_to_settings_on_insert',
                              'active_identity_sync_to_settings_on_update',
                              'settings_active_did_sync_on_insert',
                              'settings_active_did_sync_on_update'))
) ORDER BY rank;
DROP TABLE temp.idstore_preflight;

DROP TRIGGER settings_active_did_sync_on_insert;
DROP TRIGGER settings_active_did_sync_on_update;
DROP TRIGGER active_identity_sync_to_settings_on_update;
DROP TRIGGER active_identity_sync_to_settings_on_insert;

-- The table's own DDL and that of its indexes and triggers, so `idstore rollback` can
-- rebuild it with the text the file had (the SQL rollback below uses idstore's).
INSERT INTO idstore_original_schema (reason, type, name, tbl_name, sql)
SELECT 'rebuilt', type, name, tbl_name, sql FROM sqlite_master
 WHERE tbl_name = 'settings' AND sql IS NOT NULL
 ORDER BY type = 'table' DESC, name;

CREATE TABLE settings_active_did_archive (
    settingsId INTEGER NOT NULL PRIMARY KEY,
    activeDid TEXT NOT NULL,
    pointerWhenArchived TEXT,
    archivedAt TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

INSERT INTO settings_active_did_archive (settingsId, activeDid, pointerWhenArchived)
SELECT s.id, s.activeDid,
       CASE WHEN s.id = 1 THEN (SELECT activeDid FROM active_identity WHERE id = 1) END
FROM settings AS s
WHERE s.activeDid IS NOT NULL
  AND (s.id <> 1 OR s.activeDid IS NOT (SELECT activeDid FROM active_identity WHERE id = 1));

ALTER TABLE settings DROP COLUMN activeDid;
