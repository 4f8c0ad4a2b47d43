//! Quarantine decisions: every value idstore kept aside (an account row whose DID
//! repeated another, a pointer value that named no account) can be listed, looked
//! at (`read.rs`), restored, or discarded after an export or on an explicit choice
//! (`decide.rs`).
//!
//! **Rule:** each decision runs in one immediate transaction with its record in
//! `quarantine_decisions`; nothing is deleted before its export
//! (owner-only, never overwriting a file) is on disk, and an export whose row stays
//! (its deletion failed, its unit of work rolled back) is removed again. No secret
//! value appears in a listing.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("demo.sqlite");
//! # idstore_repo::testing::write_legacy_demo(&path)?;
//! use idstore_repo::domain::QuarantineRef;
//! use idstore_repo::Database;
//!
//! let mut db = Database::open(&path)?;
//! db.migrate(&Default::default())?;
//! let mut store = db.store()?;
//! let waiting: Vec<_> = store.quarantined_items()?.into_iter().filter(|i| i.waiting).collect();
//! assert_eq!(waiting[0].item.to_string(), "account:4");
//! // Keep the quarantined identity material instead: the account it replaces is
//! // kept aside in its place, and the pointer stays valid.
//! let decision = store.restore_quarantined("account:4".parse::<QuarantineRef>()?)?;
//! assert_eq!(decision.kept_aside.map(|r| r.to_string()).as_deref(), Some("account:1"));
//! assert!(db.check()?.ok());
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use idstore_domain::Secret;
use idstore_domain::quarantine::QuarantineRef;
use serde::Serialize;

use crate::error::Error;

mod decide;
mod read;

/// Every quarantined item, accounts first, by id (what `check` reports waiting).
/// Every quarantined item, handed to `visit` one at a time (accounts as they are
/// read: memory stays flat however many there are).
pub(crate) fn each_item(
    conn: &mut SqliteConnection,
    visit: &mut dyn FnMut(QuarantinedItem),
) -> Result<(), Error> {
    crate::migrations::refuse_missing_quarantine_tables(conn)?;
    read::each_account_summary(conn, None, visit)?;
    for (_, item) in read::pointer_summaries(conn, None)? {
        visit(item);
    }
    Ok(())
}

pub(crate) fn items(conn: &mut SqliteConnection) -> Result<Vec<QuarantinedItem>, Error> {
    crate::migrations::refuse_missing_quarantine_tables(conn)?;
    let mut items = read::account_summaries(conn, None)?;
    items.extend(
        read::pointer_summaries(conn, None)?
            .into_iter()
            .map(|(_, i)| i),
    );
    Ok(items)
}

/// A time stored as UTC without its offset, serialized in RFC 3339 with it
/// (`2026-12-06T21:22:51.443Z`).
fn utc<S: serde::Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
    t.and_utc().serialize(s)
}

/// Removes an export whose row was not deleted after all (its deletion failed, or
/// the unit of work it was in rolled back): it would be a stray copy of key
/// material.
pub(crate) fn remove_export(path: &Path) {
    if let (Ok(folder), Some(name)) = (
        crate::fs::Folder::open(crate::fs::folder_of(path)),
        path.file_name(),
    ) {
        let _ = folder.remove(name);
        let _ = folder.sync(crate::fs::Protects::Removal);
    }
}

/// The account columns a quarantined row is compared on (never their values).
pub(crate) const COMPARED_ACCOUNT_FIELDS: [&str; 6] = [
    "dateCreated",
    "derivationPath",
    "identityEncrBase64",
    "mnemonicEncrBase64",
    "passkeyCredIdHex",
    "publicKeyHex",
];

/// One quarantined item as [`Store::quarantined_items`](crate::Store::quarantined_items)
/// lists it: never any secret value. In JSON, by the app's convention
/// (`quarantinedAt`, `keptAccountId`, …), times in RFC 3339 with their offset.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuarantinedItem {
    /// Which item (`account:4`).
    pub item: QuarantineRef,
    /// The account's DID, or the pointer value.
    pub value: String,
    /// Why it was kept aside.
    pub reason: String,
    /// When it was kept aside (UTC).
    #[serde(serialize_with = "utc")]
    pub quarantined_at: NaiveDateTime,
    /// True while it waits for a decision; false for an account a restore decision
    /// replaced and kept aside (it stays restorable and discardable).
    pub waiting: bool,
    /// For an account: the account now holding its DID, when there is one.
    pub kept_account_id: Option<i32>,
    /// For an account: the fields (names only: `dateCreated`, `derivationPath`,
    /// `identityEncrBase64`, `mnemonicEncrBase64`, `passkeyCredIdHex`, `publicKeyHex`) whose
    /// values differ from the kept account's. Empty when they are all the same.
    pub differs_from_kept: Vec<&'static str>,
    /// For a pointer: whether the value now names an account (it can be restored).
    pub names_account: bool,
}

