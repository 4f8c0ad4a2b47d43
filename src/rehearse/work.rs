//! The rehearsal's work folders. They hold copies of users' files, key material
//! included, so none may outlive its run:
//!
//! - All live in one owner-only folder of the caller's, `$TMPDIR/idstore-rehearse-UID`,
//!   checked on its descriptor (a directory of the caller's, mode 0700) before
//!   anything is put in it; anything else at that name is refused.
//! - Each run works in a folder `run-PID-NANOS` there, holding an exclusive `flock`
//!   on it while it lives, and removes it when it ends, on SIGINT, SIGTERM and
//!   SIGHUP included. A run killed with SIGKILL leaves its folder unlocked: the next
//!   run removes it. Only names of that shape, in that folder, that no live run
//!   holds, are ever removed, through descriptors that follow no link.
//! - A run takes an identity lock there, per report and shard: a second identical
//!   run refuses while the first is alive (shards of one report run side by side).
//!   A killed run's lock file is removed by the next run, as its folder is.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use idstore_repo::{Error, ErrorKind};
use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::output::shown_path;

/// What a signal handler removes: the base folder and the run's folder name in it.
static ON_SIGNAL: Mutex<Option<(OwnedFd, String)>> = Mutex::new(None);

/// A run's work folder.
pub struct Run {
    base: OwnedFd,
    base_path: PathBuf,
    name: String,
    /// Held open and locked for the run's life: the lock says it is alive.
    dir: OwnedFd,
    /// The run folder's path.
    path: PathBuf,
    /// Folders of killed runs removed when this one started.
    pub stale_removed: usize,
    next: u64,
}

/// A folder for one file's work, removed (with everything in it) when dropped.
pub struct FileFolder<'a> {
    run: &'a Run,
    name: String,
    /// Its path.
    pub path: PathBuf,
}

/// The lock that keeps a second identical run out; released (and its name
/// removed) when dropped.
pub struct IdentityLock {
    base: OwnedFd,
    name: String,
    _fd: OwnedFd,
}

impl Run {
    /// Opens (or makes) the caller's base folder under `temp`, removes the folders
    /// of killed runs there, and makes this run's, removed on SIGINT, SIGTERM and
    /// SIGHUP from now on.
    pub fn start(temp: &Path) -> Result<Run, Error> {
        let uid = rustix::process::geteuid().as_raw();
        let base_path = temp.join(format!("idstore-rehearse-{uid}"));
        let base = open_base(&base_path, uid)?;
        let io = |e: Errno| Error::io(&base_path, e.into());
        rustix::fs::flock(&base, FlockOperation::LockExclusive).map_err(io)?;
        let stale_removed = remove_stale(&base, uid);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let name = format!("run-{}-{stamp}", std::process::id());
        rustix::fs::mkdirat(&base, name.as_str(), Mode::from_raw_mode(0o700)).map_err(io)?;
        let dir = open_dir(&base, &name).map_err(io)?;
        rustix::fs::flock(&dir, FlockOperation::LockExclusive).map_err(io)?;
        rustix::fs::flock(&base, FlockOperation::Unlock).map_err(io)?;
        let path = base_path.join(&name);
        let run = Run {
            base,
            base_path,
            name,
            dir,
            path,
            stale_removed,
            next: 0,
        };
        run.remove_on_signal()?;
        Ok(run)
    }

