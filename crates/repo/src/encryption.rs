//! Encrypting, re-keying and decrypting a file in place: every table is copied into a
//! new file beside it under the new key (SQLCipher's `sqlcipher_export`), checked
//! row for row against the original, made durable, and renamed over it. A crash at
//! any point leaves either the old file or the new one.

use std::path::{Path, PathBuf};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::connection::{Handle, Settings};
use crate::error::{Error, Repr};
use crate::files::{create_private, sync_folder};
use crate::key::Key;

/// What a conversion did.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// Tables copied (the app's own included).
    pub tables: usize,
    /// Rows copied, all tables together.
    pub rows: u64,
    /// Whether the file is encrypted now.
    pub encrypted: bool,
}

/// SQLite's error in a conversion, as the crate's error.
fn failed(source: diesel::result::Error) -> Error {
    Repr::Convert {
        kind: crate::error::classify(&source),
        source,
    }
    .into()
}

/// Copies the open, keyed database to the new file `target` under the same key and
/// SQLCipher settings (a backup of an encrypted file: `VACUUM INTO` would write it
/// with SQLCipher's defaults, which a SQLCipher 3 file's key does not open).
pub(crate) fn export_copy(
    conn: &mut SqliteConnection,
    target: &str,
    keying: &crate::hooks::Keying,
) -> QueryResult<()> {
    attach(conn, target, Some(keying))?;
    let copied = (|| {
        conn.batch_execute("BEGIN; SELECT sqlcipher_export('converted');")?;
        copy_header_values(conn)?;
        conn.batch_execute("COMMIT;")
    })();
    if copied.is_err() {
        let _ = conn.batch_execute("ROLLBACK;");
    }
    let detached = conn.batch_execute("DETACH DATABASE converted;");
    copied.and(detached)
}

/// Attaches `target` as `converted` under `keying` (none: plain). The key is bound,
/// never written into the SQL.
fn attach(
    conn: &mut SqliteConnection,
    target: &str,
    keying: Option<&crate::hooks::Keying>,
) -> QueryResult<()> {
    let key_text = keying.map_or("", |k| k.key.as_text());
    diesel::sql_query("ATTACH DATABASE ? AS converted KEY ?")
        .bind::<Text, _>(target)
        .bind::<Text, _>(key_text)
        .execute(conn)?;
    if let Some(3) = keying.and_then(|k| k.compatibility) {
        conn.batch_execute("PRAGMA converted.cipher_compatibility = 3;")?;
    }
    // The attached key may be the process's first: its default logging goes off again.
    conn.batch_execute("PRAGMA cipher_log_level = NONE;")
}

/// `user_version` and `application_id`, which `sqlcipher_export` leaves behind.
fn copy_header_values(conn: &mut SqliteConnection) -> QueryResult<()> {
    for pragma in ["user_version", "application_id"] {
        let value = integer(conn, &format!("SELECT {pragma} AS n FROM pragma_{pragma}"))?;
        conn.batch_execute(&format!("PRAGMA converted.{pragma} = {value};"))?;
    }
    Ok(())
}

