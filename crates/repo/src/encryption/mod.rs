//! Encrypted files (SQLCipher): the [`Key`] a file is opened with, its
//! [`CipherFormat`], and converting a file in place (encrypting, re-keying,
//! decrypting) with [`ConvertOptions`], through
//! [`Database::convert`](crate::Database::convert). Opening a file with its key is
//! [`OpenOptions::key`](crate::OpenOptions::key).
//!
//! **Rule:** a key never passes through SQL text, a log or `Debug` output (it
//! reaches SQLCipher through its C API, or a bound parameter for `ATTACH`), and its
//! memory is wiped when it is dropped; a conversion leaves the old file or the new
//! one whatever stops it, and no plaintext copy it did not report.

use std::path::PathBuf;

pub(crate) mod convert;
pub(crate) mod key;

pub use key::{CipherFormat, Key};

/// How [`Database::convert`](crate::Database::convert) rewrites a file: under which
/// key (none: plain) and SQLCipher format, with or without a backup, and whether
/// plaintext copies beside it are removed.
///
/// ```
/// use idstore_repo::encryption::{ConvertOptions, Key};
///
/// let options = ConvertOptions::new(Some(Key::new("the passphrase").unwrap()))
///     .backup_to("app.sqlite.before-encryption.sqlite")
///     .remove_plaintext_copies(true);
/// # let _ = options;
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    new_key: Option<Key>,
    sqlcipher_compatibility: Option<CipherFormat>,
    backup_to: Option<PathBuf>,
    remove_plaintext_copies: bool,
}

impl ConvertOptions {
    /// A conversion to `new_key` (none: a plain file), the file's SQLCipher format
    /// kept, no backup, plaintext copies left where they are.
    pub fn new(new_key: Option<Key>) -> Self {
        ConvertOptions {
            new_key,
            ..ConvertOptions::default()
        }
    }

    /// The SQLCipher format to write. Without it, an encrypted file keeps its own
    /// format and a plain one gets SQLCipher 4's.
    pub fn sqlcipher_compatibility(mut self, format: CipherFormat) -> Self {
        self.sqlcipher_compatibility = Some(format);
        self
    }

    /// Writes a backup of the file as it is to `dest` (which must not exist) before
    /// replacing it, never in plaintext when either side is encrypted: under the new
    /// key and format when there is a new key, else (decrypting) under the current
    /// key and format.
    pub fn backup_to(mut self, dest: impl Into<PathBuf>) -> Self {
        self.backup_to = Some(dest.into());
        self
    }

    /// Once the file is encrypted, removes every plaintext copy of it beside it (its
    /// earlier backups, a conversion's leftover copy): overwritten with zeros,
    /// synced, then unlinked. On flash storage, copy-on-write filesystems and
    /// snapshots the old blocks may survive: that cannot be guaranteed there.
    pub fn remove_plaintext_copies(mut self, remove: bool) -> Self {
        self.remove_plaintext_copies = remove;
        self
    }
}

/// What a conversion did.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// Tables copied (the app's own included).
    pub tables: usize,
    /// Rows copied, all tables together.
    pub rows: u64,
    /// Whether the file is encrypted now.
    pub encrypted: bool,
    /// The SQLCipher format the file has now (`None`: plain).
    pub cipher_format: Option<CipherFormat>,
    /// The SQLCipher format it had (`None`: it was plain).
    pub previous_format: Option<CipherFormat>,
    /// The backup written, when one was asked for.
    pub backup: Option<PathBuf>,
    /// Whether the backup is encrypted (under the new key when the file is
    /// encrypted now, else under the key it had).
    pub backup_encrypted: bool,
    /// Plaintext copies of the file beside it that were removed.
    pub removed_copies: Vec<PathBuf>,
    /// Plaintext copies of the file still beside it (its earlier backups, say):
    /// anyone who can read them reads the data.
    pub plaintext_copies: Vec<PathBuf>,
    /// Names beside the file that look like plaintext copies but were not idstore's
    /// to read or remove (a link, a FIFO, a file with other links, another user's),
    /// each with why: nothing was written through them.
    pub not_removed: Vec<(PathBuf, String)>,
    /// The page size, when the conversion changed it (before, after): an encrypted
    /// file has SQLCipher's page size, which its key alone must open.
    pub page_size_changed: Option<(u32, u32)>,
}
