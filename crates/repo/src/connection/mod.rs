//! The one way a connection is opened: the file checked before SQLite sees it, an
//! interrupted write recovered (or refused where it cannot be), read-only storage
//! read as such, the key tried before anything else, and SQLite's defensive
//! settings on. Every [`Handle`] is opened here.
//!
//! Nothing is written to an existing file by opening it (a file the open creates
//! gets its first page, so it is a database from the start). A read-write handle switches the
//! file to write-ahead logging only after its first write has committed, so a call
//! refused before that leaves the file byte for byte as it was.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::error::{Error, ErrorKind};

mod file;

use crate::files::{
    beside, create_private, folder_of, folder_writable, remove_with_journals, storage_is_read_only,
};
pub(crate) use file::is_encrypted;
use file::{check_header, hot_journal, sqlite_uri, wal_has_frames};

/// How long a connection waits for another writer before reporting `database is
/// locked` (the default of [`crate::OpenOptions::busy_timeout`]).
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What a handle is opened with (see [`crate::OpenOptions`]).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub create: bool,
    pub read_only: bool,
    pub busy_timeout: Duration,
    pub keying: Option<crate::hooks::Keying>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            create: true,
            read_only: false,
            busy_timeout: BUSY_TIMEOUT,
            keying: None,
        }
    }
}

/// An open, configured connection and what is known of its file.
pub(crate) struct Handle {
    pub conn: SqliteConnection,
    pub path: PathBuf,
    pub settings: Settings,
    /// The file is not in WAL mode yet: switched after the first committed write.
    wal_pending: bool,
    /// This open created the file.
    pub created: bool,
    /// Whether the file was found servable (cached: the check is a few reads, and
    /// every [`crate::Database::store`] asks); forgotten by migrate and rollback.
    pub servable: bool,
}

impl Handle {
    /// Opens `path` as `settings` say. Refuses, without writing anything, what it
    /// cannot serve: a directory, a file that is not SQLite, a key that does not fit,
    /// read-only storage for a read-write open, an interrupted write that cannot be
    /// recovered here.
    pub fn open(path: &Path, settings: &Settings) -> Result<Handle, Error> {
        if settings.keying.is_some() && !cfg!(feature = "encryption") {
            return Err(file::no_encryption(path));
        }
        let created = prepare_file(path, settings)?;
        let opened = Self::open_existing(path, settings, created);
        if opened.is_err() && created {
            // Nothing of a file this call created is left behind.
            remove_with_journals(path);
        }
        opened
    }

    fn open_existing(path: &Path, settings: &Settings, created: bool) -> Result<Handle, Error> {
        let mut settings = settings.clone();
        let immutable = if settings.read_only {
            read_only_access(path, &mut settings)?
        } else {
            false
        };
        let mut conn = establish_detecting(path, &mut settings, immutable)?;
        let journal_mode = configure(&mut conn, path, &settings)?;
        if created {
            // The new file gets its first page now (an empty database, under its key
            // when it has one), so whatever comes next (a failed migration, a dry
            // run, a caller that stops here) leaves a database the next open serves,
            // never an empty file that it must refuse.
            conn.batch_execute("PRAGMA user_version = 0;")
                .map_err(|e| configure_error(path, e))?;
        }
        Ok(Handle {
            conn,
            path: path.to_owned(),
            wal_pending: !settings.read_only && !journal_mode.eq_ignore_ascii_case("wal"),
            settings,
            created,
            servable: false,
        })
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction (see [`crate::txn`]); once a
    /// first write has committed, the file is switched to write-ahead logging.
    pub fn write<T>(
        &mut self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let done = crate::txn::immediate(&mut self.conn, f)?;
        self.after_commit();
        Ok(done)
    }

    /// Switches to WAL after a committed write, when the file is not in it yet. The
    /// write is done either way: a switch that fails (another program reading) is
    /// tried again after the next one.
    pub fn after_commit(&mut self) {
        if !self.wal_pending {
            return;
        }
        let timeout = self.settings.busy_timeout;
        let conn = &mut self.conn;
        match retry_while_locked(timeout, || {
            conn.batch_execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        }) {
            Ok(()) => self.wal_pending = false,
            Err(e) => {
                tracing::warn!(error = %e, "the switch to write-ahead logging waits for the next write")
            }
        }
    }

    /// Whether the handle was opened read-only.
    pub fn read_only(&self) -> bool {
        self.settings.read_only
    }

    /// An error met on this file, in context: about this file when it names none
    /// yet, and a lock held past the busy timeout says by whom (where the system
    /// tells) and how long it waited.
    pub fn context(&self, e: Error) -> Error {
        if e.kind() == ErrorKind::Locked && e.raw_sqlite().is_some() {
            return locked(&self.path, self.settings.busy_timeout).caused_by(e);
        }
        e.in_file(&self.path)
    }
}

/// The refusal of an operation on `path` that another connection kept locked past
/// `waited`: who holds it (other processes with the file open, where the system
/// tells), and what to do.
pub(crate) fn locked(path: &Path, waited: Duration) -> Error {
    let holders = crate::files::other_holders(path);
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
        path,
        format!(
            "{} stayed locked by {by} for longer than the busy timeout ({} ms); nothing was changed: retry once it is done, or wait longer (the busy timeout)",
            path.display(),
            waited.as_millis()
        ),
    )
}

