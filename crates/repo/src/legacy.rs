//! The legacy app's schema, and a small made-up legacy database to try idstore on.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::connection::{create_private, sqlite_uri};
use crate::error::{OpenError, RepoError};

/// The tables the legacy app creates (its `001_initial` and later additive
/// migrations), before the later `hasBackedUpSeed` column, with its own migration
/// bookkeeping and the tables idstore never touches. No rows.
pub const LEGACY_APP_SCHEMA: &str = r#"
CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT);
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dateCreated TEXT NOT NULL,
    derivationPath TEXT,
    did TEXT NOT NULL,
    identityEncrBase64 TEXT,
    mnemonicEncrBase64 TEXT,
    passkeyCredIdHex TEXT,
    publicKeyHex TEXT NOT NULL
);
CREATE INDEX idx_accounts_did ON accounts(did);
CREATE TABLE settings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    accountDid TEXT, activeDid TEXT, apiServer TEXT, filterFeedByNearby BOOLEAN,
    filterFeedByVisible BOOLEAN, finishedOnboarding BOOLEAN, firstName TEXT,
    hideRegisterPromptOnNewContact BOOLEAN, isRegistered BOOLEAN, lastName TEXT,
    lastAckedOfferToUserJwtId TEXT, lastAckedOfferToUserProjectsJwtId TEXT,
    lastNotifiedClaimId TEXT, lastViewedClaimId TEXT, notifyingNewActivityTime TEXT,
    notifyingReminderMessage TEXT, notifyingReminderTime TEXT, partnerApiServer TEXT,
    passkeyExpirationMinutes INTEGER, profileImageUrl TEXT, searchBoxes TEXT,
    showContactGivesInline BOOLEAN, showGeneralAdvanced BOOLEAN, showShortcutBvc BOOLEAN,
    vapid TEXT, warnIfProdServer BOOLEAN, warnIfTestServer BOOLEAN, webPushServer TEXT
);
CREATE INDEX idx_settings_accountDid ON settings(accountDid);
CREATE TABLE contacts (did TEXT PRIMARY KEY, name TEXT, contactMethods TEXT, notes TEXT,
    publicKeyBase64 TEXT, seesMe BOOLEAN, registered BOOLEAN, iViewContent BOOLEAN);
CREATE TABLE secret (id INTEGER PRIMARY KEY, secretBase64 TEXT NOT NULL);
CREATE TABLE logs (date TEXT PRIMARY KEY, message TEXT NOT NULL);
CREATE TABLE temp (id TEXT PRIMARY KEY, blobB64 TEXT);
"#;

/// The identities in the demo database.
pub const DEMO_DIDS: [&str; 3] = [
    "did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01",
    "did:ethr:0x1234567890AbCdEf1234567890aBcDeF12345678",
    "did:peer:0z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
];

const DEMO_DATA: &str = r#"
INSERT INTO migrations VALUES ('001_initial', '2024-01-01T00:00:00.000Z'), ('002_contacts', '2024-02-01T00:00:00.000Z');
INSERT INTO accounts (id, dateCreated, derivationPath, did, identityEncrBase64, mnemonicEncrBase64, passkeyCredIdHex, publicKeyHex) VALUES
  (1, '2024-03-01T12:00:00.000Z', 'm/84737769''/0''/0''/0''', 'did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01', 'ZGVtby1pZGVudGl0eS0x', 'ZGVtby1tbmVtb25pYy0x', NULL, '02a1b2c3d4e5f6'),
  (2, '2024-03-02T12:00:00.000Z', 'm/84737769''/0''/0''/1''', 'did:ethr:0x1234567890AbCdEf1234567890aBcDeF12345678', 'ZGVtby1pZGVudGl0eS0y', 'ZGVtby1tbmVtb25pYy0y', NULL, '03b1c2d3e4f5a6'),
  (3, '2024-03-03T12:00:00.000Z', NULL, 'did:peer:0z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', NULL, NULL, 'c0ffee', 'a5010203'),
  (4, '2024-03-04T12:00:00.000Z', 'm/84737769''/0''/0''/0''', 'did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01', 'ZGlmZmVyZW50LWtleQ==', 'ZGlmZmVyZW50LW1uZW1vbmlj', NULL, '02ffeeddccbbaa');
INSERT INTO settings (id, accountDid, activeDid, apiServer, firstName, isRegistered, searchBoxes) VALUES
  (1, NULL, 'did:ethr:0x1234567890AbCdEf1234567890aBcDeF12345678', 'https://api.endorser.ch', 'Demo', 1,
   '[{"name":"Home","bbox":{"eastLong":-111.6,"maxLat":40.4,"minLat":40.2,"westLong":-111.8}}]'),
  (2, 'did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01', NULL, NULL, 'Work me', NULL, NULL);
INSERT INTO contacts VALUES ('did:ethr:0x9999999999999999999999999999999999999999', 'Ann', '[]', 'met at the fair', NULL, 1, 1, 1);
INSERT INTO secret VALUES (1, 'ZGVtby1zZWNyZXQ=');
INSERT INTO logs VALUES ('2024-03-04T12:00:00.000Z', 'demo database written');
"#;

/// Writes a small database exactly as the legacy app would (no idstore bookkeeping,
/// no `hasBackedUpSeed`, rollback journal): three identities, one of them twice with
/// different key material, the second active, an override row and a contact.
/// Refuses a path that exists.
pub fn write_legacy_demo(path: &Path) -> Result<(), RepoError> {
    if path.exists() {
        return Err(RepoError::Open(OpenError::Exists {
            path: path.to_owned(),
        }));
    }
    // Owner-only like every file idstore creates; then the app's tables on a plain
    // connection, as the app writes them (no WAL, no foreign keys).
    create_private(path).map_err(|source| OpenError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut conn = SqliteConnection::establish(&sqlite_uri(path, false)).map_err(|source| {
        OpenError::Connection {
            path: path.to_owned(),
            source,
        }
    })?;
    conn.batch_execute("PRAGMA foreign_keys = OFF;")?;
    crate::txn::immediate(&mut conn, |c| -> Result<(), RepoError> {
        c.batch_execute(LEGACY_APP_SCHEMA)?;
        Ok(c.batch_execute(DEMO_DATA)?)
    })?;
    Ok(())
}
