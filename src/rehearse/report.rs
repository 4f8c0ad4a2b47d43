//! The JSON Lines report, which several runs (shards) may append to at once and a
//! killed run may have left cut short.
//!
//! - Its path is checked without being followed (`fstatat`), then opened once,
//!   `O_NOFOLLOW|O_NONBLOCK|O_APPEND`, and checked again on the descriptor: a
//!   regular file of the caller's with one link. A FIFO, a link, a device or
//!   another user's file there is refused before a byte is read or written.
//! - Every read and write happens under an exclusive `flock` on it, and each record
//!   is one `write()`: records of runs sharing the report never mix, and a run sees
//!   what the others appended before it writes (so no file is reported twice).
//! - A last line cut short (a run killed mid-write, a full disk) is cut off when
//!   the next run starts, and its file is rehearsed again.
//! - It is read as a stream, from where the last read stopped, one line at a time
//!   (a line longer than [`MAX_LINE`] is skipped, not held).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use idstore_repo::{Error, ErrorKind};
use rustix::fs::{AtFlags, CWD, FileType, FlockOperation, Mode, OFlags};

use crate::output::shown_path;

/// The longest line read as a record; a longer one is skipped (and counted).
pub const MAX_LINE: usize = 1 << 20;

/// Held while a record is written: a signal that ends the process waits for it,
/// so no record is cut short by SIGINT or SIGTERM.
pub static WRITING: Mutex<()> = Mutex::new(());

/// The report, open.
pub struct Report {
    file: File,
    path: PathBuf,
    /// Where the next read starts: just after the last whole line read.
    read_to: u64,
    /// The file's device and inode.
    pub id: (u64, u64),
}

/// What reading the report found besides records.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reading {
    /// Lines longer than [`MAX_LINE`], skipped.
    pub overlong: u64,
}

impl Report {
    /// Opens (or creates, owner-only) the report at `path`; see the module's
    /// description for what is refused.
    pub fn open(path: &Path) -> Result<Report, Error> {
        match rustix::fs::statat(CWD, path, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => check(path, &st)?,
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(Error::io(path, e.into())),
        }
        let fd = rustix::fs::openat(
            CWD,
            path,
            OFlags::RDWR
                | OFlags::APPEND
                | OFlags::CREATE
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| match e {
            rustix::io::Errno::LOOP => refused(path, ErrorKind::UntrustedFile, "a symlink"),
            e => Error::io(path, e.into()),
        })?;
        let st = rustix::fs::fstat(&fd).map_err(|e| Error::io(path, e.into()))?;
        check(path, &st)?;
        Ok(Report {
            file: File::from(fd),
            path: path.to_owned(),
            read_to: 0,
            id: (st.st_dev, st.st_ino),
        })
    }

    /// Runs `f` holding the exclusive lock (waiting for another run's write).
    pub fn locked<T>(
        &mut self,
        f: impl FnOnce(&mut Report) -> Result<T, Error>,
    ) -> Result<T, Error> {
        rustix::fs::flock(&self.file, FlockOperation::LockExclusive)
            .map_err(|e| Error::io(&self.path, e.into()))?;
        let done = f(self);
        // Closing the file would release it too; an error here leaves it held
        // only until then.
        let _ = rustix::fs::flock(&self.file, FlockOperation::Unlock);
        done
    }

