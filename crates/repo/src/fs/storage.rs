//! The storage under a database: the room an operation needs and what is free,
//! whether it is mounted read-only, and storage faults reported for what they are
//! (a full disk, an I/O error: where, how much is free, what the operation needs,
//! that nothing changed).

use std::path::Path;

use diesel::prelude::*;

use super::folder_of;
use crate::error::{Detail, Error, ErrorKind, human};

/// Gives a storage error (a full disk, an I/O error) met on the database at `path`
/// that path and the free space beside it; any other error is returned as it was.
pub(crate) fn with_context(e: Error, path: &Path) -> Error {
    if !matches!(e.kind(), ErrorKind::DiskFull | ErrorKind::IoError) || e.raw_sqlite().is_none() {
        return e;
    }
    let kind = e.kind();
    let source = e.into_source();
    storage_fault(kind, Some(path), None, source)
}

/// A storage fault (full disk or I/O error) met on the file at `path`, with the
/// free space beside it.
pub(crate) fn fault_at(path: &Path, kind: ErrorKind, source: diesel::result::Error) -> Error {
    storage_fault(kind, Some(path), None, Some(Box::new(source)))
}

/// A storage fault with the room the operation needs, when it has none yet.
pub(crate) fn with_needed(e: Error, conn: &mut SqliteConnection) -> Error {
    let Some(fault) = StorageFault::of(&e) else {
        return e;
    };
    if fault.needed.is_some() {
        return e;
    }
    let needed = space_needed(conn, false).ok();
    let (kind, path) = (e.kind(), e.path().map(Path::to_owned));
    storage_fault(kind, path.as_deref(), needed, e.into_source())
}

/// What a storage fault's error carries: the room the operation needs.
struct StorageFault {
    needed: Option<u64>,
}

impl StorageFault {
    fn of(e: &Error) -> Option<StorageFault> {
        match e.detail() {
            Detail::Storage { needed } => Some(StorageFault { needed: *needed }),
            _ => None,
        }
    }
}

/// The error of a storage fault (full disk or I/O error) on the database at `path`:
/// where, how much is free there, what the operation needs, that nothing changed.
fn storage_fault(
    kind: ErrorKind,
    path: Option<&Path>,
    needed: Option<u64>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
) -> Error {
    let free = path.and_then(|p| free_space(folder_of(p)));
    let kind = full_if_no_room(kind, free);
    let file = path.map_or_else(|| "the database".to_owned(), |p| p.display().to_string());
    let message = if kind == ErrorKind::DiskFull {
        let folder = path.map_or_else(
            || "the database's folder".to_owned(),
            |p| folder_of(p).display().to_string(),
        );
        let room = match (free, needed) {
            (Some(free), Some(needed)) => format!(
                " ({} free, the operation needs about {})",
                human(free),
                human(needed)
            ),
            (Some(free), None) => format!(" ({} free)", human(free)),
            _ => String::new(),
        };
        format!(
            "the disk holding {folder} is full{room}: nothing was changed in {file}; free some space there (or move the file to a disk with room) and retry"
        )
    } else {
        format!(
            "a disk I/O error interrupted the work on {file}: nothing was changed (SQLite rolled it back); check the storage device, then retry"
        )
    };
    let e = match path {
        Some(p) => Error::at(kind, p, message),
        None => Error::new(kind, message),
    };
    let e = e.with_detail(Detail::Storage { needed });
    match source {
        Some(source) => e.caused_by_boxed(source),
        None => e,
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
        Some(free) if free < needed => {
            let e = Error::at(
                ErrorKind::DiskFull,
                path,
                format!(
                    "not enough free space beside {}: {operation} needs about {} there ({}write-ahead log and rebuilt tables), and {} is free; nothing was changed; free some space there and retry{}",
                    path.display(),
                    human(needed),
                    if without_backup.is_some() {
                        "backup, "
                    } else {
                        ""
                    },
                    human(free),
                    without_backup
                        .map(|n| format!(" (without a backup it needs about {})", human(n)))
                        .unwrap_or_default()
                ),
            );
            Err(match without_backup {
                Some(n) => e.with_detail(Detail::WithoutBackup(n)),
                None => e,
            })
        }
        _ => Ok(()),
    }
}

/// Bytes available to this user on the filesystem holding `folder`.
pub(crate) fn free_space(folder: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(folder).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Whether the filesystem holding `folder` is mounted read-only.
pub(crate) fn storage_is_read_only(folder: &Path) -> bool {
    rustix::fs::statvfs(folder)
        .is_ok_and(|st| st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
}
