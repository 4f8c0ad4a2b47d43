-- Exact reverse of up.sql: settings is rebuilt with activeDid back in its original
-- position. The rows are copied aside, the table is dropped and created again under
-- its own name (never renamed: a rename would rewrite, or trip over, every view and
-- trigger of other programs that names settings), and the rows go back. The master
-- row gets the archived raw value when the pointer has not moved since the archive
-- was taken, otherwise the current pointer. The table's text is idstore's, declaring
-- the app's columns as the app declares them, in its order (the active-identity
-- step's preflight made sure the file's were those); `idstore rollback` also puts
-- back the exact text the file had.

-- 0. Preflight (the schema only): refuses, before anything is written, what this SQL
--    cannot take back without loss.
DROP TABLE IF EXISTS temp.idstore_preflight;
CREATE TEMP TABLE idstore_preflight (token TEXT NOT NULL);
CREATE TEMP TRIGGER idstore_preflight_refuse BEFORE INSERT ON idstore_preflight
BEGIN
    SELECT RAISE(ABORT, 'idstore:not_applied: the file does not have this step (settings still has activeDid), so there is nothing to revert; nothing was changed') WHERE NEW.token = 'not_applied';
    SELECT RAISE(ABORT, 'idstore:unknown_columns: settings has a column idstore does not know (added since the migration), which rebuilding settings would lose; nothing was changed: add the column to idstore (a new step) before reverting') WHERE NEW.token = 'unknown_columns';
    SELECT RAISE(ABORT, 'idstore:needs_idstore_rollback: another program put indexes or triggers on settings, which rebuilding settings drops and only `idstore rollback` can put back; nothing was changed: roll the file back with idstore rollback') WHERE NEW.token = 'needs_idstore_rollback';
END;
INSERT INTO temp.idstore_preflight (token)
SELECT token FROM (
    SELECT 1 AS rank, 'not_applied' AS token
     WHERE EXISTS (SELECT 1 FROM pragma_table_info('settings') WHERE name = 'activeDid')
        OR NOT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'settings_active_did_archive')
    UNION ALL
    SELECT 2, 'unknown_columns'
     WHERE EXISTS (SELECT 1 FROM pragma_table_info('settings') WHERE name NOT IN (
               'id', 'accountDid', 'apiServer', 'filterFeedByNearby',
               'filterFeedByVisible', 'finishedOnboarding', 'firstName',
               'hideRegisterPromptOnNewContact', 'isRegistered', 'lastName',
               'lastAckedOfferToUserJwtId', 'lastAckedOfferToUserProjectsJwtId',
               'lastNotifiedClaimId', 'lastViewedClaimId', 'notifyingNewActivityTime',
               'notifyingReminderMessage', 'notifyingReminderTime', 'partnerApiServer',
               'passkeyExpirationMinutes', 'profileImageUrl', 'searchBoxes',
               'showContactGivesInline', 'showGeneralAdvanced', 'showShortcutBvc', 'vapid',
               'warnIfProdServer', 'warnIfTestServer', 'webPushServer', 'hasBackedUpSeed'))
    UNION ALL
    SELECT 3, 'needs_idstore_rollback'
     WHERE EXISTS (SELECT 1 FROM sqlite_master
                    WHERE tbl_name = 'settings' AND type IN ('index', 'trigger') AND sql IS NOT NULL
                      AND name <> 'idx_settings_accountDid')
) ORDER BY rank;
DROP TABLE temp.idstore_preflight;

CREATE TEMP TABLE idstore_settings_sequence AS
SELECT seq FROM sqlite_sequence WHERE name = 'settings';

CREATE TEMP TABLE idstore_settings_rows AS
SELECT s.id, s.accountDid,
       CASE WHEN s.id = 1 THEN
                coalesce((SELECT ar.activeDid FROM settings_active_did_archive AS ar
                           WHERE ar.settingsId = 1
                             AND ar.pointerWhenArchived IS
                                 (SELECT activeDid FROM active_identity WHERE id = 1)),
                         (SELECT activeDid FROM active_identity WHERE id = 1))
            ELSE (SELECT ar.activeDid FROM settings_active_did_archive AS ar
                   WHERE ar.settingsId = s.id)
       END AS activeDid,
       s.apiServer, s.filterFeedByNearby, s.filterFeedByVisible,
       s.finishedOnboarding, s.firstName, s.hideRegisterPromptOnNewContact, s.isRegistered,
       s.lastName, s.lastAckedOfferToUserJwtId, s.lastAckedOfferToUserProjectsJwtId,
       s.lastNotifiedClaimId, s.lastViewedClaimId, s.notifyingNewActivityTime,
       s.notifyingReminderMessage, s.notifyingReminderTime, s.partnerApiServer,
       s.passkeyExpirationMinutes, s.profileImageUrl, s.searchBoxes,
       s.showContactGivesInline, s.showGeneralAdvanced, s.showShortcutBvc, s.vapid,
       s.warnIfProdServer, s.warnIfTestServer, s.webPushServer, s.hasBackedUpSeed
FROM settings AS s
ORDER BY s.id;

