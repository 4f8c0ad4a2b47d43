//! idstore's data layer: one [`Database`] per file, opened by [`OpenOptions`], covers
//! a service's whole life with it: create or open, migrate (adopting a legacy file),
//! serve reads and writes through its [`Store`], check, repair, back up and roll
//! back. Every fallible call returns the one [`Error`], matched by [`ErrorKind`].
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("app.sqlite");
//! use idstore_repo::domain::{Did, NewAccount, SettingsChange};
//! use idstore_repo::{Database, ErrorKind, MigrateOptions, SettingsScope};
//!
//! let mut db = Database::open(&path)?; // created when missing
//! db.migrate(&MigrateOptions::new())?; // adopts a legacy file, or creates the tables (no backup unless backup_to)
//!
//! let alice = Did::parse("did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01")?;
//! db.transaction(|store| {
//!     // One transaction: both writes, or (an error, a panic) neither.
//!     store.add_account(&NewAccount::new(alice.clone(), "02ab", "2024-03-01T12:00:00.000Z"))?;
//!     store.set_active_did(Some(&alice))
//! })?;
//! let mut store = db.store()?; // refused while the file needs migrating
//! let unknown = Did::parse("did:ethr:0x00000000000000000000000000000000DeadBeef")?;
//! let err = store.set_active_did(Some(&unknown)).unwrap_err(); // nothing changed
//! assert_eq!(err.kind(), ErrorKind::UnknownAccount);
//! assert_eq!(err.public_message(), "no account has this DID"); // for a client; log `err` itself
//!
//! let change: SettingsChange = serde_json::from_str(r#"{"firstName": "Ada"}"#)?; // as a client sends it
//! store.save_active_account_settings(&change)?; // the active identity's own row
//! let view = store.settings(SettingsScope::Merged(None))?; // master ⊕ the active identity's
//! assert_eq!(view.settings.first_name.as_deref(), Some("Ada"));
//! # Ok(()) }
//! ```
//!
//! The crate root holds what every service needs; the rest lives in a few public
//! modules:
//!
//! - [`migrations`]: the steps ([`migrations::steps`]), what a run or a rollback
//!   would do and did ([`MigrationPlan`](migrations::MigrationPlan),
//!   [`MigrationStatus`](migrations::MigrationStatus),
//!   [`MigrationReport`](migrations::MigrationReport),
//!   [`RollbackReport`](migrations::RollbackReport)), and how to roll back
//!   ([`RollbackOptions`](migrations::RollbackOptions));
//! - [`quarantine`]: the values kept aside, and the decisions on them;
//! - [`health`]: what [`Database::check`] finds and [`Database::repair`] fixes;
//! - [`encryption`]: keys, SQLCipher formats, and converting a file in place;
//! - [`connection`]: the journal mode and durability [`OpenOptions`] takes;
//! - [`domain`]: idstore's plain types (`Did`, `NewAccount`, `SettingsChange`,
//!   `QuarantineRef`, …), so a service needs this crate alone.
//!
//! Features: `encryption` (SQLCipher files, linked to the system's libcrypto),
//! `vendored-openssl` (the same with OpenSSL built from source), `pool` (an r2d2
//! connection pool, module `pool`), `tokio` (the async handle, module
//! `asynchronous`), `testing` (throwaway databases, module `testing`).
//!
//! idstore runs on Unix only (Linux, macOS, the BSDs).

#![cfg_attr(docsrs, feature(doc_cfg))]

// Every name beside a database is reached through its folder's descriptor (openat,
// fstat, unlinkat, renameat), owners are Unix users, and folders are synced: there
// is no such thing elsewhere, and no other branch of the code.
#[cfg(not(unix))]
compile_error!(
    "idstore-repo supports Unix only (Linux, macOS, the BSDs): it opens every file beside a database through its folder's descriptor (openat, fstat), keeps Unix owners and modes, and syncs folders"
);

#[cfg(feature = "tokio")]
pub mod asynchronous;
pub mod connection;
mod database;
pub mod encryption;
mod error;
#[cfg(feature = "fixtures")]
#[doc(hidden)]
pub mod fixtures;
mod fs;
pub mod health;
pub mod migrations;
#[cfg(feature = "pool")]
pub mod pool;
pub mod quarantine;
mod sql;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

/// The Diesel version idstore uses, for queries of your own in
/// [`Store::read_only`] and checks in [`MigrateOptions::extra_check`] (their
/// connection is a `diesel::SqliteConnection`).
pub use diesel;
/// idstore's plain types, with no I/O: every one a public signature of this crate
/// names (`Did`, `NewAccount`, `SettingsChange`, `QuarantineRef`, …).
pub use idstore_domain as domain;

/// The library guide's examples (`docs/library-guide.md`), compiled and run with
/// this crate's doctests so that the guide cannot drift from the API.
#[cfg(all(doctest, feature = "tokio", feature = "pool", feature = "testing"))]
#[doc = include_str!("../../../docs/library-guide.md")]
pub struct LibraryGuide;

pub use database::{Database, OpenOptions};
pub use error::{Error, ErrorKind};
pub use migrations::run::MigrateOptions;
pub use store::{AccountRemoval, SettingsScope, SettingsView, Store, WhenLast};
