//! Connections: how idstore opens a database file and runs on it. Public here:
//! the options [`crate::OpenOptions`] takes, [`JournalMode`] and [`Synchronous`].
//!
//! The rest is the crate's own. Every connection is opened here (`Handle::open`):
//! the file found once and checked before SQLite sees it (a regular file, its side
//! files SQLite's own; its header, in `precheck.rs`), an interrupted write
//! recovered only after the file and its journal are kept aside and checked
//! afterwards, or refused where it cannot be (`recovery.rs`), a file the caller may
//! not write read without creating anything beside it, the key tried before
//! anything else, and SQLite's defensive settings on (`establish.rs`, through the C
//! API in `ffi.rs`, the crate's only `unsafe` code). Errors met on the file are put
//! in words with their next step (`explain.rs`). Transactions report the first
//! error, never a secondary one, and end on a cancelled call (`transaction.rs`).
//! Copies of a database are taken through SQLite: a backup under the write lock
//! (`backup.rs`), a snapshot of a file others may be writing (`snapshot.rs`).
//!
//! **Rule:** every connection idstore works through is opened here (the `testing`
//! feature's demo file alone is written on a plain connection, as the legacy app
//! writes it), and nothing is written to an existing file by opening it: nothing about it is changed for good that the
//! caller did not ask for (its journal mode stays the file's own unless
//! [`crate::OpenOptions::journal_mode`] says otherwise; a file the open creates gets
//! its first page, so it is a database from the start).

use std::path::Path;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::error::{Error, ErrorKind};
use crate::fs::storage::storage_is_read_only;
use crate::fs::{DbFile, Protects};

pub(crate) mod backup;
mod establish;
mod explain;
pub(crate) mod ffi;
mod precheck;
mod recovery;
pub(crate) mod snapshot;
pub(crate) mod transaction;

pub(crate) use establish::{configure, configure_error, establish, establish_detecting};
pub(crate) use explain::{ErrorContext, ReadOnlyCause, locked, read_only};
use precheck::check_header;
pub(crate) use precheck::is_encrypted;

/// How long a connection waits for another writer before reporting `database is
/// locked` (the default of [`crate::OpenOptions::busy_timeout`]).
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How a connection makes its commits durable: SQLite's `synchronous`.
///
/// The default, [`Synchronous::Extra`], makes every committed write survive a power
/// cut in both journal modes: in rollback-journal mode SQLite then also syncs the
/// folder after deleting the journal (the commit itself: a journal that comes back
/// after a power cut would be rolled back). Lower levels trade that for speed, and
/// apply to a service's ordinary writes only: migrations, rollbacks, repairs and
/// quarantine decisions always commit at `Extra` (a decision inside a unit of work
/// commits with the unit).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Synchronous {
    /// No syncs: a power cut (not a crash of the program) can lose recent commits,
    /// and in rollback-journal mode damage the file.
    Off,
    /// Syncs at checkpoints only in WAL mode (a power cut can lose the commits since
    /// the last one, never damage the file); in rollback-journal mode, fewer syncs
    /// than `Full`, with a small risk of damage on a power cut.
    Normal,
    /// Syncs every commit (in rollback-journal mode the folder is not synced after
    /// the journal is deleted, so the last commit can be undone by a power cut).
    Full,
    /// `Full`, and in rollback-journal mode the folder synced after the journal is
    /// deleted: every commit survives a power cut.
    #[default]
    Extra,
}

impl Synchronous {
    /// The pragma's value.
    pub(crate) fn as_sql(self) -> &'static str {
        match self {
            Synchronous::Off => "OFF",
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
            Synchronous::Extra => "EXTRA",
        }
    }
}

/// The journal mode a connection sets on the file (none given: the file keeps its
/// own). The mode is a property of the file once set to WAL: every program that
/// opens it afterwards uses WAL.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalMode {
    /// A rollback journal, deleted at each commit: what SQLite and the app's web
    /// build (absurd-sql) use.
    Delete,
    /// Write-ahead logging: readers do not block the writer; needs shared memory
    /// (the app's web build cannot open such a file).
    Wal,
}

