//! The crate's one error type, [`Error`], and what a caller matches on, [`ErrorKind`].
//!
//! Every fallible function of the crate returns [`Error`]; `?` converts the errors of
//! the domain types, of Diesel and of the pool into it in one step. SQLite's errors
//! are classified here and nowhere else: by their result code's fixed message (Diesel
//! carries no code), so "locked", "disk full", "read-only" and the rest are each one
//! kind whatever layer met them. Messages are for people: they say what happened and
//! what was (not) changed, and name no command-line flag (the `idstore` command adds
//! its own hints by kind).
//!
//! This module depends on nothing else in the crate but the reports it carries.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::report::MigrationReport;
use idstore_domain::display::Shown;

macro_rules! error_kinds {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, )*) => {
        /// What kind of error happened: the value to match on. Its stable name,
        /// [`ErrorKind::as_str`], is what `idstore --json` prints as `error.kind`.
        ///
        /// | kind | name |
        /// |---|---|
        $( #[doc = concat!("| [`ErrorKind::", stringify!($variant), "`] | `", $name, "` |")] )*
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorKind {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$variant,)*];

            /// The kind's stable name (`disk_full`), as scripts see it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorKind::$variant => $name,)*
                }
            }
        }
    };
}

error_kinds! {
    /// No database at the path (and it was not to be created).
    NotFound = "not_found",
    /// The path names a directory.
    IsDirectory = "is_directory",
    /// The folder that should hold a new database does not exist.
    MissingFolder = "missing_folder",
    /// The file is not an SQLite database (empty, or another format).
    NotADatabase = "not_a_database",
    /// The file is damaged (cut short, or SQLite found it malformed).
    Damaged = "damaged",
    /// The input a migration reads is damaged; nothing was written.
    DamagedInput = "damaged_input",
    /// A path that must be new already exists.
    Exists = "exists",
    /// The file, its folder or its filesystem cannot be written (or it was opened
    /// read-only).
    ReadOnly = "read_only",
    /// Another connection held a lock past the busy timeout.
    Locked = "locked",
    /// The disk (or a quota) has no room for what the operation needs.
    DiskFull = "disk_full",
    /// A read, write or sync failed at the storage.
    IoError = "io_error",
    /// SQLite could not open the file.
    CannotOpen = "cannot_open",
    /// An interrupted write (a hot journal, a write-ahead log) must be recovered
    /// first, and cannot be here (read-only storage).
    NeedsRecovery = "needs_recovery",
    /// The file is encrypted and no key was given.
    Encrypted = "encrypted",
    /// The key does not open the file.
    WrongKey = "wrong_key",
    /// A key was given for a plain file.
    NotEncrypted = "not_encrypted",
    /// A key (or the place it was read from) is not usable.
    InvalidKey = "invalid_key",
    /// Another program has the file open.
    InUse = "in_use",
    /// A conversion could not give the new file the owner and group of the old one
    /// (it would lock its owner out); run it as the file's owner or as root.
    CannotKeepOwner = "cannot_keep_owner",
    /// A backup copy could not be written.
    BackupFailed = "backup_failed",
    /// The database must be migrated before it can be served.
    NeedsMigration = "needs_migration",
    /// A newer idstore wrote the database.
    NewerDatabase = "newer_database",
    /// No migration has the version asked for.
    UnknownVersion = "unknown_version",
    /// A legacy file whose tables idstore cannot adopt without loss.
    LegacyShape = "legacy_shape",
    /// The app's own `active_identity` needs a later target to be adopted.
    TargetTooLow = "target_too_low",
    /// The file has an object under a name idstore creates, and it differs.
    NameCollision = "name_collision",
    /// The file carries triggers or foreign keys that would act inside the run.
    ForeignObjects = "foreign_objects",
    /// Something idstore stored to give back on rollback was changed by another
    /// program and cannot be trusted.
    UntrustedSchema = "untrusted_schema",
    /// Rolling back the baseline must be asked for.
    BaselineNeedsFlag = "baseline_needs_flag",
    /// Rolling back would undo recorded quarantine decisions.
    DecisionsWouldBeUndone = "decisions_would_be_undone",
    /// The migrated (or converted) result failed validation; it was rolled back.
    ValidationFailed = "validation_failed",
    /// A migration step's SQL failed; it was rolled back.
    MigrationFailed = "migration_failed",
    /// No account has the DID.
    UnknownAccount = "unknown_account",
    /// An account with the DID exists already.
    AccountExists = "account_exists",
    /// Deleting the account would leave none.
    LastAccount = "last_account",
    /// A new account's fields are not acceptable.
    InvalidAccount = "invalid_account",
    /// A setting, or its value, is not acceptable.
    InvalidSetting = "invalid_setting",
    /// A DID is not valid.
    InvalidDid = "invalid_did",
    /// A value stored in the file cannot be read or is not valid.
    InvalidStoredValue = "invalid_stored_value",
    /// A repair could not fix what it should; it was rolled back.
    RepairIncomplete = "repair_incomplete",
    /// The quarantined item does not exist.
    NotQuarantined = "not_quarantined",
    /// The action deletes key material for good and must be forced.
    NeedsForce = "needs_force",
    /// The file lacks something only a repair puts back.
    NeedsRepair = "needs_repair",
    /// An export file could not be written.
    ExportFailed = "export_failed",
    /// The connection pool could not hand out a connection in time.
    PoolTimeout = "pool_timeout",
    /// Another database error.
    Database = "database_error",
    /// Anything else (an error made by a caller with [`Error::new`]).
    Other = "error",
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an operation failed. Writes run in one transaction, so on any error but
/// those that say otherwise, nothing was changed.
///
/// Match on [`Error::kind`]; the message ([`Display`](fmt::Display)) says what
/// happened in words, and [`source`](std::error::Error::source) gives the cause.
///
/// ```
/// # fn main() -> Result<(), idstore_repo::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// use idstore_repo::{Database, ErrorKind};
///
/// let err = Database::open(dir.path()).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::IsDirectory);
/// assert_eq!(err.kind().as_str(), "is_directory");
/// # Ok(()) }
/// ```
pub struct Error(Box<Repr>);

impl Error {
    /// An error of `kind` with a message of your own (as [`std::io::Error::new`]).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Repr::Custom {
            kind,
            message: message.into(),
            source: None,
        }
        .into()
    }

    /// [`Error::new`] with a cause, which [`source`](std::error::Error::source) gives back.
    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Repr::Custom {
            kind,
            message: message.into(),
            source: Some(Box::new(source)),
        }
        .into()
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind()
    }

    /// The file the error is about, when it is about one.
    pub fn path(&self) -> Option<&Path> {
        self.0.path()
    }

    /// For [`ErrorKind::ValidationFailed`] of a migration: the rolled-back run's
    /// report, with the errors found.
    pub fn report(&self) -> Option<&MigrationReport> {
        match &*self.0 {
            Repr::ValidationFailed { report } => Some(report),
            _ => None,
        }
    }

    /// For a refusal for want of room: the bytes the operation would need without
    /// its backup, when a backup was counted in.
    pub fn needed_without_backup(&self) -> Option<u64> {
        match &*self.0 {
            Repr::NotEnoughSpace { without_backup, .. } => *without_backup,
            Repr::BackupNoRoom { .. } => Some(0),
            _ => None,
        }
    }

    pub(crate) fn repr(&self) -> &Repr {
        &self.0
    }

    pub(crate) fn into_repr(self) -> Repr {
        *self.0
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind())
            .field("message", &self.to_string())
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0)
    }
}

