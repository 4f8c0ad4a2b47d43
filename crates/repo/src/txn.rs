//! Transactions that report the first error, never a secondary one.
//!
//! After `SQLITE_FULL` or an I/O error SQLite may already have rolled the
//! transaction back itself; Diesel's own rollback then fails ("Cannot perform this
//! operation outside of a transaction") and Diesel returns that failure instead of
//! the real cause. These wrappers keep the caller's error and, when COMMIT is what
//! failed, the commit's own error.

use diesel::prelude::*;
use diesel::result::Error;

/// An error type that can carry a [`crate::fault::StorageFault`] in place of the raw database
/// error it classifies (a full disk, an I/O error).
pub(crate) trait CarriesFault: From<Error> {
    /// Swaps a raw storage error inside for a [`StorageFault`]; anything else is
    /// returned as it was.
    fn with_fault(self, conn: &mut SqliteConnection) -> Self;
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction (every write path: the write lock is
/// taken up front, so the busy timeout covers it). On failure the first error is
/// returned: `f`'s own, or the COMMIT's, never the rollback's.
pub(crate) fn immediate<T, E: CarriesFault>(
    conn: &mut SqliteConnection,
    f: impl FnOnce(&mut SqliteConnection) -> Result<T, E>,
) -> Result<T, E> {
    within(conn, true, f)
}

/// Runs `f` in a deferred transaction (consistent reads), with the same error rule
/// as [`immediate`].
pub(crate) fn read<T, E: CarriesFault>(
    conn: &mut SqliteConnection,
    f: impl FnOnce(&mut SqliteConnection) -> Result<T, E>,
) -> Result<T, E> {
    within(conn, false, f)
}

fn within<T, E: CarriesFault>(
    conn: &mut SqliteConnection,
    write: bool,
    f: impl FnOnce(&mut SqliteConnection) -> Result<T, E>,
) -> Result<T, E> {
    let mut first: Option<E> = None;
    let body = |c: &mut SqliteConnection| {
        f(c).map_err(|e| {
            first = Some(e);
            Error::RollbackTransaction
        })
    };
    let result = if write {
        conn.immediate_transaction(body)
    } else {
        conn.transaction(body)
    };
    settle(result, first).map_err(|e| e.with_fault(conn))
}

fn settle<T, E: From<Error>>(result: Result<T, Error>, first: Option<E>) -> Result<T, E> {
    match (result, first) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some(caller)) => Err(caller),
        (Err(Error::RollbackErrorOnCommit { commit_error, .. }), None) => {
            Err((*commit_error).into())
        }
        (Err(other), None) => Err(other.into()),
    }
}

impl CarriesFault for crate::RepoError {
    fn with_fault(self, conn: &mut SqliteConnection) -> Self {
        match self {
            crate::RepoError::Diesel(e) => match crate::fault::classify(conn, e) {
                Ok(fault) => crate::RepoError::Storage(fault),
                Err(e) => crate::RepoError::Diesel(e),
            },
            crate::RepoError::Migrate(m) => crate::RepoError::Migrate(m.with_fault(conn)),
            other => other,
        }
    }
}

impl CarriesFault for crate::MigrateError {
    fn with_fault(self, conn: &mut SqliteConnection) -> Self {
        use crate::MigrateError as M;
        let (e, step) = match self {
            M::Diesel(e) => (e, None),
            M::Step { version, source } => (source, Some(version)),
            other => return other,
        };
        match (crate::fault::classify(conn, e), step) {
            (Ok(fault), _) => M::Storage(fault),
            (Err(e), None) => M::Diesel(e),
            (Err(source), Some(version)) => M::Step { version, source },
        }
    }
}