impl JournalMode {
    fn as_sql(self) -> &'static str {
        match self {
            JournalMode::Delete => "DELETE",
            JournalMode::Wal => "WAL",
        }
    }
}

/// What a handle is opened with (see [`crate::OpenOptions`]).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub create: bool,
    pub read_only: bool,
    pub busy_timeout: Duration,
    pub keying: Option<crate::connection::ffi::Keying>,
    pub synchronous: Synchronous,
    pub journal_mode: Option<JournalMode>,
    /// The file is a private copy thrown away after use: nothing on it is synced,
    /// migrations and rollbacks included (see [`crate::OpenOptions::scratch`]).
    pub scratch: bool,
}

impl Settings {
    /// These settings, creating a missing file (a private `:memory:` one).
    pub fn clone_creating(&self) -> Settings {
        Settings {
            create: true,
            read_only: false,
            ..self.clone()
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            create: true,
            read_only: false,
            busy_timeout: BUSY_TIMEOUT,
            keying: None,
            synchronous: Synchronous::default(),
            journal_mode: None,
            scratch: false,
        }
    }
}

/// An open, configured connection and what is known of its file.
pub(crate) struct Handle {
    pub conn: SqliteConnection,
    /// The connection's own SQLite handle (for the online backup API).
    pub raw: crate::connection::ffi::RawDb,
    /// The database file: its real path, its folder, what it is.
    pub file: DbFile,
    /// The file's real path (`file.path`).
    pub path: std::path::PathBuf,
    pub settings: Settings,
    /// This open created the file.
    pub created: bool,
    /// Whether the file was found servable (cached: the check is a few reads, and
    /// every [`crate::Database::store`] asks); forgotten by migrate and rollback.
    pub servable: bool,
    /// Copies of the file and its journal kept aside before an interrupted write was
    /// recovered by this open (the state before recovery), when there was one.
    pub kept_aside: Vec<std::path::PathBuf>,
    /// Inside a unit of work ([`crate::Database::transaction`]): the quarantine
    /// exports written in it, removed again if it rolls back.
    pub unit_exports: Option<Vec<std::path::PathBuf>>,
    /// This connection, counted among the process's connections to the file.
    _open_here: Option<crate::fs::holders::OpenHere>,
}

impl Handle {
    /// Opens `path` as `settings` say. Refuses, without writing anything, what it
    /// cannot serve: a directory, a FIFO or device, a file that is not SQLite, a
    /// side file that is not SQLite's own, a key that does not fit, a file the
    /// caller may not write for a read-write open, an interrupted write that cannot
    /// be recovered here (or that does not check out once recovered: then the file
    /// is put back as it was).
    pub fn open(path: &Path, settings: &Settings) -> Result<Handle, Error> {
        if settings.keying.is_some() && !cfg!(feature = "encryption") {
            return Err(precheck::no_encryption(path));
        }
        let mut file = DbFile::locate(path).map_err(|e| {
            if e.kind() == ErrorKind::MissingFolder && (!settings.create || settings.read_only) {
                Error::at(
                    ErrorKind::NotFound,
                    path,
                    format!(
                        "no database at {}; check the path (only a read-write open with OpenOptions::create makes a new one)",
                        path.display()
                    ),
                )
            } else {
                e
            }
        })?;
        let fresh = prepare_file(&mut file, settings)?;
        Self::open_existing(file, settings, fresh).map_err(|failed| {
            let (e, file) = *failed;
            if fresh == Fresh::Created {
                remove_created(&file);
            }
            e
        })
    }