    /// Cuts off a last line without its newline (left by a run killed mid-write);
    /// returns how many bytes were cut. Call under the lock, before any read.
    pub fn heal(&mut self) -> Result<u64, Error> {
        let len = self.len()?;
        let mut end = len;
        let mut buf = vec![0u8; 64 * 1024];
        while end > 0 {
            let start = end.saturating_sub(buf.len() as u64);
            let chunk = &mut buf[..(end - start) as usize];
            self.file
                .read_exact_at(chunk, start)
                .map_err(|e| Error::io(&self.path, e))?;
            if let Some(at) = chunk.iter().rposition(|&b| b == b'\n') {
                end = start + at as u64 + 1;
                break;
            }
            end = start;
        }
        if end < len {
            self.file
                .set_len(end)
                .map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(len - end)
    }

    /// Reads every whole line appended since the last read, passing each to
    /// `line` (without its newline). Call under the lock.
    pub fn read_new(&mut self, mut line: impl FnMut(&[u8])) -> Result<Reading, Error> {
        let len = self.len()?;
        let mut reading = Reading::default();
        let mut buf = vec![0u8; 64 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        let mut overlong = false;
        let mut at = self.read_to;
        while at < len {
            let n = buf.len().min((len - at) as usize);
            self.file
                .read_exact_at(&mut buf[..n], at)
                .map_err(|e| Error::io(&self.path, e))?;
            at += n as u64;
            let mut rest = &buf[..n];
            while let Some(end) = rest.iter().position(|&b| b == b'\n') {
                if overlong || pending.len() + end > MAX_LINE {
                    reading.overlong += 1;
                } else if pending.is_empty() {
                    line(&rest[..end]);
                } else {
                    pending.extend_from_slice(&rest[..end]);
                    line(&pending);
                }
                pending.clear();
                overlong = false;
                rest = &rest[end + 1..];
                self.read_to = at - rest.len() as u64;
            }
            if !overlong && pending.len() + rest.len() <= MAX_LINE {
                pending.extend_from_slice(rest);
            } else {
                overlong = true;
                pending = Vec::new();
            }
        }
        Ok(reading)
    }

    /// Appends `record` (one line, its newline included) in one `write()`. A write
    /// that fails part way (a full disk) is cut off again, so no line is left
    /// half-written. Call under the lock.
    pub fn append(&mut self, record: &[u8]) -> Result<(), Error> {
        let _writing = WRITING.lock().unwrap_or_else(|e| e.into_inner());
        let start = self.len()?;
        let mut written = 0;
        while written < record.len() {
            match rustix::io::write(&self.file, &record[written..]) {
                Ok(0) => {
                    return self.undo(start, io::ErrorKind::WriteZero.into());
                }
                Ok(n) => written += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return self.undo(start, e.into()),
            }
        }
        Ok(())
    }

    /// Cuts a failed append off at `start`, and reports the write's error.
    fn undo(&mut self, start: u64, e: io::Error) -> Result<(), Error> {
        // The write's error is the one to report; a cut that fails too leaves a
        // line cut short, which the next run removes.
        let _ = self.file.set_len(start);
        Err(Error::with_source(
            ErrorKind::IoError,
            format!(
                "could not append a record to the report {}; the run stopped there, and a rerun picks up where it stopped",
                shown_path(&self.path)
            ),
            e,
        ))
    }

    fn len(&self) -> Result<u64, Error> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| Error::io(&self.path, e))
    }
}

/// Refuses a report path that is not a regular file of the caller's own with one
/// link.
fn check(path: &Path, st: &rustix::fs::Stat) -> Result<(), Error> {
    let what = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => None,
        FileType::Symlink => Some((ErrorKind::UntrustedFile, "a symlink")),
        FileType::Fifo => Some((ErrorKind::NotAFile, "a FIFO")),
        FileType::Socket => Some((ErrorKind::NotAFile, "a socket")),
        FileType::Directory => Some((ErrorKind::IsDirectory, "a directory")),
        FileType::CharacterDevice | FileType::BlockDevice => {
            Some((ErrorKind::NotAFile, "a device"))
        }
        FileType::Unknown => Some((ErrorKind::NotAFile, "not a regular file")),
    };
    if let Some((kind, what)) = what {
        return Err(refused(path, kind, what));
    }
    let me = rustix::process::geteuid().as_raw();
    if st.st_uid != me {
        return Err(refused(
            path,
            ErrorKind::UntrustedFile,
            &format!("another user's file (uid {})", st.st_uid),
        ));
    }
    if st.st_nlink != 1 {
        return Err(refused(
            path,
            ErrorKind::UntrustedFile,
            &format!(
                "a file with {} links (another name may be someone's file)",
                st.st_nlink
            ),
        ));
    }
    Ok(())
}

fn refused(path: &Path, kind: ErrorKind, what: &str) -> Error {
    Error::new(
        kind,
        format!(
            "the report path {} is {what}: refused before anything read or wrote it; give the path of a report file of your own (or a new name)",
            shown_path(path)
        ),
    )
}
