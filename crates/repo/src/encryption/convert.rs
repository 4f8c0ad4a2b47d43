//! Encrypting, re-keying and decrypting a file in place: every table is copied into a
//! new file beside it under the new key (SQLCipher's `sqlcipher_export`), checked
//! row for row against the original, made durable, and renamed over it. A crash at
//! any point leaves either the old file or the new one.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::{CipherFormat, ConvertOptions, Converted};
use crate::connection::{Handle, Settings};
use crate::error::{Error, ErrorKind, io_cause, io_kind};
use crate::fs::Protects;
use crate::fs::leftovers::conversion_copy_name;

/// SQLite's error in a conversion, as the crate's error.
fn failed(source: diesel::result::Error) -> Error {
    Error::new(
        crate::error::classify(&source),
        "the conversion failed; nothing was changed",
    )
    .caused_by(source)
}

/// Attaches `target` as `converted` under `keying` (none: plain). The key is bound,
/// never written into the SQL.
fn attach(
    conn: &mut SqliteConnection,
    target: &str,
    keying: Option<&crate::connection::ffi::Keying>,
) -> QueryResult<()> {
    let key_text = keying.map_or("", |k| k.key.as_text());
    diesel::sql_query("ATTACH DATABASE ? AS converted KEY ?")
        .bind::<Text, _>(target)
        .bind::<Text, _>(key_text)
        .execute(conn)?;
    if let Some(3) = keying.and_then(|k| k.compatibility) {
        conn.batch_execute("PRAGMA converted.cipher_compatibility = 3;")?;
    }
    Ok(())
}

/// `user_version` and `application_id`, which `sqlcipher_export` leaves behind.
fn copy_header_values(conn: &mut SqliteConnection) -> QueryResult<()> {
    for pragma in ["user_version", "application_id"] {
        let value = integer(conn, &format!("SELECT {pragma} AS n FROM pragma_{pragma}"))?;
        conn.batch_execute(&format!("PRAGMA converted.{pragma} = {value};"))?;
    }
    Ok(())
}