    fn open_existing(
        file: DbFile,
        settings: &Settings,
        fresh: Fresh,
    ) -> Result<Handle, Box<(Error, DbFile)>> {
        let mut settings = settings.clone();
        let opened = (|| {
            let plan = recovery::prepare(&file, &mut settings)?;
            // What SQLite opened is the file checked above, read on its descriptor.
            let (mut conn, raw) = establish_detecting(&file, &mut settings, plan.immutable)?;
            configure(&mut conn, raw, &file.path, &settings)?;
            if fresh != Fresh::No {
                // The new file gets its first page now (an empty database, under its
                // key when it has one), so whatever comes next (a failed migration, a
                // dry run, a caller that stops here) leaves a database the next open
                // serves, never an empty file that it must refuse; and its name is
                // made durable.
                conn.batch_execute("PRAGMA user_version = 0;")
                    .map_err(|e| configure_error(&file.path, e))?;
                file.folder
                    .sync(Protects::NewDatabaseName)
                    .map_err(|e| Error::io(&file.path, e))?;
            }
            Ok((conn, raw, plan.kept_aside))
        })();
        let opened = opened.map_err(|e: Error| match e.raw_sqlite() {
            Some(_) if e.kind() == ErrorKind::Locked => {
                locked(&file, settings.busy_timeout).caused_by(e)
            }
            _ => e,
        });
        match opened {
            Ok((conn, raw, kept_aside)) => Ok(Handle {
                _open_here: file.entry.as_ref().map(crate::fs::holders::register_open),
                conn,
                raw,
                path: file.path.clone(),
                file,
                settings,
                created: fresh == Fresh::Created,
                servable: false,
                kept_aside,
                unit_exports: None,
            }),
            Err(e) => Err(Box::new((e, file))),
        }
    }
    /// Whether the handle was opened read-only.
    pub fn read_only(&self) -> bool {
        self.settings.read_only
    }

    /// An error met on this file, in context (see [`ErrorContext::explain`]).
    pub fn context(&self, e: Error) -> Error {
        ErrorContext {
            file: &self.file,
            settings: &self.settings,
        }
        .explain(e)
    }

    /// The connection, and what puts this file's errors in context, borrowed
    /// apart.
    pub fn split(&mut self) -> (&mut SqliteConnection, ErrorContext<'_>) {
        let context = ErrorContext {
            file: &self.file,
            settings: &self.settings,
        };
        (&mut self.conn, context)
    }
}

/// Checks the file and, when allowed, creates a missing one (owner-only). Returns
/// whether the open starts a new database.
fn prepare_file(file: &mut DbFile, settings: &Settings) -> Result<Fresh, Error> {
    let path = file.path.clone();
    match file.entry {
        Some(entry)
            if entry.len == 0
                && entry.mode & 0o777 == 0o600
                && settings.create
                && !settings.read_only
                && file.mine() =>
        {
            // An empty owner-only file is what idstore's own create leaves when a
            // crash or a power cut stops it before the first page: it becomes the
            // new database. (Any other empty file is refused, as not a database.)
            refuse_read_only(file, Some(entry.mode))?;
            tracing::info!(path = %path.display(), "an empty file becomes a new database");
            Ok(Fresh::Empty)
        }
        Some(entry) => {
            check_header(file, settings.keying.is_some())?;
            if !settings.read_only {
                refuse_read_only(file, Some(entry.mode))?;
            }
            Ok(Fresh::No)
        }
        None => {
            if !settings.create || settings.read_only {
                return Err(Error::at(
                    ErrorKind::NotFound,
                    &path,
                    format!(
                        "no database at {}; check the path (only a read-write open with OpenOptions::create makes a new one)",
                        path.display()
                    ),
                ));
            }
            refuse_read_only(file, None)?;
            file.folder
                .create_new(&file.name, None)
                .map_err(|e| Error::io(&path, e))?;
            file.refresh().map_err(|e| Error::io(&path, e))?;
            Ok(Fresh::Created)
        }
    }
}

/// Whether the open starts a new database: one it created, or an empty file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    No,
    Created,
    Empty,
}