/// A quarantined account row, whole. Key material is held as [`Secret`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedAccount {
    /// Its own account id.
    pub id: i32,
    /// As in `accounts`.
    pub date_created: String,
    /// As in `accounts`.
    pub derivation_path: Option<String>,
    /// As stored (it may not be a valid DID).
    pub did: String,
    /// Encrypted identity material.
    pub identity_encr_base64: Option<Secret>,
    /// Encrypted seed phrase.
    pub mnemonic_encr_base64: Option<Secret>,
    /// As in `accounts`.
    pub passkey_cred_id_hex: Option<String>,
    /// As in `accounts`.
    pub public_key_hex: String,
    /// The account that held the DID when it was kept aside.
    pub kept_account_id: i32,
    /// Why it was kept aside.
    pub reason: String,
    /// When it was kept aside (UTC).
    pub quarantined_at: NaiveDateTime,
}

/// A quarantined pointer value, whole.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuarantinedPointer {
    /// Its row id.
    pub id: i32,
    /// The value.
    pub active_did: String,
    /// Why it was kept aside.
    pub reason: String,
    /// When it was kept aside (UTC).
    #[serde(serialize_with = "utc")]
    pub quarantined_at: NaiveDateTime,
}

/// One item whole, as [`Store::quarantined_item`](crate::Store::quarantined_item) returns it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuarantinedDetail {
    /// An account row, with how it compares to the kept account.
    Account {
        /// The row.
        row: QuarantinedAccount,
        /// Its summary (waiting, differing fields).
        summary: QuarantinedItem,
    },
    /// A pointer value.
    Pointer {
        /// The row.
        row: QuarantinedPointer,
        /// Its summary.
        summary: QuarantinedItem,
    },
}

impl QuarantinedDetail {
    /// The summary, as [`Store::quarantined_items`](crate::Store::quarantined_items) lists it.
    pub fn summary(&self) -> &QuarantinedItem {
        match self {
            QuarantinedDetail::Account { summary, .. }
            | QuarantinedDetail::Pointer { summary, .. } => summary,
        }
    }
}

/// How [`Store::discard_quarantined`](crate::Store::discard_quarantined) lets go of an item.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard<'a> {
    /// First write the whole row, secrets included, as JSON to this new owner-only
    /// file (never overwriting one) and fsync it; only then delete the row.
    Export(&'a Path),
    /// Delete without an export. Refused for an account unless `force`: its key
    /// material would be gone for good.
    Forget {
        /// Allow forgetting an account row.
        force: bool,
    },
}

/// What was decided.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// The item became the account for its DID (or the active identity).
    Restore,
    /// The item was exported to a file, then deleted.
    DiscardExport,
    /// The item was deleted without an export.
    DiscardForget,
}

impl DecisionKind {
    fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Restore => "restore",
            DecisionKind::DiscardExport => "discard_export",
            DecisionKind::DiscardForget => "discard_forget",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            DecisionKind::Restore,
            DecisionKind::DiscardExport,
            DecisionKind::DiscardForget,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One recorded decision (a `quarantine_decisions` row); in JSON by the app's
/// convention (`decidedAt`, `keptAside`, …).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Its id in the log.
    pub id: i32,
    /// When (UTC).
    #[serde(serialize_with = "utc")]
    pub decided_at: NaiveDateTime,
    /// What was decided.
    pub decision: DecisionKind,
    /// About which item.
    pub item: QuarantineRef,
    /// The item's DID or pointer value.
    pub value: String,
    /// A restored account: the account it replaced, now kept aside in its place.
    pub kept_aside: Option<QuarantineRef>,
    /// A restored pointer: the active identity it replaced.
    pub previous_active_did: Option<String>,
    /// An exported item: the file written.
    pub export_path: Option<PathBuf>,
}