impl From<Repr> for Error {
    fn from(r: Repr) -> Self {
        Error(Box::new(r))
    }
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        Repr::Sqlite {
            kind: classify(&e),
            source: e,
        }
        .into()
    }
}

impl From<idstore_domain::SettingsError> for Error {
    fn from(e: idstore_domain::SettingsError) -> Self {
        Repr::Settings(e).into()
    }
}

impl From<idstore_domain::DidError> for Error {
    fn from(e: idstore_domain::DidError) -> Self {
        Repr::Did(e).into()
    }
}

impl From<idstore_domain::quarantine::ParseQuarantineRefError> for Error {
    fn from(e: idstore_domain::quarantine::ParseQuarantineRefError) -> Self {
        Error::with_source(ErrorKind::NotQuarantined, "not a quarantined item", e)
    }
}

/// What SQLite's error is, from the fixed message of its result code (Diesel keeps
/// the message, not the code): the one place SQLite errors are classified.
pub(crate) fn classify(e: &diesel::result::Error) -> ErrorKind {
    use diesel::result::Error as D;
    match e {
        D::DatabaseError(_, info) => {
            let m = info.message();
            // SQLITE_BUSY / SQLITE_LOCKED, SQLITE_FULL, SQLITE_IOERR, SQLITE_READONLY,
            // SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_CANTOPEN.
            if m.contains("database is locked") || m.contains("database table is locked") {
                ErrorKind::Locked
            } else if m.contains("database or disk is full") {
                ErrorKind::DiskFull
            } else if m.contains("disk I/O error") {
                ErrorKind::IoError
            } else if m.contains("attempt to write a readonly database") {
                ErrorKind::ReadOnly
            } else if m.contains("database disk image is malformed") {
                ErrorKind::Damaged
            } else if m.contains("file is not a database") {
                ErrorKind::NotADatabase
            } else if m.contains("unable to open database file") {
                ErrorKind::CannotOpen
            } else {
                ErrorKind::Database
            }
        }
        D::DeserializationError(_) => ErrorKind::InvalidStoredValue,
        _ => ErrorKind::Database,
    }
}

