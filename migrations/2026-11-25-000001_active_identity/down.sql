-- Exact reverse of up.sql. settings.activeDid was never modified by up.sql (and the
-- transition triggers kept it current since), so nothing needs reading back from
-- active_identity before it is dropped. Quarantined accounts return with their ids.
DROP TRIGGER settings_active_did_sync_on_insert;
DROP TRIGGER settings_active_did_sync_on_update;
DROP TRIGGER active_identity_sync_to_settings_on_update;
DROP TRIGGER active_identity_sync_to_settings_on_insert;
DROP TRIGGER active_identity_touch_last_updated;

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
