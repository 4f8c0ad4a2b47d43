//! The storage under a database: the room an operation needs and what is free,
//! storage faults reported for what they are (a full disk, an I/O error: where, how
//! much is free, what the operation needs), and backup copies.

use std::path::{Path, PathBuf};

use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::error::{Error, ErrorKind, Repr, StorageFault, folder_of};

/// Gives a storage error (a full disk, an I/O error) met on `conn` the database's
/// path and the free space beside it; any other error is returned as it was.
pub(crate) fn with_context(e: Error, conn: &mut SqliteConnection) -> Error {
    if !matches!(e.kind(), ErrorKind::DiskFull | ErrorKind::IoError) || e.repr().sqlite().is_none()
    {
        return e;
    }
    match e.into_repr() {
        Repr::Sqlite { kind, source } | Repr::Step { kind, source, .. } => {
            match database_path(conn) {
                Some(path) => fault_at(&path, kind, source),
                None => Repr::Storage(StorageFault {
                    kind,
                    path: None,
                    free_bytes: None,
                    needed_bytes: None,
                    source,
                })
                .into(),
            }
        }
        other => other.into(),
    }
}

/// A storage fault (full disk or I/O error) met on the file at `path`, with the
/// free space beside it.
pub(crate) fn fault_at(path: &Path, kind: ErrorKind, source: diesel::result::Error) -> Error {
    let free_bytes = free_space(folder_of(path));
    Repr::Storage(StorageFault {
        kind: full_if_no_room(kind, free_bytes),
        path: Some(path.to_owned()),
        free_bytes,
        needed_bytes: None,
        source,
    })
    .into()
}

/// A storage fault with the room the operation needs, when it has none yet.
pub(crate) fn with_needed(e: Error, conn: &mut SqliteConnection) -> Error {
    match e.into_repr() {
        Repr::Storage(mut fault) if fault.needed_bytes.is_none() => {
            fault.needed_bytes = space_needed(conn, false).ok();
            Repr::Storage(fault).into()
        }
        other => other.into(),
    }
}

/// SQLite reports some writes that ran out of room (growing the `-shm` file, say) as
/// I/O errors: with next to nothing free, that is what they are.
fn full_if_no_room(kind: ErrorKind, free: Option<u64>) -> ErrorKind {
    match (kind, free) {
        (ErrorKind::IoError, Some(free)) if free < 1 << 20 => ErrorKind::DiskFull,
        _ => kind,
    }
}

/// The main database's file (`None` for an in-memory one, or when it cannot be read).
pub(crate) fn database_path(conn: &mut SqliteConnection) -> Option<PathBuf> {
    #[derive(QueryableByName)]
    struct Db {
        #[diesel(sql_type = Text)]
        file: String,
    }
    diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'")
        .get_result::<Db>(conn)
        .ok()
        .map(|d| d.file)
        .filter(|f| !f.is_empty())
        .map(PathBuf::from)
}

/// The database's size in bytes (`page_count × page_size`).
pub(crate) fn database_bytes(conn: &mut SqliteConnection) -> QueryResult<u64> {
    #[derive(QueryableByName)]
    struct Size {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        bytes: i64,
    }
    diesel::sql_query(
        "SELECT (SELECT page_count FROM pragma_page_count) * (SELECT page_size FROM pragma_page_size) AS bytes",
    )
    .get_result::<Size>(conn)
    .map(|s| u64::try_from(s.bytes).unwrap_or(0))
}

/// About how much free space a migration or rollback of this database needs beside
/// it: room for the journal (or write-ahead log) to hold every page the run writes,
/// and for tables the run rebuilds to stand beside the old ones until they are
/// freed (each bounded by the database's size), plus a margin; and a backup copy
/// when one is written.
pub(crate) fn space_needed(conn: &mut SqliteConnection, with_backup: bool) -> QueryResult<u64> {
    Ok(room_for(database_bytes(conn)?, with_backup))
}

/// [`space_needed`] for a database of `db` bytes.
fn room_for(db: u64, with_backup: bool) -> u64 {
    let backup = if with_backup { db } else { 0 };
    db.saturating_mul(2)
        .saturating_add(backup)
        .saturating_add(256 << 10)
}

/// Refuses, before anything is written, a run for which the disk holding the
/// database (at `path`) has less free space than [`space_needed`] says.
pub(crate) fn ensure_space(
    conn: &mut SqliteConnection,
    path: &Path,
    operation: &'static str,
    with_backup: bool,
) -> Result<(), Error> {
    let db = database_bytes(conn)?;
    let needed = room_for(db, with_backup);
    let without_backup = with_backup.then(|| room_for(db, false));
    match free_space(folder_of(path)) {
        Some(free) if free < needed => Err(Repr::NotEnoughSpace {
            operation,
            path: path.to_owned(),
            needed,
            free,
            without_backup,
        }
        .into()),
        _ => Ok(()),
    }
}

/// Bytes available to this user on the filesystem holding `folder`.
#[cfg(unix)]
pub(crate) fn free_space(folder: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(folder).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Bytes available to this user on the filesystem holding `folder` (unknown here).
#[cfg(not(unix))]
pub(crate) fn free_space(_folder: &Path) -> Option<u64> {
    None
}
