-- Cleanup, phase 4 of the plan: settings.activeDid and the transition triggers go.
-- Values of the column that cannot be derived from active_identity (an override
-- row's value, a master value of '' or naming no account) are archived first, so
-- down.sql can put every byte back.
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
