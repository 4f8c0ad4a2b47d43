//! An async handle for tokio services (feature `tokio`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::database::{Database, OpenOptions};
use crate::error::{Error, ErrorKind};

/// A [`Database`] for async code (feature `tokio`): each call runs a whole unit of
/// work, its closure, on tokio's blocking threads (`spawn_blocking`), never on the
/// runtime's workers, and calls on one handle run one at a time. Clones share the
/// one connection; for parallel reads and writes, give each task its own handle, or
/// use a [`Pool`](crate::Pool) inside [`AsyncDatabase::run`]'s closures.
///
/// **Cancellation.** Dropping the future of a call (a request cancelled, a
/// `select!` that went the other way, a timeout) never leaves a transaction or a
/// lock behind: the closure runs to its end on its blocking thread either way, and
/// every idstore write inside it is one transaction that commits or rolls back
/// before the closure returns. What was cancelled is only the wait for the result.
/// Keep the closure to one unit of work: nothing of it spans an `.await`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), idstore_repo::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("app.sqlite");
/// use idstore_repo::{AsyncDatabase, MigrateOptions, OpenOptions, SettingsScope};
///
/// let db = AsyncDatabase::open(path, OpenOptions::new()).await?;
/// db.run(|db| db.migrate(&MigrateOptions::new()).map(drop)).await?;
/// let settings = db.run(|db| db.store()?.settings(SettingsScope::Master)).await?;
/// # let _ = settings;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AsyncDatabase {
    inner: Arc<Mutex<Database>>,
}

impl std::fmt::Debug for AsyncDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncDatabase").finish_non_exhaustive()
    }
}

impl AsyncDatabase {
    /// Wraps an open database.
    pub fn new(db: Database) -> Self {
        AsyncDatabase {
            inner: Arc::new(Mutex::new(db)),
        }
    }

    /// Opens `path` with `options` on a blocking thread.
    pub async fn open(path: impl Into<PathBuf>, options: OpenOptions) -> Result<Self, Error> {
        let path = path.into();
        let db = blocking(move || options.open(&path)).await?;
        Ok(Self::new(db))
    }

    /// Runs `work` with the database on a blocking thread, after the calls before it
    /// on this handle, and returns what it returns.
    pub async fn run<T, F>(&self, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Database) -> Result<T, Error> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mut db = inner.lock().map_err(|_| {
                Error::new(
                    ErrorKind::Other,
                    "an earlier call on this database handle panicked; open the database again",
                )
            })?;
            work(&mut db)
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Error::with_source(
            ErrorKind::Other,
            "the runtime shut down before the database call ran",
            e,
        )),
    }
}
