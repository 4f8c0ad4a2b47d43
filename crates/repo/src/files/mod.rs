//! Files beside a database, handled as names someone else may have planted: the
//! database found once ([`DbFile`]), its folder opened once and every name reached
//! relative to it ([`Folder`]), a file written only after its open descriptor shows
//! it is idstore's own, and every step through one seam a test can record
//! ([`seam`]). Also: conversion leftovers and plaintext copies, found and removed
//! with the same care, who else has the file open, and what the storage allows.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};

mod dbfile;
mod folder;
pub(crate) mod seam;

pub(crate) use dbfile::{DbFile, SIDE_SUFFIXES};
pub(crate) use folder::{
    Entry, EntryKind, Folder, Owner, SeamFile, Untrusted, entry_at, is_root, may_give_to,
};
pub(crate) use seam::Protects;

/// The folder a file is in (`.` for a bare name).
pub(crate) fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `name` with `suffix` appended.
pub(crate) fn suffixed(name: &OsStr, suffix: &str) -> OsString {
    let mut n = name.to_owned();
    n.push(suffix);
    n
}

/// Whether the filesystem holding `folder` is mounted read-only.
pub(crate) fn storage_is_read_only(folder: &Path) -> bool {
    rustix::fs::statvfs(folder)
        .is_ok_and(|st| st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
}

/// Removes a database this process created and is giving up on (a failed create,
/// an incomplete copy), with whatever SQLite kept beside it: only names that are
/// regular files of this process's user, so nothing planted there is touched.
pub(crate) fn remove_new(folder: &Folder, name: &OsStr) {
    let me = Owner {
        uid: folder::current_uid(),
        gid: 0,
    };
    for suffix in ["-journal", "-wal", "-shm", ""] {
        let n = suffixed(name, suffix);
        if let Ok(Some(entry)) = folder.inspect(&n)
            && entry.kind == EntryKind::Regular
            && (entry.owner.uid == me.uid || is_root())
        {
            let _ = folder.remove(&n);
        }
    }
}

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

/// The other processes that have the file `entry` describes open (Linux: their
/// open file descriptors on the same device and inode, from `/proc`), each as
/// `name (pid N)`. Processes of other users are seen only by root; elsewhere
/// nothing can be told.
#[cfg(target_os = "linux")]
pub(crate) fn other_holders(entry: &Entry) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut holders = Vec::new();
    for proc_entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = proc_entry.file_name().to_string_lossy().into_owned();
        if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let holds = std::fs::read_dir(proc_entry.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| entry_at(&fd.path()).is_ok_and(|e| e.same_file(entry)));
        if holds {
            let name = std::fs::read_to_string(proc_entry.path().join("comm")).unwrap_or_default();
            holders.push(format!("{} (pid {pid})", name.trim()));
        }
    }
    holders
}

/// The other processes that have the file open (not known on this platform).
#[cfg(not(target_os = "linux"))]
pub(crate) fn other_holders(_entry: &Entry) -> Vec<String> {
    Vec::new()
}

/// How many idstore connections this process has open to each file (device,
/// inode): another process is found through `/proc`, another connection of this
/// one only here.
static OPEN_HERE: std::sync::Mutex<Vec<((u64, u64), usize)>> = std::sync::Mutex::new(Vec::new());

/// Counts one idstore connection of this process to the file `entry` describes,
/// until the guard is dropped.
pub(crate) fn register_open(entry: &Entry) -> OpenHere {
    let id = (entry.dev, entry.ino);
    let mut open = OPEN_HERE.lock().unwrap_or_else(|p| p.into_inner());
    match open.iter_mut().find(|(k, _)| *k == id) {
        Some((_, n)) => *n += 1,
        None => open.push((id, 1)),
    }
    OpenHere(id)
}

/// How many idstore connections this process has open to the file `entry`
/// describes.
pub(crate) fn open_here(entry: &Entry) -> usize {
    let open = OPEN_HERE.lock().unwrap_or_else(|p| p.into_inner());
    open.iter()
        .find(|(k, _)| *k == (entry.dev, entry.ino))
        .map_or(0, |(_, n)| *n)
}

/// One connection counted by [`register_open`].
#[derive(Debug)]
pub(crate) struct OpenHere((u64, u64));

impl Drop for OpenHere {
    fn drop(&mut self) {
        let mut open = OPEN_HERE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = open.iter().position(|(k, _)| *k == self.0) {
            open[i].1 -= 1;
            if open[i].1 == 0 {
                open.swap_remove(i);
            }
        }
    }
}

/// Writes the new file `dest` (which must not exist; a link there counts as
/// existing) with `fill`: owner-only, given to `owner` where this process may
/// (root), its content synced (`content`), then its name (`name`). Nothing is left
/// of a failed write.
pub(crate) fn write_new(
    dest: &Path,
    owner: Option<Owner>,
    content: Protects,
    name: Protects,
    fill: impl FnOnce(&mut SeamFile) -> io::Result<()>,
) -> io::Result<()> {
    let file_name = dest
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let folder = Folder::open(folder_of(dest))?;
    let mut file = folder.create_new(file_name, owner)?;
    let written = fill(&mut file).and_then(|()| file.sync(content));
    drop(file);
    if let Err(e) = written {
        let _ = folder.remove(file_name);
        return Err(e);
    }
    folder.sync(name)
}
