//! A folder opened once, and every name in it reached relative to that descriptor
//! (`openat`, `unlinkat`, `renameat`, `linkat`): a name is never followed through a
//! link, a file is checked on its open descriptor before a byte is written to it,
//! and every step goes through the seam ([`super::seam`]). Also scratch folders
//! ([`WorkFolder`]): private, and gone when dropped.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::seam::{FileStep, Protects, note};
use crate::error::Error;

/// Who owns a file: the owner new side files are given when this process may give
/// them away (root), and the owner a file beside a database must have to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// What a name is, seen without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Regular,
    Directory,
    Symlink,
    Fifo,
    Socket,
    Device,
    Other,
}

impl EntryKind {
    /// The kind in words (`a symlink`), for a message.
    pub fn described(self) -> &'static str {
        match self {
            EntryKind::Regular => "a regular file",
            EntryKind::Directory => "a directory",
            EntryKind::Symlink => "a symlink",
            EntryKind::Fifo => "a FIFO",
            EntryKind::Socket => "a socket",
            EntryKind::Device => "a device",
            EntryKind::Other => "not a regular file",
        }
    }
}

/// A name's file, as `lstat` (or `fstat` on its descriptor) tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub kind: EntryKind,
    pub links: u64,
    pub owner: Owner,
    pub mode: u32,
    pub len: u64,
    pub dev: u64,
    pub ino: u64,
}

impl Entry {
    /// Why idstore may not write to this file as its own (or `None` when it may): a
    /// regular file with one link, owned by `owner`.
    pub fn untrusted_because(&self, owner: Owner) -> Option<String> {
        if self.kind != EntryKind::Regular {
            return Some(format!("it is {}", self.kind.described()));
        }
        if self.links != 1 {
            return Some(format!(
                "it has {} links (another name shares its content)",
                self.links
            ));
        }
        if self.owner.uid != owner.uid {
            return Some(format!(
                "it belongs to user {}, not to the database's owner (user {})",
                self.owner.uid, owner.uid
            ));
        }
        None
    }

    /// Whether this is the same file as `other` (device and inode).
    pub fn same_file(&self, other: &Entry) -> bool {
        (self.dev, self.ino) == (other.dev, other.ino)
    }
}

/// An open folder. Every name idstore opens, creates, renames or removes beside a
/// database is reached through one.
#[derive(Debug)]
pub(crate) struct Folder {
    path: PathBuf,
    fd: std::os::fd::OwnedFd,
}

/// A file idstore writes, opened or created through a [`Folder`]: its steps go
/// through the seam.
#[derive(Debug)]
pub(crate) struct SeamFile {
    file: File,
    path: PathBuf,
    at: u64,
}

