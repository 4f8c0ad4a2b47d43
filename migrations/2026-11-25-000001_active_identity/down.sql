-- Exact reverse of up.sql. settings.activeDid was never modified by up.sql (and the
-- transition triggers kept it current since), so nothing needs reading back from
-- active_identity before it is dropped. Quarantined accounts return with their ids.

-- The decision log goes first. A restore decision whose replaced account still waits
-- in accounts_quarantine would be silently undone by a later migrate (which keeps the
-- lowest id of a DID again), so the revert is refused while one exists;
-- `idstore rollback --forget-decisions` removes those log rows first, on purpose.
-- Discards stay done either way: the rows are gone (exported, or forgotten by an
-- explicit choice), and rolling back does not bring them back.
CREATE TEMP TABLE idstore_decisions_revert_guard (
    restores INTEGER NOT NULL,
    CONSTRAINT refusing_to_forget_restore_decisions_that_a_later_migrate_would_undo CHECK (restores = 0)
);

INSERT INTO idstore_decisions_revert_guard (restores)
SELECT count(*) FROM quarantine_decisions AS d
 WHERE d.decision = 'restore' AND d.itemKind = 'account'
   AND EXISTS (SELECT 1 FROM accounts_quarantine AS q WHERE q.id = d.keptAsideId);

DROP TABLE temp.idstore_decisions_revert_guard;
DROP TABLE quarantine_decisions;

-- The app's objects idstore adopted can only be put back by `idstore rollback` (SQL
-- alone cannot run the DDL kept for them): refused here while there are any.
CREATE TEMP TABLE idstore_adopted_revert_guard (
    adopted INTEGER NOT NULL,
    CONSTRAINT refusing_to_drop_the_apps_adopted_objects_use_idstore_rollback CHECK (adopted = 0)
);
INSERT INTO idstore_adopted_revert_guard (adopted)
SELECT count(*) FROM idstore_original_schema WHERE reason = 'adopted';
DROP TABLE temp.idstore_adopted_revert_guard;
DROP TABLE idstore_original_schema;

DROP TRIGGER settings_active_did_sync_on_insert;
DROP TRIGGER settings_active_did_sync_on_update;
DROP TRIGGER active_identity_sync_to_settings_on_update;
DROP TRIGGER active_identity_sync_to_settings_on_insert;
DROP TRIGGER active_identity_touch_last_updated;
DROP TRIGGER accounts_guard_active_did_update;
DROP TRIGGER accounts_guard_active_delete;
DROP TRIGGER active_identity_guard_update;
DROP TRIGGER active_identity_guard_insert;

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