/// Whether a Diesel error is SQLite's `database is locked`.
pub(crate) fn is_locked(e: &diesel::result::Error) -> bool {
    classify(e) == ErrorKind::Locked
}

/// A storage fault, where it happened and the room around it.
#[derive(Debug)]
pub(crate) struct StorageFault {
    /// Full disk or I/O error.
    pub kind: ErrorKind,
    /// The database file, when known.
    pub path: Option<PathBuf>,
    /// Bytes free for this user on the database's filesystem, when known.
    pub free_bytes: Option<u64>,
    /// About how many bytes the operation needs, when estimated.
    pub needed_bytes: Option<u64>,
    /// SQLite's own error.
    pub source: diesel::result::Error,
}

impl fmt::Display for StorageFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self
            .path
            .as_deref()
            .map_or_else(|| "the database".to_owned(), |p| p.display().to_string());
        if self.kind == ErrorKind::DiskFull {
            let folder = self.path.as_deref().map_or_else(
                || "the database's folder".to_owned(),
                |p| folder_of(p).display().to_string(),
            );
            write!(f, "the disk holding {folder} is full")?;
            match (self.free_bytes, self.needed_bytes) {
                (Some(free), Some(needed)) => write!(
                    f,
                    " ({} free, the operation needs about {})",
                    human(free),
                    human(needed)
                )?,
                (Some(free), None) => write!(f, " ({} free)", human(free))?,
                _ => {}
            }
            write!(
                f,
                ": nothing was changed in {file}; free some space there (or move the file to a disk with room) and retry"
            )
        } else {
            write!(
                f,
                "a disk I/O error interrupted the work on {file}: nothing was changed (SQLite rolled it back); check the storage device, then retry"
            )
        }
    }
}

impl std::error::Error for StorageFault {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Why a file cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadOnlyCause {
    /// The filesystem is mounted read-only.
    Filesystem,
    /// The file's permissions allow no writing.
    FilePermission,
    /// The folder cannot be written (SQLite writes its journal there).
    FolderPermission,
}

/// A new account's fields that are not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InvalidAccount {
    MissingPublicKey,
    PublicKeyNotHex,
    PublicKeyTooLong { max: usize, len: usize },
    DateCreated { given: String },
}