/// Rewrites the file at `path`, opened with `current` (its key, or none), as
/// `options` say. Every table, idstore's and the app's, is copied with its rows,
/// indexes, triggers and header values; the copy is checked table by table against
/// the original, given the original's owner, group and mode, and opened with the new
/// key before it replaces the file. `path` is resolved first (a symlink: the file it
/// names is converted, the link stays). Other programs must have the file closed
/// (refused otherwise, naming them where the system tells).
pub(crate) fn convert(
    path: &Path,
    current: &Settings,
    options: &ConvertOptions,
) -> Result<Converted, Error> {
    let settings = Settings {
        create: false,
        read_only: false,
        ..current.clone()
    };
    // The lock holder: exclusive use first (leaving WAL needs it), then a write lock
    // that keeps writers out until the new file is in place. (Its open refuses
    // read-only storage, another user's file and planted side files as such.)
    let mut holder = Handle::open(path, &settings)?;
    let file = &holder.file;
    let entry = file.entry.expect("an opened file exists");
    let path = file.path.clone();
    let mut holders = crate::fs::holders::other_holders(&entry);
    if crate::fs::holders::open_here(&entry) > 1 {
        holders.push("another connection of this process".to_owned());
    }
    if !holders.is_empty() {
        return Err(in_use(&path, &holders.join(", ")));
    }
    // Before anything of the file is touched: the new file must get its owner back.
    if !crate::fs::may_give_to(entry.owner) {
        return Err(keep_owner(
            &path,
            &std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        ));
    }
    let settings = holder.settings.clone();
    let in_use = || -> Error {
        in_use(
            &path,
            "another connection (a program not seen by this check)",
        )
    };
    let lock = &mut holder.conn;
    let mode_before = diesel::sql_query("PRAGMA journal_mode")
        .get_result::<Mode>(lock)
        .map(|m| m.journal_mode)
        .map_err(failed)?;
    let wal = mode_before.eq_ignore_ascii_case("wal");
    match journal_mode(lock, "DELETE") {
        Ok(mode) if mode.eq_ignore_ascii_case("delete") => {}
        Ok(_) => return Err(in_use()),
        Err(e) if crate::error::is_locked(&e) => return Err(in_use()),
        Err(e) => return Err(failed(e)),
    }
    let file = &holder.file;
    let lock = &mut holder.conn;
    let result = (|| -> Result<Converted, Error> {
        lock.batch_execute("BEGIN IMMEDIATE").map_err(failed)?;
        let previous_format = settings.keying.as_ref().and_then(|k| k.compatibility);
        let target = options
            .new_key
            .as_ref()
            .map(|key| crate::connection::ffi::Keying {
                key: key.clone(),
                compatibility: Some(
                    options
                        .sqlcipher_compatibility
                        .map(CipherFormat::version)
                        .or(previous_format)
                        .unwrap_or(4),
                ),
            });
        let copy_name = conversion_copy_name(&file.name);
        let done = export(file, &settings, &copy_name, target.as_ref(), wal).and_then(
            |(mut converted, copy)| {
                converted.previous_format = previous_format.and_then(CipherFormat::from_version);
                converted.cipher_format = target
                    .as_ref()
                    .and_then(|k| k.compatibility)
                    .and_then(CipherFormat::from_version);
                if let Some(dest) = &options.backup_to {
                    // The same rows under the new key, or the file as it is (under its key).
                    let (source, encrypted) = match &target {
                        Some(_) => (copy_name.as_os_str(), true),
                        None => (file.name.as_os_str(), settings.keying.is_some()),
                    };
                    copy_backup(file, source, dest)?;
                    converted.backup = Some(dest.clone());
                    converted.backup_encrypted = encrypted;
                }
                if let Err(e) = install(file, copy, &copy_name) {
                    if let Some(dest) = &converted.backup {
                        remove_backup(dest);
                    }
                    return Err(e);
                }
                Ok(converted)
            },
        );
        if done.is_err() {
            remove_copy(file, &copy_name);
        }
        let _ = lock.batch_execute("ROLLBACK");
        done
    })();
    if result.is_err() {
        // Back to how the file was; the error that matters is the first one.
        if wal {
            let _ = journal_mode(lock, "WAL");
        }
        return result;
    }
    let mut converted = result?;
    let copies = crate::fs::leftovers::plaintext_copies(&holder.file);
    drop(holder);
    let db = crate::fs::DbFile::locate(&path)?;
    for copy in copies {
        if let Some(why) = &copy.untrusted {
            converted
                .not_removed
                .push((copy.path.clone(), format!("not idstore's to touch: {why}")));
            continue;
        }
        if !(options.remove_plaintext_copies && converted.encrypted) {
            converted.plaintext_copies.push(copy.path);
            continue;
        }
        match crate::fs::leftovers::wipe(&db.folder, &copy.name, db.owner()) {
            Ok(()) => converted.removed_copies.push(copy.path),
            Err(crate::fs::leftovers::WipeError::Untrusted(why)) => converted
                .not_removed
                .push((copy.path, format!("not idstore's to touch: {why}"))),
            Err(crate::fs::leftovers::WipeError::Io(error)) => {
                return Err(Error::at(
                    io_kind(&error),
                    &copy.path,
                    format!(
                        "the file was converted, but the plaintext copy {} could not be removed ({}); remove it by hand",
                        copy.path.display(),
                        io_cause(&error)
                    ),
                ));
            }
        }
    }
    if !converted.removed_copies.is_empty() {
        db.folder
            .sync(Protects::Removal)
            .map_err(|e| Error::io(&path, e))?;
    }
    Ok(converted)
}

/// Copies the (locked, journal-less) file `source` beside the database to the new
/// file `dest`, owner-only (the database owner's), and makes it durable; nothing is
/// left of a failed copy.
fn copy_backup(
    file: &crate::fs::DbFile,
    source: &std::ffi::OsStr,
    dest: &Path,
) -> Result<(), Error> {
    let write_err = |error: std::io::Error| -> Error {
        let kind = match io_kind(&error) {
            ErrorKind::DiskFull => ErrorKind::DiskFull,
            ErrorKind::Exists => ErrorKind::Exists,
            _ => ErrorKind::BackupFailed,
        };
        Error::at(
            kind,
            dest,
            format!(
                "could not write the backup {} ({}); it was removed and the database was not changed",
                dest.display(),
                io_cause(&error)
            ),
        )
    };
    let (mut from, _) = file.folder.open_read(source).map_err(write_err)?;
    crate::fs::write_new(
        dest,
        Some(file.owner()),
        Protects::BackupContent,
        Protects::BackupName,
        |to| to.copy_from(&mut from).map(drop),
    )
    .map_err(write_err)
}

/// Removes a backup this conversion wrote, when the conversion failed after it.
fn remove_backup(dest: &Path) {
    if let (Ok(folder), Some(name)) = (
        crate::fs::Folder::open(crate::fs::folder_of(dest)),
        dest.file_name(),
    ) {
        let _ = folder.remove(name);
        let _ = folder.sync(Protects::Removal);
    }
}

/// The journal mode SQLite reports.
#[derive(QueryableByName)]
struct Mode {
    #[diesel(sql_type = Text)]
    journal_mode: String,
}

