//! Encrypting, re-keying and decrypting a file in place: every table is copied into a
//! new file beside it under the new key (SQLCipher's `sqlcipher_export`), checked
//! row for row against the original, made durable, and renamed over it. A crash at
//! any point leaves either the old file or the new one.

use std::path::{Path, PathBuf};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::connection::{OpenOptions, create_private, sync_folder};
use crate::error::OpenError;
use crate::key::Key;

/// What a conversion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// Tables copied (the app's own included).
    pub tables: usize,
    /// Rows copied, all tables together.
    pub rows: u64,
    /// Whether the file is encrypted now.
    pub encrypted: bool,
}

/// Why a conversion failed. The file is as it was in every case but
/// [`ConvertError::NotDurable`].
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The file could not be opened with the current key (or without one).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Another connection has the file open: the switch to exclusive use failed.
    #[error(
        "{} is open in another program; close it (the app, a shell) and try again; nothing was changed",
        path.display()
    )]
    InUse {
        /// The file.
        path: PathBuf,
    },
    /// The copy differs from the original; it was removed.
    #[error(
        "the converted copy differs from the original ({0}); it was removed and nothing was changed"
    )]
    Mismatch(String),
    /// Writing the new file failed; it was removed.
    #[error("could not write the converted copy {}: {}; nothing was changed", path.display(), io_cause(error))]
    Write {
        /// The copy.
        path: PathBuf,
        /// What failed (shown in the message, in words).
        error: std::io::Error,
    },
    /// The new file is in place, but the folder could not be synced: the rename may
    /// not survive a power loss (then the old file comes back, whole).
    #[error(
        "{} was converted, but its folder could not be synced ({}), so the change may not survive a power loss (the old file would come back whole); check the disk",
        path.display(),
        io_cause(error)
    )]
    NotDurable {
        /// The file.
        path: PathBuf,
        /// What failed (shown in the message, in words).
        error: std::io::Error,
    },
    /// SQLite failed during the copy; the new file was removed.
    #[error("the conversion failed; nothing was changed")]
    Database(#[source] diesel::result::Error),
}

impl From<diesel::result::Error> for ConvertError {
    fn from(e: diesel::result::Error) -> Self {
        ConvertError::Database(e)
    }
}

/// An I/O error in the words the other storage faults use, with the system's own.
fn io_cause(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            format!("the disk is full ({e})")
        }
        _ if e.raw_os_error() == Some(5) => format!("an I/O error ({e})"),
        _ => e.to_string(),
    }
}

impl ConvertError {
    /// A stable name for the kind of error, for scripts (`--json`'s `error.kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            ConvertError::Open(e) => e.kind(),
            ConvertError::InUse { .. } => "in_use",
            ConvertError::Mismatch(_) => "validation_failed",
            ConvertError::Write { .. } | ConvertError::NotDurable { .. } => "io_error",
            ConvertError::Database(e) if crate::connection::is_locked(e) => "locked",
            ConvertError::Database(_) => "database_error",
        }
    }
}

/// Rewrites the file at `path`, opened with `current` (its key, or none), under
/// `new_key` (none: a plain file). Every table, idstore's and the app's, is copied
/// with its rows, indexes, triggers and `user_version`; the copy is checked table
/// by table against the original and opened with the new key before it replaces
/// the file. Other programs must have the file closed (refused otherwise).
pub fn convert(
    path: &Path,
    current: &OpenOptions,
    new_key: Option<&Key>,
) -> Result<Converted, ConvertError> {
    let options = current.clone().create(false);
    // The lock holder: exclusive use first (leaving WAL needs it), then a write lock
    // that keeps writers out until the new file is in place.
    let mut lock = options.open(path)?;
    let in_use = || ConvertError::InUse {
        path: path.to_owned(),
    };
    match journal_mode(&mut lock, "DELETE") {
        Ok(mode) if mode.eq_ignore_ascii_case("delete") => {}
        Ok(_) => return Err(in_use()),
        Err(e) if crate::connection::is_locked(&e) => return Err(in_use()),
        Err(e) => return Err(e.into()),
    }
    let result = (|| -> Result<Converted, ConvertError> {
        lock.batch_execute("BEGIN IMMEDIATE")?;
        let copy = copy_path(path);
        let done = export(path, &options, &copy, new_key).and_then(|converted| {
            install(&copy, path)?;
            Ok(converted)
        });
        if done.is_err() {
            remove_copy(&copy);
        }
        let _ = lock.batch_execute("ROLLBACK");
        done
    })();
    if result.is_err() {
        // Back to how the file was; the error that matters is the first one.
        let _ = journal_mode(&mut lock, "WAL");
    }
    result
}

/// Sets the journal mode; returns the mode SQLite reports afterwards.
fn journal_mode(conn: &mut SqliteConnection, mode: &str) -> QueryResult<String> {
    #[derive(QueryableByName)]
    struct Mode {
        #[diesel(sql_type = Text)]
        journal_mode: String,
    }
    diesel::sql_query(format!("PRAGMA journal_mode = {mode}"))
        .get_result::<Mode>(conn)
        .map(|m| m.journal_mode)
}

/// The copy's name: beside the file (so the rename stays on one file system),
/// hidden, and naming no key. One name per file: a copy a killed run left behind is
/// removed by the next run, once it holds the file's lock.
fn copy_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.idstore-convert"))
}

