//! The one way to open an idstore database.

use std::fs;
use std::io;
#[cfg(not(unix))]
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::error::OpenError;
use crate::key::Key;

mod file;

pub use file::is_encrypted;
use file::{check_header, parent_dir};
pub(crate) use file::{create_private, sqlite_uri, sync_folder};

/// How long a connection waits for another writer before reporting `database is locked`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How to open a database. [`open`] is `OpenOptions::new().open(path)`.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    create: bool,
    read_only: bool,
    busy_timeout: Duration,
    keying: Option<crate::cipher::Keying>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenOptions {
    /// Read-write, creating the file (owner-only permissions) when it is missing.
    pub fn new() -> Self {
        OpenOptions {
            create: true,
            read_only: false,
            busy_timeout: BUSY_TIMEOUT,
            keying: None,
        }
    }

    /// The key of an encrypted file (SQLCipher; none: a plain file). A new file
    /// created with a key is encrypted with it. A file written by SQLCipher 4's
    /// defaults opens with its key alone; see [`Self::sqlcipher_compatibility`] for
    /// older ones.
    pub fn key(mut self, key: Option<Key>) -> Self {
        let compatibility = self.keying.take().and_then(|k| k.compatibility);
        self.keying = key.map(|key| crate::cipher::Keying { key, compatibility });
        self
    }

    /// Opens a file written by an older SQLCipher with its settings
    /// (`PRAGMA cipher_compatibility`): `3` for SQLCipher 3 (1024-byte pages,
    /// 64,000 PBKDF2-SHA1 iterations, HMAC-SHA1). Only applies with a key.
    pub fn sqlcipher_compatibility(mut self, version: u8) -> Self {
        if let Some(k) = &mut self.keying {
            k.compatibility = Some(version);
        }
        self
    }

    /// Whether these options open an encrypted file.
    pub fn is_keyed(&self) -> bool {
        self.keying.is_some()
    }

    /// Whether a missing file may be created (default: yes).
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// Open read-only: nothing, not even the journal mode, is written (default: no).
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// How long to wait for a lock held by another connection (default [`BUSY_TIMEOUT`]).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Opens `path` and configures the connection (see [`configure`]).
    ///
    /// Refuses, without writing anything, a directory, an empty file and a file
    /// that does not start with the SQLite header.
    pub fn open(&self, path: &Path) -> Result<SqliteConnection, OpenError> {
        let mut conn = self.establish(path)?;
        configure(&mut conn, self.busy_timeout, self.read_only).map_err(|source| {
            if crate::fault::fault_kind(&source).is_some() {
                OpenError::Wal {
                    path: path.to_owned(),
                    free: crate::fault::free_space(crate::fault::folder_of(path)),
                    source,
                }
            } else {
                OpenError::Configure {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
        Ok(conn)
    }

    /// Opens `path` keyed as these options say, with the busy timeout, but leaves the
    /// journal mode alone (a conversion works on a file taken out of WAL).
    pub(crate) fn open_unconfigured(&self, path: &Path) -> Result<SqliteConnection, OpenError> {
        self.establish(path)
    }

    /// Checks the file, opens it (keyed, when there is a key) with the busy timeout,
    /// and tries the key before anything else reads the file.
    fn establish(&self, path: &Path) -> Result<SqliteConnection, OpenError> {
        self.prepare_file(path)?;
        let uri = sqlite_uri(path, self.read_only);
        let mut conn =
            crate::cipher::opening(self.keying.as_ref(), || SqliteConnection::establish(&uri))
                .map_err(|source| OpenError::Connection {
                    path: path.to_owned(),
                    source,
                })?;
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {};",
            self.busy_timeout.as_millis()
        ))
        .map_err(|source| OpenError::Configure {
            path: path.to_owned(),
            source,
        })?;
        if self.keying.is_some() {
            check_key(&mut conn, path)?;
        }
        Ok(conn)
    }

    /// Checks the path and creates a missing file (owner-only permissions).
    fn prepare_file(&self, path: &Path) -> Result<(), OpenError> {
        let io_err = |source: io::Error| OpenError::Io {
            path: path.to_owned(),
            source,
        };
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Err(OpenError::IsDirectory {
                path: path.to_owned(),
            }),
            Ok(meta) => {
                check_header(path, self.keying.is_some())?;
                // Checked here, not left to SQLite: it would silently open read-only
                // (and root would not be stopped by the mode bits at all).
                if !self.read_only && meta.permissions().readonly() {
                    return Err(OpenError::ReadOnly {
                        path: path.to_owned(),
                    });
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !self.create || self.read_only {
                    return Err(OpenError::NotFound {
                        path: path.to_owned(),
                    });
                }
                let parent = parent_dir(path);
                if !parent.is_dir() {
                    return Err(OpenError::MissingParent {
                        path: path.to_owned(),
                        parent,
                    });
                }
                create_private(path).map_err(io_err)
            }
            Err(e) => Err(io_err(e)),
        }
    }
}

/// Tries the key on the file's first page before anything else touches it: a wrong
/// key reads as "not a database". Then keeps temporary tables and indexes in memory,
/// so no plaintext copy of any table lands in a temporary file.
fn check_key(conn: &mut SqliteConnection, path: &Path) -> Result<(), OpenError> {
    let tried = conn.batch_execute("SELECT count(*) FROM sqlite_master;");
    match tried {
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("not a database") =>
        {
            return Err(OpenError::WrongKey {
                path: path.to_owned(),
            });
        }
        Err(source) => {
            return Err(OpenError::Configure {
                path: path.to_owned(),
                source,
            });
        }
        Ok(()) => {}
    }
    conn.batch_execute("PRAGMA temp_store = MEMORY;")
        .map_err(|source| OpenError::Configure {
            path: path.to_owned(),
            source,
        })
}

/// Opens (creating if missing) a read-write database at `path`; see [`OpenOptions`].
pub fn open(path: &Path) -> Result<SqliteConnection, OpenError> {
    OpenOptions::new().open(path)
}

/// Sets the pragmas every idstore connection runs with: `busy_timeout` first (so the
/// rest wait for locks), `foreign_keys = ON`, and for a writable connection WAL and
/// `synchronous = NORMAL`. Pooled connections are configured by this same function.
pub fn configure(
    conn: &mut SqliteConnection,
    busy_timeout: Duration,
    read_only: bool,
) -> QueryResult<()> {
    conn.set_instrumentation(SlowStatements::default());
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {};",
        busy_timeout.as_millis()
    ))?;
    conn.batch_execute("PRAGMA foreign_keys = ON;")?;
    if read_only {
        // Reading the schema here surfaces a damaged file now rather than mid-command.
        conn.batch_execute("SELECT count(*) FROM sqlite_master;")?;
    } else {
        retry_while_locked(busy_timeout, || {
            conn.batch_execute("PRAGMA journal_mode = WAL;")
        })?;
        conn.batch_execute("PRAGMA synchronous = NORMAL;")?;
    }
    Ok(())
}

