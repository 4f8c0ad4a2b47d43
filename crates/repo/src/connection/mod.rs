//! The one way a connection is opened: the file found once and checked before
//! SQLite sees it ([`DbFile`]: a regular file, its side files SQLite's own), an
//! interrupted write recovered only after the file and its journal are kept aside
//! and checked afterwards (or refused where it cannot be), a file the caller may
//! not write read without creating anything beside it, the key tried before
//! anything else, and SQLite's defensive settings on. Every [`Handle`] is opened
//! here.
//!
//! Nothing is written to an existing file by opening it, and nothing about it is
//! changed for good that the caller did not ask for: its journal mode stays the
//! file's own unless [`crate::OpenOptions::journal_mode`] says otherwise. (A file
//! the open creates gets its first page, so it is a database from the start.)

use std::path::Path;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::error::{Error, ErrorKind};
use crate::files::{DbFile, Protects, storage_is_read_only};

mod access;
mod file;

pub(crate) use file::is_encrypted;
use file::{check_header, sqlite_uri};

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
/// quarantine decisions always commit at `Extra`.
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
    pub keying: Option<crate::ffi::Keying>,
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
    pub raw: crate::ffi::RawDb,
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
    _open_here: Option<crate::files::OpenHere>,
}

impl crate::txn::OnConnection for Handle {
    fn connection(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
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
            return Err(file::no_encryption(path));
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
                // Nothing of a file this call created is left behind.
                crate::files::remove_new(&file.folder, &file.name);
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
            let plan = access::prepare(&file, &mut settings)?;
            let (mut conn, raw) = establish_detecting(&file.path, &mut settings, plan.immutable)?;
            file.check_still_same()?;
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
                _open_here: file.entry.as_ref().map(crate::files::register_open),
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

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction (see [`crate::txn`]), committed
    /// as the handle's [`Synchronous`] setting says.
    pub fn write<T>(
        &mut self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        crate::txn::immediate(&mut self.conn, &self.path, f)
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
                    crate::txn::read(conn, &path, |conn| f(conn).map_err(Error::from))
                }));
                let restored = conn.batch_execute("PRAGMA query_only = OFF;");
                let value = result.map_err(|p| Error::panicked("the read_only closure", p))??;
                restored?;
                Ok(value)
            });
        result.map_err(|e| self.context(e))
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

/// What [`Handle::context`] needs of a handle: its file and settings, borrowed
/// apart from its connection (an iterator over rows holds the one and needs the
/// other).
#[derive(Clone, Copy)]
pub(crate) struct ErrorContext<'a> {
    file: &'a DbFile,
    settings: &'a Settings,
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
                return crate::storage::with_context(e, path);
            }
            ErrorKind::ReadOnly if self.settings.read_only => {
                read_only(path, ReadOnlyCause::OpenedReadOnly)
            }
            // The open found the file writable: what changed since, where it shows.
            ErrorKind::ReadOnly => refuse_read_only(self.file, None)
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
        .map(|e| crate::files::other_holders(&e))
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
    let folder = crate::files::folder_of(path).display();
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

/// [`establish`], and for a key without a SQLCipher compatibility setting, tried as
/// SQLCipher 4 (the default) and then as SQLCipher 3: the format found is kept in
/// `settings`, so every later connection (and the backup) uses it.
pub(crate) fn establish_detecting(
    path: &Path,
    settings: &mut Settings,
    immutable: bool,
) -> Result<(SqliteConnection, crate::ffi::RawDb), Error> {
    match establish(path, settings, immutable) {
        Err(e) if e.kind() == ErrorKind::WrongKey => {
            let Some(keying) = settings
                .keying
                .as_ref()
                .filter(|k| k.compatibility.is_none())
            else {
                return Err(e);
            };
            let mut older = settings.clone();
            older.keying = Some(crate::ffi::Keying {
                key: keying.key.clone(),
                compatibility: Some(3),
            });
            match establish(path, &older, immutable) {
                Ok(conn) => {
                    *settings = older;
                    Ok(conn)
                }
                Err(_) => Err(e),
            }
        }
        Ok(conn) => {
            if let Some(k) = settings
                .keying
                .as_mut()
                .filter(|k| k.compatibility.is_none())
            {
                k.compatibility = Some(4);
            }
            Ok(conn)
        }
        other => other,
    }
}