impl Folder {
    /// Opens the folder at `path` (a real path: the caller resolved its links).
    pub fn open(path: &Path) -> io::Result<Folder> {
        use rustix::fs::{Mode, OFlags};
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Folder {
            path: path.to_owned(),
            fd,
        })
    }

    /// The folder's path (for messages and the seam).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` in this folder (for messages and the seam).
    pub fn join(&self, name: &OsStr) -> PathBuf {
        self.path.join(name)
    }

    /// What `name` is, without following a link; `None` when there is no such name.
    pub fn inspect(&self, name: &OsStr) -> io::Result<Option<Entry>> {
        use rustix::fs::AtFlags;
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(entry_of(&st))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates `name`, which must not exist (a link there counts), owner-only
    /// (`0600`), and gives it to `owner` when it differs from this process's user
    /// and this process may give it away (root): a file idstore leaves beside a
    /// database belongs to the database's owner.
    pub fn create_new(&self, name: &OsStr, owner: Option<Owner>) -> io::Result<SeamFile> {
        let path = self.join(name);
        let file = {
            use rustix::fs::{Mode, OFlags};
            let fd = rustix::fs::openat(
                &self.fd,
                name,
                OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::RUSR | Mode::WUSR,
            )?;
            note(|| FileStep::Create { path: path.clone() });
            if let Some(owner) = owner
                && is_root()
            {
                let st = rustix::fs::fstat(&fd)?;
                if (st.st_uid, st.st_gid) != (owner.uid, owner.gid) {
                    let given = rustix::fs::fchown(
                        &fd,
                        Some(rustix::fs::Uid::from_raw(owner.uid)),
                        Some(rustix::fs::Gid::from_raw(owner.gid)),
                    );
                    if let Err(e) = given {
                        let _ = self.remove(name);
                        return Err(e.into());
                    }
                }
            }
            File::from(fd)
        };
        Ok(SeamFile { file, path, at: 0 })
    }

    /// Opens `name` to read and write as a file of idstore's own: never through a
    /// link, never waiting on a FIFO, and only when its open descriptor shows a
    /// regular file with one link owned by `owner`. Otherwise the error says what
    /// the name is; nothing was written.
    pub fn open_own(&self, name: &OsStr, owner: Owner) -> Result<SeamFile, Untrusted> {
        let path = self.join(name);
        use rustix::fs::{Mode, OFlags};
        let opened = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDWR | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        );
        let fd = match opened {
            Ok(fd) => fd,
            // A symlink (O_NOFOLLOW), a directory, or a name that went away.
            Err(e) => {
                return Err(match self.inspect(name) {
                    Ok(Some(entry)) if entry.kind != EntryKind::Regular => Untrusted::Not {
                        path,
                        why: format!("it is {}", entry.kind.described()),
                    },
                    _ => Untrusted::Io {
                        path,
                        error: e.into(),
                    },
                });
            }
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| Untrusted::Io {
            path: path.clone(),
            error: e.into(),
        })?;
        if let Some(why) = entry_of(&st).untrusted_because(owner) {
            return Err(Untrusted::Not { path, why });
        }
        Ok(SeamFile {
            file: File::from(fd),
            path,
            at: 0,
        })
    }

    /// Opens `name` to read, never through a link and never waiting on a FIFO.
    pub fn open_read(&self, name: &OsStr) -> io::Result<(File, Entry)> {
        use rustix::fs::{Mode, OFlags};
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let st = rustix::fs::fstat(&fd)?;
        Ok((File::from(fd), entry_of(&st)))
    }

    /// Removes the name `name` (a link itself, never what it points to).
    pub fn remove(&self, name: &OsStr) -> io::Result<()> {
        rustix::fs::unlinkat(&self.fd, name, rustix::fs::AtFlags::empty())?;
        note(|| FileStep::Remove {
            path: self.join(name),
        });
        Ok(())
    }

    /// Renames `from` to `to` in this folder, replacing `to`.
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        rustix::fs::renameat(&self.fd, from, &self.fd, to)?;
        note(|| FileStep::Rename {
            from: self.join(from),
            to: self.join(to),
        });
        Ok(())
    }

    /// Gives `from`'s file the second name `to` in this folder; fails, replacing
    /// nothing, when `to` exists.
    pub fn link(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        rustix::fs::linkat(&self.fd, from, &self.fd, to, rustix::fs::AtFlags::empty())?;
        note(|| FileStep::Link {
            from: self.join(from),
            to: self.join(to),
        });
        Ok(())
    }

    /// Makes every create, rename, link and removal in this folder so far durable.
    pub fn sync(&self, protects: Protects) -> io::Result<()> {
        rustix::fs::fsync(&self.fd)?;
        note(|| FileStep::SyncFolder {
            path: self.path.clone(),
            protects,
        });
        Ok(())
    }

    /// Every name in the folder.
    pub fn names(&self) -> io::Result<Vec<OsString>> {
        Ok(std::fs::read_dir(&self.path)?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect())
    }

    /// Whether this process may create names in the folder.
    pub fn writable(&self) -> bool {
        rustix::fs::accessat(
            &self.fd,
            ".",
            rustix::fs::Access::WRITE_OK,
            rustix::fs::AtFlags::empty(),
        )
        .is_ok()
    }
}

