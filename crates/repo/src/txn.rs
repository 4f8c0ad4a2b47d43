//! Transactions that report the first error, never a secondary one.
//!
//! After `SQLITE_FULL` or an I/O error SQLite may already have rolled the
//! transaction back itself; Diesel's own rollback then fails ("Cannot perform this
//! operation outside of a transaction") and Diesel returns that failure instead of
//! the real cause. These wrappers keep the caller's error and, when COMMIT is what
//! failed, the commit's own error; a storage fault gets the file's path and the
//! free space beside it.

use std::path::Path;

use diesel::prelude::*;
use diesel::result::Error as DieselError;

use crate::error::Error;

/// Runs `f` in a `BEGIN IMMEDIATE` transaction (every write path: the write lock is
/// taken up front, so the busy timeout covers it). On failure the first error is
/// returned: `f`'s own, or the COMMIT's, never the rollback's. `path` is the
/// database's file, which a storage fault names (passed, not read back).
pub(crate) fn immediate<T>(
    conn: &mut SqliteConnection,
    path: &Path,
    f: impl FnOnce(&mut SqliteConnection) -> Result<T, Error>,
) -> Result<T, Error> {
    within(conn, path, true, f)
}

/// Runs `f` in a deferred transaction (consistent reads), with the same error rule
/// as [`immediate`].
pub(crate) fn read<T>(
    conn: &mut SqliteConnection,
    path: &Path,
    f: impl FnOnce(&mut SqliteConnection) -> Result<T, Error>,
) -> Result<T, Error> {
    within(conn, path, false, f)
}

fn within<T>(
    conn: &mut SqliteConnection,
    path: &Path,
    write: bool,
    f: impl FnOnce(&mut SqliteConnection) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut first: Option<Error> = None;
    let body = |c: &mut SqliteConnection| {
        f(c).map_err(|e| {
            first = Some(e);
            DieselError::RollbackTransaction
        })
    };
    let (result, logged) = crate::ffi::watch_errors(|| {
        if write {
            conn.immediate_transaction(body)
        } else {
            conn.transaction(body)
        }
    });
    let at_commit = result.is_err() && first.is_none();
    settle(result, first).map_err(|e| {
        let past_commit_point = logged
            .as_ref()
            .is_some_and(|codes| codes.contains(&crate::ffi::IOERR_DIR_FSYNC));
        if write && at_commit && past_commit_point {
            return committed_not_durable(e, path);
        }
        crate::storage::with_context(e, path)
    })
}

/// A COMMIT that failed after its commit point: the rollback journal was deleted
/// (the change is in the file), then syncing its folder failed, so a power cut
/// could still undo it. Said as such, never as "nothing was changed".
fn committed_not_durable(e: Error, path: &Path) -> Error {
    let message = format!(
        "the change to {} was made, but the disk failed to make it durable (an I/O error syncing its folder after the commit), so a power cut could still undo it; check the storage device",
        path.display()
    );
    let made = Error::at(crate::error::ErrorKind::IoError, path, message);
    match e.into_source() {
        Some(source) => made.caused_by_boxed(source),
        None => made,
    }
}

fn settle<T>(result: Result<T, DieselError>, first: Option<Error>) -> Result<T, Error> {
    match (result, first) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some(caller)) => Err(caller),
        (Err(DieselError::RollbackErrorOnCommit { commit_error, .. }), None) => {
            Err((*commit_error).into())
        }
        (Err(other), None) => Err(other.into()),
    }
}
