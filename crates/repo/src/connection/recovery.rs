//! How a file is opened given what lies beside it and who is asking.
//!
//! - An interrupted write (a hot rollback journal) is recovered only where the file
//!   can be written by its owner: the file and its journal are first kept aside
//!   (owner-only copies, named in the output), then SQLite rolls the journal back,
//!   then the result is checked (`quick_check`, and `integrity_check` of
//!   `accounts`, its index included). A journal that was not the file's own fails
//!   that check: everything is put back as it was and the open is refused
//!   (`damaged`), naming the copies. Where it cannot be recovered, the open is
//!   refused (`needs_recovery`), saying why.
//! - Frames in a write-ahead log that no other program is using are checked the
//!   same way, on a read-only connection, before a connection that could
//!   checkpoint them into the file opens it.
//! - A read-only open creates nothing beside a file the caller may not write (the
//!   folder is not writable, the filesystem is read-only, or the file is another
//!   user's): it reads through an existing log and its index, or with SQLite's
//!   `immutable` when there is no log to read; frames it could only read by
//!   creating an index are refused, saying why.

use std::path::{Path, PathBuf};

use diesel::prelude::*;

use super::precheck::{has_side, hot_journal, wal_has_frames};
use super::{Settings, configure, establish_detecting};
use crate::error::{Error, ErrorKind};
use crate::fs::storage::storage_is_read_only;
use crate::fs::{DbFile, Protects, suffixed};

/// How to open the file, and what preparing it did.
pub(super) struct Plan {
    /// Open with SQLite's `immutable` (nothing to read from a log, and nothing may
    /// be created beside the file).
    pub immutable: bool,
    /// Copies kept aside before a recovery.
    pub kept_aside: Vec<PathBuf>,
}

/// Why an interrupted write cannot be recovered here.
enum Blocked {
    ReadOnlyStorage,
    NotOwner(u32),
    Unwritable,
}

/// Prepares the open of `file` as `settings` say (see the module's description).
pub(super) fn prepare(file: &DbFile, settings: &mut Settings) -> Result<Plan, Error> {
    file.check_side_files()?;
    let blocked = if storage_is_read_only(file.folder.path()) {
        Some(Blocked::ReadOnlyStorage)
    } else if !file.mine() {
        Some(Blocked::NotOwner(file.owner().uid))
    } else if !file.folder.writable() || file.entry.is_some_and(|e| e.mode & 0o222 == 0) {
        Some(Blocked::Unwritable)
    } else {
        None
    };
    let mut kept_aside = Vec::new();
    if let Some(journal) = hot_journal(file) {
        if let Some(why) = &blocked {
            return Err(needs_recovery(&file.path, &journal, why));
        }
        kept_aside = recover_checked(file, settings, &journal)?;
    }
    let frames = wal_has_frames(file);
    if frames && blocked.is_none() && unused_by_others(file) {
        check_frames(file, settings)?;
    }
    if !settings.read_only || blocked.is_none() {
        return Ok(Plan {
            immutable: false,
            kept_aside,
        });
    }
    // Read-only, and nothing may be created beside the file.
    if frames {
        if has_side(file, "-shm") {
            // SQLite reads the log through the index it finds.
            return Ok(Plan {
                immutable: false,
                kept_aside,
            });
        }
        let why = blocked.as_ref().expect("checked above");
        return Err(needs_recovery(&file.path, &file.side_path("-wal"), why));
    }
    Ok(Plan {
        immutable: !has_side(file, "-wal") || !has_side(file, "-shm"),
        kept_aside,
    })
}

/// Whether no other program has the file open (as far as the system tells: other
/// users' programs are seen by root only): its log is then nobody's live log.
fn unused_by_others(file: &DbFile) -> bool {
    file.entry
        .is_none_or(|e| crate::fs::holders::other_holders(&e).is_empty())
}