/// Sets the journal mode; returns the mode SQLite reports afterwards.
fn journal_mode(conn: &mut SqliteConnection, mode: &str) -> QueryResult<String> {
    diesel::sql_query(format!("PRAGMA journal_mode = {mode}"))
        .get_result::<Mode>(conn)
        .map(|m| m.journal_mode)
}

/// Removes the copy and what SQLite may have kept beside it, idstore's own zeroed
/// first (it may hold the data unencrypted), anything planted unlinked unwritten.
fn remove_copy(file: &crate::fs::DbFile, copy_name: &std::ffi::OsStr) {
    for suffix in ["-journal", "-wal", "-shm", ""] {
        let name = crate::fs::suffixed(copy_name, suffix);
        let Ok(Some(entry)) = file.folder.inspect(&name) else {
            continue;
        };
        let leftover = crate::fs::leftovers::Leftover {
            path: file.folder.join(&name),
            untrusted: entry.untrusted_because(file.owner()),
            name,
        };
        let _ = crate::fs::leftovers::remove_leftover(file, &leftover);
    }
}

/// Copies every table into the new file `copy_name` beside the database under
/// `new_key` and checks it against the original, on a connection of its own (the
/// lock holder's write lock does not stop its reads). Returns what was copied and
/// the copy, open.
fn export(
    file: &crate::fs::DbFile,
    settings: &Settings,
    copy_name: &std::ffi::OsStr,
    target_keying: Option<&crate::connection::ffi::Keying>,
    wal: bool,
) -> Result<(Converted, crate::fs::SeamFile), Error> {
    remove_copy(file, copy_name); // a killed run's
    let copy_path = file.folder.join(copy_name);
    for name in [
        copy_name.to_owned(),
        crate::fs::suffixed(copy_name, "-journal"),
    ] {
        if let Ok(Some(entry)) = file.folder.inspect(&name)
            && let Some(why) = entry.untrusted_because(file.owner())
        {
            // Another user's file where the copy goes: not idstore's to remove.
            return Err(Error::at(
                ErrorKind::UntrustedFile,
                &file.path,
                format!(
                    "{} is where the conversion writes its copy, but it is not idstore's ({why}); nothing was changed: its owner can remove it, then retry",
                    file.folder.join(&name).display()
                ),
            ));
        }
    }
    let entry = file.entry.expect("an opened file exists");
    let copy = file
        .folder
        .create_new(copy_name, Some(entry.owner))
        .map_err(|error| convert_write(&copy_path, error))?;
    copy.take_owner_and_mode(&entry)
        .map_err(|error| keep_owner(&file.path, &error))?;
    let mut reader = Handle::open(&file.path, settings)?;
    let conn = &mut reader.conn;
    conn.batch_execute("PRAGMA foreign_keys = OFF;")
        .map_err(failed)?;
    let copy_text = copy_path.to_str().ok_or_else(|| {
        convert_write(
            &copy_path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "path is not UTF-8"),
        )
    })?;
    attach(conn, copy_text, target_keying).map_err(failed)?;
    let result = (|| -> Result<Converted, Error> {
        // The header values that must be set before the first table is created.
        let page_size_before =
            integer(conn, "SELECT page_size AS n FROM pragma_page_size").map_err(failed)?;
        copy_layout(conn, target_keying.is_some(), page_size_before).map_err(failed)?;
        // Deferred: the lock holder keeps its write lock on the original.
        conn.batch_execute("BEGIN; SELECT sqlcipher_export('converted');")
            .map_err(failed)?;
        copy_header_values(conn).map_err(failed)?;
        let mut converted = compare(conn)?;
        conn.batch_execute("COMMIT;").map_err(failed)?;
        if wal {
            // The file's journal mode, kept: the copy's header says WAL too.
            conn.batch_execute("PRAGMA converted.journal_mode = WAL;")
                .map_err(failed)?;
        }
        // (`converted.pragma_page_size` would read main's.)
        let page_size_after = integer(
            conn,
            "SELECT page_size AS n FROM pragma_page_size WHERE schema = 'converted'",
        )
        .map_err(failed)?;
        if page_size_after != page_size_before {
            converted.page_size_changed = Some((
                u32::try_from(page_size_before).unwrap_or(0),
                u32::try_from(page_size_after).unwrap_or(0),
            ));
        }
        Ok(converted)
    })();
    if result.is_err() {
        let _ = conn.batch_execute("ROLLBACK;");
    }
    let _ = conn.batch_execute("DETACH DATABASE converted;");
    drop(reader);
    let mut converted = result?;
    // SQLite opened the copy by name: it must be the file created above.
    match file.folder.inspect(copy_name) {
        Ok(Some(now)) if copy.entry().is_ok_and(|e| e.same_file(&now)) => {}
        _ => {
            return Err(convert_write(
                &copy_path,
                std::io::Error::other("the copy was replaced by another file while it was written"),
            ));
        }
    }
    converted.encrypted = target_keying.is_some();
    // The new key must open the copy, and its structure must be sound.
    let mut reopened = Handle::open(
        &copy_path,
        &Settings {
            create: false,
            read_only: true,
            keying: target_keying.cloned(),
            ..Settings::default()
        },
    )?;
    let problems: Vec<String> =
        crate::sql::integrity_problems(&mut reopened.conn).map_err(failed)?;
    if !problems.is_empty() {
        return Err(mismatch(&problems.join("; ")));
    }
    Ok((converted, copy))
}

