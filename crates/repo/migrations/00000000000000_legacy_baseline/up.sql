-- Baseline: the legacy app's `accounts` and `settings` tables, exactly as the app
-- creates them (see docs/legacy-schema.md). Harmless on a file that already has
-- them: every statement is IF NOT EXISTS / OR IGNORE, so adopting a legacy file
-- changes nothing but a missing index or master settings row.
--
-- `NOT NULL` on the INTEGER PRIMARY KEY columns only states what SQLite already
-- enforces for a rowid alias, so `diesel print-schema` does not emit `Nullable<Integer>`.

CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    dateCreated TEXT NOT NULL,
    derivationPath TEXT,
    did TEXT NOT NULL,
    identityEncrBase64 TEXT,
    mnemonicEncrBase64 TEXT,
    passkeyCredIdHex TEXT,
    publicKeyHex TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS settings (
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

-- The legacy file's own tables are adopted as they are, so they must be the app's:
-- the active-identity step's preflight, word for word (a test holds the two the
-- same), runs here too, so that a file the next step would refuse is refused
-- before this one writes anything (the tables above are new, or already there).
-- A file that already has the active-identity step is not checked again: this
-- step changes nothing there.
DROP TABLE IF EXISTS temp.idstore_preflight;
CREATE TEMP TABLE idstore_preflight (token TEXT NOT NULL);
CREATE TEMP TRIGGER idstore_preflight_refuse BEFORE INSERT ON idstore_preflight
BEGIN
    SELECT RAISE(ABORT, 'idstore:preview_build: the file was migrated by a preview build of idstore (its 2026-11-25 steps); run `idstore migrate` on it, which brings it to these steps') WHERE NEW.token = 'preview_build';
    SELECT RAISE(ABORT, 'idstore:already_applied: the file already has this step (accounts_quarantine and the pointer guard exist), so nothing was changed; record the step as applied and go on') WHERE NEW.token = 'already_applied';
    SELECT RAISE(ABORT, 'idstore:unknown_columns: accounts, settings or the app''s active_identity has a column idstore does not know, which a rollback could not keep; nothing was changed: add the column to idstore (a new step) before migrating this file') WHERE NEW.token = 'unknown_columns';
    SELECT RAISE(ABORT, 'idstore:missing_app_step: settings lacks hasBackedUpSeed, which the app''s own step 003_add_hasBackedUpSeed_to_settings adds; nothing was changed: run the app''s migrations up to 003 first') WHERE NEW.token = 'missing_app_step';
    SELECT RAISE(ABORT, 'idstore:legacy_shape: accounts, settings or the app''s active_identity is not the shape the app creates (a column missing, moved or declared otherwise); nothing was changed: compare the file with docs/legacy-schema.md') WHERE NEW.token = 'legacy_shape';
    SELECT RAISE(ABORT, 'idstore:name_collision: the file has an object under a name this step creates, and it is not the app''s own active_identity or an equivalent unique index on accounts(did); nothing was changed: rename or drop it first') WHERE NEW.token = 'name_collision';
    SELECT RAISE(ABORT, 'idstore:foreign_objects: the file has a trigger of another program that would fire on this step''s writes (deleting from accounts, inserting into settings, updating settings.activeDid), or a foreign key that deletes or changes rows when an account goes; nothing was changed: drop it first (the app creates none)') WHERE NEW.token = 'foreign_objects';
    SELECT RAISE(ABORT, 'idstore:no_autoincrement: accounts has DIDs stored twice but no AUTOINCREMENT, so a new account could take the id of one this step keeps aside and a rollback could not put it back; nothing was changed: remove the duplicate rows after copying them, or rebuild accounts as the app creates it') WHERE NEW.token = 'no_autoincrement';
    SELECT RAISE(ABORT, 'idstore:damaged_input: accounts is damaged (a NULL where it declares NOT NULL); nothing was changed: restore the file from a backup') WHERE NEW.token = 'damaged_input';
