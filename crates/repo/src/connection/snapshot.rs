//! A consistent copy of a database other programs may be writing, for a scratch
//! copy to work on ([`crate::OpenOptions::snapshot`]): nothing is written at or
//! beside the file, and nothing is synced.
//!
//! - Most files are copied byte for byte under SQLite's SHARED lock, taken as a
//!   reader takes it ([`crate::connection::ffi::with_shared_lock`]): no writer can change the
//!   file meanwhile, nor recover its journal. An interrupted write's journal (hot:
//!   no writer holds RESERVED) is copied with it, and so is a write-ahead log no
//!   program has open (no `-shm`), so the copy's first open recovers them as the
//!   device would.
//! - A write-ahead log in use (`-wal` and `-shm` beside the file) can change under
//!   that lock (a checkpoint writes the file): the copy is then SQLite's backup API
//!   from a read-only connection, in one read transaction.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::Path;

use diesel::connection::SimpleConnection;

use crate::connection::{Settings, Synchronous, establish, establish_detecting};
use crate::error::{Error, ErrorKind};
use crate::fs::{DbFile, EntryKind, Folder, folder_of, suffixed};

/// Copies the database at `path` into the new file `dest` (see the module's
/// description), with `settings`' key and busy timeout.
pub(crate) fn snapshot(path: &Path, settings: &Settings, dest: &Path) -> Result<(), Error> {
    let file = locate(path)?;
    let has = |suffix: &str| file.has(&file.side_name(suffix));
    let copied = if has("-wal") && has("-shm") {
        by_backup(&file, settings, dest)
    } else {
        let with_log = has("-wal");
        by_bytes(&file, settings, dest, with_log).and_then(|()| {
            if with_log && has("-shm") {
                // A program opened the log while it was copied: it may have
                // checkpointed into the file. Read it as SQLite does instead.
                remove_copy(dest);
                by_backup(&file, settings, dest)
            } else {
                Ok(())
            }
        })
    };
    if copied.is_err() {
        remove_copy(dest);
    }
    copied
}

/// The file at `path`, taken as given (no link followed at its name), a regular
/// file whose side files are SQLite's own.
fn locate(path: &Path) -> Result<DbFile, Error> {
    let name = path.file_name().ok_or_else(|| {
        Error::at(
            ErrorKind::IsDirectory,
            path,
            format!("{} names no file; nothing was copied", path.display()),
        )
    })?;
    let folder = Folder::open(folder_of(path)).map_err(|e| Error::io(path, e))?;
    let entry = folder.inspect(name).map_err(|e| Error::io(path, e))?;
    let refuse = |kind: ErrorKind, what: &str| {
        Err(Error::at(
            kind,
            path,
            format!(
                "{} is {what}, not a database file; nothing opened it or copied it",
                path.display()
            ),
        ))
    };
    match entry.map(|e| e.kind) {
        None => refuse(ErrorKind::NotFound, "gone")?,
        Some(EntryKind::Regular) => {}
        Some(EntryKind::Directory) => refuse(ErrorKind::IsDirectory, "a directory")?,
        Some(other) => refuse(ErrorKind::NotAFile, other.described())?,
    }
    let file = DbFile {
        path: path.to_owned(),
        folder,
        name: name.to_owned(),
        entry,
    };
    file.check_side_files()?;
    Ok(file)
}

