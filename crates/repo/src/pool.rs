//! A connection pool for services (feature `pool`): diesel's r2d2 support, each pooled
//! connection configured by [`crate::configure`], exactly like a single connection.

use std::path::Path;
use std::time::Duration;

use diesel::SqliteConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection};

use crate::connection::{BUSY_TIMEOUT, OpenOptions, sqlite_uri};
use crate::error::RepoError;
use crate::store::ensure_migrated;

/// A pool of configured connections to one database.
pub type Pool = diesel::r2d2::Pool<ConnectionManager<SqliteConnection>>;

/// Sets idstore's pragmas on every connection the pool opens.
#[derive(Debug, Clone, Copy)]
struct Configure {
    busy_timeout: Duration,
}

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Configure {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        crate::configure(conn, self.busy_timeout, false).map_err(diesel::r2d2::Error::QueryError)
    }
}

/// A pool of at most `max_size` connections to the migrated database at `path`
/// (checked once, up front: the file must exist, be SQLite and be migrated).
/// Use a pooled connection with `Store::new(&mut conn)`.
pub fn pool(path: &Path, max_size: u32) -> Result<Pool, RepoError> {
    let mut first = OpenOptions::new().create(false).open(path)?;
    ensure_migrated(&mut first)?;
    drop(first);
    let manager = ConnectionManager::<SqliteConnection>::new(sqlite_uri(path, false));
    Pool::builder()
        .max_size(max_size)
        .connection_customizer(Box::new(Configure {
            busy_timeout: BUSY_TIMEOUT,
        }))
        .build(manager)
        .map_err(RepoError::Pool)
}
