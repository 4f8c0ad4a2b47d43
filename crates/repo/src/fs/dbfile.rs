//! The database file, found once: its real path, its folder (opened once), its name
//! there, and what it is (device and inode, owner, mode). Everything beside it (its
//! journal, its log, a backup, a conversion's copy) is named relative to that
//! folder, and the file's identity is checked again, not re-derived from the path.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};

use super::folder::{Entry, EntryKind, Folder, Owner, current_uid, is_root};
use crate::error::{Error, ErrorKind};

/// The suffixes of the files SQLite keeps beside a database.
pub(crate) const SIDE_SUFFIXES: [&str; 3] = ["-journal", "-wal", "-shm"];

/// A database file and its folder.
#[derive(Debug)]
pub(crate) struct DbFile {
    /// The real path: every link resolved, absolute.
    pub path: PathBuf,
    /// Its folder, open.
    pub folder: Folder,
    /// Its name in the folder.
    pub name: OsString,
    /// What the file is (`None` while it does not exist yet).
    pub entry: Option<Entry>,
}

impl DbFile {
    /// Finds the database `path` names: links in it resolved, its folder opened, and
    /// the file inspected without following anything further. Refuses a path that
    /// names something other than a regular file (a folder, a FIFO, a device, a
    /// socket) before anything opens it, and a link whose target is missing.
    pub fn locate(path: &Path) -> Result<DbFile, Error> {
        let (folder_path, name) = real_parts(path)?;
        let folder = Folder::open(&folder_path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => Error::at(
                ErrorKind::MissingFolder,
                path,
                format!(
                    "the folder {} of {} does not exist; create it first",
                    folder_path.display(),
                    path.display()
                ),
            ),
            _ => Error::io(path, e),
        })?;
        let real = folder.join(&name);
        let entry = folder.inspect(&name).map_err(|e| Error::io(&real, e))?;
        if let Some(entry) = &entry {
            refuse_non_file(&real, entry.kind)?;
        }
        Ok(DbFile {
            path: real,
            folder,
            name,
            entry,
        })
    }

    /// The name of the file beside this one ending in `suffix` (`-wal`).
    pub fn side_name(&self, suffix: &str) -> OsString {
        let mut name = self.name.clone();
        name.push(suffix);
        name
    }

    /// The path of that file.
    pub fn side_path(&self, suffix: &str) -> PathBuf {
        self.folder.join(&self.side_name(suffix))
    }

    /// Who owns the file (this process's user while it does not exist yet).
    pub fn owner(&self) -> Owner {
        self.entry.map(|e| e.owner).unwrap_or_else(|| Owner {
            uid: current_uid(),
            gid: current_gid(),
        })
    }

    /// Whether this process is the file's owner, or root: it may create the side
    /// files SQLite needs (SQLite gives root's to the file's owner).
    pub fn mine(&self) -> bool {
        is_root() || self.owner().uid == current_uid()
    }

    /// Refuses to open the file when a file SQLite keeps beside it (`-journal`,
    /// `-wal`, `-shm`) is not one SQLite could have made for it: a link, a FIFO, a
    /// file with other links or of another user. SQLite would write into it (or
    /// hang on it); nothing is written, and the name is left for a person to look at.
    pub fn check_side_files(&self) -> Result<(), Error> {
        let owner = self.owner();
        for suffix in SIDE_SUFFIXES {
            let name = self.side_name(suffix);
            let Some(entry) = self
                .folder
                .inspect(&name)
                .map_err(|e| Error::io(&self.path, e))?
            else {
                continue;
            };
            if let Some(why) = entry.untrusted_because(owner) {
                let side = self.folder.join(&name);
                return Err(Error::at(
                    ErrorKind::UntrustedFile,
                    &self.path,
                    format!(
                        "{} beside {} is not a file SQLite made for it ({why}); idstore writes nothing through it, so nothing was changed: look at it, remove it if it is not yours, and retry",
                        side.display(),
                        self.path.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Refuses to go on when what SQLite opened is not the file found at first (its
    /// name was replaced meanwhile). `opened` is what the descriptor SQLite opened
    /// refers to; when that cannot be read (`None`), the name is looked at again.
    pub fn check_opened(&self, opened: Option<io::Result<Entry>>) -> io::Result<()> {
        let now = match opened {
            Some(found) => Some(found?),
            None => self.folder.inspect(&self.name)?,
        };
        match (&self.entry, now) {
            (Some(then), Some(now)) if now.kind == EntryKind::Regular && then.same_file(&now) => {
                Ok(())
            }
            _ => Err(io::Error::other(Replaced)),
        }
    }

    /// The error for `e`, met on this file: a name replaced after it was checked
    /// ([`check_opened`](Self::check_opened)) is refused as such.
    pub fn error(&self, e: io::Error) -> Error {
        if e.get_ref().is_some_and(|inner| inner.is::<Replaced>()) {
            Error::at(
                ErrorKind::CannotOpen,
                &self.path,
                format!(
                    "{} was replaced by another file while it was being opened; nothing was changed: retry",
                    self.path.display()
                ),
            )
        } else {
            Error::io(&self.path, e)
        }
    }

    /// Reads the file's identity again (after this process created it).
    pub fn refresh(&mut self) -> io::Result<()> {
        self.entry = self.folder.inspect(&self.name)?;
        Ok(())
    }

    /// Whether `name` in the folder exists (without following it).
    pub fn has(&self, name: &OsStr) -> bool {
        matches!(self.folder.inspect(name), Ok(Some(_)))
    }
}

/// What SQLite opened is not the file found at first: its name was replaced.
#[derive(Debug)]
pub(crate) struct Replaced;

impl std::fmt::Display for Replaced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the name was replaced by another file after it was checked")
    }
}

impl std::error::Error for Replaced {}

/// The refusal of a path that names something other than a regular file.
fn refuse_non_file(path: &Path, kind: EntryKind) -> Result<(), Error> {
    match kind {
        EntryKind::Regular => Ok(()),
        EntryKind::Directory => Err(Error::at(
            ErrorKind::IsDirectory,
            path,
            format!(
                "{} is a directory; pass the path of a database file",
                path.display()
            ),
        )),
        EntryKind::Symlink => Err(Error::at(
            ErrorKind::CannotOpen,
            path,
            format!(
                "{} changed into a symlink while it was being opened; nothing was changed: retry",
                path.display()
            ),
        )),
        other => Err(Error::at(
            ErrorKind::NotAFile,
            path,
            format!(
                "{} is {}, not a database file; nothing opened it: pass the path of a database file",
                path.display(),
                other.described()
            ),
        )),
    }
}

/// The real folder and the name in it of the file `path` names: the file's links
/// resolved when it exists, else its folder's. A link whose target is missing is
/// refused, naming the target: creating it would put the database somewhere the
/// caller did not name.
fn real_parts(path: &Path) -> Result<(PathBuf, OsString), Error> {
    let real = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(_) => {
            if let Ok(link) = std::fs::read_link(path) {
                return Err(Error::at(
                    ErrorKind::NotFound,
                    path,
                    format!(
                        "{} is a symlink to {}, which does not exist; pass the path of the database itself",
                        path.display(),
                        link.display()
                    ),
                ));
            }
            let folder = super::folder_of(path);
            let name = path.file_name().ok_or_else(|| {
                Error::at(
                    ErrorKind::IsDirectory,
                    path,
                    format!(
                        "{} names no file; pass the path of a database file",
                        path.display()
                    ),
                )
            })?;
            match std::fs::canonicalize(folder) {
                Ok(folder) => folder.join(name),
                Err(_) => path.to_owned(),
            }
        }
    };
    let folder = super::folder_of(&real).to_owned();
    let name = real
        .file_name()
        .map(OsStr::to_owned)
        .unwrap_or_else(|| OsString::from("."));
    Ok((folder, name))
}

/// This process's effective group.
fn current_gid() -> u32 {
    rustix::process::getegid().as_raw()
}