END;
INSERT INTO temp.idstore_preflight (token)
SELECT token FROM (
    SELECT 1 AS rank, 'preview_build' AS token
     WHERE EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'accounts_quarantine')
       AND EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'accounts_guard_active_delete')
       AND NOT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'active_identity_keep_row')
    UNION ALL
    SELECT 2, 'already_applied'
     WHERE EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'accounts_quarantine')
       AND EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'active_identity_keep_row')
    UNION ALL
    SELECT 3, 'unknown_columns'
     WHERE EXISTS (SELECT 1 FROM pragma_table_info('accounts') WHERE name NOT IN (
               'id', 'dateCreated', 'derivationPath', 'did', 'identityEncrBase64',
               'mnemonicEncrBase64', 'passkeyCredIdHex', 'publicKeyHex'))
        OR EXISTS (SELECT 1 FROM pragma_table_info('settings') WHERE name NOT IN (
               'id', 'accountDid', 'activeDid', 'apiServer', 'filterFeedByNearby',
               'filterFeedByVisible', 'finishedOnboarding', 'firstName',
               'hideRegisterPromptOnNewContact', 'isRegistered', 'lastName',
               'lastAckedOfferToUserJwtId', 'lastAckedOfferToUserProjectsJwtId',
               'lastNotifiedClaimId', 'lastViewedClaimId', 'notifyingNewActivityTime',
               'notifyingReminderMessage', 'notifyingReminderTime', 'partnerApiServer',
               'passkeyExpirationMinutes', 'profileImageUrl', 'searchBoxes',
               'showContactGivesInline', 'showGeneralAdvanced', 'showShortcutBvc', 'vapid',
               'warnIfProdServer', 'warnIfTestServer', 'webPushServer', 'hasBackedUpSeed'))
        OR EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'active_identity')
           AND EXISTS (SELECT 1 FROM pragma_table_info('active_identity')
                        WHERE name NOT IN ('id', 'activeDid', 'lastUpdated'))
    UNION ALL
    SELECT 4, 'missing_app_step'
     WHERE NOT EXISTS (SELECT 1 FROM pragma_table_info('settings') WHERE name = 'hasBackedUpSeed')
    UNION ALL
    -- Every column as the app declares it, in order: name, type, NOT NULL (a rowid
    -- alias is never NULL, whether it says so or not), default, primary key.
    SELECT 5, 'legacy_shape'
     WHERE (SELECT group_concat(c, ', ') FROM (
               SELECT name || ' ' || upper(type)
                      || CASE WHEN "notnull" AND NOT pk THEN ' NOT NULL' ELSE '' END
                      || coalesce(' DEFAULT ' || dflt_value, '')
                      || CASE WHEN pk THEN ' PRIMARY KEY' ELSE '' END AS c
                 FROM pragma_table_info('accounts') ORDER BY cid))
           IS NOT 'id INTEGER PRIMARY KEY, dateCreated TEXT NOT NULL, derivationPath TEXT, did TEXT NOT NULL, identityEncrBase64 TEXT, mnemonicEncrBase64 TEXT, passkeyCredIdHex TEXT, publicKeyHex TEXT NOT NULL'
        OR coalesce((SELECT group_concat(c, ', ') FROM (
               SELECT name || ' ' || upper(type)
                      || CASE WHEN "notnull" AND NOT pk THEN ' NOT NULL' ELSE '' END
                      || coalesce(' DEFAULT ' || dflt_value, '')
                      || CASE WHEN pk THEN ' PRIMARY KEY' ELSE '' END AS c
                 FROM pragma_table_info('settings') ORDER BY cid)), '')
           NOT IN ('id INTEGER PRIMARY KEY, accountDid TEXT, activeDid TEXT, apiServer TEXT, filterFeedByNearby BOOLEAN, filterFeedByVisible BOOLEAN, finishedOnboarding BOOLEAN, firstName TEXT, hideRegisterPromptOnNewContact BOOLEAN, isRegistered BOOLEAN, lastName TEXT, lastAckedOfferToUserJwtId TEXT, lastAckedOfferToUserProjectsJwtId TEXT, lastNotifiedClaimId TEXT, lastViewedClaimId TEXT, notifyingNewActivityTime TEXT, notifyingReminderMessage TEXT, notifyingReminderTime TEXT, partnerApiServer TEXT, passkeyExpirationMinutes INTEGER, profileImageUrl TEXT, searchBoxes TEXT, showContactGivesInline BOOLEAN, showGeneralAdvanced BOOLEAN, showShortcutBvc BOOLEAN, vapid TEXT, warnIfProdServer BOOLEAN, warnIfTestServer BOOLEAN, webPushServer TEXT, hasBackedUpSeed BOOLEAN DEFAULT FALSE',
                   -- (without the late column: missing_app_step says so)
                   'id INTEGER PRIMARY KEY, accountDid TEXT, activeDid TEXT, apiServer TEXT, filterFeedByNearby BOOLEAN, filterFeedByVisible BOOLEAN, finishedOnboarding BOOLEAN, firstName TEXT, hideRegisterPromptOnNewContact BOOLEAN, isRegistered BOOLEAN, lastName TEXT, lastAckedOfferToUserJwtId TEXT, lastAckedOfferToUserProjectsJwtId TEXT, lastNotifiedClaimId TEXT, lastViewedClaimId TEXT, notifyingNewActivityTime TEXT, notifyingReminderMessage TEXT, notifyingReminderTime TEXT, partnerApiServer TEXT, passkeyExpirationMinutes INTEGER, profileImageUrl TEXT, searchBoxes TEXT, showContactGivesInline BOOLEAN, showGeneralAdvanced BOOLEAN, showShortcutBvc BOOLEAN, vapid TEXT, warnIfProdServer BOOLEAN, warnIfTestServer BOOLEAN, webPushServer TEXT')
        OR upper((SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'settings')) NOT LIKE '%AUTOINCREMENT%'
        OR EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'active_identity')
           AND (SELECT count(*) FROM pragma_table_info('active_identity')
                 WHERE name IN ('id', 'activeDid', 'lastUpdated')) <> 3
    UNION ALL
    SELECT 6, 'name_collision'
     WHERE EXISTS (SELECT 1 FROM sqlite_master
                    WHERE name IN ('accounts_quarantine', 'active_did_quarantine',
                                   'quarantine_decisions', 'idstore_original_schema',
                                   'idstore_adopted_active_identity', 'idstore_adoption')
                       OR name = 'active_identity' AND type <> 'table'
                       OR tbl_name <> 'active_identity' AND name IN (
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
        -- An index of the app's under idstore's name is adopted when it is the same
        -- index: UNIQUE, on accounts(did) alone, whole.
        OR EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'idx_accounts_did_unique')
           AND NOT EXISTS (SELECT 1 FROM pragma_index_list('accounts') AS il
                            WHERE il.name = 'idx_accounts_did_unique' AND il."unique" AND NOT il.partial
                              AND (SELECT group_concat(coalesce(name, '?')) FROM pragma_index_info(il.name)) = 'did')
    UNION ALL
    SELECT 7, 'foreign_objects'
     WHERE EXISTS (
               -- Another program's trigger that would fire on this step's writes:
               -- a delete from accounts (duplicates move out), an insert into
               -- settings (the baseline's master row), an update of
               -- settings.activeDid (the app's pointer taking over), any write of
               -- the bookkeeping. Read from its head, the text before ON; a head
               -- that cannot be read plainly (a comment, a quoted name) counts.
               SELECT 1 FROM (
                   SELECT tbl_name AS tbl,
                          CASE WHEN instr(h, ' ON ') > 0 THEN substr(h, 1, instr(h, ' ON ')) END AS head
                     FROM (SELECT tbl_name,
                                  ' ' || upper(replace(replace(replace(replace(sql, char(13), ' '), char(10), ' '), char(9), ' '), '(', ' (')) || ' ' AS h
                             FROM sqlite_master WHERE type = 'trigger')
               )
                WHERE tbl IN ('accounts', 'settings', '__diesel_schema_migrations', 'migrations')
                  AND (head IS NULL OR head LIKE '%/*%' OR head LIKE '%--%' OR head LIKE '%"%'
                       OR head LIKE '%`%' OR head LIKE '%[%'
                       OR tbl = 'accounts' AND head LIKE '% DELETE %'
                       OR tbl = 'settings' AND (head LIKE '% INSERT %'
                                                OR head LIKE '% UPDATE %' AND (head NOT LIKE '% UPDATE OF %'
                                                                               OR head LIKE '%ACTIVEDID%'))
                       OR tbl IN ('__diesel_schema_migrations', 'migrations')))
        OR EXISTS (SELECT 1 FROM sqlite_master AS m, pragma_foreign_key_list(m.name) AS f
                    WHERE m.type = 'table' AND m.name <> 'active_identity' AND f."table" = 'accounts'
                      AND f.on_delete NOT IN ('NO ACTION', 'RESTRICT'))
) WHERE token NOT IN ('preview_build', 'already_applied')
    AND NOT (EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'accounts_quarantine')
             AND EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'accounts_guard_active_delete'))
  ORDER BY rank;