/// Opens the SQLite connection (keyed, when there is a key, with the busy handler
/// and the defensive settings: see [`crate::ffi`]), and tries the key before
/// anything else reads the file.
pub(crate) fn establish(
    path: &Path,
    settings: &Settings,
    immutable: bool,
) -> Result<(SqliteConnection, crate::ffi::RawDb), Error> {
    let uri = sqlite_uri(path, settings.read_only, immutable);
    // SQLCipher's logging is off until the key has been tried (below), then as found.
    let _quiet = crate::ffi::Quiet::begin();
    let (opened, raw) =
        crate::ffi::opening(settings.keying.as_ref(), settings.busy_timeout, || {
            SqliteConnection::establish(&uri)
        });
    let mut conn = opened.map_err(|source| {
        // SQLite says only "unable to open database file"; the system's own answer
        // for the same access (asked without opening the file, which would drop
        // this process's locks on it) names the real cause: a permission, say.
        match file::access_error(path, !settings.read_only) {
            Some(io) => Error::io(path, io),
            None => Error::at(
                ErrorKind::CannotOpen,
                path,
                format!("could not open database at {}", path.display()),
            )
            .caused_by(source),
        }
    })?;
    let raw = raw.ok_or_else(|| {
        Error::at(
            ErrorKind::CannotOpen,
            path,
            format!(
                "SQLite opened {} without idstore's settings (another part of the program reset SQLite's auto-extensions meanwhile); nothing was read: open it again",
                path.display()
            ),
        )
    })?;
    if settings.keying.is_some() {
        check_key(&mut conn, path)?;
    }
    Ok((conn, raw))
}

/// An error met while opening: a full disk or an I/O error (creating the `-shm`
/// file of a WAL database, say) reported as the storage fault it is, with the room
/// beside the file; anything else as a failure to open.
pub(crate) fn configure_error(path: &Path, source: diesel::result::Error) -> Error {
    let kind = crate::error::classify(&source);
    if matches!(kind, ErrorKind::DiskFull | ErrorKind::IoError) {
        return crate::storage::fault_at(path, kind, source);
    }
    if kind == ErrorKind::Locked {
        // Left raw: the open names who held the lock (see `Handle::open_existing`).
        return Error::from(source);
    }
    let kind = if kind == ErrorKind::Database {
        ErrorKind::CannotOpen
    } else {
        kind
    };
    Error::at(
        kind,
        path,
        format!("could not configure database at {}", path.display()),
    )
    .caused_by(source)
}

/// Tries the key on the file's first page: a wrong key reads as "not a database".
fn check_key(conn: &mut SqliteConnection, path: &Path) -> Result<(), Error> {
    match conn.batch_execute("SELECT count(*) FROM sqlite_master;") {
        Err(e) if crate::error::classify(&e) == ErrorKind::NotADatabase => Err(Error::at(
            ErrorKind::WrongKey,
            path,
            format!(
                "the key does not open {}: it is not this file's key, or the file is not in the SQLCipher format asked for (without one, SQLCipher 3 and 4 files are both tried); the file was left untouched: give its own key, and the format it was written in (OpenOptions::sqlcipher_compatibility) if it is not SQLCipher 3 or 4",
                path.display()
            ),
        )),
        Err(source) => Err(configure_error(path, source)),
        Ok(()) => Ok(()),
    }
}

