-- Active identity, phases 1-2 of the plan: the pointer moves out of
-- `settings.activeDid` into a single-row table guarded for every writer.
--
-- The app's migration service runs this very text (export/app-migrations.json), in
-- SQLite 3.35 (its web build) and later, SQLCipher 4, with foreign keys on or off,
-- so it carries its own guarantees: a preflight refuses, before anything is
-- written, every state it cannot take over without loss (the error message starts
-- with a stable token, `idstore:<token>:`, and says what to do), and the app's own
-- `active_identity` and unique index on `accounts(did)` are adopted by the SQL
-- below, whichever of the shapes the app made. `settings` is not modified, except
-- for the master row's `activeDid` when the app's own pointer takes over (the value
-- it replaces is kept in `idstore_adoption`).

-- 0. Preflight. One row per reason to refuse, most fundamental first; the trigger
--    aborts on the first with its message. The first query reads the schema only,
--    the second the legacy rows (`idstore generate app-migrations` exports both
--    as the app's read-only preflight query).
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
) ORDER BY rank;
-- The rows, once the schema is known to be the app's.
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
) ORDER BY rank;
DROP TABLE temp.idstore_preflight;

-- 1. What a rollback must give back: the definitions of the app's objects this
--    step replaces (its own active_identity with its indexes and triggers, an
--    equivalent unique index under idstore's name), as sqlite_master has them; and
--    the app's active_identity rows, as rows. (Only `idstore rollback` can run the
--    kept definitions: the exported down steps refuse a file that has any.)
CREATE TABLE idstore_original_schema (
    id INTEGER NOT NULL PRIMARY KEY,
    -- 'adopted': replaced by idstore's own at adoption; 'rebuilt': a table (with its
    -- indexes and triggers) the cleanup's rollback rebuilds.
    reason TEXT NOT NULL CHECK (reason IN ('adopted', 'rebuilt')),
    type TEXT NOT NULL,
    name TEXT NOT NULL,
    tbl_name TEXT NOT NULL,
    sql TEXT,
    -- An adopted table's rows, as INSERT statements.
    rowsSql TEXT
);

INSERT INTO idstore_original_schema (reason, type, name, tbl_name, sql)
SELECT 'adopted', type, name, tbl_name, sql FROM sqlite_master
 WHERE sql IS NOT NULL AND (tbl_name = 'active_identity' OR name = 'idx_accounts_did_unique')
 ORDER BY type <> 'table', name;

-- Normalize: a table of the app's shape stands where the app's own may be, so the
-- statements below read the same whether the app made one or not.
CREATE TABLE IF NOT EXISTS active_identity (id INTEGER PRIMARY KEY, activeDid TEXT, lastUpdated TEXT);

-- The app's rows, exactly as stored (no column type: no conversion).
CREATE TABLE idstore_adopted_active_identity (
    id PRIMARY KEY,
    activeDid,
    lastUpdated
);
INSERT INTO idstore_adopted_active_identity (id, activeDid, lastUpdated)
SELECT id, activeDid, lastUpdated FROM active_identity ORDER BY id;

-- When the app's own pointer takes over, the master row's legacy value it replaces
-- (and the pointer it left, so a rollback knows whether it moved since).
CREATE TABLE idstore_adoption (
    id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    legacyActiveDid TEXT,
    pointerAfter TEXT
);
INSERT INTO idstore_adoption (id, legacyActiveDid)
SELECT 1, (SELECT activeDid FROM settings WHERE id = 1)
 WHERE EXISTS (SELECT 1 FROM idstore_original_schema WHERE reason = 'adopted' AND type = 'table');

DROP TABLE active_identity;
DROP INDEX IF EXISTS idx_accounts_did_unique;

