//! SQLite's connection itself: opened keyed (the key tried before anything else
//! reads the file, SQLCipher 4 then 3 when no format is given), configured with
//! what every connection runs with, and watched (slow statements reported, the
//! extended result code of each failure noted).

use std::path::Path;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::Settings;
use super::precheck::{access_error, sqlite_uri};
use crate::error::{Error, ErrorKind};
use crate::fs::DbFile;

/// [`establish`], and for a key without a SQLCipher compatibility setting, tried as
/// SQLCipher 4 (the default) and then as SQLCipher 3: the format found is kept in
/// `settings`, so every later connection (and the backup) uses it.
pub(crate) fn establish_detecting(
    file: &DbFile,
    settings: &mut Settings,
    immutable: bool,
) -> Result<(SqliteConnection, crate::connection::ffi::RawDb), Error> {
    match establish(&file.path, Some(file), settings, immutable) {
        Err(e) if e.kind() == ErrorKind::WrongKey => {
            let Some(keying) = settings
                .keying
                .as_ref()
                .filter(|k| k.compatibility.is_none())
            else {
                return Err(e);
            };
            let mut older = settings.clone();
            older.keying = Some(crate::connection::ffi::Keying {
                key: keying.key.clone(),
                compatibility: Some(3),
            });
            match establish(&file.path, Some(file), &older, immutable) {
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
/// and the defensive settings: see [`crate::connection::ffi`]), and tries the key before
/// anything else reads the file.
/// With `file` (the database found and checked before), what SQLite opened is
/// checked on its descriptor to be that file before anything reads it
/// ([`DbFile::check_opened`]); without, `path` is a new file of idstore's own.
pub(crate) fn establish(
    path: &Path,
    file: Option<&DbFile>,
    settings: &Settings,
    immutable: bool,
) -> Result<(SqliteConnection, crate::connection::ffi::RawDb), Error> {
    let uri = sqlite_uri(path, settings.read_only, immutable);
    // SQLCipher's logging is off until the key has been tried (below), then as found.
    let _quiet = crate::connection::ffi::Quiet::begin();
    let (opened, raw) =
        crate::connection::ffi::opening(settings.keying.as_ref(), settings.busy_timeout, || {
            SqliteConnection::establish(&uri)
        });
    let mut conn = opened.map_err(|source| {
        // SQLite says only "unable to open database file"; the system's own answer
        // for the same access (asked without opening the file, which would drop
        // this process's locks on it) names the real cause: a permission, say.
        match access_error(path, !settings.read_only) {
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
    if let Some(file) = file {
        file.check_opened(raw.main_file())
            .map_err(|e| file.error(e))?;
    }
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
        return crate::fs::storage::fault_at(path, kind, source);
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
/// (see [`crate::connection::ffi`]).
pub(crate) fn configure(
    conn: &mut SqliteConnection,
    raw: crate::connection::ffi::RawDb,
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
/// [`crate::connection::ffi::note_failure`]).
struct Watch {
    raw: crate::connection::ffi::RawDb,
    started: Vec<std::time::Instant>,
}

impl diesel::connection::Instrumentation for Watch {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        use diesel::connection::InstrumentationEvent;
        match event {
            InstrumentationEvent::StartQuery { .. } => self.started.push(std::time::Instant::now()),
            InstrumentationEvent::FinishQuery { query, error, .. } => {
                if error.is_some() {
                    crate::connection::ffi::note_failure(self.raw);
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
fn retry_while_locked<T>(
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
