//! Errors of opening a database and of the repository's reads and writes (the
//! runner's own, [`MigrateError`], lives with it in `migrations`).

use std::io;
use std::path::PathBuf;

pub use crate::migrations::MigrateError;

/// Why a database could not be opened. Nothing is written to the path in any case.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The path names a directory.
    #[error("{} is a directory; pass the path of a database file", path.display())]
    IsDirectory {
        /// The path.
        path: PathBuf,
    },
    /// The file does not exist and creating it was not allowed.
    #[error("no database at {}; check the path, or migrate to create one", path.display())]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// The folder that should hold a new database does not exist.
    #[error("cannot create {}: the folder {} does not exist; create it first", path.display(), parent.display())]
    MissingParent {
        /// The path.
        path: PathBuf,
        /// Its missing folder.
        parent: PathBuf,
    },
    /// The file exists but is empty: not a database, and not created by idstore.
    #[error("{} is an empty file, not an SQLite database; remove it or pass another path", path.display())]
    Empty {
        /// The path.
        path: PathBuf,
    },
    /// The file does not start with the SQLite header.
    #[error("{} is not an SQLite database (it does not start with \"SQLite format 3\"); it was left untouched", path.display())]
    NotSqlite {
        /// The path.
        path: PathBuf,
    },
    /// The file looks encrypted and no key was given.
    #[error("{} is encrypted (or is not an SQLite database at all): it needs its key", path.display())]
    Encrypted {
        /// The path.
        path: PathBuf,
    },
    /// The key given does not decrypt the file (it was left untouched).
    #[error("the key does not open {}: it is not this file's key (a file written by SQLCipher 3 also needs the SQLCipher 3 compatibility setting); the file was left untouched", path.display())]
    WrongKey {
        /// The path.
        path: PathBuf,
    },
    /// A key was given for a file that is not encrypted.
    #[error("{} is not encrypted, but a key was given; it was left untouched", path.display())]
    NotEncrypted {
        /// The path.
        path: PathBuf,
    },
    /// The path exists and the command only creates new files.
    #[error("{} already exists; pass a path that does not", path.display())]
    Exists {
        /// The path.
        path: PathBuf,
    },
    /// The file is read-only and the command writes.
    #[error("{} is read-only; make it writable (chmod u+w) or work on a copy", path.display())]
    ReadOnly {
        /// The path.
        path: PathBuf,
    },
    /// The file is shorter than its own header says: it was cut off (a failed copy,
    /// a full disk).
    #[error("{} is damaged: it is shorter than its header says (truncated?); restore it from a backup", path.display())]
    Truncated {
        /// The path.
        path: PathBuf,
    },
    /// Reading or creating the file failed.
    #[error("could not access {}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// SQLite refused the file.
    #[error("could not open database at {}", path.display())]
    Connection {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: diesel::ConnectionError,
    },
    /// Setting the connection pragmas failed (a damaged or locked file, say).
    #[error("could not configure database at {}", path.display())]
    Configure {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: diesel::result::Error,
    },
    /// The disk holding the backup has too little room for it; nothing was written.
    #[error(
        "no room for the backup {}: it needs about {}{}; nothing was written and the database was not changed; free some space there, or pass --no-backup to go without one",
        path.display(),
        crate::fault::human(*needed),
        free.map(|f| format!(", {} is free", crate::fault::human(f))).unwrap_or_default()
    )]
    BackupNoRoom {
        /// The backup path.
        path: PathBuf,
        /// Bytes the copy needs (about the database's size).
        needed: u64,
        /// Bytes free, when known.
        free: Option<u64>,
    },
    /// The write-ahead log beside the file could not be created (a full disk, an I/O
    /// error); the file was not changed.
    #[error(
        "could not switch {} to write-ahead logging, which writes {}-wal beside it{}; the file was not changed; free some space in that folder (or check the storage device) and retry",
        path.display(),
        path.display(),
        free.map(|f| if f < 1 << 20 {
            format!(": the disk is full ({} free there)", crate::fault::human(f))
        } else {
            format!(" ({} free there)", crate::fault::human(f))
        }).unwrap_or_default()
    )]
    Wal {
        /// The database.
        path: PathBuf,
        /// Bytes free in its folder, when known.
        free: Option<u64>,
        /// SQLite's error.
        #[source]
        source: diesel::result::Error,
    },
    /// Writing a backup copy failed; the database itself was not changed.
    #[error("could not write a backup to {} (the database was not changed)", path.display())]
    Backup {
        /// The backup path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: diesel::result::Error,
    },
}

/// What is wrong with a new account's fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAccount {
    /// No public key was given.
    #[error("a public key is required")]
    MissingPublicKey,
    /// The public key is not hex, or too long.
    #[error("the public key must be at most {max} hex digits")]
    PublicKeyNotHex {
        /// The most hex digits accepted.
        max: usize,
    },
    /// `dateCreated` is not an RFC 3339 time.
    #[error("dateCreated {given:?} is not an RFC 3339 time such as 2024-03-01T12:00:00.000Z")]
    DateCreated {
        /// What was given (shortened).
        given: String,
    },
}

