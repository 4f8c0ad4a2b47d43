-- Active identity, phases 1-2 of the plan: the pointer moves out of
-- `settings.activeDid` into a single-row table guarded by a foreign key.
-- Nothing here relies on the foreign key to filter bad data, so the result is the
-- same with `PRAGMA foreign_keys` ON or OFF. `settings` is not modified.

-- 1. accounts.did becomes UNIQUE. Every row beyond the first (lowest id) of a DID is
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

-- 2. The pointer table. NULL means "no active identity"; '' is never stored.
--    ON DELETE RESTRICT: deleting the active account needs an explicit re-point.
CREATE TABLE active_identity (
    id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    activeDid TEXT CHECK (activeDid <> '') REFERENCES accounts(did) ON DELETE RESTRICT,
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

-- 3. Seed the single row from the master settings row: a DID naming an account is
--    copied; '' and NULL become NULL; anything else becomes NULL and is quarantined.
INSERT INTO active_did_quarantine (activeDid, reason)
SELECT s.activeDid, 'settings.activeDid of the master row names no account'
FROM settings AS s
WHERE s.id = 1
  AND s.activeDid <> ''
  AND NOT EXISTS (SELECT 1 FROM accounts AS a WHERE a.did = s.activeDid);

INSERT INTO active_identity (id, activeDid)
SELECT 1, (SELECT s.activeDid FROM settings AS s
           WHERE s.id = 1
             AND EXISTS (SELECT 1 FROM accounts AS a WHERE a.did = s.activeDid));

-- 4. lastUpdated follows every change of the pointer (unless the writer set it).
CREATE TRIGGER active_identity_touch_last_updated
AFTER UPDATE OF activeDid ON active_identity
FOR EACH ROW WHEN NEW.lastUpdated IS OLD.lastUpdated
BEGIN
    UPDATE active_identity
       SET lastUpdated = strftime('%Y-%m-%d %H:%M:%f', 'now')
     WHERE id = NEW.id;
END;

-- 5. The guard, for every writer: SQLite enforces the foreign key above only on
--    connections that turn foreign keys on, and the app's web build, the sqlite3
--    shell and most tools never do. These triggers refuse the same writes with or
--    without the pragma, so the pointer can never name a missing account.
CREATE TRIGGER active_identity_guard_insert
BEFORE INSERT ON active_identity
FOR EACH ROW WHEN NEW.activeDid IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM accounts WHERE did = NEW.activeDid)
BEGIN
    SELECT RAISE(ABORT, 'active_identity.activeDid must name an account (accounts.did): add the account first, or store NULL for none');
END;

CREATE TRIGGER active_identity_guard_update
BEFORE UPDATE OF activeDid ON active_identity
FOR EACH ROW WHEN NEW.activeDid IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM accounts WHERE did = NEW.activeDid)
BEGIN
    SELECT RAISE(ABORT, 'active_identity.activeDid must name an account (accounts.did): add the account first, or store NULL for none');
END;

CREATE TRIGGER accounts_guard_active_delete
BEFORE DELETE ON accounts
FOR EACH ROW WHEN EXISTS (SELECT 1 FROM active_identity WHERE activeDid = OLD.did)
BEGIN
    SELECT RAISE(ABORT, 'the active identity''s account cannot be deleted: switch active_identity to another account (or NULL) first');
END;

CREATE TRIGGER accounts_guard_active_did_update
BEFORE UPDATE OF did ON accounts
FOR EACH ROW WHEN NEW.did IS NOT OLD.did
              AND EXISTS (SELECT 1 FROM active_identity WHERE activeDid = OLD.did)
BEGIN
    SELECT RAISE(ABORT, 'the active identity''s account cannot change its did: switch active_identity to another account (or NULL) first');
END;

-- 6. Transition triggers (removed by the cleanup migration): while older app builds
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

-- 8. Schema text idstore must put back exactly on rollback: objects of the app's that
--    idstore adopted (its own active_identity with its row, an equivalent index under
--    a name idstore uses) and the DDL of tables a later step rebuilds, as
--    sqlite_master had them. `idstore rollback` recreates them from here.
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
