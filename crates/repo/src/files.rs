//! Files beside a database, made and removed with care: new files owner-only, a
//! database removed with whatever SQLite kept beside it, renames made durable, and
//! what the storage allows.

use std::fs::{self, OpenOptions as FsOpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// The folder a file is in (`.` for a bare name).
pub(crate) fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

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

/// The copy a conversion writes beside `path`: hidden, naming no key, one name per
/// file (so a copy a killed run left behind is found and removed).
pub(crate) fn conversion_copy(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.idstore-convert"))
}

/// What an interrupted conversion left beside `path` (its copy, and the journal
/// SQLite kept for it), when anything: it may hold the data unencrypted.
pub(crate) fn leftover_copies(path: &Path) -> Vec<PathBuf> {
    let copy = conversion_copy(path);
    [beside(&copy, "-journal"), copy]
        .into_iter()
        .filter(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
        .collect()
}

/// Whether the file starts with SQLite's plain header (`SQLite format 3\0`): its
/// content is readable without a key.
pub(crate) fn is_plain_sqlite(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 16];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| &header == b"SQLite format 3\0")
}

/// Plaintext copies of the database at `path` beside it: its backups
/// (`<name>.backup-*.sqlite`) and a conversion's leftover copy, each one that is a
/// plain SQLite file (an encrypted backup is not listed).
pub(crate) fn plaintext_copies(path: &Path) -> Vec<PathBuf> {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let backup_prefix = format!("{name}.backup-");
    let copy = conversion_copy(path);
    let mut found: Vec<PathBuf> = fs::read_dir(folder_of(path))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| {
            let n = entry.file_name().to_string_lossy().into_owned();
            (n.starts_with(&backup_prefix) && n.ends_with(".sqlite")) || entry.path() == copy
        })
        .map(|entry| entry.path())
        .filter(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_file()) && is_plain_sqlite(p))
        .collect();
    found.sort();
    found
}

/// Removes `path` so its bytes are gone as far as the storage allows: overwritten
/// with zeros, synced, unlinked, and the removal synced. (On flash storage with wear
/// levelling, on copy-on-write filesystems and in snapshots, the old blocks may
/// still exist: this cannot be guaranteed there.)
pub(crate) fn wipe(path: &Path) -> io::Result<()> {
    use std::io::{Seek, Write};
    let mut file = FsOpenOptions::new().write(true).open(path)?;
    let len = file.metadata()?.len();
    file.seek(io::SeekFrom::Start(0))?;
    let zeros = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    file.sync_all()?;
    drop(file);
    fs::remove_file(path)?;
    sync_folder(folder_of(path))
}

/// The other processes that have the file at `path` open (Linux: their open file
/// descriptors on the same device and inode, from `/proc`), each as `name (pid N)`.
/// Processes of other users are seen only by root; elsewhere nothing can be told.
#[cfg(target_os = "linux")]
pub(crate) fn other_holders(path: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let Ok(target) = fs::metadata(path) else {
        return Vec::new();
    };
    let me = std::process::id().to_string();
    let mut holders = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let holds = fs::read_dir(entry.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| {
                fs::metadata(fd.path())
                    .is_ok_and(|m| m.dev() == target.dev() && m.ino() == target.ino())
            });
        if holds {
            let name = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            holders.push(format!("{} (pid {pid})", name.trim()));
        }
    }
    holders
}

/// The other processes that have the file open (not known on this platform).
#[cfg(not(target_os = "linux"))]
pub(crate) fn other_holders(_path: &Path) -> Vec<String> {
    Vec::new()
}

/// Gives the new file at `copy` the owner, group and permission bits of `original`,
/// so the program that owns the database can still open it once `copy` replaces
/// it. Fails (with the system's error) when this process may not give that owner.
#[cfg(unix)]
pub(crate) fn keep_owner_and_mode(copy: &Path, original: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let file = fs::File::open(copy)?;
    let now = file.metadata()?;
    if (now.uid(), now.gid()) != (original.uid(), original.gid()) {
        rustix::fs::fchown(
            &file,
            Some(rustix::fs::Uid::from_raw(original.uid())),
            Some(rustix::fs::Gid::from_raw(original.gid())),
        )?;
    }
    file.set_permissions(fs::Permissions::from_mode(original.mode() & 0o7777))
}

/// Gives the new file the original's permissions (owners are not kept here).
#[cfg(not(unix))]
pub(crate) fn keep_owner_and_mode(copy: &Path, original: &fs::Metadata) -> io::Result<()> {
    fs::set_permissions(copy, original.permissions())
}