/// The attached copy's page layout, set before its first table: `auto_vacuum` as
/// the original has it, and for a plain copy its page size (an encrypted copy has
/// SQLCipher's, which its key alone must open: the change is reported).
fn copy_layout(conn: &mut SqliteConnection, encrypted: bool, page_size: i64) -> QueryResult<()> {
    let auto_vacuum = integer(conn, "SELECT auto_vacuum AS n FROM pragma_auto_vacuum")?;
    conn.batch_execute(&format!("PRAGMA converted.auto_vacuum = {auto_vacuum};"))?;
    if !encrypted {
        conn.batch_execute(&format!("PRAGMA converted.page_size = {page_size};"))?;
    }
    Ok(())
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
        return Err(mismatch(&format!("{schema_differs} schema entries differ")));
    }
    let tables = diesel::sql_query(
        "SELECT name FROM main.sqlite_master WHERE type = 'table' AND rootpage > 0 ORDER BY name",
    )
    .load::<Name>(conn)
    .map_err(failed)?;
    let mut rows = 0u64;
    for Name { name } in &tables {
        let t = crate::sql::quote_ident(name);
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
            return Err(mismatch(&format!(
                "table {name}: {before} rows before, {after} after, {differ} not copied"
            )));
        }
        rows += u64::try_from(before).unwrap_or(0);
    }
    Ok(Converted {
        tables: tables.len(),
        rows,
        encrypted: false,
        cipher_format: None,
        previous_format: None,
        backup: None,
        backup_encrypted: false,
        removed_copies: Vec::new(),
        plaintext_copies: Vec::new(),
        not_removed: Vec::new(),
        page_size_changed: None,
    })
}

/// Makes the copy durable, renames it over the file, and makes the rename durable.
fn install(
    file: &crate::fs::DbFile,
    copy: crate::fs::SeamFile,
    copy_name: &std::ffi::OsStr,
) -> Result<(), Error> {
    let copy_path = file.folder.join(copy_name);
    copy.sync(Protects::ConvertedContent)
        .map_err(|error| convert_write(&copy_path, error))?;
    drop(copy);
    file.folder
        .rename(copy_name, &file.name)
        .map_err(|error| convert_write(&copy_path, error))?;
    file.folder.sync(Protects::ConvertedRename).map_err(|error| {
        Error::at(
            io_kind(&error),
            &file.path,
            format!(
                "{} was converted, but its folder could not be synced ({}), so the change may not survive a power loss (the old file would come back whole); check the disk",
                file.path.display(),
                io_cause(&error)
            ),
        )
    })
}

/// The refusal of a conversion while another program has the file open.
fn in_use(path: &Path, holders: &str) -> Error {
    Error::at(
        ErrorKind::InUse,
        path,
        format!(
            "{} is open in another program ({holders}); close it and try again; nothing was changed",
            path.display()
        ),
    )
}

/// A conversion's copy (or probe) at `path` that could not be written.
fn convert_write(path: &Path, error: std::io::Error) -> Error {
    Error::at(
        io_kind(&error),
        path,
        format!(
            "could not write the converted copy {}: {}; nothing was changed",
            path.display(),
            io_cause(&error)
        ),
    )
}

/// The refusal of a conversion that could not give the new file the owner of `path`.
fn keep_owner(path: &Path, error: &std::io::Error) -> Error {
    Error::at(
        ErrorKind::CannotKeepOwner,
        path,
        format!(
            "could not give the converted copy the owner and mode of {} ({}): the program that owns the file could not open it any more; run this as the file's owner or as root; nothing was changed",
            path.display(),
            io_cause(error)
        ),
    )
}

/// A converted copy that differs from the original.
fn mismatch(what: &str) -> Error {
    Error::new(
        ErrorKind::ValidationFailed,
        format!(
            "the converted copy differs from the original ({what}); it was removed and nothing was changed"
        ),
    )
}
