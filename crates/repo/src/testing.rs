//! Throwaway databases for a service's own tests (feature `testing`): each in a new
//! owner-only temporary folder, removed with its folder when dropped: new and
//! migrated, seeded, or a copy of a legacy file (the app's own, or the demo), left
//! as the app wrote it to test adoption, or migrated. For a single connection,
//! `Database::open(":memory:")` does the same without a path to share.
//!
//! ```
//! # fn main() -> Result<(), idstore_repo::Error> {
//! use idstore_repo::testing::{ALICE, CAROL, TestDatabase};
//! use idstore_repo::{ErrorKind, MigrateOptions};
//!
//! // The demo as the legacy app leaves it: served only once adopted.
//! let legacy = TestDatabase::legacy_demo()?;
//! let mut db = legacy.open()?;
//! assert_eq!(db.store().unwrap_err().kind(), ErrorKind::NeedsMigration);
//! let report = db.migrate(&MigrateOptions::new())?;
//! assert!(report.adopted_legacy);
//! // Or migrated already: ALICE's second row waits in the quarantine.
//! let demo = TestDatabase::legacy_demo()?.migrated()?;
//! let mut db = demo.open()?;
//! let mut store = db.store()?;
//! assert_eq!(store.active_identity()?.active_did.map(|d| d.to_string()).as_deref(), Some(CAROL));
//! assert_eq!(store.quarantined_items()?[0].value, ALICE);
//! # Ok(()) }
//! ```
//!
//! ```
//! # fn main() -> Result<(), idstore_repo::Error> {
//! use idstore_repo::testing::{ALICE, TestDatabase};
//! use idstore_repo::OpenOptions;
//! use idstore_repo::pool::{Pool, PoolOptions};
//!
//! let test = TestDatabase::seeded()?;
//! let mut db = test.open()?;
//! let active = db.store()?.active_identity()?.active_did;
//! assert_eq!(active.map(|d| d.to_string()).as_deref(), Some(ALICE));
//! // A path to share, for a pool:
//! let pool = Pool::open_with(test.path(), OpenOptions::new(), PoolOptions::new().max_size(2))?;
//! pool.get()?;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use idstore_domain::{Did, NewAccount, SettingsChange, SettingsField};

use crate::database::{Database, OpenOptions};
use crate::error::Error;
use crate::fs::WorkFolder;
use crate::migrations::MigrateOptions;

/// The tables the legacy app creates (its `001_initial` and later additive
/// migrations), before the later `hasBackedUpSeed` column, with its own migration
/// bookkeeping and the tables idstore never touches. No rows.
pub const LEGACY_APP_SCHEMA: &str = crate::migrations::LEGACY_APP_SCHEMA;

/// The demo file's rows (see [`write_legacy_demo`]).
pub const LEGACY_DEMO_DATA: &str = include_str!("../fixtures/legacy_demo_data.sql");

/// Writes the demo legacy file at `path` (which must not exist) as the legacy app
/// would: a plain connection, no WAL, foreign keys off, the app's tables and the
/// demo's rows.
pub fn write_legacy_demo(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    if path.exists() {
        return Err(format!("{} exists", path.display()).into());
    }
    let mut conn = SqliteConnection::establish(path.to_str().ok_or("the demo path is not UTF-8")?)?;
    conn.batch_execute("PRAGMA foreign_keys = OFF; BEGIN;")?;
    conn.batch_execute(LEGACY_APP_SCHEMA)?;
    conn.batch_execute(LEGACY_DEMO_DATA)?;
    conn.batch_execute("COMMIT;")?;
    Ok(())
}

/// The first seeded identity, active in [`TestDatabase::seeded`]; in the demo,
/// the identity stored twice with different key material.
pub const ALICE: &str = "did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01";
/// The second seeded identity; in the demo, the third.
pub const BOB: &str = "did:peer:0z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
/// The demo's second identity, its active one ([`TestDatabase::legacy_demo`]).
pub const CAROL: &str = "did:ethr:0x1234567890AbCdEf1234567890aBcDeF12345678";

