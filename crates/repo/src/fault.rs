//! Storage faults, reported for what they are: a full disk (where, how much is free,
//! how much the operation needs) or an I/O error, each saying that nothing was
//! changed and what to do.

use std::fmt;
use std::path::{Path, PathBuf};

use diesel::prelude::*;
use diesel::result::Error;
use diesel::sql_types::Text;

/// What went wrong with the storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFaultKind {
    /// `SQLITE_FULL`: the filesystem (or a quota) has no room left.
    DiskFull,
    /// `SQLITE_IOERR`: a read, write or fsync failed.
    Io,
}

/// A write that the storage refused. The transaction was rolled back: the database
/// is as it was before the operation.
#[derive(Debug)]
pub struct StorageFault {
    /// Full disk or I/O error.
    pub kind: StorageFaultKind,
    /// The database file, when known.
    pub path: Option<PathBuf>,
    /// Bytes free for this user on the database's filesystem, when it could be read.
    pub free_bytes: Option<u64>,
    /// About how many bytes the operation needs, when it was estimated.
    pub needed_bytes: Option<u64>,
    /// SQLite's own error.
    pub source: Error,
}

impl fmt::Display for StorageFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self
            .path
            .as_deref()
            .map_or_else(|| "the database".to_owned(), |p| p.display().to_string());
        match self.kind {
            StorageFaultKind::DiskFull => {
                let folder = self.path.as_deref().map_or_else(
                    || "the database's folder".to_owned(),
                    |p| folder_of(p).display().to_string(),
                );
                write!(f, "the disk holding {folder} is full")?;
                match (self.free_bytes, self.needed_bytes) {
                    (Some(free), Some(needed)) => write!(
                        f,
                        " ({} free, the operation needs about {})",
                        human(free),
                        human(needed)
                    )?,
                    (Some(free), None) => write!(f, " ({} free)", human(free))?,
                    _ => {}
                }
                write!(
                    f,
                    ": nothing was changed in {file}; free some space there (or move the file to a disk with room) and retry"
                )
            }
            StorageFaultKind::Io => write!(
                f,
                "a disk I/O error interrupted the write to {file}: nothing was changed (SQLite rolled it back); check the storage device, then retry"
            ),
        }
    }
}

impl StorageFault {
    /// A stable name for the kind of error, for scripts: `disk_full` or `io_error`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            StorageFaultKind::DiskFull => "disk_full",
            StorageFaultKind::Io => "io_error",
        }
    }
}

impl std::error::Error for StorageFault {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The kind of storage fault a database error is, if it is one.
pub(crate) fn fault_kind(e: &Error) -> Option<StorageFaultKind> {
    let Error::DatabaseError(_, info) = e else {
        return None;
    };
    let m = info.message();
    if m.contains("database or disk is full") {
        Some(StorageFaultKind::DiskFull)
    } else if m.contains("disk I/O error") {
        Some(StorageFaultKind::Io)
    } else {
        None
    }
}

/// A [`StorageFault`] for the database at `path` from SQLite's message, when the
/// message is one of a full disk or an I/O error: for reporting an error that
/// reached the caller without one (a read that hit a fault, say).
pub fn fault_from_message(path: &Path, message: &str) -> Option<StorageFault> {
    let source = Error::DatabaseError(
        diesel::result::DatabaseErrorKind::Unknown,
        Box::new(message.to_owned()),
    );
    let kind = fault_kind(&source)?;
    let free_bytes = free_space(folder_of(path));
    Some(StorageFault {
        kind: full_if_no_room(kind, free_bytes),
        path: Some(path.to_owned()),
        free_bytes,
        needed_bytes: None,
        source,
    })
}

/// Turns a storage error into a [`StorageFault`] naming the database and the free
/// space beside it; any other error is given back.
pub(crate) fn classify(conn: &mut SqliteConnection, e: Error) -> Result<StorageFault, Error> {
    let Some(kind) = fault_kind(&e) else {
        return Err(e);
    };
    let path = database_path(conn);
    let free_bytes = path.as_deref().and_then(|p| free_space(folder_of(p)));
    Ok(StorageFault {
        kind: full_if_no_room(kind, free_bytes),
        path,
        free_bytes,
        needed_bytes: None,
        source: e,
    })
}

/// SQLite reports some writes that ran out of room (growing the `-shm` file, say) as
/// I/O errors: with next to nothing free, that is what they are.
fn full_if_no_room(kind: StorageFaultKind, free: Option<u64>) -> StorageFaultKind {
    match (kind, free) {
        (StorageFaultKind::Io, Some(free)) if free < 1 << 20 => StorageFaultKind::DiskFull,
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
/// it: room for the write-ahead log to hold every page the run writes, and for tables
/// the run rebuilds to stand beside the old ones until they are freed (each bounded
/// by the database's size), plus a margin; and a backup copy when one is written.
pub fn space_needed(conn: &mut SqliteConnection, with_backup: bool) -> QueryResult<u64> {
    let db = database_bytes(conn)?;
    let backup = if with_backup { db } else { 0 };
    Ok(db
        .saturating_mul(2)
        .saturating_add(backup)
        .saturating_add(256 << 10))
}

/// Refuses, before anything is written, a run for which the disk holding the
/// database has less free space than [`space_needed`] says.
pub fn ensure_space(
    conn: &mut SqliteConnection,
    operation: &'static str,
    with_backup: bool,
) -> Result<(), crate::MigrateError> {
    let Some(path) = database_path(conn) else {
        return Ok(());
    };
    let needed = space_needed(conn, with_backup)?;
    let without_backup = if with_backup {
        Some(space_needed(conn, false)?)
    } else {
        None
    };
    match free_space(folder_of(&path)) {
        Some(free) if free < needed => Err(crate::MigrateError::NotEnoughSpace {
            operation,
            path,
            needed,
            free,
            without_backup,
        }),
        _ => Ok(()),
    }
}

/// The folder a file is in (`.` for a bare name).
pub(crate) fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Bytes available to this user on the filesystem holding `folder`.
#[cfg(unix)]
pub fn free_space(folder: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(folder).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Bytes available to this user on the filesystem holding `folder` (unknown here).
#[cfg(not(unix))]
pub fn free_space(_folder: &Path) -> Option<u64> {
    None
}

/// A byte count as a person reads it: `512 B`, `3.2 KiB`, `41.0 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_a_person_reads_them() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(3 * 1024 + 205), "3.2 KiB");
        assert_eq!(human(41 * 1024 * 1024), "41.0 MiB");
    }
}