/// Sets what every connection runs with and reads the schema (which surfaces a
/// damaged file now, and on a read-write connection rolls back a hot journal).
/// Writes nothing to the file unless a journal mode was asked for.
///
/// `foreign_keys = ON`; temporary tables and sorts in temporary files for a plain
/// file (memory stays flat however large the file) but in memory for an encrypted
/// one (no plaintext copy of any table lands in a temporary file); `synchronous` as
/// the settings say. SQLite's defensive settings are set as the connection opens
/// (see [`crate::ffi`]).
pub(crate) fn configure(
    conn: &mut SqliteConnection,
    raw: crate::ffi::RawDb,
    path: &Path,
    settings: &Settings,
) -> Result<(), Error> {
    conn.set_instrumentation(Watch {
        raw,
        started: Vec::new(),
    });
    let temp_store = if settings.keying.is_some() {
        "MEMORY"
    } else {
        "FILE"
    };
    conn.batch_execute(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA temp_store = {temp_store}; PRAGMA synchronous = {};",
        settings.synchronous.as_sql()
    ))
    .map_err(|e| configure_error(path, e))?;
    // Reading the schema surfaces a damaged file now.
    let mode = crate::sql::journal_mode(conn).map_err(|e| configure_error(path, e))?;
    if let Some(wanted) = settings.journal_mode.filter(|_| !settings.read_only)
        && !mode.eq_ignore_ascii_case(wanted.as_sql())
    {
        let set = format!("PRAGMA journal_mode = {};", wanted.as_sql());
        retry_while_locked(settings.busy_timeout, || conn.batch_execute(&set))
            .map_err(|e| configure_error(path, e))?;
    } else if settings.scratch && !settings.read_only && !mode.eq_ignore_ascii_case("wal") {
        // A scratch copy is thrown away and no other program opens it: its
        // rollback journal stays in memory and its lock is held (not taken again
        // for each statement, nor its cache checked again). A WAL file keeps its
        // mode: leaving WAL would change the file.
        conn.batch_execute("PRAGMA journal_mode = MEMORY; PRAGMA locking_mode = EXCLUSIVE;")
            .map_err(|e| configure_error(path, e))?;
    }
    Ok(())
}

/// Statements slower than this are reported through `tracing` (at `warn`).
const SLOW_STATEMENT: Duration = Duration::from_millis(250);

/// Diesel's instrumentation hook: reports each statement slower than
/// [`SLOW_STATEMENT`] with its SQL, never its bound values (they may be key
/// material), and notes the extended result code of each that fails (see
/// [`crate::ffi::note_failure`]).
struct Watch {
    raw: crate::ffi::RawDb,
    started: Vec<std::time::Instant>,
}

impl diesel::connection::Instrumentation for Watch {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        use diesel::connection::InstrumentationEvent;
        match event {
            InstrumentationEvent::StartQuery { .. } => self.started.push(std::time::Instant::now()),
            InstrumentationEvent::FinishQuery { query, error, .. } => {
                if error.is_some() {
                    crate::ffi::note_failure(self.raw);
                }
                let Some(started) = self.started.pop() else {
                    return;
                };
                let took = started.elapsed();
                if took >= SLOW_STATEMENT {
                    let text = query.to_string();
                    let sql = text.split(" -- binds: ").next().unwrap_or_default();
                    tracing::warn!(millis = took.as_millis() as u64, sql, "slow statement");
                }
            }
            _ => {}
        }
    }
}

/// Runs `step` again while SQLite answers `database is locked`, until `timeout` has
/// passed. For the steps SQLite does not hand to the busy handler: switching a
/// rollback-journal file to WAL needs an exclusive lock, and SQLite returns
/// `SQLITE_BUSY` at once rather than risk a deadlock. A failed try holds no lock, so
/// the other program can finish between tries.
pub(crate) fn retry_while_locked<T>(
    timeout: Duration,
    mut step: impl FnMut() -> QueryResult<T>,
) -> QueryResult<T> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(5);
    let mut told = false;
    loop {
        match step() {
            Err(e) if crate::error::is_locked(&e) && started.elapsed() < timeout => {
                if !told {
                    tracing::info!("another program holds a lock on the database; waiting for it");
                    told = true;
                }
                std::thread::sleep(pause.min(timeout.saturating_sub(started.elapsed())));
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}