/// Keeps the file and its journal aside, rolls the journal back, and checks the
/// result; puts everything back and refuses when the check fails. Returns the
/// copies kept.
fn recover_checked(
    file: &DbFile,
    settings: &Settings,
    journal: &Path,
) -> Result<Vec<PathBuf>, Error> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%3fZ");
    let kept_name = suffixed(&file.name, &format!(".before-recovery-{stamp}.sqlite"));
    let journal_name = file.side_name("-journal");
    let kept_journal = suffixed(&kept_name, "-journal");
    copy_aside(file, &file.name, &kept_name)?;
    if let Err(e) = copy_aside(file, &journal_name, &kept_journal) {
        let _ = file.folder.remove(&kept_name);
        return Err(e);
    }
    file.folder
        .sync(Protects::KeptAsideName)
        .map_err(|e| Error::io(&file.path, e))?;
    let kept = vec![
        file.folder.join(&kept_name),
        file.folder.join(&kept_journal),
    ];

    // The recovery itself: a read-write connection's first read rolls it back.
    let writable = Settings {
        read_only: false,
        ..settings.clone()
    };
    let problems = (|| -> Result<Vec<String>, Error> {
        let (mut conn, raw) = establish_detecting(file, &mut writable.clone(), false)?;
        configure(&mut conn, raw, &file.path, &writable)?;
        Ok(sound(&mut conn)?)
    })();
    match problems {
        Ok(problems) if problems.is_empty() => {
            tracing::warn!(
                path = %file.path.display(),
                kept = %kept[0].display(),
                "rolled back an interrupted write (hot journal); the file and journal as they were are kept aside"
            );
            Ok(kept)
        }
        outcome => {
            put_back(file, &kept_name, &journal_name, &kept_journal)?;
            let why = match outcome {
                Ok(problems) => problems.join("; "),
                Err(e) => e.to_string(),
            };
            Err(Error::at(
                ErrorKind::Damaged,
                &file.path,
                format!(
                    "{} holds an interrupted write whose journal ({}) does not recover it into a sound file ({}): the journal may belong to another file; the file and its journal were put back as they were, and copies of both are kept at {} and {}; restore the file from a backup, or ask for help with those copies",
                    file.path.display(),
                    journal.display(),
                    idstore_domain::display::Shown(&why),
                    kept[0].display(),
                    kept[1].display()
                ),
            ))
        }
    }
}

/// Copies `from` in the file's folder to the new owner-only name `to` (the file's
/// owner's), synced.
fn copy_aside(file: &DbFile, from: &std::ffi::OsStr, to: &std::ffi::OsStr) -> Result<(), Error> {
    let path = file.folder.join(to);
    let copied = (|| {
        let (mut source, _) = file.folder.open_read(from)?;
        let mut dest = file.folder.create_new(to, Some(file.owner()))?;
        dest.copy_from(&mut source)?;
        dest.sync(Protects::KeptAsideContent)
    })();
    copied.map_err(|e| {
        if file.has(to) {
            let _ = file.folder.remove(to);
        }
        Error::at(
            crate::error::io_kind(&e),
            &file.path,
            format!(
                "{} holds an interrupted write, and a copy of it could not be kept at {} before recovering it ({}); nothing was changed: free some space there, or copy the file and its journal elsewhere and open the copy",
                file.path.display(),
                path.display(),
                crate::error::io_cause(&e)
            ),
        )
    })
}

