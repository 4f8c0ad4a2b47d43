//! Backup copies: a copy of the open database as its connection sees it, written
//! with SQLite's online backup API into a new owner-only file beside it (the
//! database owner's), under the same key and format when it is encrypted, refused
//! up front when the disk has no room for it, never left half-written, and durable
//! (its content, then its name) before it is reported.
//!
//! Taken inside a write transaction, the copy is exactly the state the next write
//! starts from: no other program can commit in between. That is how `migrate`,
//! `rollback` and quarantine decisions take theirs.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::connection::ffi::{Keying, RawDb};
use crate::connection::{Settings, Synchronous};
use crate::error::{Detail, Error, ErrorKind, human};
use crate::fs::storage::{database_bytes, free_space};
use crate::fs::{DbFile, Folder, Protects, folder_of};

/// The database a backup is taken of: its connection, that connection's handle,
/// its file and key, and whether that connection holds a write transaction (the
/// backup API cannot read from one: the copy is then read by a second connection,
/// which sees exactly the state the write transaction started from, since no
/// other program can commit while it is held).
pub(crate) struct Source<'a> {
    pub conn: &'a mut SqliteConnection,
    pub raw: RawDb,
    pub file: &'a DbFile,
    pub keying: Option<&'a Keying>,
    pub in_write: bool,
}

/// Writes a copy of the database `from` to `dest` (which must not exist, a link
/// there included): owner-only, the database owner's, a valid database on its own
/// (no `-wal` needed), under the same key and SQLCipher settings when encrypted.
///
/// Refuses before creating anything when the disk holding `dest` has less free space
/// than the copy needs. On any failure nothing is left behind. One sync of the copy
/// and one of its folder make it durable.
pub(crate) fn backup_to(from: Source<'_>, dest: &Path) -> Result<(), Error> {
    let backup_err = |kind: ErrorKind, what: String| -> Error {
        Error::at(
            kind,
            dest,
            format!(
                "could not write a backup to {} ({what}); the database was not changed",
                dest.display()
            ),
        )
    };
    let needed = database_bytes(from.conn)
        .map_err(|e| backup_err(crate::error::classify(&e), e.to_string()))?;
    let folder_path = folder_of(dest);
    if let Some(free) = free_space(folder_path)
        && free < needed
    {
        return Err(no_room(dest, needed, Some(free)));
    }
    let name = dest
        .file_name()
        .ok_or_else(|| backup_err(ErrorKind::BackupFailed, "the path names no file".into()))?;
    let folder = Folder::open(folder_path).map_err(|e| Error::io(dest, e))?;
    // A new file has no side files: one there is someone else's, and SQLite would
    // read it as the copy's own journal or log when it opens the copy.
    for suffix in crate::fs::SIDE_SUFFIXES {
        let side = crate::fs::suffixed(name, suffix);
        if folder
            .inspect(&side)
            .map_err(|e| Error::io(dest, e))?
            .is_some()
        {
            return Err(Error::at(
                ErrorKind::UntrustedFile,
                dest,
                format!(
                    "{} is already there, beside the name of the new backup {}; SQLite would take it for the backup's own: nothing was written and the database was not changed; remove it if it is not yours, or choose another backup path",
                    folder.join(&side).display(),
                    dest.display()
                ),
            ));
        }
    }
    let target = folder
        .create_new(name, Some(from.file.owner()))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::at(
                ErrorKind::Exists,
                dest,
                format!(
                    "{} already exists (or is a link); a backup never overwrites a file: nothing was written and the database was not changed",
                    dest.display()
                ),
            ),
            _ => Error::io(dest, e),
        })?;
    let copied = (|| -> Result<(), (ErrorKind, String)> {
        let settings = Settings {
            create: false,
            read_only: false,
            busy_timeout: std::time::Duration::ZERO,
            keying: from.keying.cloned(),
            synchronous: Synchronous::Off,
            journal_mode: None,
            scratch: true,
        };
        let (mut to, to_raw) = crate::connection::establish(dest, None, &settings, false)
            .map_err(|e| (e.kind(), e.to_string()))?;
        // The copy is written once and synced once, by this module: no journal file
        // beside it (whose name could be planted). MEMORY, since OFF is a silent
        // no-op under the defensive mode every connection runs with.
        to.batch_execute("PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF;")
            .map_err(|e| (crate::error::classify(&e), e.to_string()))?;
        let reader = if from.in_write {
            let reading = Settings {
                read_only: true,
                synchronous: Synchronous::Off,
                ..settings.clone()
            };
            let (conn, raw) =
                crate::connection::establish(&from.file.path, Some(from.file), &reading, false)
                    .map_err(|e| (e.kind(), e.to_string()))?;
            Some((conn, raw))
        } else {
            None
        };
        let source = reader.as_ref().map_or(from.raw, |(_, raw)| *raw);
        crate::connection::ffi::backup(source, to_raw)
            .map_err(|(code, message)| (code_kind(code), message))?;
        drop(reader);
        drop(to);
        target
            .sync(Protects::BackupContent)
            .map_err(|e| (crate::error::io_kind(&e), crate::error::io_cause(&e)))
    })();
    drop(target);
    let synced = copied.and_then(|()| {
        folder
            .sync(Protects::BackupName)
            .map_err(|e| (crate::error::io_kind(&e), crate::error::io_cause(&e)))
    });
    synced.map_err(|(kind, what)| {
        crate::fs::remove_new(&folder, name);
        if kind == ErrorKind::DiskFull {
            no_room(dest, needed, free_space(folder_path))
        } else {
            backup_err(
                if kind == ErrorKind::Database {
                    ErrorKind::BackupFailed
                } else {
                    kind
                },
                what,
            )
        }
    })
}

/// The kind of a failed backup step's result code.
fn code_kind(code: i32) -> ErrorKind {
    use libsqlite3_sys as ffi;
    match code & 0xff {
        ffi::SQLITE_FULL => ErrorKind::DiskFull,
        ffi::SQLITE_IOERR => ErrorKind::IoError,
        ffi::SQLITE_BUSY | ffi::SQLITE_LOCKED => ErrorKind::Locked,
        ffi::SQLITE_READONLY => ErrorKind::ReadOnly,
        _ => ErrorKind::BackupFailed,
    }
}

/// The refusal of a backup the disk has no room for.
pub(crate) fn no_room(dest: &Path, needed: u64, free: Option<u64>) -> Error {
    Error::at(
        ErrorKind::DiskFull,
        dest,
        format!(
            "no room for the backup {}: it needs about {}{}; nothing was written and the database was not changed; free some space there, or go without a backup",
            dest.display(),
            human(needed),
            free.map(|f| format!(", {} is free", human(f)))
                .unwrap_or_default()
        ),
    )
    .with_detail(Detail::WithoutBackup(0))
}