/// Checks the path and, when allowed, creates a missing file (owner-only). Returns
/// whether it created the file.
fn prepare_file(path: &Path, settings: &Settings) -> Result<bool, Error> {
    let io_err = |source: io::Error| Error::io(path, source);
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(Error::at(
            ErrorKind::IsDirectory,
            path,
            format!(
                "{} is a directory; pass the path of a database file",
                path.display()
            ),
        )),
        Ok(meta) => {
            check_header(path, settings.keying.is_some())?;
            if !settings.read_only {
                refuse_read_only(path, Some(&meta))?;
            }
            Ok(false)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if !settings.create || settings.read_only {
                return Err(Error::at(
                    ErrorKind::NotFound,
                    path,
                    format!("no database at {}", path.display()),
                ));
            }
            let parent = folder_of(path);
            if !parent.is_dir() {
                return Err(Error::at(
                    ErrorKind::MissingFolder,
                    path,
                    format!(
                        "cannot create {}: the folder {} does not exist; create it first",
                        path.display(),
                        parent.display()
                    ),
                ));
            }
            refuse_read_only(path, None)?;
            create_private(path).map_err(io_err)?;
            Ok(true)
        }
        Err(e) => Err(io_err(e)),
    }
}

/// Refuses a read-write open of a file (or a new file) that cannot be written: a
/// read-only filesystem, a file whose mode allows no writing (checked here, not left
/// to SQLite, which would silently open read-only; root would not be stopped by the
/// mode bits at all), a folder SQLite cannot put its journal in.
fn refuse_read_only(path: &Path, meta: Option<&fs::Metadata>) -> Result<(), Error> {
    let refuse = |cause| -> Result<(), Error> { Err(read_only(path, cause)) };
    if storage_is_read_only(folder_of(path)) {
        return refuse(ReadOnlyCause::Filesystem);
    }
    if meta.is_some_and(|m| m.permissions().readonly()) {
        return refuse(ReadOnlyCause::FilePermission);
    }
    if !folder_writable(folder_of(path)) {
        return refuse(ReadOnlyCause::FolderPermission);
    }
    Ok(())
}

/// Why a file cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadOnlyCause {
    /// The filesystem is mounted read-only.
    Filesystem,
    /// The file's permissions allow no writing.
    FilePermission,
    /// The folder cannot be written (SQLite writes its journal there).
    FolderPermission,
}

/// The refusal to write a file that cannot be written, and why.
fn read_only(path: &Path, cause: ReadOnlyCause) -> Error {
    let file = path.display();
    let folder = folder_of(path).display();
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
    };
    Error::at(
        ErrorKind::ReadOnly,
        path,
        format!(
            "{why}: nothing was written; to change it, copy the file to writable storage (or make it writable) and run the command there"
        ),
    )
}

/// The refusal to read a file whose interrupted write (`journal` beside it) cannot
/// be recovered here.
fn needs_recovery(path: &Path, journal: &Path) -> Error {
    Error::at(
        ErrorKind::NeedsRecovery,
        path,
        format!(
            "{} holds an interrupted write ({} beside it) that SQLite must recover before the file can be read, and it cannot here: the storage is read-only; copy both files to writable storage and open the copy there (any idstore command recovers it), or open it where it is once the storage is writable",
            path.display(),
            journal.display()
        ),
    )
}

/// Before a read-only open: an interrupted write is recovered when the storage can
/// be written (a read-write connection rolls a hot journal back, as any SQLite
/// client would) and refused plainly when it cannot. Returns whether the file must
/// be opened `immutable` (read-only storage, in WAL mode or not, with no log to read:
/// SQLite could otherwise not open a WAL file without creating its `-shm`).
fn read_only_access(path: &Path, settings: &mut Settings) -> Result<bool, Error> {
    let read_only_storage = storage_is_read_only(folder_of(path));
    if let Some(journal) = hot_journal(path) {
        if refuse_read_only(path, fs::metadata(path).ok().as_ref()).is_err() {
            return Err(needs_recovery(path, &journal));
        }
        // The recovery itself: a read-write connection's first read rolls it back.
        let writable = Settings {
            read_only: false,
            ..settings.clone()
        };
        let mut recover = establish_detecting(path, &mut writable.clone(), false)?;
        configure(&mut recover, path, &writable)?;
        tracing::info!(path = %path.display(), "rolled back an interrupted write (hot journal)");
    }
    if !read_only_storage {
        return Ok(false);
    }
    let wal = beside(path, "-wal");
    if wal_has_frames(&wal) {
        if beside(path, "-shm").exists() {
            return Ok(false); // SQLite reads the log through the index it finds
        }
        return Err(needs_recovery(path, &wal));
    }
    Ok(true)
}