/// Why a repository read or write failed. Writes run in one immediate transaction,
/// so on any error nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The database is below the latest migration and not stopped at a pause point.
    #[error("the database needs migrating first (pending: {})", pending.join(", "))]
    NeedsMigration {
        /// Versions not yet applied.
        pending: Vec<String>,
    },
    /// No account has this DID.
    #[error("no account has DID {did}")]
    UnknownAccount {
        /// The DID asked for.
        did: idstore_domain::Did,
    },
    /// An account with this DID already exists.
    #[error("an account with DID {did} already exists")]
    AccountExists {
        /// The DID.
        did: idstore_domain::Did,
    },
    /// Deleting this account would leave no identity at all.
    #[error(
        "{did} is the last account; deleting it leaves no identity, so it must be allowed explicitly"
    )]
    LastAccount {
        /// The DID.
        did: idstore_domain::Did,
    },
    /// A new account's fields are not acceptable.
    #[error("invalid account")]
    InvalidAccount(#[source] InvalidAccount),
    /// The active identity is not a per-account setting.
    #[error(
        "the active identity is not a per-account setting; change it with save_settings or set_active_did"
    )]
    ActiveDidInAccountSettings,
    /// A value stored in the database is not valid (a foreign writer put it there).
    #[error("stored {what} {value:?} is invalid ({reason}); a health check lists such problems")]
    StoredValue {
        /// Which value.
        what: &'static str,
        /// The value (shortened).
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A repair could not fix a problem it should fix; it was rolled back.
    #[error("repair rolled back: a fixable problem remained ({}: {})", .0.kind.as_str(), .0.detail)]
    RepairIncomplete(Box<crate::health::Problem>),
    /// A quarantine decision was refused.
    #[error(transparent)]
    Quarantine(#[from] crate::quarantine::QuarantineError),
    /// A setting or its value was refused.
    #[error(transparent)]
    Settings(#[from] idstore_domain::SettingsError),
    /// Opening the database failed.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Reading the migration state failed.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// The storage refused a write (a full disk, an I/O error); nothing was changed.
    #[error(transparent)]
    Storage(crate::fault::StorageFault),
    /// The connection pool could not be built.
    #[cfg(feature = "pool")]
    #[error("could not build the connection pool")]
    Pool(#[source] diesel::r2d2::PoolError),
    /// A database error (`database is locked` past the busy timeout, a full disk …).
    #[error("database error")]
    Diesel(#[from] diesel::result::Error),
}

/// Whether a database error is SQLite's `database is locked` (another program held a
/// lock past the busy timeout).
fn locked(e: &diesel::result::Error) -> bool {
    crate::connection::is_locked(e)
}

impl OpenError {
    /// A stable name for the kind of error, for scripts (`--json`'s `error.kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            OpenError::IsDirectory { .. } => "is_directory",
            OpenError::NotFound { .. } => "not_found",
            OpenError::MissingParent { .. } => "missing_folder",
            OpenError::Empty { .. } | OpenError::NotSqlite { .. } => "not_a_database",
            OpenError::Exists { .. } => "exists",
            OpenError::Encrypted { .. } => "encrypted",
            OpenError::WrongKey { .. } => "wrong_key",
            OpenError::NotEncrypted { .. } => "not_encrypted",
            OpenError::ReadOnly { .. } => "read_only",
            OpenError::Truncated { .. } => "damaged",
            OpenError::Io { .. } => "io_error",
            OpenError::Connection { .. } => "cannot_open",
            OpenError::Configure { source, .. } if locked(source) => "locked",
            OpenError::Configure { .. } => "cannot_open",
            OpenError::BackupNoRoom { .. } => "disk_full",
            OpenError::Wal { source, free, .. } => match (crate::fault::fault_kind(source), free) {
                (Some(crate::fault::StorageFaultKind::DiskFull), _) => "disk_full",
                (_, Some(f)) if *f < 1 << 20 => "disk_full",
                _ => "io_error",
            },
            OpenError::Backup { source, .. } if locked(source) => "locked",
            OpenError::Backup { .. } => "backup_failed",
        }
    }
}

impl RepoError {
    /// A stable name for the kind of error, for scripts (`--json`'s `error.kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            RepoError::NeedsMigration { .. } => "needs_migration",
            RepoError::UnknownAccount { .. } => "unknown_account",
            RepoError::AccountExists { .. } => "account_exists",
            RepoError::LastAccount { .. } => "last_account",
            RepoError::InvalidAccount(_) => "invalid_account",
            RepoError::ActiveDidInAccountSettings => "invalid_setting",
            RepoError::StoredValue { .. } => "invalid_stored_value",
            RepoError::RepairIncomplete(_) => "repair_incomplete",
            RepoError::Quarantine(q) => q.kind(),
            RepoError::Settings(_) => "invalid_setting",
            RepoError::Open(o) => o.kind(),
            RepoError::Migrate(m) => m.kind(),
            RepoError::Storage(f) => f.kind_name(),
            #[cfg(feature = "pool")]
            RepoError::Pool(_) => "pool",
            RepoError::Diesel(source) if locked(source) => "locked",
            RepoError::Diesel(_) => "database_error",
        }
    }
}
