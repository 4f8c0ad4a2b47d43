//! The corpus, walked from folder descriptors and trusting no name: each folder is
//! opened relative to its parent's descriptor (`openat`, `O_NOFOLLOW|O_DIRECTORY`),
//! and each entry is classified with `fstatat(AT_SYMLINK_NOFOLLOW)` before anything
//! opens it. A link, FIFO, socket or device is refused as what it is and never
//! opened; a folder swapped for a link mid-walk is not followed; a folder or entry
//! that cannot be read is one refusal and the walk goes on. Names are kept as
//! bytes. The walk streams (nothing is listed ahead), so memory stays flat however
//! large the corpus: a folder is held open per level, [`MAX_DEPTH`] levels at most.

use std::ffi::{CStr, OsStr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use idstore_repo::Error;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::names::escape;

/// How deep folders are walked; a folder deeper than this is refused (`too_deep`).
pub const MAX_DEPTH: usize = 64;

/// The suffixes of the files SQLite keeps beside a database (copied with it).
const SIDE_SUFFIXES: [&[u8]; 3] = [b"-journal", b"-wal", b"-shm"];

/// How many names of each kind of note the summary shows.
pub const NAMED: usize = 10;

/// One entry the walk found.
pub enum Found {
    /// A regular file to rehearse.
    File {
        /// Its name relative to the corpus, in the report's form.
        rel: String,
        /// A path to it through its folder's descriptor (`/proc/self/fd/N/NAME`),
        /// valid until the walk goes on: the folder cannot be swapped under it.
        path: PathBuf,
        /// Its size with its journal and log beside it.
        bytes: u64,
    },
    /// An entry refused as what it is, or that could not be read.
    Refused {
        /// Its name relative to the corpus (a folder's ends in `/`).
        rel: String,
        /// Why, as the report's `error_kind`: `symlink`, `fifo`, `socket`,
        /// `device`, `unreadable_folder`, `unreadable_file`, `too_deep`, `changed`.
        kind: &'static str,
        /// Why, in words.
        message: String,
    },
}

/// What the walk saw that is not a file to rehearse, for the summary.
#[derive(Debug, Default)]
pub struct Notes {
    /// `-journal`, `-wal` and `-shm` files with no database beside them.
    pub lone_side_files: u64,
    /// The first [`NAMED`] of them.
    pub lone_side_named: Vec<String>,
    /// The report itself, where it is inside the corpus (never rehearsed).
    pub report_inside: Option<String>,
}

struct Level {
    fd: OwnedFd,
    entries: rustix::fs::Dir,
    /// This folder's path relative to the corpus, with its trailing `/`.
    prefix: Vec<u8>,
}

/// A walk of the corpus.
pub struct Walk {
    stack: Vec<Level>,
    report: (u64, u64),
    /// What was seen besides files to rehearse.
    pub notes: Notes,
}

impl Walk {
    /// Starts at the folder `root` (a link there is the caller's own choice, and
    /// followed); `report` is the report's device and inode, never rehearsed.
    pub fn open(root: &Path, report: (u64, u64)) -> Result<Walk, Error> {
        let fd = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io(root, e.into()))?;
        let entries = rustix::fs::Dir::read_from(&fd).map_err(|e| Error::io(root, e.into()))?;
        Ok(Walk {
            stack: vec![Level {
                fd,
                entries,
                prefix: Vec::new(),
            }],
            report,
            notes: Notes::default(),
        })
    }

    /// The next entry, `None` when the walk is done.
    pub fn next_found(&mut self) -> Option<Found> {
        loop {
            let level = self.stack.last_mut()?;
            let entry = match level.entries.read() {
                None => {
                    self.stack.pop();
                    continue;
                }
                Some(Err(e)) => {
                    let rel = escape(&level.prefix);
                    self.stack.pop();
                    return Some(refused(
                        rel,
                        "unreadable_folder",
                        &format!("could not list it: {e}"),
                    ));
                }
                Some(Ok(entry)) => entry,
            };
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            let hinted_dir = entry.file_type() == FileType::Directory;
            if let Some(found) = self.classify(name.to_owned().as_c_str(), hinted_dir) {
                return Some(found);
            }
        }
    }

    /// What the entry `name` of the innermost folder is: a file to rehearse, a
    /// refusal, or nothing to report (a side file, a folder now walked).
    fn classify(&mut self, name: &CStr, hinted_dir: bool) -> Option<Found> {
        let depth = self.stack.len();
        let level = self.stack.last()?;
        let mut rel_bytes = level.prefix.clone();
        rel_bytes.extend_from_slice(name.to_bytes());
        let rel = escape(&rel_bytes);
        let st = match rustix::fs::statat(&level.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return None,
            Err(e) => {
                let (rel, kind) = if hinted_dir {
                    (format!("{rel}/"), "unreadable_folder")
                } else {
                    (rel, "unreadable_file")
                };
                return Some(refused(rel, kind, &format!("could not look at it: {e}")));
            }
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let rel = format!("{rel}/");
                if depth > MAX_DEPTH {
                    return Some(refused(
                        rel,
                        "too_deep",
                        &format!("nested deeper than {MAX_DEPTH} folders: not walked"),
                    ));
                }
                let fd = match rustix::fs::openat(
                    &level.fd,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => fd,
                    Err(Errno::ACCESS | Errno::PERM) => {
                        return Some(refused(
                            rel,
                            "unreadable_folder",
                            "permission denied: its files were not rehearsed",
                        ));
                    }
                    Err(Errno::LOOP | Errno::NOTDIR) => {
                        return Some(refused(
                            rel,
                            "changed",
                            "was replaced (by a link or a file) while the corpus was walked: not followed",
                        ));
                    }
                    Err(Errno::NOENT) => return None,
                    Err(e) => return Some(refused(rel, "unreadable_folder", &e.to_string())),
                };
                let same = rustix::fs::fstat(&fd)
                    .is_ok_and(|now| now.st_dev == st.st_dev && now.st_ino == st.st_ino);
                if !same {
                    return Some(refused(
                        rel,
                        "changed",
                        "was replaced by another folder while the corpus was walked: not walked",
                    ));
                }
                match rustix::fs::Dir::read_from(&fd) {
                    Ok(entries) => {
                        let mut prefix = rel_bytes;
                        prefix.push(b'/');
                        self.stack.push(Level {
                            fd,
                            entries,
                            prefix,
                        });
                        None
                    }
                    Err(e) => Some(refused(
                        rel,
                        "unreadable_folder",
                        &format!("could not list it: {e}"),
                    )),
                }
            }
            FileType::RegularFile => self.file(name, rel, &st),
            FileType::Symlink => Some(refused(
                rel,
                "symlink",
                "a symlink: never followed, not rehearsed",
            )),
            FileType::Fifo => Some(refused(rel, "fifo", "a FIFO: never opened, not rehearsed")),
            FileType::Socket => Some(refused(
                rel,
                "socket",
                "a socket: never opened, not rehearsed",
            )),
            FileType::CharacterDevice | FileType::BlockDevice => Some(refused(
                rel,
                "device",
                "a device: never opened, not rehearsed",
            )),
            FileType::Unknown => Some(refused(
                rel,
                "not_a_file",
                "not a regular file: never opened",
            )),
        }
    }

    /// A regular file: rehearsed, unless it is a side file (copied with its
    /// database, or noted when it has none) or the report.
    fn file(&mut self, name: &CStr, rel: String, st: &rustix::fs::Stat) -> Option<Found> {
        let level = self.stack.last()?;
        if (st.st_dev, st.st_ino) == self.report {
            self.notes.report_inside = Some(rel);
            return None;
        }
        let bytes = name.to_bytes();
        let regular_at = |n: &[u8]| {
            rustix::fs::statat(&level.fd, OsStr::from_bytes(n), AtFlags::SYMLINK_NOFOLLOW)
                .ok()
                .filter(|s| FileType::from_raw_mode(s.st_mode) == FileType::RegularFile)
        };
        if let Some(main) = SIDE_SUFFIXES.iter().find_map(|s| bytes.strip_suffix(*s)) {
            if regular_at(main).is_none() {
                self.notes.lone_side_files += 1;
                if self.notes.lone_side_named.len() < NAMED {
                    self.notes.lone_side_named.push(rel);
                }
            }
            return None;
        }
        let mut size = u64::try_from(st.st_size).unwrap_or(0);
        for suffix in [&b"-journal"[..], b"-wal"] {
            let side = [bytes, suffix].concat();
            if let Some(s) = regular_at(&side) {
                size = size.saturating_add(u64::try_from(s.st_size).unwrap_or(0));
            }
        }
        let mut path = PathBuf::from(format!("/proc/self/fd/{}", level.fd.as_raw_fd()));
        path.push(OsStr::from_bytes(bytes));
        Some(Found::File {
            rel,
            path,
            bytes: size,
        })
    }
}

fn refused(rel: String, kind: &'static str, message: &str) -> Found {
    Found::Refused {
        rel,
        kind,
        message: message.to_owned(),
    }
}
