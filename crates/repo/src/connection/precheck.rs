//! The file underneath a connection: its `file:` URI, its header checked before
//! SQLite opens it, what the storage allows, an interrupted write's journal, and
//! files created owner-only.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind};
use crate::fs::DbFile;

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The `file:` URI that opens exactly `path`, read-write (never creating) or
/// read-only; `immutable` tells SQLite that nothing can change the file (read-only
/// storage), so it needs no lock and no `-shm`.
pub(crate) fn sqlite_uri(path: &Path, read_only: bool, immutable: bool) -> String {
    let mode = if read_only { "ro" } else { "rw" };
    let immutable = if immutable { "&immutable=1" } else { "" };
    format!("file:{}?mode={mode}{immutable}", percent_encode_path(path))
}

/// The rollback journal of an interrupted write, when there is one: SQLite calls a
/// journal hot when it is there, not empty and its header not zeroed.
/// (Read through no link and no FIFO: [`DbFile::check_side_files`] refused those.)
pub(crate) fn hot_journal(file: &DbFile) -> Option<PathBuf> {
    use std::io::Read;
    let name = file.side_name("-journal");
    let mut first = [0u8; 1];
    let hot = file
        .folder
        .open_read(&name)
        .and_then(|(mut f, _)| f.read(&mut first))
        .is_ok_and(|n| n == 1 && first[0] != 0);
    // A journal is hot only while no writer holds the RESERVED lock: one that does
    // is in the middle of its transaction, and the journal is its live one.
    let hot = hot && !crate::connection::ffi::reserved_lock_held(file).unwrap_or(true);
    hot.then(|| file.folder.join(&name))
}

/// Whether the file's write-ahead log holds frames (more than its 32-byte header).
pub(crate) fn wal_has_frames(file: &DbFile) -> bool {
    matches!(file.folder.inspect(&file.side_name("-wal")), Ok(Some(e)) if e.len > 32)
}

/// Whether a name SQLite keeps beside the file exists.
pub(crate) fn has_side(file: &DbFile, suffix: &str) -> bool {
    file.has(&file.side_name(suffix))
}

/// The system's refusal of reading (and, with `write`, writing) `path`, asked
/// without opening it (closing a descriptor would drop this process's locks on it).
pub(crate) fn access_error(path: &Path, write: bool) -> Option<io::Error> {
    let mut access = rustix::fs::Access::READ_OK;
    if write {
        access |= rustix::fs::Access::WRITE_OK;
    }
    rustix::fs::access(path, access).err().map(io::Error::from)
}

/// Reads the first bytes of the file into `buf`; returns how many there were
/// (through SQLite's VFS, which takes no other connection's locks away: see
/// [`crate::connection::ffi::read_file_start`]).
fn read_header(file: &DbFile, buf: &mut [u8]) -> io::Result<usize> {
    crate::connection::ffi::read_file_start(file, buf)
}