/// A name idstore would not write through, and why.
#[derive(Debug)]
pub(crate) enum Untrusted {
    /// The name is not a file of idstore's own (a link, a FIFO, another user's).
    Not { path: PathBuf, why: String },
    /// It could not be opened or inspected.
    Io { path: PathBuf, error: io::Error },
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Untrusted::Not { path, why } => write!(f, "{}: {why}", path.display()),
            Untrusted::Io { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl SeamFile {
    /// Appends `data` at the current position.
    pub fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        let offset = self.at;
        self.at += data.len() as u64;
        note(|| FileStep::Write {
            path: self.path.clone(),
            offset,
            data: data.to_vec(),
        });
        Ok(())
    }

    /// Writes the whole of `from` here, from the start, in blocks.
    pub fn copy_from(&mut self, from: &mut impl Read) -> io::Result<u64> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0;
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.write_all(&buf[..n])?;
            total += n as u64;
        }
    }

    /// Overwrites the whole file with zeros, from the start.
    pub fn zero(&mut self) -> io::Result<()> {
        use std::io::Seek;
        let len = self.file.metadata()?.len();
        self.file.seek(io::SeekFrom::Start(0))?;
        self.at = 0;
        let zeros = vec![0u8; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            self.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Cuts the file to `len` bytes.
    pub fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        note(|| FileStep::Truncate {
            path: self.path.clone(),
            len,
        });
        Ok(())
    }

    /// Makes the file's content durable.
    pub fn sync(&self, protects: Protects) -> io::Result<()> {
        self.file.sync_all()?;
        note(|| FileStep::Sync {
            path: self.path.clone(),
            protects,
        });
        Ok(())
    }

    /// The file as its descriptor shows it.
    pub fn entry(&self) -> io::Result<Entry> {
        Ok(entry_of(&rustix::fs::fstat(&self.file)?))
    }

    /// Gives the file the owner, group and permission bits of `like`.
    pub fn take_owner_and_mode(&self, like: &Entry) -> io::Result<()> {
        let now = self.entry()?;
        if now.owner != like.owner {
            rustix::fs::fchown(
                &self.file,
                Some(rustix::fs::Uid::from_raw(like.owner.uid)),
                Some(rustix::fs::Gid::from_raw(like.owner.gid)),
            )?;
        }
        rustix::fs::fchmod(
            &self.file,
            rustix::fs::Mode::from_raw_mode((like.mode & 0o7777) as _),
        )?;
        Ok(())
    }
}

/// Whether this process runs as root (and may give files away).
pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// This process's effective user.
pub(crate) fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether this process may give a file to `owner`: root may; the owner may give
/// it a group they belong to.
pub(crate) fn may_give_to(owner: Owner) -> bool {
    if is_root() {
        return true;
    }
    if current_uid() != owner.uid {
        return false;
    }
    rustix::process::getegid().as_raw() == owner.gid
        || rustix::process::getgroups()
            .is_ok_and(|groups| groups.iter().any(|g| g.as_raw() == owner.gid))
}

fn entry_of(st: &rustix::fs::Stat) -> Entry {
    use rustix::fs::FileType;
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => EntryKind::Regular,
        FileType::Directory => EntryKind::Directory,
        FileType::Symlink => EntryKind::Symlink,
        FileType::Fifo => EntryKind::Fifo,
        FileType::Socket => EntryKind::Socket,
        FileType::CharacterDevice | FileType::BlockDevice => EntryKind::Device,
        _ => EntryKind::Other,
    };
    Entry {
        kind,
        #[allow(clippy::useless_conversion)]
        links: u64::from(st.st_nlink),
        owner: Owner {
            uid: st.st_uid,
            gid: st.st_gid,
        },
        #[allow(clippy::useless_conversion)]
        mode: u32::from(st.st_mode),
        len: u64::try_from(st.st_size).unwrap_or(0),
        #[allow(clippy::useless_conversion)]
        dev: u64::from(st.st_dev),
        #[allow(clippy::useless_conversion)]
        ino: u64::from(st.st_ino),
    }
}

/// The metadata of the file at `path` (following links), as an [`Entry`].
pub(crate) fn entry_at(path: &Path) -> io::Result<Entry> {
    Ok(entry_of(&rustix::fs::stat(path)?))
}

/// What the open descriptor `fd` refers to (`fstat`), as an [`Entry`].
pub(crate) fn entry_of_descriptor(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<Entry> {
    Ok(entry_of(&rustix::fs::fstat(fd)?))
}

/// A new owner-only folder for scratch work (a `:memory:` database, a test
/// database), removed with everything in it when dropped.
#[derive(Debug)]
pub(crate) struct WorkFolder(PathBuf);

impl WorkFolder {
    /// Creates it.
    pub fn new(parent: &Path) -> Result<Self, Error> {
        use std::os::unix::fs::DirBuilderExt;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let path = parent.join(format!("idstore-scratch-{}-{stamp}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(WorkFolder(path))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