INSERT INTO temp.idstore_preflight (token)
SELECT token FROM (
    SELECT 8 AS rank, 'no_autoincrement' AS token
     WHERE upper((SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'accounts')) NOT LIKE '%AUTOINCREMENT%'
       AND EXISTS (SELECT 1 FROM accounts GROUP BY did HAVING count(*) > 1)
    UNION ALL
    -- A NULL where accounts declares NOT NULL: a damaged file, which the key
    -- material's move could not carry (a malformed page stops any statement that
    -- reads it, with SQLite's own error).
    SELECT 9, 'damaged_input'
     WHERE EXISTS (SELECT 1 FROM accounts
                    -- (typeof reads the value: SQLite takes `IS NULL` of a NOT NULL
                    -- column to be false without looking.)
                    WHERE 'null' IN (typeof(dateCreated), typeof(did), typeof(publicKeyHex)))
) WHERE NOT (EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'accounts_quarantine')
              AND EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'accounts_guard_active_delete'))
  ORDER BY rank;
DROP TABLE temp.idstore_preflight;

CREATE INDEX IF NOT EXISTS idx_accounts_did ON accounts(did);
CREATE INDEX IF NOT EXISTS idx_settings_accountDid ON settings(accountDid);

-- The master row (the app's MASTER_SETTINGS_KEY "1"), seeded as the app seeds it.
INSERT OR IGNORE INTO settings (id, apiServer) VALUES (1, 'https://api.endorser.ch');