/// Checks the start of an existing file before SQLite opens it. A file opened with
/// a key must not be plain SQLite (its header would be readable); one opened
/// without must be plain SQLite, and is reported as encrypted when it looks it.
pub(super) fn check_header(file: &DbFile, keyed: bool) -> Result<(), Error> {
    let path = file.path.as_path();
    let mut header = [0u8; 100];
    let read = read_header(file, &mut header).map_err(|source| file.error(source))?;
    if read == 0 {
        return Err(Error::at(
            ErrorKind::NotADatabase,
            path,
            format!(
                "{} is an empty file, not an SQLite database; remove it or pass another path",
                path.display()
            ),
        ));
    }
    let plain = read >= 16 && &header[..16] == SQLITE_HEADER;
    if keyed {
        // An encrypted file's first bytes are its salt: nothing more to check until
        // the key is tried on it.
        return if plain {
            Err(Error::at(
                ErrorKind::NotEncrypted,
                path,
                format!(
                    "{} is not encrypted, but a key was given; it was left untouched: open it without a key, or encrypt it first (Database::convert)",
                    path.display()
                ),
            ))
        } else {
            Ok(())
        };
    }
    if !plain {
        return Err(if !looks_encrypted(file, read) {
            Error::at(
                ErrorKind::NotADatabase,
                path,
                format!(
                    "{} is not an SQLite database (it does not start with \"SQLite format 3\"); it was left untouched: check the path",
                    path.display()
                ),
            )
        } else if cfg!(feature = "encryption") {
            Error::at(
                ErrorKind::Encrypted,
                path,
                format!(
                    "{} is encrypted (or is not an SQLite database at all): it needs its key",
                    path.display()
                ),
            )
        } else {
            no_encryption(path)
        });
    }
    if read == header.len() && is_truncated(file, &header) {
        return Err(Error::at(
            ErrorKind::Damaged,
            path,
            format!(
                "{} is damaged: it is shorter than its header says (truncated?); restore it from a backup",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// The refusal of an encrypted file by a build without encryption.
pub(crate) fn no_encryption(path: &Path) -> Error {
    Error::at(
        ErrorKind::Encrypted,
        path,
        format!(
            "this build of idstore has no encryption (the `encryption` feature), so it cannot open the encrypted file {}",
            path.display()
        ),
    )
}

/// Whether a file that does not start with the SQLite header looks encrypted: an
/// encrypted file is whole pages (SQLCipher's are 4096 bytes, or 1024 for
/// SQLCipher 3) that begin with a random salt and random-looking ciphertext (a
/// file of zeros, text or a repeated byte does not). Random noise passes too:
/// without the key the two cannot be told apart.
fn looks_encrypted(file: &DbFile, read: usize) -> bool {
    let whole_pages = file
        .entry
        .is_some_and(|m| m.len >= 1024 && m.len % 512 == 0);
    if read < 16 || !whole_pages {
        return false;
    }
    let mut start = [0u8; 1024];
    let Ok(n) = read_header(file, &mut start) else {
        return false;
    };
    let mut seen = [false; 256];
    for &b in &start[..n] {
        seen[usize::from(b)] = true;
    }
    // 1024 random bytes take about 250 distinct values.
    n == start.len() && seen.iter().filter(|s| **s).count() >= 128
}

/// Whether the file at `path` is encrypted, as far as can be told without its key:
/// it exists, does not start with the SQLite header, and is made of whole pages.
/// Anything but a regular file is refused before it is opened.
pub fn is_encrypted(path: &Path) -> Result<bool, Error> {
    let file = DbFile::locate(path)?;
    let mut header = [0u8; 100];
    let read = read_header(&file, &mut header).map_err(|e| file.error(e))?;
    Ok(!(read >= 16 && &header[..16] == SQLITE_HEADER) && looks_encrypted(&file, read))
}

/// Whether the file is shorter than the page count its header vouches for. SQLite
/// trusts that count only while the "version-valid-for" field matches the change
/// counter, and a `-wal` file may hold pages not yet in the main file, so the check
/// is skipped then.
fn is_truncated(file: &DbFile, header: &[u8; 100]) -> bool {
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536u64,
        n => u64::from(n),
    };
    let (change_counter, pages, valid_for) = (be32(24), u64::from(be32(28)), be32(92));
    // With a hot journal the header may be the interrupted write's, which SQLite
    // rolls back before it reads anything: that is no truncation.
    if change_counter != valid_for
        || pages == 0
        || has_side(file, "-wal")
        || hot_journal(file).is_some()
    {
        return false;
    }
    file.entry.is_some_and(|e| e.len < pages * page_size)
}

/// Percent-encodes a path for an SQLite `file:` URI, byte for byte, so any file
/// name (with `?`, `#`, `%` or non-UTF-8 bytes) opens exactly that file.
fn percent_encode_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_encoding_escapes_reserved_bytes() {
        assert_eq!(
            percent_encode_path(Path::new("/a b/c?d#e%f.db")),
            "/a%20b/c%3Fd%23e%25f.db"
        );
        assert_eq!(
            sqlite_uri(Path::new("/d/x.db"), true, true),
            "file:/d/x.db?mode=ro&immutable=1"
        );
    }
}
