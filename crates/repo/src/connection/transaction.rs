//! Transactions on a connection, and the cancellation of a call.
//!
//! After `SQLITE_FULL` or an I/O error SQLite may already have rolled the
//! transaction back itself; Diesel's own rollback then fails ("Cannot perform this
//! operation outside of a transaction") and Diesel returns that failure instead of
//! the real cause. These wrappers keep the caller's error and, when COMMIT is what
//! failed, the commit's own error; a storage fault gets the file's path and the
//! free space beside it. A write that must survive a power cut is committed at
//! `synchronous = EXTRA` whatever the handle's setting ([`Handle::durably`]).
//!
//! A call of an async handle whose future was dropped is cancelled (see
//! `crate::asynchronous`): from then on no transaction begins or commits on its
//! thread, and a wait for a lock ends.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::result::Error as DieselError;

use super::{Handle, Synchronous};
use crate::error::{Error, ErrorKind};

/// What holds the connection a transaction runs on: the connection itself, or
/// the handle around it (a unit of work hands its closure the whole handle).
pub(crate) trait OnConnection {
    /// The connection.
    fn connection(&mut self) -> &mut SqliteConnection;
}

impl OnConnection for SqliteConnection {
    fn connection(&mut self) -> &mut SqliteConnection {
        self
    }
}

impl OnConnection for Handle {
    fn connection(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

impl Handle {
    /// Runs `f` in one `BEGIN IMMEDIATE` transaction (see [`immediate`]), committed
    /// as the handle's [`Synchronous`] setting says.
    pub fn write<T>(
        &mut self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        immediate(&mut self.conn, &self.path, f)
    }

    /// Runs `f` (which commits what it writes) with every commit durable whatever
    /// the handle's setting: migrations, rollbacks, repairs and quarantine decisions
    /// are reported as done only once they would survive a power cut.
    pub fn durably<T>(
        &mut self,
        f: impl FnOnce(&mut Handle) -> Result<T, Error>,
    ) -> Result<T, Error> {
        // A scratch copy is thrown away: a power cut may damage it, and nothing
        // needs to survive one.
        let lowered = !self.settings.scratch && self.settings.synchronous < Synchronous::Extra;
        if lowered {
            self.conn
                .batch_execute("PRAGMA synchronous = EXTRA;")
                .map_err(Error::from)?;
        }
        let done = f(self);
        if lowered {
            let back = format!(
                "PRAGMA synchronous = {};",
                self.settings.synchronous.as_sql()
            );
            // The first error is the one that matters; a failure to lower it again
            // only leaves the connection safer than asked.
            let _ = self.conn.batch_execute(&back);
        }
        done
    }

    /// Runs `f`, a read of the caller's own, in one read transaction with
    /// `PRAGMA query_only` on (a write it attempts fails), the error in context.
    /// `query_only` is off again however `f` ends: a panic is caught, its read
    /// rolled back, and it comes back as [`ErrorKind::Panicked`].
    pub fn read_query_only<T>(
        &mut self,
        f: impl FnOnce(&mut SqliteConnection) -> QueryResult<T>,
    ) -> Result<T, Error> {
        let path = self.path.clone();
        let conn = &mut self.conn;
        let result = conn
            .batch_execute("PRAGMA query_only = ON;")
            .map_err(Error::from)
            .and_then(|()| {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    read(conn, &path, |conn| f(conn).map_err(Error::from))
                }));
                let restored = conn.batch_execute("PRAGMA query_only = OFF;");
                let value = result.map_err(|p| Error::panicked("the read_only closure", p))??;
                restored?;
                Ok(value)
            });
        result.map_err(|e| self.context(e))
    }
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction (every write path: the write lock is
/// taken up front, so the busy timeout covers it), or, inside a transaction already
/// open (a unit of work), in a savepoint of it. On failure the first error is
/// returned: `f`'s own, or the COMMIT's, never the rollback's. `path` is the
/// database's file, which a storage fault names (passed, not read back).
pub(crate) fn immediate<C: OnConnection + ?Sized, T>(
    conn: &mut C,
    path: &Path,
    f: impl FnOnce(&mut C) -> Result<T, Error>,
) -> Result<T, Error> {
    within(conn, path, true, f)
}

/// Runs `f` in a deferred transaction (consistent reads), or a savepoint of the
/// one open, with the same error rule as [`immediate`].
pub(crate) fn read<C: OnConnection + ?Sized, T>(
    conn: &mut C,
    path: &Path,
    f: impl FnOnce(&mut C) -> Result<T, Error>,
) -> Result<T, Error> {
    within(conn, path, false, f)
}

/// How a transaction failed.
enum Failed {
    /// BEGIN (or the savepoint) failed: nothing ran.
    Begin(DieselError),
    /// The body returned an error, and was rolled back.
    Body(Error),
    /// COMMIT failed.
    Commit(DieselError),
}

fn within<C: OnConnection + ?Sized, T>(
    conn: &mut C,
    path: &Path,
    write: bool,
    f: impl FnOnce(&mut C) -> Result<T, Error>,
) -> Result<T, Error> {
    check_cancelled()?;
    let (result, logged) = super::ffi::watch_errors(|| run(conn, write, f));
    let e = match result {
        Ok(value) => return Ok(value),
        Err(Failed::Body(e)) => e,
        Err(Failed::Begin(e)) => e.into(),
        Err(Failed::Commit(e)) => {
            let past_commit_point = logged.contains(&super::ffi::IOERR_DIR_FSYNC);
            if write && past_commit_point {
                return Err(committed_not_durable(e.into(), path));
            }
            e.into()
        }
    };
    Err(crate::fs::storage::with_context(e, path))
}

/// Begins, runs `f`, and commits, or rolls back on an error or a panic of `f`
/// (the panic then goes on). A call cancelled meanwhile rolls back instead of
/// committing.
fn run<C: OnConnection + ?Sized, T>(
    conn: &mut C,
    write: bool,
    f: impl FnOnce(&mut C) -> Result<T, Error>,
) -> Result<T, Failed> {
    begin(conn.connection(), write).map_err(Failed::Begin)?;
    let body = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn))) {
        Ok(body) => body.and_then(|value| check_cancelled().map(|()| value)),
        Err(panic) => {
            // The panic is what the caller hears of; a failed rollback shows in the
            // connection (an open transaction), which its owner checks.
            let _ = AnsiTransactionManager::rollback_transaction(conn.connection());
            std::panic::resume_unwind(panic)
        }
    };
    match body {
        Ok(value) => match AnsiTransactionManager::commit_transaction(conn.connection()) {
            Ok(()) => Ok(value),
            // After SQLITE_FULL or an I/O error SQLite may have rolled back itself,
            // and the rollback Diesel then tries fails: the commit's error is the one.
            Err(DieselError::RollbackErrorOnCommit { commit_error, .. }) => {
                Err(Failed::Commit(*commit_error))
            }
            Err(e) => Err(Failed::Commit(e)),
        },
        Err(e) => {
            // The first error is the one that matters (the rollback's, if any, is a
            // consequence: SQLite may have rolled back already).
            let _ = AnsiTransactionManager::rollback_transaction(conn.connection());
            Err(Failed::Body(e))
        }
    }
}