/// The copy byte for byte under the SHARED lock, with a hot journal, and with the
/// write-ahead log when `with_log`.
fn by_bytes(file: &DbFile, settings: &Settings, dest: &Path, with_log: bool) -> Result<(), Error> {
    let path = &file.path;
    let mut failed_at = path.to_owned();
    let done = crate::connection::ffi::with_shared_lock(file, settings.busy_timeout, |locked| {
        let size = locked.size()?;
        let mut out = create_new(dest)?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut at = 0u64;
        while at < size {
            let n = usize::try_from(size - at).map_or(buf.len(), |left| left.min(buf.len()));
            failed_at = path.to_owned();
            locked.read_at(&mut buf[..n], at)?;
            failed_at = dest.to_owned();
            out.write_all(&buf[..n])?;
            at += n as u64;
        }
        let journal = file.side_name("-journal");
        if journal_is_hot(&file.folder, &journal)? && !locked.reserved_held()? {
            failed_at = file.side_path("-journal");
            copy_side(
                &file.folder,
                &journal,
                &suffixed(dest.as_os_str(), "-journal"),
            )?;
        }
        if with_log {
            failed_at = file.side_path("-wal");
            copy_side(
                &file.folder,
                &file.side_name("-wal"),
                &suffixed(dest.as_os_str(), "-wal"),
            )?;
        }
        Ok(())
    });
    done.map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock => Error::at(
            ErrorKind::Locked,
            path,
            format!(
                "{} stayed locked by a writer for longer than the busy timeout ({} ms); nothing was copied: retry when it is idle",
                path.display(),
                settings.busy_timeout.as_millis()
            ),
        ),
        _ if failed_at == *path => file.error(e),
        _ => Error::io(&failed_at, e),
    })
}

/// Whether the journal `name` holds an interrupted write, as SQLite tells: there,
/// not empty, its header not zeroed (whether a writer holds RESERVED is asked
/// apart).
fn journal_is_hot(folder: &Folder, name: &OsStr) -> std::io::Result<bool> {
    let mut first = [0u8; 1];
    match folder.open_read(name) {
        Ok((mut f, entry)) => {
            Ok(entry.kind == EntryKind::Regular && f.read(&mut first)? == 1 && first[0] != 0)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Copies the side file `name` (as long as it was when opened) to the new file `to`.
fn copy_side(folder: &Folder, name: &OsStr, to: &OsStr) -> std::io::Result<()> {
    let (from, entry) = folder.open_read(name)?;
    if entry.kind != EntryKind::Regular {
        return Err(std::io::Error::other(format!(
            "{} is {}",
            folder.join(name).display(),
            entry.kind.described()
        )));
    }
    let mut out = create_new(Path::new(to))?;
    std::io::copy(&mut from.take(entry.len), &mut out)?;
    Ok(())
}

/// The copy through SQLite's backup API from a read-only connection, in one read
/// transaction (a write-ahead log's snapshot).
fn by_backup(file: &DbFile, settings: &Settings, dest: &Path) -> Result<(), Error> {
    let mut reading = Settings {
        create: false,
        read_only: true,
        synchronous: Synchronous::Off,
        journal_mode: None,
        ..settings.clone()
    };
    let (mut from, from_raw) = establish_detecting(file, &mut reading, false)?;
    from.batch_execute("BEGIN; SELECT count(*) FROM sqlite_master;")
        .map_err(|e| Error::from(e).in_file(&file.path))?;
    create_new(dest).map_err(|e| Error::io(dest, e))?;
    let writing = Settings {
        read_only: false,
        scratch: true,
        ..reading
    };
    let (mut to, to_raw) = establish(dest, None, &writing, false)?;
    // No journal file beside the copy; MEMORY, since OFF is a no-op under the
    // defensive mode every connection runs with.
    to.batch_execute("PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF;")
        .map_err(|e| Error::from(e).in_file(dest))?;
    let copied = crate::connection::ffi::backup(from_raw, to_raw).map_err(|(_, message)| {
        Error::at(
            ErrorKind::BackupFailed,
            dest,
            format!(
                "could not copy {} to {} ({message}); nothing was written beside it",
                file.path.display(),
                dest.display()
            ),
        )
    });
    let _ = from.batch_execute("COMMIT;");
    copied
}

/// Creates `path`, which must not exist (a link there counts), owner-only.
fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

/// Removes a copy this module made (and what it made beside it).
fn remove_copy(dest: &Path) {
    for suffix in ["", "-journal", "-wal"] {
        let _ = std::fs::remove_file(suffixed(dest.as_os_str(), suffix));
    }
}