    /// The run folder's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new empty folder for one file's work.
    pub fn file_folder(&mut self) -> Result<FileFolder<'_>, Error> {
        self.next += 1;
        let name = self.next.to_string();
        rustix::fs::mkdirat(&self.dir, name.as_str(), Mode::from_raw_mode(0o700))
            .map_err(|e| Error::io(&self.path, e.into()))?;
        Ok(FileFolder {
            path: self.path.join(&name),
            name,
            run: self,
        })
    }

    /// Takes the lock of `report` (its device and inode) and `shard` for this run,
    /// or refuses while another live run holds it.
    pub fn identity_lock(
        &self,
        report: (u64, u64),
        shard: &str,
        report_path: &Path,
    ) -> Result<IdentityLock, Error> {
        let name = format!("lock-{}-{}-{shard}", report.0, report.1);
        let io = |e: Errno| Error::io(&self.base_path.join(&name), e.into());
        loop {
            let fd = rustix::fs::openat(
                &self.base,
                name.as_str(),
                OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(io)?;
            match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(Errno::WOULDBLOCK) => {
                    return Err(Error::new(
                        ErrorKind::InUse,
                        format!(
                            "another rehearsal of the same shard ({}) is writing {} now; an identical run would only repeat its work: wait for it to finish (a rerun then picks up where it stopped), or rehearse another shard",
                            shard.replace("-of-", "/"),
                            shown_path(report_path)
                        ),
                    ));
                }
                Err(e) => return Err(io(e)),
            }
            // The name may have been removed by the run that held it just before:
            // only the lock on the file the name still names counts.
            let held = rustix::fs::fstat(&fd).map_err(io)?;
            match rustix::fs::statat(&self.base, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(now) if now.st_ino == held.st_ino && now.st_dev == held.st_dev => {
                    let base = rustix::io::dup(&self.base).map_err(io)?;
                    return Ok(IdentityLock {
                        base,
                        name,
                        _fd: fd,
                    });
                }
                Ok(_) | Err(Errno::NOENT) => continue,
                Err(e) => return Err(io(e)),
            }
        }
    }

    /// Registers this run's folder for removal by a signal that ends the process.
    fn remove_on_signal(&self) -> Result<(), Error> {
        let base = rustix::io::dup(&self.base).map_err(|e| Error::io(&self.base_path, e.into()))?;
        *ON_SIGNAL.lock().unwrap_or_else(|e| e.into_inner()) = Some((base, self.name.clone()));
        static HANDLER: std::sync::Once = std::sync::Once::new();
        let mut failed = None;
        HANDLER.call_once(|| {
            use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
            match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
                Ok(mut signals) => {
                    std::thread::spawn(move || {
                        if let Some(signal) = signals.forever().next() {
                            on_signal(signal);
                        }
                    });
                }
                Err(e) => failed = Some(e),
            }
        });
        match failed {
            Some(e) => Err(Error::with_source(
                ErrorKind::Other,
                "could not set up the removal of the work folder on SIGINT and SIGTERM",
                e,
            )),
            None => Ok(()),
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        ON_SIGNAL.lock().unwrap_or_else(|e| e.into_inner()).take();
        remove_tree(&self.base, &self.name);
    }
}

impl Drop for FileFolder<'_> {
    fn drop(&mut self) {
        remove_tree(&self.run.dir, &self.name);
    }
}

impl Drop for IdentityLock {
    fn drop(&mut self) {
        let _ = rustix::fs::unlinkat(&self.base, self.name.as_str(), AtFlags::empty());
    }
}

/// A signal that ends the process: the engine it runs is killed, a record being
/// written is finished, the work folder removed, and the process ends as the
/// signal would have ended it.
fn on_signal(signal: i32) {
    super::engine::kill_running();
    let _writing = super::report::WRITING
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((base, name)) = ON_SIGNAL.lock().unwrap_or_else(|e| e.into_inner()).take() {
        remove_tree(&base, &name);
    }
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    std::process::exit(128 + signal);
}