-- 2. accounts.did becomes UNIQUE. Every row beyond the first (lowest id) of a DID is
--    moved, every column and its id intact, to `accounts_quarantine`.
CREATE TABLE accounts_quarantine (
    id INTEGER NOT NULL PRIMARY KEY,
    dateCreated TEXT NOT NULL,
    derivationPath TEXT,
    did TEXT NOT NULL,
    identityEncrBase64 TEXT,
    mnemonicEncrBase64 TEXT,
    passkeyCredIdHex TEXT,
    publicKeyHex TEXT NOT NULL,
    keptAccountId INTEGER NOT NULL,
    reason TEXT NOT NULL,
    quarantinedAt TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

INSERT INTO accounts_quarantine (id, dateCreated, derivationPath, did, identityEncrBase64,
                                 mnemonicEncrBase64, passkeyCredIdHex, publicKeyHex,
                                 keptAccountId, reason)
SELECT dup.id, dup.dateCreated, dup.derivationPath, dup.did, dup.identityEncrBase64,
       dup.mnemonicEncrBase64, dup.passkeyCredIdHex, dup.publicKeyHex, kept.id,
       CASE WHEN dup.identityEncrBase64 IS kept.identityEncrBase64
             AND dup.mnemonicEncrBase64 IS kept.mnemonicEncrBase64
             AND dup.publicKeyHex IS kept.publicKeyHex
             AND dup.passkeyCredIdHex IS kept.passkeyCredIdHex
             AND dup.derivationPath IS kept.derivationPath
            THEN 'duplicate did, same key material as the kept account'
            ELSE 'duplicate did, different key material from the kept account'
       END
FROM accounts AS dup
JOIN accounts AS kept
  ON kept.did = dup.did
 AND kept.id = (SELECT min(id) FROM accounts WHERE did = dup.did)
WHERE dup.id <> kept.id;

DELETE FROM accounts WHERE id IN (SELECT id FROM accounts_quarantine);

CREATE UNIQUE INDEX idx_accounts_did_unique ON accounts(did);

-- 3. The pointer table. NULL means "no active identity"; '' written by any writer
--    is stored as NULL (see 5). The foreign key is checked at the end of each
--    statement (NO ACTION), so an INSERT OR REPLACE of the active account with the
--    same DID passes with foreign keys on, as with a plain table.
CREATE TABLE active_identity (
    id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    activeDid TEXT REFERENCES accounts(did),
    lastUpdated TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

CREATE INDEX idx_active_identity_activeDid ON active_identity(activeDid);

-- Pointer values that name no account, kept for a person to decide on.
CREATE TABLE active_did_quarantine (
    id INTEGER NOT NULL PRIMARY KEY,
    activeDid TEXT NOT NULL,
    reason TEXT NOT NULL,
    quarantinedAt TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);

-- 4. Seed the single row. The app's own pointer (its first row) is the newer truth
--    when it names an account; else the master row's settings.activeDid when it
--    does; else none. A value naming no account is kept in the quarantine ('' and
--    NULL mean none).
INSERT INTO active_did_quarantine (activeDid, reason)
SELECT s.activeDid, 'settings.activeDid of the master row names no account'
FROM settings AS s
WHERE s.id = 1
  AND s.activeDid <> ''
  AND NOT EXISTS (SELECT 1 FROM accounts AS a WHERE a.did = s.activeDid);

INSERT INTO active_did_quarantine (activeDid, reason)
SELECT p.activeDid, 'the app''s active_identity.activeDid names no account'
FROM (SELECT activeDid FROM idstore_adopted_active_identity ORDER BY id LIMIT 1) AS p
WHERE p.activeDid <> ''
  AND NOT EXISTS (SELECT 1 FROM accounts AS a WHERE a.did = p.activeDid);

INSERT INTO active_identity (id, activeDid, lastUpdated)
SELECT 1, coalesce(app.did, legacy.did),
       coalesce(CASE WHEN app.did IS NOT NULL THEN app.lastUpdated END,
                strftime('%Y-%m-%d %H:%M:%f', 'now'))
FROM (SELECT 1) AS one
LEFT JOIN (SELECT a.did, p.lastUpdated
             FROM (SELECT activeDid, lastUpdated FROM idstore_adopted_active_identity
                    ORDER BY id LIMIT 1) AS p
             JOIN accounts AS a ON a.did = p.activeDid) AS app ON 1
LEFT JOIN (SELECT a.did FROM settings AS s JOIN accounts AS a ON a.did = s.activeDid
            WHERE s.id = 1) AS legacy ON 1;

-- The app's pointer took over: the legacy column follows it (older app builds
-- read it), and the value it had is kept above.
UPDATE idstore_adoption SET pointerAfter = (SELECT activeDid FROM active_identity WHERE id = 1);
UPDATE settings SET activeDid = (SELECT activeDid FROM active_identity WHERE id = 1)
 WHERE id = 1
   AND EXISTS (SELECT 1 FROM idstore_adoption)
   AND activeDid IS NOT (SELECT activeDid FROM active_identity WHERE id = 1)
   AND (SELECT activeDid FROM active_identity WHERE id = 1) IS
       (SELECT a.did FROM (SELECT activeDid FROM idstore_adopted_active_identity ORDER BY id LIMIT 1) AS p
          JOIN accounts AS a ON a.did = p.activeDid);

-- 5. The pointer behaves like a plain table to every writer, foreign keys on or off,
--    and can never name a missing account. Each refusal's message starts with a
--    stable token (`idstore:<token>:`) and says what to do first.

-- lastUpdated follows every change of the pointer (unless the writer set it).
CREATE TRIGGER active_identity_touch_last_updated
AFTER UPDATE OF activeDid ON active_identity
FOR EACH ROW WHEN NEW.lastUpdated IS OLD.lastUpdated
BEGIN
    UPDATE active_identity
       SET lastUpdated = strftime('%Y-%m-%d %H:%M:%f', 'now')
     WHERE id = NEW.id;
END;

-- The one row, id 1, is permanent: "none" is NULL.
CREATE TRIGGER active_identity_keep_row
BEFORE DELETE ON active_identity
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'idstore:pointer_row: the active_identity row cannot be deleted; set activeDid to NULL for no active identity');
END;