/// Refuses a read-write open of a file (or a new file) that cannot or may not be
/// written: a read-only filesystem, a file whose mode allows no writing (checked
/// here, not left to SQLite, which would silently open read-only; root would not
/// be stopped by the mode bits at all), a folder SQLite cannot put its journal in,
/// another user's file (its journal and log would be this user's, and lock its
/// owner out).
fn refuse_read_only(file: &DbFile, mode: Option<u32>) -> Result<(), Error> {
    if storage_is_read_only(file.folder.path()) {
        return Err(read_only(&file.path, ReadOnlyCause::Filesystem));
    }
    if mode.is_some_and(|m| m & 0o222 == 0) {
        return Err(read_only(&file.path, ReadOnlyCause::FilePermission));
    }
    if !file.mine() {
        return Err(read_only(
            &file.path,
            ReadOnlyCause::NotOwner(file.owner().uid),
        ));
    }
    if !file.folder.writable() {
        return Err(read_only(&file.path, ReadOnlyCause::FolderPermission));
    }
    Ok(())
}

/// Removes what an open created (the file and its side files), so that nothing of
/// a failed open is left behind, as long as the name is still that file: one put
/// there meanwhile is someone else's.
fn remove_created(file: &DbFile) {
    if file.check_opened(None).is_ok() {
        crate::fs::remove_new(&file.folder, &file.name);
    }
}

#[cfg(test)]
mod tests {
    //! What SQLite opened is checked on the descriptor SQLite uses, not on the name
    //! alone: a name swapped between idstore's check and SQLite's open is refused.

    use super::*;
    use crate::fs::entry_at;

    /// Two database files, `a.sqlite` and `b.sqlite`, in `dir`.
    fn two_files(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let (a, b) = (dir.join("a.sqlite"), dir.join("b.sqlite"));
        for path in [&a, &b] {
            crate::Database::open(path).unwrap();
        }
        (a, b)
    }

    #[test]
    fn the_descriptor_sqlite_opened_is_read_as_the_file_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = two_files(dir.path());
        let handle = Handle::open(&a, &Settings::default()).unwrap();
        let opened = handle
            .raw
            .main_file()
            .expect("SQLite's unix VFS: its descriptor can be read")
            .unwrap();
        assert!(opened.same_file(&entry_at(&a).unwrap()));
        assert!(!opened.same_file(&entry_at(&b).unwrap()));
    }

    #[test]
    fn a_name_replaced_after_its_check_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = two_files(dir.path());
        let file = DbFile::locate(&a).unwrap();
        // What the descriptor says wins over the name, which may have been put
        // back by the time it is looked at again.
        file.check_opened(Some(Ok(entry_at(&a).unwrap()))).unwrap();
        let swapped = file
            .check_opened(Some(Ok(entry_at(&b).unwrap())))
            .unwrap_err();
        let refused = file.error(swapped);
        assert_eq!(refused.kind(), ErrorKind::CannotOpen, "{refused}");
        assert!(refused.to_string().contains("was replaced"), "{refused}");
        // Another file renamed over the name after it was checked: what SQLite then
        // opens is refused before anything is read from it.
        std::fs::rename(&b, &a).unwrap();
        let mut start = [0u8; 16];
        let read = ffi::read_file_start(&file, &mut start).unwrap_err();
        assert_eq!(file.error(read).kind(), ErrorKind::CannotOpen);
        assert_eq!(start, [0u8; 16], "nothing was read");
        let lock = ffi::with_shared_lock(&file, Duration::ZERO, |_| Ok(())).unwrap_err();
        assert_eq!(file.error(lock).kind(), ErrorKind::CannotOpen);
    }

    #[test]
    fn what_an_open_created_is_removed_only_while_the_name_is_still_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.sqlite");
        let mut file = DbFile::locate(&path).unwrap();
        std::fs::write(&path, b"made by this open").unwrap();
        file.refresh().unwrap();
        let theirs = dir.path().join("theirs");
        std::fs::write(&theirs, b"someone else's").unwrap();
        std::fs::rename(&theirs, &path).unwrap();
        remove_created(&file);
        assert_eq!(std::fs::read(&path).unwrap(), b"someone else's");
        file.refresh().unwrap();
        remove_created(&file);
        assert!(!path.exists(), "the open's own file is removed");
    }
}
