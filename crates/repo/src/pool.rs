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

    /// A connection a caller left with a transaction open (a panic whose rollback
    /// failed, a transaction begun by hand) is closed, never lent again.
    fn has_broken(&self, db: &mut Database) -> bool {
        db.raw().in_transaction()
    }
}

/// A pool of [`Database`] connections to one migrated file, for several threads.
///
/// ```
/// # fn main() -> Result<(), idstore_repo::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("app.sqlite");
/// # idstore_repo::Database::open(&path)?.migrate(&Default::default())?;
/// use idstore_repo::{OpenOptions, SettingsScope};
/// use idstore_repo::pool::Pool;
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
    checkout_timeout: Duration,
    max_size: u32,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// How a [`Pool`] is sized, and how long a checkout waits: at most 8 connections,
/// a checkout timeout of 30 s, idle connections kept open for 10 minutes, by
/// default. Every connection's own settings (busy timeout, `synchronous`, journal
/// mode, key) are the [`OpenOptions`] given to [`Pool::open_with`].
///
/// ```
/// use std::time::Duration;
/// use idstore_repo::pool::PoolOptions;
///
/// let options = PoolOptions::new()
///     .max_size(4)
///     .checkout_timeout(Duration::from_millis(500)) // a request waits at most this
///     .min_idle(Some(1));
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolOptions {
    max_size: u32,
    checkout_timeout: Duration,
    min_idle: Option<u32>,
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_size: 8,
            checkout_timeout: Duration::from_secs(30),
            min_idle: None,
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: None,
        }
    }
}

impl PoolOptions {
    /// The defaults above.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most this many connections (at least 1).
    pub fn max_size(mut self, max_size: u32) -> Self {
        self.max_size = max_size.max(1);
        self
    }

    /// How long [`Pool::get`] waits for a free connection before it fails with
    /// [`ErrorKind::PoolTimeout`].
    pub fn checkout_timeout(mut self, timeout: Duration) -> Self {
        self.checkout_timeout = timeout;
        self
    }

    /// Idle connections kept open (none: as many as were opened).
    pub fn min_idle(mut self, min_idle: Option<u32>) -> Self {
        self.min_idle = min_idle;
        self
    }

    /// How long a connection above `min_idle` may stay idle before it is closed.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How long a connection lives before it is closed and opened anew.
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.max_lifetime = lifetime;
        self
    }
}

impl Pool {
    /// A pool of at most `max_size` connections to the migrated database at `path`,
    /// each opened with `options` (never creating the file); the other settings as
    /// [`PoolOptions::new`] has them.
    pub fn open(path: &Path, options: OpenOptions, max_size: u32) -> Result<Pool, Error> {
        Self::open_with(path, options, PoolOptions::new().max_size(max_size))
    }

    /// A pool of connections to the migrated database at `path`, each opened with
    /// `options` (never creating the file), sized and timed by `pool`. The file is
    /// checked once, up front: it must open and be migrated (or stopped at a pause
    /// point).
    pub fn open_with(path: &Path, options: OpenOptions, pool: PoolOptions) -> Result<Pool, Error> {
        let options = options.create(false);
        let mut first = options.open(path)?;
        first.store()?;
        let manager = Manager {
            path: path.to_owned(),
            options: options.clone(),
        };
        let built = r2d2::Pool::builder()
            .max_size(pool.max_size)
            .connection_timeout(pool.checkout_timeout)
            .min_idle(pool.min_idle)
            .idle_timeout(pool.idle_timeout)
            .max_lifetime(pool.max_lifetime)
            .build_unchecked(manager);
        Ok(Pool {
            pool: built,
            path: path.to_owned(),
            options,
            checkout_timeout: pool.checkout_timeout,
            max_size: pool.max_size,
        })
    }

    /// The file its connections open.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The most connections it opens at once.
    pub fn max_size(&self) -> u32 {
        self.max_size
    }

    /// A connection from the pool, waiting up to the checkout timeout for one to
    /// become free.
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
                        "no pooled connection to {} became free within the checkout timeout ({} ms); give the pool more connections, return them sooner, or wait longer (PoolOptions::checkout_timeout)",
                        self.path.display(),
                        self.checkout_timeout.as_millis()
                    ),
                )
                .caused_by(e),
            }
        })
    }
}

/// A [`Database`] borrowed from a [`Pool`]; it goes back when dropped.
pub struct PooledDatabase(r2d2::PooledConnection<Manager>);

impl std::fmt::Debug for PooledDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PooledDatabase").field(&*self.0).finish()
    }
}

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
