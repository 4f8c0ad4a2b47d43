//! What an interrupted conversion left beside a database (its copy, which may hold
//! the data unencrypted, and that copy's journal), and plaintext copies of an
//! encrypted database (its backups): found by name without following anything,
//! idstore's own wiped, a name someone planted unlinked unwritten.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::PathBuf;

use super::{DbFile, EntryKind, Folder, Owner, Protects, Untrusted, suffixed};

/// The hidden name of the copy a conversion writes beside the database `name`: one
/// name per file, naming no key (so a copy a killed run left behind is found).
pub(crate) fn conversion_copy_name(name: &OsStr) -> OsString {
    let mut copy = OsString::from(".");
    copy.push(name);
    copy.push(".idstore-convert");
    copy
}

/// A name an interrupted conversion may have left beside the database: its copy,
/// or the journal SQLite kept for the copy.
#[derive(Debug, Clone)]
pub(crate) struct Leftover {
    /// Its path.
    pub path: PathBuf,
    /// Its name in the folder.
    pub name: OsString,
    /// Why it is not a file idstore made (a link, a FIFO, another user's), if so.
    pub untrusted: Option<String>,
}

/// What an interrupted conversion left beside `db`, when anything: it may hold the
/// data unencrypted. Each name is looked at without following it.
pub(crate) fn leftovers(db: &DbFile) -> Vec<Leftover> {
    let copy = conversion_copy_name(&db.name);
    [suffixed(&copy, "-journal"), copy]
        .into_iter()
        .filter_map(|name| {
            let entry = db.folder.inspect(&name).ok()??;
            Some(Leftover {
                path: db.folder.join(&name),
                untrusted: entry.untrusted_because(db.owner()),
                name,
            })
        })
        .collect()
}

/// What removing a leftover did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Removed {
    /// Zeroed, synced and unlinked: it was idstore's own copy.
    Wiped,
    /// Unlinked without a byte written to it: it was not idstore's (a link, a FIFO,
    /// a file with other links), so what it leads to was not touched.
    UnlinkedOnly(String),
    /// Left where it is: it belongs to another user.
    Left(String),
}

/// Removes one leftover: idstore's own copy is wiped (it may hold the data
/// unencrypted); a planted name is unlinked without being written, or left when it
/// is another user's regular file. The removals are made durable.
pub(crate) fn remove_leftover(db: &DbFile, leftover: &Leftover) -> io::Result<Removed> {
    let removed = match &leftover.untrusted {
        None => match wipe(&db.folder, &leftover.name, db.owner()) {
            Ok(()) => return Ok(Removed::Wiped),
            // It changed between the look and the open: treat it as planted.
            Err(WipeError::Untrusted(why)) => unlink_planted(db, &leftover.name, why)?,
            Err(WipeError::Io(e)) => return Err(e),
        },
        Some(why) => unlink_planted(db, &leftover.name, why.clone())?,
    };
    db.folder.sync(Protects::Removal)?;
    Ok(removed)
}

/// Unlinks a planted name unless it is another user's regular file.
fn unlink_planted(db: &DbFile, name: &OsStr, why: String) -> io::Result<Removed> {
    let entry = db.folder.inspect(name)?;
    let foreign_file = entry.is_some_and(|e| {
        e.kind == EntryKind::Regular && e.links == 1 && e.owner.uid != db.owner().uid
    });
    if foreign_file {
        return Ok(Removed::Left(why));
    }
    if entry.is_some() {
        db.folder.remove(name)?;
    }
    Ok(Removed::UnlinkedOnly(why))
}

/// Why a wipe did not happen.
#[derive(Debug)]
pub(crate) enum WipeError {
    /// The name is not a file idstore may write (and nothing was written).
    Untrusted(String),
    /// The storage failed.
    Io(io::Error),
}

impl From<io::Error> for WipeError {
    fn from(e: io::Error) -> Self {
        WipeError::Io(e)
    }
}

impl std::fmt::Display for WipeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WipeError::Untrusted(why) => write!(f, "not removed: {why}"),
            WipeError::Io(e) => e.fmt(f),
        }
    }
}

/// Removes `name` so its bytes are gone as far as the storage allows: opened as a
/// file of `owner`'s own (never through a link, never a FIFO, one link), overwritten
/// with zeros through that descriptor, synced, then unlinked (the caller syncs the
/// folder). On flash storage with wear levelling, on copy-on-write filesystems and
/// in snapshots, the old blocks may survive: that cannot be guaranteed there.
pub(crate) fn wipe(folder: &Folder, name: &OsStr, owner: Owner) -> Result<(), WipeError> {
    let mut file = folder.open_own(name, owner).map_err(|e| match e {
        Untrusted::Not { why, .. } => WipeError::Untrusted(why),
        Untrusted::Io { error, .. } => WipeError::Io(error),
    })?;
    file.zero()?;
    file.sync(Protects::WipedContent)?;
    drop(file);
    folder.remove(name)?;
    Ok(())
}

/// A plaintext copy of the database beside it, or a name that looks like one.
#[derive(Debug, Clone)]
pub(crate) struct PlaintextCopy {
    /// Its path.
    pub path: PathBuf,
    /// Its name in the folder.
    pub name: OsString,
    /// Why idstore would not wipe it (a link, a FIFO, another user's, other links).
    pub untrusted: Option<String>,
}

/// Plaintext copies of the database beside it: its backups
/// (`<name>.backup-*.sqlite`) and a conversion's leftover copy, each a plain SQLite
/// file (an encrypted backup is not listed). Names that look like one but are not
/// idstore's to touch (a link, a FIFO, another user's file) are listed with why,
/// read through nothing.
pub(crate) fn plaintext_copies(db: &DbFile) -> Vec<PlaintextCopy> {
    let Some(name) = db.name.to_str() else {
        return Vec::new();
    };
    let backup_prefix = format!("{name}.backup-");
    let copy = conversion_copy_name(&db.name);
    let mut found: Vec<PlaintextCopy> = db
        .folder
        .names()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| {
            let text = n.to_string_lossy();
            (text.starts_with(&backup_prefix) && text.ends_with(".sqlite")) || *n == copy
        })
        .filter_map(|n| {
            let entry = db.folder.inspect(&n).ok()??;
            let untrusted = entry.untrusted_because(db.owner());
            if untrusted.is_none() && !starts_plain(&db.folder, &n) {
                return None;
            }
            Some(PlaintextCopy {
                path: db.folder.join(&n),
                name: n,
                untrusted,
            })
        })
        .collect();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// Whether `name` starts with SQLite's plain header (`SQLite format 3\0`): its
/// content is readable without a key. Read through no link and no FIFO.
fn starts_plain(folder: &Folder, name: &OsStr) -> bool {
    use std::io::Read;
    let Ok((mut file, entry)) = folder.open_read(name) else {
        return false;
    };
    let mut header = [0u8; 16];
    entry.kind == EntryKind::Regular
        && file.read_exact(&mut header).is_ok()
        && &header == b"SQLite format 3\0"
}

/// Removes what an interrupted conversion left beside the database (see
/// [`remove_leftover`]); returns what was done to each name. The caller holds the
/// database's write lock, which a running conversion holds throughout.
pub(crate) fn remove_leftovers(file: &DbFile) -> Vec<(Leftover, io::Result<Removed>)> {
    leftovers(file)
        .into_iter()
        .map(|l| {
            let done = remove_leftover(file, &l);
            (l, done)
        })
        .collect()
}