/// Opens the base folder, making it (owner-only) when missing; refuses one that
/// is not a folder of `uid` with mode 0700.
fn open_base(path: &Path, uid: u32) -> Result<OwnedFd, Error> {
    let made = match rustix::fs::mkdir(path, Mode::from_raw_mode(0o700)) {
        Ok(()) => true,
        Err(Errno::EXIST) => false,
        Err(e) => return Err(Error::io(path, e.into())),
    };
    let refuse = |what: String| {
        Error::new(
            ErrorKind::UntrustedFile,
            format!(
                "{} is {what}, not the private work folder of yours it should be: nothing was put in it; remove it if it is not yours, or set TMPDIR to another folder",
                shown_path(path)
            ),
        )
    };
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::LOOP | Errno::NOTDIR => refuse("a link or a file".into()),
        e => Error::io(path, e.into()),
    })?;
    if made {
        // The umask may have taken bits off; the folder is exactly owner-only.
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o700))
            .map_err(|e| Error::io(path, e.into()))?;
    }
    let st = rustix::fs::fstat(&fd).map_err(|e| Error::io(path, e.into()))?;
    if st.st_uid != uid {
        return Err(refuse(format!("another user's folder (uid {})", st.st_uid)));
    }
    if st.st_mode & 0o777 != 0o700 {
        return Err(refuse(format!(
            "a folder others may reach (mode {:o})",
            st.st_mode & 0o777
        )));
    }
    Ok(fd)
}

/// Removes the folders of killed runs in `base`: `run-*` folders of `uid` whose
/// lock no live run holds. Returns how many.
fn remove_stale(base: &OwnedFd, uid: u32) -> usize {
    let Ok(mut dir) = rustix::fs::Dir::read_from(base) else {
        return 0;
    };
    let mut stale = Vec::new();
    while let Some(Ok(entry)) = dir.read() {
        let name = entry.file_name();
        if name.to_bytes().starts_with(b"lock-") {
            remove_stale_lock(base, name, uid);
            continue;
        }
        if !name.to_bytes().starts_with(b"run-") {
            continue;
        }
        let Ok(st) = rustix::fs::statat(base, name, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory || st.st_uid != uid {
            continue;
        }
        let Ok(fd) = open_dir(base, name) else {
            continue;
        };
        if rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok() {
            stale.push(name.to_string_lossy().into_owned());
        }
    }
    stale.iter().filter(|name| remove_tree(base, name)).count()
}

/// Removes the identity lock `name` a killed run left: a regular file of `uid`'s
/// that no live run holds. (A run taking it meanwhile finds its name gone, and
/// takes a new one.)
fn remove_stale_lock(base: &OwnedFd, name: &CStr, uid: u32) {
    let Ok(fd) = rustix::fs::openat(
        base,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return;
    };
    let ours = rustix::fs::fstat(&fd).is_ok_and(|st| {
        FileType::from_raw_mode(st.st_mode) == FileType::RegularFile && st.st_uid == uid
    });
    if ours && rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok() {
        let _ = rustix::fs::unlinkat(base, name, AtFlags::empty());
    }
}

fn open_dir<P: rustix::path::Arg>(at: impl AsFd, name: P) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        at,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// Removes the folder `name` in `parent` with everything in it, following no
/// link; returns whether it is gone. Tries again when something is created in it
/// meanwhile.
fn remove_tree(parent: &OwnedFd, name: &str) -> bool {
    for _ in 0..8 {
        if let Ok(fd) = open_dir(parent, name) {
            empty(fd.as_fd(), 0);
        }
        match rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => return true,
            Err(_) => continue,
        }
    }
    false
}

/// Removes everything in the folder `dir` (folders nested deeper than a run makes
/// are left, and so is their parent).
fn empty(dir: BorrowedFd<'_>, depth: usize) {
    let Ok(mut entries) = rustix::fs::Dir::read_from(dir) else {
        return;
    };
    let mut names: Vec<(std::ffi::CString, FileType)> = Vec::new();
    while let Some(Ok(entry)) = entries.read() {
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push((name.to_owned(), entry.file_type()));
        }
    }
    for (name, kind) in names {
        let name: &CStr = &name;
        // The entry's type as the folder tells it, else as `fstatat` does.
        let is_dir = match kind {
            FileType::Unknown => rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory),
            kind => kind == FileType::Directory,
        };
        if is_dir {
            if depth < 8
                && let Ok(sub) = open_dir(dir, name)
            {
                empty(sub.as_fd(), depth + 1);
            }
            let _ = rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR);
        } else {
            let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
        }
    }
}