/// Statements slower than this are reported through `tracing` (at `warn`).
pub const SLOW_STATEMENT: Duration = Duration::from_millis(250);

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

/// Whether SQLite answered `SQLITE_BUSY` (diesel carries only its message).
pub(crate) fn is_locked(e: &diesel::result::Error) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(_, info) if info.message().contains("database is locked"))
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
    loop {
        match step() {
            Err(e) if is_locked(&e) && started.elapsed() < timeout => {
                std::thread::sleep(pause.min(timeout.saturating_sub(started.elapsed())));
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Writes a consistent copy of the open database to `dest` (which must not exist),
/// with owner-only permissions, using `VACUUM INTO`: safe while other connections
/// write, and a valid database on its own (no `-wal` file needed).
///
/// Refuses before creating anything when the disk holding `dest` has less free space
/// than the copy needs. On any failure nothing is left behind: no partial copy and no
/// journal of one.
pub fn backup_to(conn: &mut SqliteConnection, dest: &Path) -> Result<(), OpenError> {
    let target = dest.to_str().ok_or_else(|| OpenError::Io {
        path: dest.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "backup path is not UTF-8"),
    })?;
    let needed = crate::fault::database_bytes(conn).map_err(|source| OpenError::Backup {
        path: dest.to_owned(),
        source,
    })?;
    let folder = crate::fault::folder_of(dest);
    if let Some(free) = crate::fault::free_space(folder)
        && free < needed
    {
        return Err(OpenError::BackupNoRoom {
            path: dest.to_owned(),
            needed,
            free: Some(free),
        });
    }
    create_private(dest).map_err(|source| OpenError::Io {
        path: dest.to_owned(),
        source,
    })?;
    diesel::sql_query("VACUUM INTO ?")
        .bind::<diesel::sql_types::Text, _>(target)
        .execute(conn)
        .map(drop)
        .map_err(|source| {
            remove_copy(dest);
            match crate::fault::fault_kind(&source) {
                Some(crate::fault::StorageFaultKind::DiskFull) => OpenError::BackupNoRoom {
                    path: dest.to_owned(),
                    needed,
                    free: crate::fault::free_space(folder),
                },
                _ => OpenError::Backup {
                    path: dest.to_owned(),
                    source,
                },
            }
        })
}

/// Removes a copy that was not completed, with whatever journal SQLite kept for it.
fn remove_copy(dest: &Path) {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut name = dest.as_os_str().to_owned();
        name.push(suffix);
        let _ = fs::remove_file(PathBuf::from(name));
    }
}
