//! Throwaway databases for a service's own tests (feature `testing`): each in a new
//! owner-only temporary folder, migrated, optionally seeded, and removed with its
//! folder when dropped. For a single connection, `Database::open(":memory:")` does
//! the same without a path to share.
//!
//! ```
//! # fn main() -> Result<(), idstore_repo::Error> {
//! use idstore_repo::testing::{ALICE, TestDatabase};
//! use idstore_repo::{OpenOptions, Pool, PoolOptions};
//!
//! let test = TestDatabase::seeded()?;
//! let mut db = test.open()?;
//! let active = db.store()?.active_identity()?.active_did;
//! assert_eq!(active.map(|d| d.to_string()).as_deref(), Some(ALICE));
//! // A path to share, for a pool:
//! let pool = Pool::with_options(test.path(), OpenOptions::new(), PoolOptions::new().max_size(2))?;
//! pool.get()?;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use idstore_domain::{Did, NewAccount, SettingsChange, SettingsField};

use crate::database::{Database, OpenOptions};
use crate::error::Error;
use crate::migrations::MigrateOptions;
use crate::scratch::WorkFolder;

/// The first seeded identity, active in [`TestDatabase::seeded`].
pub const ALICE: &str = "did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01";
/// The second seeded identity.
pub const BOB: &str = "did:peer:0z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";

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