/// Removes the copy and the journal SQLite may have kept for it.
fn remove_copy(copy: &Path) {
    let mut journal = copy.as_os_str().to_owned();
    journal.push("-journal");
    let _ = std::fs::remove_file(copy);
    let _ = std::fs::remove_file(PathBuf::from(journal));
}

/// Copies every table into `copy` under `new_key` and checks it against the
/// original, on a connection of its own (the lock holder's write lock does not
/// stop its reads).
fn export(
    path: &Path,
    options: &OpenOptions,
    copy: &Path,
    new_key: Option<&Key>,
) -> Result<Converted, ConvertError> {
    remove_copy(copy); // a leftover of a killed run
    create_private(copy).map_err(|error| ConvertError::Write {
        path: copy.to_owned(),
        error,
    })?;
    let mut conn = options.open_unconfigured(path)?;
    conn.batch_execute("PRAGMA foreign_keys = OFF;")?;
    let copy_text = copy.to_str().ok_or_else(|| ConvertError::Write {
        path: copy.to_owned(),
        error: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path is not UTF-8"),
    })?;
    let key_text = new_key.map_or("", |k| k.as_text());
    // Bound, not written into the SQL: the key is in no statement text.
    diesel::sql_query("ATTACH DATABASE ? AS converted KEY ?")
        .bind::<Text, _>(copy_text)
        .bind::<Text, _>(key_text)
        .execute(&mut conn)?;
    // The attached key may be the process's first: its default logging goes off again.
    conn.batch_execute(&format!("{};", crate::cipher::QUIET))?;
    let result = (|| -> Result<Converted, ConvertError> {
        // Deferred: the lock holder keeps its write lock on the original.
        conn.batch_execute("BEGIN; SELECT sqlcipher_export('converted');")?;
        for pragma in ["user_version", "application_id"] {
            let value = integer(
                &mut conn,
                &format!("SELECT {pragma} AS n FROM pragma_{pragma}"),
            )?;
            conn.batch_execute(&format!("PRAGMA converted.{pragma} = {value};"))?;
        }
        let converted = compare(&mut conn)?;
        conn.batch_execute("COMMIT;")?;
        Ok(converted)
    })();
    if result.is_err() {
        let _ = conn.batch_execute("ROLLBACK;");
    }
    let _ = conn.batch_execute("DETACH DATABASE converted;");
    let mut converted = result?;
    converted.encrypted = new_key.is_some();
    // The new key must open the copy, and its structure must be sound.
    let mut reopened = OpenOptions::new()
        .create(false)
        .key(new_key.cloned())
        .open_unconfigured(copy)?;
    let problems: Vec<String> = crate::sql::integrity_problems(&mut reopened)?;
    if !problems.is_empty() {
        return Err(ConvertError::Mismatch(problems.join("; ")));
    }
    Ok(converted)
}

fn integer(conn: &mut SqliteConnection, query: &str) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query(query).get_result::<N>(conn).map(|r| r.n)
}

/// Checks the copy against the original: the same schema text, and in every table
/// the same rows (counted, and compared both ways).
fn compare(conn: &mut SqliteConnection) -> Result<Converted, ConvertError> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let schema_differs = integer(
        conn,
        "SELECT count(*) AS n FROM (
           SELECT * FROM (SELECT type, name, tbl_name, sql FROM main.sqlite_master
                          EXCEPT SELECT type, name, tbl_name, sql FROM converted.sqlite_master)
           UNION ALL
           SELECT * FROM (SELECT type, name, tbl_name, sql FROM converted.sqlite_master
                          EXCEPT SELECT type, name, tbl_name, sql FROM main.sqlite_master))",
    )?;
    if schema_differs > 0 {
        return Err(ConvertError::Mismatch(format!(
            "{schema_differs} schema entries differ"
        )));
    }
    let tables = diesel::sql_query(
        "SELECT name FROM main.sqlite_master WHERE type = 'table' AND rootpage > 0 ORDER BY name",
    )
    .load::<Name>(conn)?;
    let mut rows = 0u64;
    for Name { name } in &tables {
        let t = format!("\"{}\"", name.replace('"', "\"\""));
        let count = |db: &str| format!("SELECT count(*) AS n FROM {db}.{t}");
        let (before, after) = (
            integer(conn, &count("main"))?,
            integer(conn, &count("converted"))?,
        );
        let differ = integer(
            conn,
            &format!(
                "SELECT count(*) AS n FROM (SELECT * FROM main.{t} EXCEPT SELECT * FROM converted.{t})"
            ),
        )?;
        if before != after || differ > 0 {
            return Err(ConvertError::Mismatch(format!(
                "table {name}: {before} rows before, {after} after, {differ} not copied"
            )));
        }
        rows += u64::try_from(before).unwrap_or(0);
    }
    Ok(Converted {
        tables: tables.len(),
        rows,
        encrypted: false,
    })
}

/// Makes the copy durable, renames it over the file, and makes the rename durable.
fn install(copy: &Path, path: &Path) -> Result<(), ConvertError> {
    let write_err = |error| ConvertError::Write {
        path: copy.to_owned(),
        error,
    };
    std::fs::File::open(copy)
        .and_then(|f| f.sync_all())
        .map_err(write_err)?;
    std::fs::rename(copy, path).map_err(write_err)?;
    sync_folder(crate::fault::folder_of(path)).map_err(|error| ConvertError::NotDurable {
        path: path.to_owned(),
        error,
    })
}