impl fmt::Display for InvalidAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidAccount::MissingPublicKey => f.write_str("a public key is required"),
            InvalidAccount::PublicKeyNotHex => {
                f.write_str("the public key must be hex digits (0-9, a-f)")
            }
            InvalidAccount::PublicKeyTooLong { max, len } => write!(
                f,
                "the public key is {len} hex digits long; at most {max} are accepted"
            ),
            InvalidAccount::DateCreated { given } => write!(
                f,
                "dateCreated {given:?} is not an RFC 3339 time such as 2024-03-01T12:00:00.000Z"
            ),
        }
    }
}

/// Every error the crate makes, with what its message needs. Private: callers see
/// [`Error`] and its [`ErrorKind`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum Repr {
    // Opening.
    #[error("{} is a directory; pass the path of a database file", path.display())]
    IsDirectory { path: PathBuf },
    #[error("no database at {}", path.display())]
    NotFound { path: PathBuf },
    #[error("cannot create {}: the folder {} does not exist; create it first", path.display(), parent.display())]
    MissingParent { path: PathBuf, parent: PathBuf },
    #[error("{} is an empty file, not an SQLite database; remove it or pass another path", path.display())]
    Empty { path: PathBuf },
    #[error("{} is not an SQLite database (it does not start with \"SQLite format 3\"); it was left untouched", path.display())]
    NotSqlite { path: PathBuf },
    #[error("{} is encrypted (or is not an SQLite database at all): it needs its key", path.display())]
    Encrypted { path: PathBuf },
    #[error("the key does not open {}: it is not this file's key, or the file is not in the SQLCipher format asked for (without one, SQLCipher 3 and 4 files are both tried); the file was left untouched", path.display())]
    WrongKey { path: PathBuf },
    #[error("{} is not encrypted, but a key was given; it was left untouched", path.display())]
    NotEncrypted { path: PathBuf },
    #[error("this build of idstore has no encryption (the `encryption` feature), so it cannot open the encrypted file {}", path.display())]
    NoEncryption { path: PathBuf },
    #[error("{}", read_only_message(path, *cause))]
    ReadOnly { path: PathBuf, cause: ReadOnlyCause },
    #[error("{} is damaged: it is shorter than its header says (truncated?); restore it from a backup", path.display())]
    Truncated { path: PathBuf },
    #[error("{}", needs_recovery_message(path, journal))]
    NeedsRecovery { path: PathBuf, journal: PathBuf },
    #[error("could not access {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("could not open database at {}", path.display())]
    Connection {
        path: PathBuf,
        #[source]
        source: diesel::ConnectionError,
    },
    #[error("could not configure database at {}", path.display())]
    Configure {
        path: PathBuf,
        kind: ErrorKind,
        #[source]
        source: diesel::result::Error,
    },

    // Backups and room.
    #[error(
        "no room for the backup {}: it needs about {}{}; nothing was written and the database was not changed; free some space there, or go without a backup",
        path.display(),
        human(*needed),
        free.map(|f| format!(", {} is free", human(f))).unwrap_or_default()
    )]
    BackupNoRoom {
        path: PathBuf,
        needed: u64,
        free: Option<u64>,
    },
    #[error("could not write a backup to {} (the database was not changed)", path.display())]
    Backup {
        path: PathBuf,
        kind: ErrorKind,
        #[source]
        source: diesel::result::Error,
    },
    #[error(
        "not enough free space beside {}: {operation} needs about {} there ({}write-ahead log and rebuilt tables), and {} is free; nothing was changed; free some space there and retry{}",
        path.display(),
        human(*needed),
        if without_backup.is_some() { "backup, " } else { "" },
        human(*free),
        without_backup.map(|n| format!(" (without a backup it needs about {})", human(n))).unwrap_or_default()
    )]
    NotEnoughSpace {
        operation: &'static str,
        path: PathBuf,
        needed: u64,
        free: u64,
        without_backup: Option<u64>,
    },
    #[error(transparent)]
    Storage(StorageFault),

    // Keys.
    #[error("the key is empty")]
    EmptyKey,
    #[error(
        "a raw key is x' followed by 64 hex digits (or 96, with the salt) and a closing '; this one is not"
    )]
    BadRawKey,

    // Serving.
    #[error("the database needs migrating first (pending: {})", pending.join(", "))]
    NeedsMigration { pending: Vec<String> },
    #[error("no account has DID {did}")]
    UnknownAccount { did: idstore_domain::Did },
    #[error("an account with DID {did} already exists")]
    AccountExists { did: idstore_domain::Did },
    #[error(
        "{did} is the last account; deleting it leaves no identity, so it must be allowed explicitly"
    )]
    LastAccount { did: idstore_domain::Did },
    #[error("invalid account: {0}")]
    InvalidAccount(InvalidAccount),
    #[error(
        "the active identity is not a per-account setting; change it with save_settings or set_active_did"
    )]
    ActiveDidInAccountSettings,
    #[error("{where_} is not valid: {reason}")]
    StoredValue { where_: String, reason: String },
    #[error("repair rolled back: a fixable problem remained ({kind}: {detail})")]
    RepairIncomplete { kind: &'static str, detail: String },
    #[error(transparent)]
    Settings(idstore_domain::SettingsError),
    #[error(transparent)]
    Did(idstore_domain::DidError),

    // The runner.
    #[error(
        "the database has migrations this build of idstore does not know ({}): it was written by a newer idstore; upgrade idstore before touching it",
        versions.iter().map(|v| Shown(v).to_string()).collect::<Vec<_>>().join(", ")
    )]
    UnknownVersions { versions: Vec<String> },
    #[error("no migration has version {version}; known versions: {}", known.join(", "))]
    UnknownTarget { version: String, known: Vec<String> },
    #[error("this file does not have the legacy shape idstore can adopt without loss: {}", problems.join("; "))]
    LegacyShape { problems: Vec<String> },
    #[error(
        "the file holds the app's own active_identity table; migrate at least to version {needed} to adopt it"
    )]
    TargetTooLowForAdoption { needed: String },
    #[error(
        "the file already has a {kind} named {name} and {why}; idstore would create its own under that name: rename or drop the file's {kind} first (nothing was changed)"
    )]
    NameCollision {
        kind: String,
        name: String,
        why: String,
    },
    #[error(
        "the file carries {} that would run inside this {operation}: {}; idstore runs no program's code but its own, so nothing was changed: make a copy, drop {} (the app does not create such objects), and retry",
        if objects.len() == 1 { "an object" } else { "objects" },
        objects.join("; "),
        if objects.len() == 1 { "it" } else { "them" }
    )]
    ForeignObjects {
        operation: &'static str,
        objects: Vec<String>,
    },
    #[error(
        "{what} was changed by another program and cannot be trusted ({why}); nothing was changed: restore the file from a backup taken before the change"
    )]
    UntrustedSchema { what: String, why: String },
    #[error(
        "rolling back the baseline drops the accounts and settings tables; it must be asked for explicitly (include_baseline)"
    )]
    BaselineNeedsFlag,
    #[error(
        "rolling back drops the record of restore decisions ({}) that a later migrate would undo, keeping the replaced accounts instead; discard the replaced accounts first, or roll back forgetting those decisions (forget_decisions)",
        items.join(", ")
    )]
    DecisionsWouldBeUndone { items: Vec<String> },
    #[error("the database is damaged, so nothing was migrated: {}; restore it from a backup", problems.join("; "))]
    DamagedInput { problems: Vec<String> },
    #[error("validation failed, everything was rolled back: {}", report.errors.join("; "))]
    ValidationFailed { report: Box<MigrationReport> },
    #[error("migration {version} failed, everything was rolled back")]
    Step {
        version: String,
        kind: ErrorKind,
        #[source]
        source: diesel::result::Error,
    },

    // Quarantine decisions.
    #[error("{item} is not in the quarantine (it may have been decided already)")]
    QuarantineNotFound { item: String },
    #[error(
        "{item} cannot be restored: its value {value:?} names no account; add that account first, or discard the value"
    )]
    PointerNamesNoAccount { item: String, value: String },
    #[error("{item} cannot be restored: {value:?} is not a valid DID ({reason})")]
    InvalidPointer {
        item: String,
        value: String,
        reason: String,
    },
    #[error(
        "this file has no quarantine_decisions log to record the decision in; a repair re-creates it"
    )]
    NoDecisionLog,
    #[error(
        "idstore's {} {} missing from this file (another program dropped {}); a repair re-creates {} (empty)",
        if tables.len() == 1 { "table" } else { "tables" },
        if tables.len() == 1 { format!("{} is", tables[0]) } else { format!("{} are", tables.join(", ")) },
        if tables.len() == 1 { "it" } else { "them" },
        if tables.len() == 1 { "it" } else { "them" }
    )]
    MissingTables { tables: Vec<&'static str> },
    #[error(
        "{item} holds key material: forgetting it deletes that for good; export it instead, or force it"
    )]
    ForgetNeedsForce { item: String },
    #[error("{} already exists; exports never overwrite a file: pass a new path", path.display())]
    ExportExists { path: PathBuf },
    #[error("could not write the export to {}; the item was not deleted", path.display())]
    Export {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    // Conversions.
    #[error("{} is open in another program ({}); close it and try again; nothing was changed", path.display(), holders)]
    InUse { path: PathBuf, holders: String },
    #[error(
        "the converted copy differs from the original ({0}); it was removed and nothing was changed"
    )]
    Mismatch(String),
    #[error("could not write the converted copy {}: {}; nothing was changed", path.display(), io_cause(error))]
    ConvertWrite { path: PathBuf, error: io::Error },
    #[error(
        "{} was converted, but its folder could not be synced ({}), so the change may not survive a power loss (the old file would come back whole); check the disk",
        path.display(),
        io_cause(error)
    )]
    NotDurable { path: PathBuf, error: io::Error },
    #[error(
        "could not give the converted copy the owner and mode of {} ({}): the program that owns the file could not open it any more; run this as the file's owner or as root; nothing was changed",
        path.display(),
        io_cause(error)
    )]
    KeepOwner { path: PathBuf, error: io::Error },
    #[error("could not write the backup {} ({}); it was removed and the database was not changed", path.display(), io_cause(error))]
    BackupWrite { path: PathBuf, error: io::Error },
    #[error(
        "the file was converted, but the plaintext copy {} could not be removed ({}); remove it by hand",
        path.display(),
        io_cause(error)
    )]
    Wipe { path: PathBuf, error: io::Error },
    #[error("the conversion failed; nothing was changed")]
    Convert {
        kind: ErrorKind,
        #[source]
        source: diesel::result::Error,
    },

    // The pool.
    #[cfg(feature = "pool")]
    #[error("no pooled connection became free in time")]
    PoolTimeout(#[source] r2d2::Error),

    // SQLite, classified.
    #[error("{}", sqlite_summary(*kind))]
    Sqlite {
        kind: ErrorKind,
        #[source]
        source: diesel::result::Error,
    },

    #[error("{message}")]
    Custom {
        kind: ErrorKind,
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl Repr {
    fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            Repr::IsDirectory { .. } => K::IsDirectory,
            Repr::NotFound { .. } => K::NotFound,
            Repr::MissingParent { .. } => K::MissingFolder,
            Repr::Empty { .. } | Repr::NotSqlite { .. } => K::NotADatabase,
            Repr::Encrypted { .. } | Repr::NoEncryption { .. } => K::Encrypted,
            Repr::WrongKey { .. } => K::WrongKey,
            Repr::NotEncrypted { .. } => K::NotEncrypted,
            Repr::ExportExists { .. } => K::Exists,
            Repr::ReadOnly { .. } => K::ReadOnly,
            Repr::Truncated { .. } => K::Damaged,
            Repr::NeedsRecovery { .. } => K::NeedsRecovery,
            Repr::Io { source, .. } => io_kind(source),
            Repr::Connection { .. } => K::CannotOpen,
            Repr::Configure { kind, .. }
            | Repr::Backup { kind, .. }
            | Repr::Step { kind, .. }
            | Repr::Convert { kind, .. }
            | Repr::Sqlite { kind, .. }
            | Repr::Custom { kind, .. } => *kind,
            Repr::BackupNoRoom { .. } | Repr::NotEnoughSpace { .. } => K::DiskFull,
            Repr::Storage(f) => f.kind,
            Repr::EmptyKey | Repr::BadRawKey => K::InvalidKey,
            Repr::NeedsMigration { .. } => K::NeedsMigration,
            Repr::UnknownAccount { .. } | Repr::PointerNamesNoAccount { .. } => K::UnknownAccount,
            Repr::AccountExists { .. } => K::AccountExists,
            Repr::LastAccount { .. } => K::LastAccount,
            Repr::InvalidAccount(_) => K::InvalidAccount,
            Repr::ActiveDidInAccountSettings | Repr::Settings(_) => K::InvalidSetting,
            Repr::Did(_) => K::InvalidDid,
            Repr::StoredValue { .. } | Repr::InvalidPointer { .. } => K::InvalidStoredValue,
            Repr::RepairIncomplete { .. } => K::RepairIncomplete,
            Repr::UnknownVersions { .. } => K::NewerDatabase,
            Repr::UnknownTarget { .. } => K::UnknownVersion,
            Repr::LegacyShape { .. } => K::LegacyShape,
            Repr::TargetTooLowForAdoption { .. } => K::TargetTooLow,
            Repr::NameCollision { .. } => K::NameCollision,
            Repr::ForeignObjects { .. } => K::ForeignObjects,
            Repr::UntrustedSchema { .. } => K::UntrustedSchema,
            Repr::BaselineNeedsFlag => K::BaselineNeedsFlag,
            Repr::DecisionsWouldBeUndone { .. } => K::DecisionsWouldBeUndone,
            Repr::DamagedInput { .. } => K::DamagedInput,
            Repr::ValidationFailed { .. } | Repr::Mismatch(_) => K::ValidationFailed,
            Repr::QuarantineNotFound { .. } => K::NotQuarantined,
            Repr::NoDecisionLog | Repr::MissingTables { .. } => K::NeedsRepair,
            Repr::ForgetNeedsForce { .. } => K::NeedsForce,
            Repr::Export { .. } => K::ExportFailed,
            Repr::InUse { .. } => K::InUse,
            Repr::ConvertWrite { error, .. }
            | Repr::NotDurable { error, .. }
            | Repr::Wipe { error, .. } => io_kind(error),
            Repr::KeepOwner { .. } => K::CannotKeepOwner,
            Repr::BackupWrite { error, .. } => match io_kind(error) {
                K::DiskFull => K::DiskFull,
                K::Exists => K::Exists,
                _ => K::BackupFailed,
            },
            #[cfg(feature = "pool")]
            Repr::PoolTimeout(_) => K::PoolTimeout,
        }
    }

    fn path(&self) -> Option<&Path> {
        match self {
            Repr::IsDirectory { path }
            | Repr::NotFound { path }
            | Repr::MissingParent { path, .. }
            | Repr::Empty { path }
            | Repr::NotSqlite { path }
            | Repr::Encrypted { path }
            | Repr::WrongKey { path }
            | Repr::NotEncrypted { path }
            | Repr::NoEncryption { path }
            | Repr::ReadOnly { path, .. }
            | Repr::Truncated { path }
            | Repr::NeedsRecovery { path, .. }
            | Repr::Io { path, .. }
            | Repr::Connection { path, .. }
            | Repr::Configure { path, .. }
            | Repr::BackupNoRoom { path, .. }
            | Repr::Backup { path, .. }
            | Repr::NotEnoughSpace { path, .. }
            | Repr::ExportExists { path }
            | Repr::Export { path, .. }
            | Repr::InUse { path, .. }
            | Repr::ConvertWrite { path, .. }
            | Repr::NotDurable { path, .. }
            | Repr::KeepOwner { path, .. }
            | Repr::BackupWrite { path, .. }
            | Repr::Wipe { path, .. } => Some(path),
            Repr::Storage(f) => f.path.as_deref(),
            _ => None,
        }
    }

    /// A raw SQLite error inside, when there is one and it has no file context yet.
    pub(crate) fn sqlite(&self) -> Option<&diesel::result::Error> {
        match self {
            Repr::Sqlite { source, .. } | Repr::Step { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The error kind of an I/O error.
pub(crate) fn io_kind(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::NotFound => ErrorKind::NotFound,
        io::ErrorKind::AlreadyExists => ErrorKind::Exists,
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => ErrorKind::DiskFull,
        io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied => ErrorKind::ReadOnly,
        io::ErrorKind::IsADirectory => ErrorKind::IsDirectory,
        _ => ErrorKind::IoError,
    }
}

/// An I/O error in the words the other storage faults use, with the system's own.
fn io_cause(e: &io::Error) -> String {
    match io_kind(e) {
        ErrorKind::DiskFull => format!("the disk is full ({e})"),
        _ if e.raw_os_error() == Some(5) => format!("an I/O error ({e})"),
        _ => e.to_string(),
    }
}

fn read_only_message(path: &Path, cause: ReadOnlyCause) -> String {
    let file = path.display();
    let folder = folder_of(path).display();
    let why = match cause {
        ReadOnlyCause::Filesystem => {
            format!("{file} is on a read-only filesystem (the one holding {folder})")
        }
        ReadOnlyCause::FilePermission => {
            format!("{file} is read-only (its permissions allow no writing)")
        }
        ReadOnlyCause::FolderPermission => format!(
            "the folder {folder} cannot be written, and SQLite writes its journal beside {file}"
        ),
    };
    format!(
        "{why}: nothing was written; to change it, copy the file to writable storage (or make it writable) and run the command there"
    )
}

fn needs_recovery_message(path: &Path, journal: &Path) -> String {
    format!(
        "{} holds an interrupted write ({} beside it) that SQLite must recover before the file can be read, and it cannot here: the storage is read-only; copy both files to writable storage and open the copy there (any idstore command recovers it), or open it where it is once the storage is writable",
        path.display(),
        journal.display()
    )
}

/// What a classified SQLite error is, before SQLite's own words.
fn sqlite_summary(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::CannotOpen => {
            "SQLite could not open a file it needs (the database, or the journal or log it keeps beside it)"
        }
        _ => "database error",
    }
}

/// The folder a file is in (`.` for a bare name).
pub(crate) fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A byte count as a person reads it: `512 B`, `3.2 KiB`, `41.0 MiB`.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_a_person_reads_them() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(3 * 1024 + 205), "3.2 KiB");
        assert_eq!(human(41 * 1024 * 1024), "41.0 MiB");
    }

    #[test]
    fn every_kind_has_its_own_stable_name() {
        let mut names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "two kinds share a name");
    }

    #[test]
    fn sqlite_errors_are_classified_by_their_result_code_message() {
        let db = |m: &str| {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::Unknown,
                Box::new(m.to_owned()),
            )
        };
        for (message, kind) in [
            ("database is locked", ErrorKind::Locked),
            ("database or disk is full", ErrorKind::DiskFull),
            ("disk I/O error", ErrorKind::IoError),
            ("attempt to write a readonly database", ErrorKind::ReadOnly),
            ("database disk image is malformed", ErrorKind::Damaged),
            ("file is not a database", ErrorKind::NotADatabase),
            ("unable to open database file", ErrorKind::CannotOpen),
            ("no such table: x", ErrorKind::Database),
        ] {
            assert_eq!(Error::from(db(message)).kind(), kind, "{message}");
        }
    }
}