CREATE TRIGGER active_identity_guard_row
BEFORE INSERT ON active_identity
FOR EACH ROW WHEN NEW.id IS NOT 1
BEGIN
    SELECT RAISE(ABORT, 'idstore:pointer_row: active_identity has exactly one row, id 1; update it (or INSERT OR REPLACE it with id 1) instead');
END;

CREATE TRIGGER active_identity_guard_row_id
BEFORE UPDATE OF id ON active_identity
FOR EACH ROW WHEN NEW.id IS NOT 1
BEGIN
    SELECT RAISE(ABORT, 'idstore:pointer_row: active_identity has exactly one row, id 1; update it (or INSERT OR REPLACE it with id 1) instead');
END;

-- The pointer names an account, or none.
CREATE TRIGGER active_identity_guard_insert
BEFORE INSERT ON active_identity
FOR EACH ROW WHEN NEW.activeDid IS NOT NULL AND NEW.activeDid <> ''
              AND NOT EXISTS (SELECT 1 FROM accounts WHERE did = NEW.activeDid)
BEGIN
    SELECT RAISE(ABORT, 'idstore:unknown_account: active_identity.activeDid must name an account (accounts.did): add the account first, or store NULL for none');
END;

CREATE TRIGGER active_identity_guard_update
BEFORE UPDATE OF activeDid ON active_identity
FOR EACH ROW WHEN NEW.activeDid IS NOT NULL AND NEW.activeDid <> ''
              AND NOT EXISTS (SELECT 1 FROM accounts WHERE did = NEW.activeDid)
BEGIN
    SELECT RAISE(ABORT, 'idstore:unknown_account: active_identity.activeDid must name an account (accounts.did): add the account first, or store NULL for none');
END;

-- '' means none, from any writer and any statement (UPDATE, INSERT, INSERT OR
-- REPLACE, UPSERT): the app clears the pointer that way. The write goes through
-- (it counts one changed row, as on a plain table) and is then stored as NULL.
CREATE TRIGGER active_identity_empty_means_none_on_update
AFTER UPDATE OF activeDid ON active_identity
FOR EACH ROW WHEN NEW.activeDid = ''
BEGIN
    UPDATE active_identity SET activeDid = NULL WHERE id = NEW.id;
