//! A connection pool for services (feature `pool`): r2d2, each pooled connection
//! opened by the same [`OpenOptions`] as a single one, so it is configured, and
//! keyed for an encrypted file, exactly the same way.

use std::path::{Path, PathBuf};

use diesel::SqliteConnection;
use diesel::connection::SimpleConnection;
use diesel::r2d2::ManageConnection;

use crate::connection::OpenOptions;
use crate::error::RepoError;
use crate::store::ensure_migrated;

/// A pool of configured connections to one database.
pub type Pool = diesel::r2d2::Pool<Manager>;

/// Opens the pool's connections with [`OpenOptions::open`].
#[derive(Debug)]
pub struct Manager {
    path: PathBuf,
    options: OpenOptions,
}

impl ManageConnection for Manager {
    type Connection = SqliteConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<SqliteConnection, Self::Error> {
        self.options.open(&self.path).map_err(|e| {
            diesel::r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(
                e.to_string(),
            ))
        })
    }

    fn is_valid(&self, conn: &mut SqliteConnection) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut SqliteConnection) -> bool {
        false
    }
}

/// A pool of at most `max_size` connections to the migrated database at `path`
/// (checked once, up front: the file must exist, be SQLite and be migrated).
/// Use a pooled connection with `Store::new(&mut conn)`.
pub fn pool(path: &Path, max_size: u32) -> Result<Pool, RepoError> {
    pool_with(path, OpenOptions::new(), max_size)
}

/// [`pool`] with options: a key for an encrypted file, a busy timeout. Each
/// connection is opened with them (never creating the file).
pub fn pool_with(path: &Path, options: OpenOptions, max_size: u32) -> Result<Pool, RepoError> {
    let options = options.create(false);
    let mut first = options.open(path)?;
    ensure_migrated(&mut first)?;
    drop(first);
    Pool::builder()
        .max_size(max_size)
        .build(Manager {
            path: path.to_owned(),
            options,
        })
        .map_err(RepoError::Pool)
}