/// `BEGIN IMMEDIATE` (a write) or `BEGIN`, or a savepoint when a transaction is
/// open already.
fn begin(conn: &mut SqliteConnection, write: bool) -> QueryResult<()> {
    if write {
        match AnsiTransactionManager::begin_transaction_sql(conn, "BEGIN IMMEDIATE") {
            Err(DieselError::AlreadyInTransaction) => {}
            other => return other,
        }
    }
    AnsiTransactionManager::begin_transaction(conn)
}

/// Refuses to go on with a cancelled call.
fn check_cancelled() -> Result<(), Error> {
    if cancelled() {
        return Err(Error::new(
            ErrorKind::Cancelled,
            "the call was cancelled (its future was dropped): its transaction was rolled back, and none begins after it",
        ));
    }
    Ok(())
}

/// A COMMIT that failed after its commit point: the rollback journal was deleted
/// (the change is in the file), then syncing its folder failed, so a power cut
/// could still undo it. Said as such, never as "nothing was changed".
fn committed_not_durable(e: Error, path: &Path) -> Error {
    let message = format!(
        "the change to {} was made, but the disk failed to make it durable (an I/O error syncing its folder after the commit), so a power cut could still undo it; check the storage device",
        path.display()
    );
    let made = Error::at(ErrorKind::IoError, path, message);
    match e.into_source() {
        Some(source) => made.caused_by_boxed(source),
        None => made,
    }
}

thread_local! {
    /// Set while this thread runs a call of an async handle: whether the call's
    /// future was dropped (see `crate::asynchronous`).
    static CANCELLED: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread as a call that `flag` cancels: from the moment it is
/// set, no transaction begins or commits, and a wait for a lock ends.
#[cfg(feature = "tokio")]
pub(crate) fn cancellable<T>(flag: Arc<AtomicBool>, f: impl FnOnce() -> T) -> T {
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            CANCELLED.with(|c| c.borrow_mut().take());
        }
    }
    CANCELLED.with(|c| *c.borrow_mut() = Some(flag));
    let _clear = Clear;
    f()
}

/// Whether the call this thread runs was cancelled.
pub(crate) fn cancelled() -> bool {
    CANCELLED.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::SeqCst))
    })
}
