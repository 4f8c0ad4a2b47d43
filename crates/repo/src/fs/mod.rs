//! The file system, outside SQLite: every name idstore creates, writes, syncs,
//! renames or removes beside a database, each handled as a name someone else may
//! have planted.
//!
//! - [`DbFile`]: the database found once (its real path, its folder opened once,
//!   what it is), everything beside it named relative to that folder;
//! - [`Folder`]: every name reached through the folder's descriptor (`openat`,
//!   `unlinkat`, `renameat`), never followed through a link, a file written only
//!   after its open descriptor shows it is idstore's own; and scratch folders
//!   ([`WorkFolder`]);
//! - [`seam`]: every step (create, write, sync, rename, link, remove) through one
//!   seam a test can record and replay, each sync named by what it protects;
//! - [`leftovers`]: what an interrupted conversion left, and plaintext copies,
//!   found and removed with the same care;
//! - [`holders`]: who else has the file open;
//! - [`storage`]: the room an operation needs, and storage faults in words.
//!
//! **Rule:** no name beside a database is opened, written or removed but through a
//! [`Folder`] (never by a path a neighbour could swap for a link), and every step
//! goes through the [`seam`]; nothing here runs SQL but the size of the file.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::Path;

mod dbfile;
mod folder;
pub(crate) mod holders;
pub(crate) mod leftovers;
pub(crate) mod seam;
pub(crate) mod storage;

pub(crate) use dbfile::{DbFile, SIDE_SUFFIXES};
pub(crate) use folder::{
    Entry, EntryKind, Folder, Owner, SeamFile, Untrusted, WorkFolder, entry_at,
    entry_of_descriptor, is_root, may_give_to,
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
