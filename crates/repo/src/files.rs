//! Files beside a database, made and removed with care: new files owner-only, a
//! database removed with whatever SQLite kept beside it, renames made durable, and
//! what the storage allows.

use std::fs::{self, OpenOptions as FsOpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// The file beside `path` whose name ends in `suffix` (`-journal`, `-wal`).
pub(crate) fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether the filesystem holding `folder` is mounted read-only.
#[cfg(unix)]
pub(crate) fn storage_is_read_only(folder: &Path) -> bool {
    rustix::fs::statvfs(folder)
        .is_ok_and(|st| st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
}

/// Whether the filesystem holding `folder` is mounted read-only (unknown here).
#[cfg(not(unix))]
pub(crate) fn storage_is_read_only(_folder: &Path) -> bool {
    false
}

/// Whether this process may create files in `folder`.
#[cfg(unix)]
pub(crate) fn folder_writable(folder: &Path) -> bool {
    rustix::fs::access(folder, rustix::fs::Access::WRITE_OK).is_ok()
}

/// Whether this process may create files in `folder` (assumed here).
#[cfg(not(unix))]
pub(crate) fn folder_writable(_folder: &Path) -> bool {
    true
}

/// Removes a database and whatever SQLite kept beside it (a file this process made
/// and is giving up on: a failed create, an incomplete copy).
pub(crate) fn remove_with_journals(path: &Path) {
    for suffix in ["-journal", "-wal", "-shm", ""] {
        let _ = fs::remove_file(beside(path, suffix));
    }
}

#[cfg(unix)]
pub(crate) fn create_private(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    FsOpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

#[cfg(not(unix))]
pub(crate) fn create_private(path: &Path) -> io::Result<()> {
    FsOpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map(drop)
}

/// Makes a rename or a new name in `folder` durable.
#[cfg(unix)]
pub(crate) fn sync_folder(folder: &Path) -> io::Result<()> {
    fs::File::open(folder)?.sync_all()
}

/// Makes a rename or a new name in `folder` durable (nothing to do here).
#[cfg(not(unix))]
pub(crate) fn sync_folder(_folder: &Path) -> io::Result<()> {
    Ok(())
}
