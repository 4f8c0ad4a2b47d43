-- Reverting the baseline drops the user's tables. It is refused (the whole revert
-- rolls back) unless they hold nothing but the untouched seeded master row, so
-- `diesel migration revert --all` can never destroy an identity or a preference.
CREATE TEMP TABLE idstore_baseline_revert_guard (
    user_rows INTEGER NOT NULL,
    CONSTRAINT refusing_to_drop_accounts_and_settings_that_hold_user_data CHECK (user_rows = 0)
);

INSERT INTO idstore_baseline_revert_guard (user_rows)
SELECT (SELECT count(*) FROM accounts)
     + (SELECT count(*) FROM settings
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

DROP TABLE temp.idstore_baseline_revert_guard;

DROP INDEX IF EXISTS idx_settings_accountDid;
DROP TABLE settings;
DROP INDEX IF EXISTS idx_accounts_did;
DROP TABLE accounts;
