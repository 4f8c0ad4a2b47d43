//! Where keys come from: the environment or a file, never a command-line value
//! (other users can read those in `ps`). Taken with care: a variable that is not
//! text is an error, never "no key"; a key file must be a regular file of at most
//! [`MAX_KEY_FILE`] bytes, read with a bounded read (a FIFO, a device or a folder is
//! refused, never read); one that others can read gets a warning. A process that
//! holds a key turns its core dumps off first.

use std::io::Read;
use std::path::Path;

use idstore_repo::encryption::Key;
use idstore_repo::{Error, ErrorKind};

use crate::output::note;

/// The largest key file accepted. A passphrase or a raw key is well under it.
pub const MAX_KEY_FILE: u64 = 4096;

/// Whether any key source is given: the variables, or the files.
pub fn any_given(files: &[Option<&Path>]) -> bool {
    files.iter().any(Option::is_some)
        || ["IDSTORE_KEY", "IDSTORE_NEW_KEY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// Turns core dumps off for this process, so no key reaches a dump file: the
/// process is made non-dumpable and its core size limit 0.
pub fn no_core_dumps() {
    #[cfg(target_os = "linux")]
    {
        let _ =
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    }
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Core,
        rustix::process::Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    );
}

/// The key from the file `file` (from `file_flag`), else from the variable `var`
/// (empty: no key). Both at once is refused, so there is never a doubt which key was
/// used. Nothing here ever shows the key.
pub fn read_key(var: &str, file: Option<&Path>, file_flag: &str) -> Result<Option<Key>, Error> {
    let from_env = match std::env::var_os(var) {
        None => None,
        Some(v) if v.is_empty() => None,
        Some(v) => Some(v.into_string().map_err(|_| {
            Error::new(
                ErrorKind::InvalidKey,
                format!("{var} is not UTF-8 text, so it holds no usable key; give the key as text, or in a file with {file_flag}"),
            )
        })?),
    };
    match (file, from_env) {
        (Some(_), Some(_)) => Err(Error::new(
            ErrorKind::InvalidKey,
            format!("a key came from both {var} and {file_flag}; give it one way"),
        )),
        (Some(path), None) => read_key_file(path).map(Some),
        (None, Some(text)) => Key::new(text).map(Some).map_err(|e| {
            Error::with_source(
                ErrorKind::InvalidKey,
                format!("{var} holds no usable key"),
                e,
            )
        }),
        (None, None) => Ok(None),
    }
}

/// Reads a key file: a regular file of at most [`MAX_KEY_FILE`] bytes, opened
/// without blocking (a FIFO with no writer would wait for ever) and read with a
/// bounded read.
fn read_key_file(path: &Path) -> Result<Key, Error> {
    let refuse = |why: String| {
        Error::new(
            ErrorKind::InvalidKey,
            format!("the key file {} {why}", path.display()),
        )
    };
    let io = |e: std::io::Error| {
        Error::with_source(
            ErrorKind::InvalidKey,
            format!("could not read the key file {}", path.display()),
            e,
        )
    };
    let file = open_without_blocking(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a folder"
        } else {
            "not a regular file (a FIFO, a socket or a device)"
        };
        return Err(refuse(format!("is {what}; keep the key in a regular file")));
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(refuse(format!(
            "is {} bytes long; a key file holds at most {MAX_KEY_FILE}",
            meta.len()
        )));
    }
    warn_if_shared(path, &meta);
    let mut content = Vec::new();
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut content)
        .map_err(io)?;
    if content.len() as u64 > MAX_KEY_FILE {
        return Err(refuse(format!("holds more than {MAX_KEY_FILE} bytes")));
    }
    Key::from_file_content(content).map_err(|e| {
        Error::with_source(
            ErrorKind::InvalidKey,
            format!("the key file {} holds no usable key", path.display()),
            e,
        )
    })
}

fn open_without_blocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
}

/// A warning on stderr when the key file can be read by its group or by others.
fn warn_if_shared(path: &Path, meta: &std::fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        note(&format!(
            "warning: the key file {} can be read by {} (mode {mode:03o}); `chmod 600` it so only you can",
            path.display(),
            if mode & 0o007 != 0 {
                "every user"
            } else {
                "its group"
            }
        ));
    }
}
