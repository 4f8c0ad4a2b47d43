//! idstore's data layer: one [`Database`] per file, opened by [`OpenOptions`], covers
//! a service's whole life with it: create or open, migrate (adopting a legacy file),
//! serve reads and writes through its [`Store`], check, repair, back up and roll
//! back. Every fallible call returns the one [`Error`], matched by [`ErrorKind`].
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("app.sqlite");
//! use idstore_domain::{Did, NewAccount, SettingsChange};
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
//! Features: `encryption` (SQLCipher files, linked to the system's libcrypto),
//! `vendored-openssl` (the same with OpenSSL built from source), `pool` (an r2d2
//! [`Pool`]), `tokio` (the async handle, module `asynchronous`), `testing` (throwaway
//! databases, module `testing`). The internals (the connection, the migration runner,
//! the checks) are private modules; the rest is re-exported here, or lives in
//! those public modules.

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
mod connection;
mod database;
mod encryption;
mod error;
#[cfg(feature = "fixtures")]
pub mod fixtures;
mod fs;
/// Entry points for the fuzz targets (feature `fuzzing`; not part of the API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    /// The SQL text readers, run on `input`.
    pub fn sqltext(input: &str) {
        crate::sql::fuzz_text(input)
    }
}
mod health;
mod migrations;
#[cfg(feature = "pool")]
mod pool;
mod quarantine;
mod sql;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

/// The Diesel version idstore uses, for queries of your own in
/// [`Store::read_only`] and checks in [`MigrateOptions::extra_check`] (their
/// connection is a `diesel::SqliteConnection`).
pub use diesel;

#[cfg(feature = "tokio")]
pub use asynchronous::AsyncDatabase;
pub use connection::{JournalMode, Synchronous};
pub use database::{Database, OpenOptions};
pub use encryption::{CipherFormat, ConvertOptions, Converted, Key};
pub use error::{Error, ErrorKind};
pub use health::{HealthReport, Problem, ProblemKind, RepairReport};
pub use migrations::run::MigrateOptions;
pub use migrations::steps;
pub use migrations::{
    Integrity, MigrationPlan, MigrationReport, MigrationStatus, MigrationWarning, RollbackOptions,
    RollbackReport, RollbackTarget, Version,
};
#[cfg(feature = "pool")]
pub use pool::{Pool, PoolOptions, PooledDatabase};
pub use quarantine::{
    Decision, DecisionKind, Discard, QuarantinedAccount, QuarantinedDetail, QuarantinedItem,
    QuarantinedPointer,
};
pub use store::{AccountRemoval, SettingsScope, SettingsView, Store, WhenLast};