/// Rewrites the file at `path`, opened with `current` (its key, or none), under
/// `new_key` (none: a plain file). Every table, idstore's and the app's, is copied
/// with its rows, indexes, triggers and `user_version`; the copy is checked table
/// by table against the original and opened with the new key before it replaces
/// the file. Other programs must have the file closed (refused otherwise).
pub(crate) fn convert(
    path: &Path,
    current: &Settings,
    new_key: Option<&Key>,
) -> Result<Converted, Error> {
    let settings = Settings {
        create: false,
        read_only: false,
        ..current.clone()
    };
    // The lock holder: exclusive use first (leaving WAL needs it), then a write lock
    // that keeps writers out until the new file is in place.
    let mut holder = Handle::open(path, &settings)?;
    let settings = holder.settings.clone();
    let lock = &mut holder.conn;
    let in_use = || -> Error {
        Repr::InUse {
            path: path.to_owned(),
            holders: "another connection".to_owned(),
        }
        .into()
    };
    match journal_mode(lock, "DELETE") {
        Ok(mode) if mode.eq_ignore_ascii_case("delete") => {}
        Ok(_) => return Err(in_use()),
        Err(e) if crate::error::is_locked(&e) => return Err(in_use()),
        Err(e) => return Err(failed(e)),
    }
    let result = (|| -> Result<Converted, Error> {
        lock.batch_execute("BEGIN IMMEDIATE").map_err(failed)?;
        let copy = copy_path(path);
        let done = export(path, &settings, &copy, new_key).and_then(|converted| {
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
        let _ = journal_mode(lock, "WAL");
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
    settings: &Settings,
    copy: &Path,
    new_key: Option<&Key>,
) -> Result<Converted, Error> {
    remove_copy(copy); // a leftover of a killed run
    create_private(copy).map_err(|error| Repr::ConvertWrite {
        path: copy.to_owned(),
        error,
    })?;
    let mut reader = Handle::open(path, settings)?;
    let conn = &mut reader.conn;
    conn.batch_execute("PRAGMA foreign_keys = OFF;")
        .map_err(failed)?;
    let copy_text = copy.to_str().ok_or_else(|| Repr::ConvertWrite {
        path: copy.to_owned(),
        error: std::io::Error::new(std::io::ErrorKind::InvalidInput, "path is not UTF-8"),
    })?;
    let target_keying = new_key.map(|key| crate::hooks::Keying {
        key: key.clone(),
        compatibility: None,
    });
    attach(conn, copy_text, target_keying.as_ref()).map_err(failed)?;
    let result = (|| -> Result<Converted, Error> {
        // Deferred: the lock holder keeps its write lock on the original.
        conn.batch_execute("BEGIN; SELECT sqlcipher_export('converted');")
            .map_err(failed)?;
        copy_header_values(conn).map_err(failed)?;
        let converted = compare(conn)?;
        conn.batch_execute("COMMIT;").map_err(failed)?;
        Ok(converted)
    })();
    if result.is_err() {
        let _ = conn.batch_execute("ROLLBACK;");
    }
    let _ = conn.batch_execute("DETACH DATABASE converted;");
    let mut converted = result?;
    converted.encrypted = new_key.is_some();
    // The new key must open the copy, and its structure must be sound.
    let mut reopened = Handle::open(
        copy,
        &Settings {
            create: false,
            read_only: true,
            keying: target_keying,
            ..Settings::default()
        },
    )?;
    let problems: Vec<String> =
        crate::sql::integrity_problems(&mut reopened.conn).map_err(failed)?;
    if !problems.is_empty() {
        return Err(Repr::Mismatch(problems.join("; ")).into());
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
fn compare(conn: &mut SqliteConnection) -> Result<Converted, Error> {
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
    )
    .map_err(failed)?;
    if schema_differs > 0 {
        return Err(Repr::Mismatch(format!("{schema_differs} schema entries differ")).into());
    }
    let tables = diesel::sql_query(
        "SELECT name FROM main.sqlite_master WHERE type = 'table' AND rootpage > 0 ORDER BY name",
    )
    .load::<Name>(conn)
    .map_err(failed)?;
    let mut rows = 0u64;
    for Name { name } in &tables {
        let t = format!("\"{}\"", name.replace('"', "\"\""));
        let count = |db: &str| format!("SELECT count(*) AS n FROM {db}.{t}");
        let (before, after) = (
            integer(conn, &count("main")).map_err(failed)?,
            integer(conn, &count("converted")).map_err(failed)?,
        );
        let differ = integer(
            conn,
            &format!(
                "SELECT count(*) AS n FROM (SELECT * FROM main.{t} EXCEPT SELECT * FROM converted.{t})"
            ),
        )
        .map_err(failed)?;
        if before != after || differ > 0 {
            return Err(Repr::Mismatch(format!(
                "table {name}: {before} rows before, {after} after, {differ} not copied"
            ))
            .into());
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
fn install(copy: &Path, path: &Path) -> Result<(), Error> {
    let write_err = |error| -> Error {
        Repr::ConvertWrite {
            path: copy.to_owned(),
            error,
        }
        .into()
    };
    std::fs::File::open(copy)
        .and_then(|f| f.sync_all())
        .map_err(write_err)?;
    std::fs::rename(copy, path).map_err(write_err)?;
    sync_folder(crate::error::folder_of(path)).map_err(|error| {
        Repr::NotDurable {
            path: path.to_owned(),
            error,
        }
        .into()
    })
}