/// Puts the file and its journal back from the copies kept aside.
fn put_back(
    file: &DbFile,
    kept_name: &std::ffi::OsStr,
    journal_name: &std::ffi::OsStr,
    kept_journal: &std::ffi::OsStr,
) -> Result<(), Error> {
    let back = (|| -> std::io::Result<()> {
        let (mut kept, _) = file.folder.open_read(kept_name)?;
        let mut original = file
            .folder
            .open_own(&file.name, file.owner())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        original.truncate(0)?;
        original.copy_from(&mut kept)?;
        original.sync(Protects::PutBack)?;
        if file.has(journal_name) {
            file.folder.remove(journal_name)?;
        }
        let (mut kept_j, _) = file.folder.open_read(kept_journal)?;
        let mut journal = file.folder.create_new(journal_name, Some(file.owner()))?;
        journal.copy_from(&mut kept_j)?;
        journal.sync(Protects::PutBack)?;
        file.folder.sync(Protects::PutBack)
    })();
    back.map_err(|e| {
        Error::at(
            crate::error::io_kind(&e),
            &file.path,
            format!(
                "{} failed its check after an interrupted write was recovered, and could not be put back as it was ({e}); the file and its journal as they were are kept at {} and {}: copy them back by hand",
                file.path.display(),
                file.folder.join(kept_name).display(),
                file.folder.join(kept_journal).display()
            ),
        )
    })
}

/// Checks frames in the file's write-ahead log before anything could checkpoint
/// them into it, on a read-only connection (which never does).
fn check_frames(file: &DbFile, settings: &Settings) -> Result<(), Error> {
    let reading = Settings {
        read_only: true,
        ..settings.clone()
    };
    let checked = (|| -> Result<Vec<String>, Error> {
        let (mut conn, raw) = establish_detecting(file, &mut reading.clone(), false)?;
        configure(&mut conn, raw, &file.path, &reading)?;
        Ok(sound(&mut conn)?)
    })();
    let problems = match checked {
        Ok(problems) if problems.is_empty() => return Ok(()),
        Ok(problems) => problems,
        // A key that does not fit, a lock, a full disk: said as what they are.
        Err(e)
            if !matches!(
                e.kind(),
                ErrorKind::Database | ErrorKind::CannotOpen | ErrorKind::Damaged
            ) =>
        {
            return Err(e);
        }
        // The schema itself does not read through the log.
        Err(e) => {
            vec![std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string())]
        }
    };
    Err(Error::at(
        ErrorKind::Damaged,
        &file.path,
        format!(
            "{} has frames in its write-ahead log ({}) that do not read as a sound file ({}): the log may belong to another file; nothing was written (the file and its log are as they were): move the log aside and retry, or restore the file from a backup",
            file.path.display(),
            file.side_path("-wal").display(),
            idstore_domain::display::Shown(&problems.join("; "))
        ),
    ))
}

/// What is wrong with the file as this connection reads it: `quick_check`, and
/// `integrity_check` of `accounts` (every index entry against its row).
fn sound(conn: &mut SqliteConnection) -> QueryResult<Vec<String>> {
    let mut problems = crate::sql::quick_check_problems(conn)?;
    if crate::sql::table_exists(conn, "accounts")? {
        problems.extend(crate::sql::table_integrity_problems(conn, "accounts")?);
    }
    Ok(problems)
}

/// The refusal to open a file whose interrupted write (`journal` beside it) cannot
/// be recovered here, and why.
fn needs_recovery(path: &Path, journal: &Path, why: &Blocked) -> Error {
    let (cause, fix) = match why {
        Blocked::ReadOnlyStorage => (
            "the storage is read-only".to_owned(),
            "copy both files to writable storage and open the copy there (any idstore command recovers it), or open it where it is once the storage is writable",
        ),
        Blocked::NotOwner(uid) => (
            format!(
                "the file belongs to another user (uid {uid}), whose files a recovery would write"
            ),
            "run the command as the file's owner, or copy both files and open the copy",
        ),
        Blocked::Unwritable => (
            "the file or its folder cannot be written".to_owned(),
            "make them writable, or copy both files to writable storage and open the copy there",
        ),
    };
    Error::at(
        ErrorKind::NeedsRecovery,
        path,
        format!(
            "{} holds an interrupted write ({} beside it) that SQLite must recover before the file can be read, and it cannot here: {cause}; nothing was written: {fix}",
            path.display(),
            journal.display()
        ),
    )
}