END;

CREATE TRIGGER active_identity_empty_means_none_on_insert
AFTER INSERT ON active_identity
FOR EACH ROW WHEN NEW.activeDid = ''
BEGIN
    UPDATE active_identity SET activeDid = NULL WHERE id = NEW.id;
END;

-- The active account stays while it is active: not deleted, its DID not changed,
-- not replaced by another DID (a REPLACE deletes the row it replaces without firing
-- delete triggers, so inserts and id changes that would replace it are checked
-- too). The same DID may replace it: the pointer still names an account.
CREATE TRIGGER accounts_guard_active_delete
BEFORE DELETE ON accounts
FOR EACH ROW WHEN EXISTS (SELECT 1 FROM active_identity WHERE activeDid = OLD.did)
BEGIN
    SELECT RAISE(ABORT, 'idstore:active_account: the active identity''s account cannot be deleted: switch active_identity to another account (or NULL) first');
END;

CREATE TRIGGER accounts_guard_active_did_update
BEFORE UPDATE OF did ON accounts
FOR EACH ROW WHEN NEW.did IS NOT OLD.did
              AND EXISTS (SELECT 1 FROM active_identity WHERE activeDid = OLD.did)
BEGIN
    SELECT RAISE(ABORT, 'idstore:active_account: the active identity''s account cannot change its did: switch active_identity to another account (or NULL) first');
END;

CREATE TRIGGER accounts_guard_active_replace
BEFORE INSERT ON accounts
FOR EACH ROW WHEN EXISTS (
    SELECT 1 FROM accounts AS a JOIN active_identity AS p ON p.activeDid = a.did
     WHERE a.id = NEW.id AND a.did IS NOT NEW.did)
BEGIN
    SELECT RAISE(ABORT, 'idstore:active_account: the active identity''s account cannot be replaced by another DID: switch active_identity to another account (or NULL) first');
END;

CREATE TRIGGER accounts_guard_active_id_update
BEFORE UPDATE OF id ON accounts
FOR EACH ROW WHEN NEW.id IS NOT OLD.id AND EXISTS (
    SELECT 1 FROM accounts AS a JOIN active_identity AS p ON p.activeDid = a.did
     WHERE a.id = NEW.id AND a.did IS NOT NEW.did)
BEGIN
    SELECT RAISE(ABORT, 'idstore:active_account: the active identity''s account cannot be replaced by another DID: switch active_identity to another account (or NULL) first');
END;

-- 6. Transition triggers (removed by the cleanup step): while older app builds
--    still read and write settings.activeDid, keep it and active_identity in step.
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

-- A legacy write of a DID naming an account becomes the active identity; NULL or ''
-- clears it; any other value leaves active_identity alone, is quarantined, and the
-- legacy column is put back in step.
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

-- 7. Quarantine decisions: a log of what a person decided about each value kept aside
--    above (an account row in accounts_quarantine, a pointer value in
--    active_did_quarantine). Rows are only ever appended; no secret is written here.
CREATE TABLE quarantine_decisions (
    id INTEGER NOT NULL PRIMARY KEY,
    decidedAt TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    -- restore: the item became the account for its DID (or the active identity);
    -- discard_export / discard_forget: the item was deleted, with or without an export.
    decision TEXT NOT NULL CHECK (decision IN ('restore', 'discard_export', 'discard_forget')),
    itemKind TEXT NOT NULL CHECK (itemKind IN ('account', 'pointer')),
    itemId INTEGER NOT NULL,
    -- The item's DID (an account) or value (a pointer).
    subject TEXT NOT NULL,
    -- A restored account: the id of the account it replaced, now in accounts_quarantine.
    keptAsideId INTEGER,
    -- A restored pointer: the active identity it replaced.
    previousActiveDid TEXT,
    -- discard_export: where the row was written.
    exportPath TEXT
);