/// A migrated database in a temporary folder of its own, removed when dropped.
#[derive(Debug)]
pub struct TestDatabase {
    path: PathBuf,
    _folder: WorkFolder,
}

impl TestDatabase {
    /// An empty, migrated database.
    pub fn new() -> Result<Self, Error> {
        let folder = WorkFolder::new(&std::env::temp_dir())?;
        let path = folder.path().join("test.sqlite");
        Database::open(&path)?.migrate(&MigrateOptions::new())?;
        Ok(TestDatabase {
            path,
            _folder: folder,
        })
    }

    /// A migrated database holding [`ALICE`] (active) and [`BOB`], with the master
    /// settings' `firstName` set to `Test`.
    pub fn seeded() -> Result<Self, Error> {
        let test = Self::new()?;
        let mut db = test.open()?;
        let mut store = db.store()?;
        let alice = Did::parse(ALICE)?;
        for (did, key) in [(&alice, "02a1"), (&Did::parse(BOB)?, "a501")] {
            store.add_account(&NewAccount::new(
                did.clone(),
                key,
                "2024-03-01T12:00:00.000Z",
            ))?;
        }
        store.set_active_did(Some(&alice))?;
        let mut change = SettingsChange::new();
        change.set_from_str(SettingsField::FirstName, "Test")?;
        store.save_settings(&change)?;
        Ok(test)
    }

    /// A copy of the database file at `path` (a legacy file from the app, say,
    /// with its `-journal` or `-wal` when it has one), as it is: not migrated, so
    /// a test can adopt it itself and look at the report, or call
    /// [`TestDatabase::migrated`]. The original is only read.
    pub fn copy_of(path: &Path) -> Result<Self, Error> {
        let folder = WorkFolder::new(&std::env::temp_dir())?;
        let copy = folder.path().join("test.sqlite");
        for suffix in ["", "-journal", "-wal"] {
            let from = with_suffix(path, suffix);
            let to = with_suffix(&copy, suffix);
            match std::fs::copy(&from, &to) {
                Ok(_) => {}
                Err(e) if !suffix.is_empty() && e.kind() == std::io::ErrorKind::NotFound => {
                    continue;
                }
                Err(e) => return Err(Error::io(&from, e)),
            }
            // Owner-only and writable, whatever the original's mode.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io(&to, e))?;
        }
        Ok(TestDatabase {
            path: copy,
            _folder: folder,
        })
    }

    /// The demo legacy file (`idstore demo legacy`), as the legacy app leaves it:
    /// [`ALICE`] stored twice with different key material, [`CAROL`] active,
    /// [`BOB`], an override row of ALICE's, and the app's other tables. Not
    /// migrated (see [`TestDatabase::migrated`]).
    pub fn legacy_demo() -> Result<Self, Error> {
        let folder = WorkFolder::new(&std::env::temp_dir())?;
        let path = folder.path().join("test.sqlite");
        write_legacy_demo(&path).map_err(|e| {
            Error::new(
                crate::error::ErrorKind::Other,
                format!(
                    "could not write the demo database at {}: {e}",
                    path.display()
                ),
            )
        })?;
        Ok(TestDatabase {
            path,
            _folder: folder,
        })
    }

    /// The same database, migrated (a legacy file adopted first): its duplicate
    /// accounts and stray pointer values quarantined, as `idstore migrate` leaves
    /// them (no backup is taken).
    pub fn migrated(self) -> Result<Self, Error> {
        self.open()?.migrate(&MigrateOptions::new())?;
        Ok(self)
    }

    /// Its path, to open more connections or a pool.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new connection to it.
    pub fn open(&self) -> Result<Database, Error> {
        self.open_with(OpenOptions::new())
    }

    /// A new connection to it, opened with `options` (never creating).
    pub fn open_with(&self, options: OpenOptions) -> Result<Database, Error> {
        options.create(false).open(&self.path)
    }
}

/// `path` with `suffix` added to its file name (`app.sqlite-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
