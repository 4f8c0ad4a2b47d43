//! A connection pool for services (feature `pool`): r2d2, each pooled connection a
//! [`Database`] opened by the same [`OpenOptions`] as a single one, so it is
//! configured, and keyed for an encrypted file, exactly the same way.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::database::{Database, OpenOptions};
use crate::error::{Error, ErrorKind};

/// Opens the pool's connections.
#[derive(Debug, Clone)]
struct Manager {
    path: PathBuf,
    options: OpenOptions,
}

/// Carries the crate's error through r2d2 (which asks for an error type of its own).
#[derive(Debug)]
struct Failed(Error);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Failed {}

impl r2d2::ManageConnection for Manager {
    type Connection = Database;
    type Error = Failed;

    fn connect(&self) -> Result<Database, Failed> {
        self.options.open(&self.path).map_err(Failed)
    }

    fn is_valid(&self, _db: &mut Database) -> Result<(), Failed> {
        Ok(())
    }

    fn has_broken(&self, _db: &mut Database) -> bool {
        false
    }
}

/// A pool of [`Database`] connections to one migrated file, for several threads.
///
/// ```
/// # fn main() -> Result<(), idstore_repo::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("app.sqlite");
/// # idstore_repo::Database::open(&path)?.migrate(&Default::default())?;
/// use idstore_repo::{OpenOptions, Pool, SettingsScope};
///
/// let pool = Pool::open(&path, OpenOptions::new(), 4)?;
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| -> Result<(), idstore_repo::Error> {
///             let mut db = pool.get()?;
///             db.store()?.settings(SettingsScope::Master)?;
///             Ok(())
///         });
///     }
/// });
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Pool {
    pool: r2d2::Pool<Manager>,
    path: PathBuf,
    options: OpenOptions,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool of at most `max_size` connections to the migrated database at `path`,
    /// each opened with `options` (never creating the file). The file is checked
    /// once, up front: it must open and be migrated (or stopped at a pause point).
    pub fn open(path: &Path, options: OpenOptions, max_size: u32) -> Result<Pool, Error> {
        let options = options.create(false);
        let mut first = options.open(path)?;
        first.store()?;
        let manager = Manager {
            path: path.to_owned(),
            options: options.clone(),
        };
        let pool = r2d2::Pool::builder()
            .max_size(max_size)
            .connection_timeout(Duration::from_secs(30))
            .build_unchecked(manager);
        Ok(Pool {
            pool,
            path: path.to_owned(),
            options,
        })
    }

    /// A connection from the pool, waiting up to 30 s for one to become free.
    pub fn get(&self) -> Result<PooledDatabase, Error> {
        self.pool.get().map(PooledDatabase).map_err(|e| {
            // r2d2 keeps the last connection error as text only: the open's own error
            // was the crate's and is reported again by opening once more.
            match self.options.open(&self.path) {
                Err(open) => open,
                Ok(_) => Error::at(
                    ErrorKind::PoolTimeout,
                    &self.path,
                    format!(
                        "no pooled connection to {} became free in time; give the pool more connections or return them sooner",
                        self.path.display()
                    ),
                )
                .caused_by(e),
            }
        })
    }
}

/// A [`Database`] borrowed from a [`Pool`]; it goes back when dropped.
pub struct PooledDatabase(r2d2::PooledConnection<Manager>);

impl Deref for PooledDatabase {
    type Target = Database;

    fn deref(&self) -> &Database {
        &self.0
    }
}

impl DerefMut for PooledDatabase {
    fn deref_mut(&mut self) -> &mut Database {
        &mut self.0
    }
}
