-- Exact reverse of up.sql: settings is rebuilt with activeDid back in its original
-- position (a new table is filled and then renamed; the old one is never renamed).
-- The master row gets the archived raw value when the pointer has not moved since
-- the archive was taken, otherwise the current pointer.
CREATE TEMP TABLE idstore_settings_sequence AS
SELECT seq FROM sqlite_sequence WHERE name = 'settings';

CREATE TABLE settings_with_active_did (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
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

INSERT INTO settings_with_active_did (
    id, accountDid, activeDid, apiServer, filterFeedByNearby, filterFeedByVisible,
    finishedOnboarding, firstName, hideRegisterPromptOnNewContact, isRegistered, lastName,
    lastAckedOfferToUserJwtId, lastAckedOfferToUserProjectsJwtId, lastNotifiedClaimId,
    lastViewedClaimId, notifyingNewActivityTime, notifyingReminderMessage,
    notifyingReminderTime, partnerApiServer, passkeyExpirationMinutes, profileImageUrl,
    searchBoxes, showContactGivesInline, showGeneralAdvanced, showShortcutBvc, vapid,
    warnIfProdServer, warnIfTestServer, webPushServer, hasBackedUpSeed)
SELECT s.id, s.accountDid,
       CASE WHEN s.id = 1 THEN
                coalesce((SELECT ar.activeDid FROM settings_active_did_archive AS ar
                           WHERE ar.settingsId = 1
                             AND ar.pointerWhenArchived IS
                                 (SELECT activeDid FROM active_identity WHERE id = 1)),
                         (SELECT activeDid FROM active_identity WHERE id = 1))
            ELSE (SELECT ar.activeDid FROM settings_active_did_archive AS ar
                   WHERE ar.settingsId = s.id)
       END,
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

DROP INDEX IF EXISTS idx_settings_accountDid;
DROP TABLE settings;
ALTER TABLE settings_with_active_did RENAME TO settings;
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
