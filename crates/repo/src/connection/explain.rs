//! An error met on a database file, put in words with its next step: a lock held
//! past the busy timeout says by whom and how long it waited; a storage fault,
//! where and how much room is free; a write refused, why.

use std::path::Path;
use std::time::Duration;

use super::Settings;
use crate::error::{Error, ErrorKind};
use crate::fs::DbFile;

/// What [`Handle::context`](super::Handle::context) needs of a handle: its file and settings, borrowed
/// apart from its connection (an iterator over rows holds the one and needs the
/// other).
#[derive(Clone, Copy)]
pub(crate) struct ErrorContext<'a> {
    pub(super) file: &'a DbFile,
    pub(super) settings: &'a Settings,
}

impl ErrorContext<'_> {
    /// An error met on this file, in context: about this file when it names none
    /// yet. SQLite's own errors are put in words with the next step: a lock held
    /// past the busy timeout says by whom (where the system tells) and how long it
    /// waited; a storage fault, where and how much room is free; a write refused,
    /// why.
    pub fn explain(&self, e: Error) -> Error {
        if e.raw_sqlite().is_none() {
            return e.in_file(&self.file.path);
        }
        let path = &self.file.path;
        let explained = match e.kind() {
            ErrorKind::Locked => {
                return locked(self.file, self.settings.busy_timeout).caused_by(e);
            }
            ErrorKind::DiskFull | ErrorKind::IoError => {
                return crate::fs::storage::with_context(e, path);
            }
            ErrorKind::ReadOnly if self.settings.read_only => {
                read_only(path, ReadOnlyCause::OpenedReadOnly)
            }
            // The open found the file writable: what changed since, where it shows.
            ErrorKind::ReadOnly => super::refuse_read_only(self.file, None)
                .err()
                .unwrap_or_else(|| read_only(path, ReadOnlyCause::Unknown)),
            ErrorKind::Damaged => Error::at(
                ErrorKind::Damaged,
                path,
                format!(
                    "{} is damaged (SQLite found it malformed); nothing was changed: check it (Database::check) and restore it from a backup",
                    path.display()
                ),
            ),
            _ => return e.in_file(path),
        };
        explained.caused_by_boxed(
            e.into_source()
                .expect("a raw SQLite error carries its source"),
        )
    }
}

/// The refusal of an operation on `file` that another connection kept locked past
/// `waited`: who holds it (other processes with the file open, where the system
/// tells), and what to do.
pub(crate) fn locked(file: &DbFile, waited: Duration) -> Error {
    let holders = file
        .entry
        .map(|e| crate::fs::holders::other_holders(&e))
        .unwrap_or_default();
    let by = if holders.is_empty() {
        "another connection".to_owned()
    } else {
        format!(
            "another connection (the file is open in {})",
            holders.join(", ")
        )
    };
    Error::at(
        ErrorKind::Locked,
        &file.path,
        format!(
            "{} stayed locked by {by} for longer than the busy timeout ({} ms); nothing was changed: retry once it is done, or wait longer (the busy timeout)",
            file.path.display(),
            waited.as_millis()
        ),
    )
}

/// Why a file cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadOnlyCause {
    /// The filesystem is mounted read-only.
    Filesystem,
    /// The file's permissions allow no writing.
    FilePermission,
    /// The folder cannot be written (SQLite writes its journal there).
    FolderPermission,
    /// Another user (this uid) owns the file.
    NotOwner(u32),
    /// The handle was opened read-only.
    OpenedReadOnly,
    /// SQLite refused a write and no cause shows.
    Unknown,
}

/// The refusal to write a file that cannot be written, and why.
pub(crate) fn read_only(path: &Path, cause: ReadOnlyCause) -> Error {
    let file = path.display();
    let folder = crate::fs::folder_of(path).display();
    let why = match cause {
        ReadOnlyCause::Filesystem => {
            format!("{file} is on a read-only filesystem (the one holding {folder})")
        }
        ReadOnlyCause::FilePermission => {
            format!("{file} is read-only (its permissions allow no writing)")
        }
        ReadOnlyCause::FolderPermission => format!(
            "the folder {folder} cannot be written, and SQLite writes its journal beside {file}"
        ),
        ReadOnlyCause::NotOwner(uid) => format!(
            "{file} belongs to another user (uid {uid}); writing it would leave its journal and log owned by you, which locks its owner out"
        ),
        ReadOnlyCause::OpenedReadOnly => format!("{file} was opened read-only"),
        ReadOnlyCause::Unknown => format!(
            "{file} cannot be written (the file, its folder or its filesystem is read-only, or it belongs to another user)"
        ),
    };
    let fix = match cause {
        ReadOnlyCause::NotOwner(_) => {
            "run the command as the file's owner (or as root), or work on a copy of your own"
        }
        ReadOnlyCause::OpenedReadOnly => {
            "open it read-write (OpenOptions::read_only(false)) to change it; reads still work"
        }
        _ => {
            "to change it, copy the file to writable storage (or make it writable) and run the command there"
        }
    };
    Error::at(
        ErrorKind::ReadOnly,
        path,
        format!("{why}: nothing was written; {fix}"),
    )
}