/// [`establish`], and for a key without a SQLCipher compatibility setting, tried as
/// SQLCipher 4 (the default) and then as SQLCipher 3: the format found is kept in
/// `settings`, so every later connection (and the backup) uses it.
fn establish_detecting(
    path: &Path,
    settings: &mut Settings,
    immutable: bool,
) -> Result<SqliteConnection, Error> {
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
            older.keying = Some(crate::hooks::Keying {
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
/// and the defensive settings: see [`crate::hooks`]), and tries the key before
/// anything else reads the file.
fn establish(path: &Path, settings: &Settings, immutable: bool) -> Result<SqliteConnection, Error> {
    let uri = sqlite_uri(path, settings.read_only, immutable);
    let mut conn = crate::hooks::opening(settings.keying.as_ref(), settings.busy_timeout, || {
        SqliteConnection::establish(&uri)
    })
    .map_err(|source| {
        // SQLite says only "unable to open database file"; the system's own error,
        // when opening the file the same way fails too, names the real cause (a
        // full disk, an I/O error, a permission).
        match fs::OpenOptions::new()
            .read(true)
            .write(!settings.read_only)
            .open(path)
        {
            Err(io) => Error::io(path, io),
            Ok(_) => Error::at(
                ErrorKind::CannotOpen,
                path,
                format!("could not open database at {}", path.display()),
            )
            .caused_by(source),
        }
    })?;
    if settings.keying.is_some() {
        check_key(&mut conn, path)?;
    }
    Ok(conn)
}

/// An error met while opening: a full disk or an I/O error (creating the `-shm`
/// file of a WAL database, say) reported as the storage fault it is, with the room
/// beside the file; anything else as a failure to open.
fn configure_error(path: &Path, source: diesel::result::Error) -> Error {
    let kind = crate::error::classify(&source);
    if matches!(kind, ErrorKind::DiskFull | ErrorKind::IoError) {
        return crate::storage::fault_at(path, kind, source);
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
                "the key does not open {}: it is not this file's key, or the file is not in the SQLCipher format asked for (without one, SQLCipher 3 and 4 files are both tried); the file was left untouched",
                path.display()
            ),
        )),
        Err(source) => Err(configure_error(path, source)),
        Ok(()) => Ok(()),
    }
}

/// Sets what every connection runs with and reads the schema (which surfaces a
/// damaged file now, and on a read-write connection rolls back a hot journal).
/// Returns the file's journal mode. Writes nothing to the file.
///
/// `foreign_keys = ON`; temporary tables and sorts in temporary files for a plain
/// file (memory stays flat however large the file) but in memory for an encrypted
/// one (no plaintext copy of any table lands in a temporary file); `synchronous`
/// FULL while the file uses a rollback journal, NORMAL in WAL mode. SQLite's
/// defensive settings are set as the connection opens (see [`crate::hooks`]).
fn configure(
    conn: &mut SqliteConnection,
    path: &Path,
    settings: &Settings,
) -> Result<String, Error> {
    conn.set_instrumentation(SlowStatements::default());
    let temp_store = if settings.keying.is_some() {
        "MEMORY"
    } else {
        "FILE"
    };
    conn.batch_execute(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA temp_store = {temp_store};"
    ))
    .map_err(|e| configure_error(path, e))?;
    let mode = crate::sql::journal_mode(conn).map_err(|e| configure_error(path, e))?;
    let sync = if mode.eq_ignore_ascii_case("wal") {
        "NORMAL"
    } else {
        "FULL"
    };
    conn.batch_execute(&format!("PRAGMA synchronous = {sync};"))
        .map_err(|e| configure_error(path, e))?;
    Ok(mode)
}

/// Statements slower than this are reported through `tracing` (at `warn`).
const SLOW_STATEMENT: Duration = Duration::from_millis(250);

/// Diesel's instrumentation hook: reports each statement slower than
/// [`SLOW_STATEMENT`] with its SQL, never its bound values (they may be key material).
#[derive(Default)]
struct SlowStatements {
    started: Vec<std::time::Instant>,
}

impl diesel::connection::Instrumentation for SlowStatements {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        use diesel::connection::InstrumentationEvent;
        match event {
            InstrumentationEvent::StartQuery { .. } => self.started.push(std::time::Instant::now()),
            InstrumentationEvent::FinishQuery { query, .. } => {
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