DROP TABLE settings;
CREATE TABLE settings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    accountDid TEXT,
    activeDid TEXT,
    apiServer TEXT,
    filterFeedByNearby BOOLEAN,
    filterFeedByVisible BOOLEAN,
    finishedOnboarding BOOLEAN,
    firstName TEXT,
    hideRegisterPromptOnNewContact BOOLEAN,
    isRegistered BOOLEAN,
    lastName TEXT,
    lastAckedOfferToUserJwtId TEXT,
    lastAckedOfferToUserProjectsJwtId TEXT,
    lastNotifiedClaimId TEXT,
    lastViewedClaimId TEXT,
    notifyingNewActivityTime TEXT,
    notifyingReminderMessage TEXT,
    notifyingReminderTime TEXT,
    partnerApiServer TEXT,
    passkeyExpirationMinutes INTEGER,
    profileImageUrl TEXT,
    searchBoxes TEXT,
    showContactGivesInline BOOLEAN,
    showGeneralAdvanced BOOLEAN,
    showShortcutBvc BOOLEAN,
    vapid TEXT,
    warnIfProdServer BOOLEAN,
    warnIfTestServer BOOLEAN,
    webPushServer TEXT,
    hasBackedUpSeed BOOLEAN DEFAULT FALSE
);

INSERT INTO settings SELECT * FROM temp.idstore_settings_rows ORDER BY id;
DROP TABLE temp.idstore_settings_rows;
CREATE INDEX idx_settings_accountDid ON settings(accountDid);

-- Dropping the old table removed its AUTOINCREMENT counter: restore it exactly.
DELETE FROM sqlite_sequence WHERE name = 'settings';
INSERT INTO sqlite_sequence (name, seq) SELECT 'settings', seq FROM temp.idstore_settings_sequence;
DROP TABLE temp.idstore_settings_sequence;

DROP TABLE settings_active_did_archive;

-- The transition triggers, as the active_identity migration created them.
CREATE TRIGGER active_identity_sync_to_settings_on_insert
AFTER INSERT ON active_identity
FOR EACH ROW
BEGIN
    UPDATE settings SET activeDid = NEW.activeDid
     WHERE id = 1 AND activeDid IS NOT NEW.activeDid;
END;

CREATE TRIGGER active_identity_sync_to_settings_on_update
AFTER UPDATE OF activeDid ON active_identity
FOR EACH ROW WHEN NEW.activeDid IS NOT OLD.activeDid
BEGIN
    UPDATE settings SET activeDid = NEW.activeDid
     WHERE id = 1 AND activeDid IS NOT NEW.activeDid;
END;

CREATE TRIGGER settings_active_did_sync_on_update
AFTER UPDATE OF activeDid ON settings
FOR EACH ROW WHEN NEW.id = 1 AND NEW.activeDid IS NOT OLD.activeDid
BEGIN
    INSERT INTO active_identity (id, activeDid)
    SELECT 1, NEW.activeDid
     WHERE EXISTS (SELECT 1 FROM accounts WHERE did = NEW.activeDid)
    ON CONFLICT (id) DO UPDATE SET activeDid = excluded.activeDid
     WHERE activeDid IS NOT excluded.activeDid;

    UPDATE active_identity SET activeDid = NULL
     WHERE id = 1 AND activeDid IS NOT NULL AND coalesce(NEW.activeDid, '') = '';

    INSERT INTO active_did_quarantine (activeDid, reason)
    SELECT NEW.activeDid, 'legacy write to settings.activeDid named no account; active_identity kept'
     WHERE NEW.activeDid <> ''
       AND NOT EXISTS (SELECT 1 FROM accounts WHERE did = NEW.activeDid);

    UPDATE settings SET activeDid = (SELECT activeDid FROM active_identity WHERE id = 1)
     WHERE id = 1
       AND NEW.activeDid <> ''
       AND NOT EXISTS (SELECT 1 FROM accounts WHERE did = NEW.activeDid);
END;

CREATE TRIGGER settings_active_did_sync_on_insert
AFTER INSERT ON settings
FOR EACH ROW WHEN NEW.id = 1
BEGIN
    INSERT INTO active_identity (id, activeDid)
    SELECT 1, NEW.activeDid
     WHERE EXISTS (SELECT 1 FROM accounts WHERE did = NEW.activeDid)
    ON CONFLICT (id) DO UPDATE SET activeDid = excluded.activeDid
     WHERE activeDid IS NOT excluded.activeDid;

    UPDATE active_identity SET activeDid = NULL
     WHERE id = 1 AND activeDid IS NOT NULL AND coalesce(NEW.activeDid, '') = '';

    INSERT INTO active_did_quarantine (activeDid, reason)
    SELECT NEW.activeDid, 'legacy write to settings.activeDid named no account; active_identity kept'
     WHERE NEW.activeDid <> ''
       AND NOT EXISTS (SELECT 1 FROM accounts WHERE did = NEW.activeDid);

    UPDATE settings SET activeDid = (SELECT activeDid FROM active_identity WHERE id = 1)
     WHERE id = 1
       AND NEW.activeDid <> ''
       AND NOT EXISTS (SELECT 1 FROM accounts WHERE did = NEW.activeDid);
END;

DELETE FROM idstore_original_schema WHERE reason = 'rebuilt';
