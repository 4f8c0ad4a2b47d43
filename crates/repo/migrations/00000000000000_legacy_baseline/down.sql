-- Reverting the baseline drops the user's tables. It is refused (the whole revert
-- rolls back) unless they hold nothing but the untouched seeded master row, so
-- `diesel migration revert --all` can never destroy an identity or a preference.
DROP TABLE IF EXISTS temp.idstore_preflight;
CREATE TEMP TABLE idstore_preflight (token TEXT NOT NULL);
CREATE TEMP TRIGGER idstore_preflight_refuse BEFORE INSERT ON idstore_preflight
BEGIN
    SELECT RAISE(ABORT, 'idstore:later_step_applied: the active-identity step is still applied; nothing was changed: revert idstore_2026-12-06-000001_active_identity first') WHERE NEW.token = 'later_step_applied';
    SELECT RAISE(ABORT, 'idstore:holds_user_data: reverting the baseline drops accounts and settings, and they hold user data; nothing was changed: keep the baseline (a legacy file rolled back to it is the app''s own again)') WHERE NEW.token = 'holds_user_data';
END;
INSERT INTO temp.idstore_preflight (token)
SELECT 'later_step_applied' AS token
 WHERE EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'accounts_quarantine');
INSERT INTO temp.idstore_preflight (token)
SELECT 'holds_user_data' AS token
 WHERE EXISTS (SELECT 1 FROM accounts)
    OR EXISTS (SELECT 1 FROM settings
                WHERE NOT (id = 1
                           AND apiServer IS 'https://api.endorser.ch'
                           AND coalesce(hasBackedUpSeed, 0) = 0
                           AND coalesce(accountDid, activeDid, filterFeedByNearby, filterFeedByVisible,
                                        finishedOnboarding, firstName, hideRegisterPromptOnNewContact,
                                        isRegistered, lastName, lastAckedOfferToUserJwtId,
                                        lastAckedOfferToUserProjectsJwtId, lastNotifiedClaimId,
                                        lastViewedClaimId, notifyingNewActivityTime,
                                        notifyingReminderMessage, notifyingReminderTime,
                                        partnerApiServer, passkeyExpirationMinutes, profileImageUrl,
                                        searchBoxes, showContactGivesInline, showGeneralAdvanced,
                                        showShortcutBvc, vapid, warnIfProdServer, warnIfTestServer,
                                        webPushServer) IS NULL));
DROP TABLE temp.idstore_preflight;

DROP INDEX IF EXISTS idx_settings_accountDid;
DROP TABLE settings;
DROP INDEX IF EXISTS idx_accounts_did;
DROP TABLE accounts;
