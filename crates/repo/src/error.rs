//! The crate's one error type, [`Error`], and what a caller matches on, [`ErrorKind`].
//!
//! Every fallible function of the crate returns [`Error`]; `?` converts the errors of
//! the domain types, of Diesel and of the pool into it in one step. As with
//! [`std::io::Error`], the kind is a small enum and the message is free text written
//! where the failure happens, with the file and the next step: each module builds
//! its own errors with [`Error::at`] and the few constructors here. SQLite's errors
//! are classified here and nowhere else: by their result code's fixed message (Diesel
//! carries no code), so "locked", "disk full", "read-only" and the rest are each one
//! kind whatever layer met them. Messages name no command-line flag (the `idstore`
//! command adds its own hints by kind).
//!
//! This module depends on nothing else in the crate but the report it carries.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::migrations::report::MigrationReport;

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
    /// The path names something that is not a regular file: a FIFO, a device, a
    /// socket.
    NotAFile = "not_a_file",
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
    /// A name beside the database (a side file, a copy) is not what idstore made:
    /// a link, a FIFO, a file with other links or of another owner. Nothing was
    /// written through it.
    UntrustedFile = "untrusted_file",
    /// The file, its folder or its filesystem cannot be written (or it was opened
    /// read-only, or belongs to another user).
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
    /// first, and cannot be here (read-only storage, another user's file).
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
    /// A table holds a column idstore does not know, which the migration or
    /// rollback could not keep.
    UnknownColumns = "unknown_columns",
    /// The file already has the step (its objects exist) without a record of it.
    AlreadyApplied = "already_applied",
    /// The file has an object under a name idstore creates, and it differs.
    NameCollision = "name_collision",
    /// The file carries triggers or foreign keys that would act inside the run.
    ForeignObjects = "foreign_objects",
    /// Something idstore stored to give back on rollback was changed by another
    /// program and cannot be trusted.
    UntrustedSchema = "untrusted_schema",
    /// Rolling back the baseline (which drops `accounts` and `settings`) must be
    /// asked for explicitly.
    BaselineNotIncluded = "baseline_not_included",
    /// Rolling back would undo recorded quarantine decisions.
    DecisionsWouldBeUndone = "decisions_would_be_undone",
    /// Rolling back would lose quarantined items kept nowhere else: they must be
    /// decided on first.
    QuarantineWaiting = "quarantine_waiting",
    /// Rolling back the baseline would drop tables that hold user data.
    HoldsUserData = "holds_user_data",
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
    /// The call needs an active identity, and none is active.
    NoActiveIdentity = "no_active_identity",
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
    /// An async handle's queue of waiting calls was full: the call was not queued,
    /// and nothing of it ran.
    QueueFull = "queue_full",
    /// The call was cancelled (its future dropped) before it finished: the
    /// statement running was interrupted and its transaction rolled back.
    Cancelled = "cancelled",
    /// Code run inside a call (a closure given to the API) panicked: its
    /// transaction was rolled back, and the handle can be used again.
    Panicked = "panicked",
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
/// happened in words, with the file it is about and what to do next, and
/// [`source`](std::error::Error::source) gives the cause.
///
/// ```
/// # fn main() -> Result<(), idstore_repo::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// use idstore_repo::{Database, ErrorKind};
///
/// let err = Database::open(dir.path()).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::IsDirectory);
/// assert_eq!(err.kind().as_str(), "is_directory");
/// assert_eq!(err.path(), Some(dir.path()));
/// # Ok(()) }
/// ```
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    message: String,
    /// The file the error is about.
    path: Option<PathBuf>,
    /// Whether the message itself names `path`; when not, [`Display`](fmt::Display) puts it first.
    names_path: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    detail: Detail,
    /// What was wrong with the caller's input, in words safe to show a client
    /// (see [`Error::public_message`]).
    input: Option<String>,
}

/// What some errors carry beyond their message.
#[derive(Debug, Default)]
pub(crate) enum Detail {
    #[default]
    None,
    /// A rolled-back migration's report, with the errors validation found.
    Report(Box<MigrationReport>),
    /// A refusal for want of room: the bytes needed without the backup.
    WithoutBackup(u64),
    /// SQLite's own error, not yet put in context: the source is the
    /// `diesel::result::Error` (see [`Error::raw_sqlite`]).
    Sqlite,
    /// A storage fault put in context, with the bytes the operation needs when
    /// known.
    Storage { needed: Option<u64> },
    /// A refusal one of idstore's steps raises, by its stable token.
    Token(&'static str),
}

impl Error {
    /// An error of `kind` with a message of your own (as [`std::io::Error::new`]).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            message: message.into(),
            path: None,
            names_path: false,
            source: None,
            detail: Detail::None,
            input: None,
        }))
    }

    /// [`Error::new`] with a cause, which [`source`](std::error::Error::source) gives back.
    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::new(kind, message).caused_by(source)
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The file the error is about, when it is about one.
    pub fn path(&self) -> Option<&Path> {
        self.0.path.as_deref()
    }

    /// The error in words fit to show a service's client: what went wrong, by its
    /// kind, with no path, no process, no key and no name of this API; for input
    /// the caller gave (a DID, a setting, an account's fields), what was wrong with
    /// it. [`Display`](fmt::Display) is the operator's message, which names the
    /// file, the programs holding it and the next step: log that one.
    ///
    /// ```
    /// use idstore_repo::{Error, ErrorKind};
    ///
    /// let err = Error::from(idstore_repo::domain::Did::parse("did:none").unwrap_err());
    /// assert_eq!(err.kind(), ErrorKind::InvalidDid);
    /// assert!(err.public_message().starts_with("the DID is not valid: "));
    /// ```
    pub fn public_message(&self) -> String {
        let said = public_words(self.kind());
        match &self.0.input {
            Some(input) => format!("{said}: {input}"),
            None => said.to_owned(),
        }
    }

    /// For [`ErrorKind::ValidationFailed`] of a migration: the rolled-back run's
    /// report, with the errors found.
    pub fn report(&self) -> Option<&MigrationReport> {
        match &self.0.detail {
            Detail::Report(report) => Some(report),
            _ => None,
        }
    }

    /// For a refusal raised by one of idstore's migration steps: its stable token
    /// (`unknown_columns`), the one the app's migration service meets running the
    /// same step (its message starts `idstore:unknown_columns:`).
    pub fn token(&self) -> Option<&'static str> {
        match self.0.detail {
            Detail::Token(token) => Some(token),
            _ => None,
        }
    }

    /// For a refusal for want of room: the bytes the operation would need without
    /// its backup, when a backup was counted in.
    pub fn needed_without_backup(&self) -> Option<u64> {
        match self.0.detail {
            Detail::WithoutBackup(n) => Some(n),
            _ => None,
        }
    }

    /// An error about the file at `path`, whose `message` names it.
    pub(crate) fn at(kind: ErrorKind, path: &Path, message: impl Into<String>) -> Self {
        let mut e = Error::new(kind, message);
        e.0.path = Some(path.to_owned());
        e.0.names_path = true;
        e
    }

    /// The same error, caused by `source`.
    pub(crate) fn caused_by(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.0.source = Some(Box::new(source));
        self
    }

    /// The same error, caused by an already boxed `source`.
    pub(crate) fn caused_by_boxed(
        mut self,
        source: Box<dyn std::error::Error + Send + Sync>,
    ) -> Self {
        self.0.source = Some(source);
        self
    }

    /// The same error, about the caller's input: `what` (the domain's own words
    /// about a value, which name no file and no API) is what
    /// [`Error::public_message`] adds.
    pub(crate) fn of_input(mut self, what: &dyn fmt::Display) -> Self {
        self.0.input = Some(what.to_string());
        self
    }

    /// What the error carries beyond its message.
    pub(crate) fn detail(&self) -> &Detail {
        &self.0.detail
    }

    /// The same error, carrying `detail`.
    pub(crate) fn with_detail(mut self, detail: Detail) -> Self {
        self.0.detail = detail;
        self
    }

    /// The same error, about the file at `path` when it names none yet (the
    /// message then starts with the path).
    pub(crate) fn in_file(mut self, path: &Path) -> Self {
        if self.0.path.is_none() {
            self.0.path = Some(path.to_owned());
            self.0.names_path = false;
        }
        self
    }

    /// SQLite's own error, when this is one that no layer has put in context yet.
    pub(crate) fn raw_sqlite(&self) -> Option<&diesel::result::Error> {
        match self.0.detail {
            Detail::Sqlite => self.0.source.as_ref()?.downcast_ref(),
            _ => None,
        }
    }

    /// The error's cause, taken out.
    pub(crate) fn into_source(self) -> Option<Box<dyn std::error::Error + Send + Sync>> {
        self.0.source
    }

    /// An I/O error met on the file at `path`.
    pub fn io(path: &Path, source: io::Error) -> Self {
        Error::at(
            io_kind(&source),
            path,
            format!("could not access {}", path.display()),
        )
        .caused_by(source)
    }

    /// A panic of code run inside `what` (a closure given to the API), caught: its
    /// transaction was rolled back, and the handle goes on.
    pub(crate) fn panicked(what: &str, panic: Box<dyn std::any::Any + Send>) -> Self {
        let said = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Error::new(
            ErrorKind::Panicked,
            format!(
                "{what} panicked ({said}): its transaction was rolled back, and the handle can be used again"
            ),
        )
    }

    /// A stored value that cannot be read as what it should be, at `place`.
    pub(crate) fn stored_value(place: impl fmt::Display, reason: impl fmt::Display) -> Self {
        Error::new(
            ErrorKind::InvalidStoredValue,
            format!("{place} is not valid: {reason}"),
        )
    }
}

/// What [`Error::public_message`] says of each kind.
fn public_words(kind: ErrorKind) -> &'static str {
    use ErrorKind as K;
    match kind {
        K::UnknownAccount => "no account has this DID",
        K::AccountExists => "an account with this DID exists already",
        K::LastAccount => "the last account cannot be deleted",
        K::NoActiveIdentity => "no identity is active",
        K::InvalidAccount => "the account's fields are not acceptable",
        K::InvalidSetting => "a setting, or its value, is not acceptable",
        K::InvalidDid => "the DID is not valid",
        K::NotQuarantined => "no quarantined item has this name",
        K::NeedsForce => "discarding this item deletes key material and must be forced",
        K::Locked | K::PoolTimeout | K::InUse => "the database is busy; retry shortly",
        K::QueueFull => "too many requests are waiting for the database; retry shortly",
        K::Cancelled => "the request was cancelled before it finished; nothing of it was kept",
        K::DiskFull => "the service has no storage space left",
        K::ReadOnly => "the database cannot be written at the moment",
        K::Encrypted | K::WrongKey | K::NotEncrypted | K::InvalidKey => {
            "the database cannot be opened with the key given"
        }
        K::NeedsMigration | K::NeedsRepair => "the database must be upgraded before it can be used",
        K::NewerDatabase => "the database was written by a newer version of the service",
        K::NotFound => "the database does not exist",
        _ => "the service's database failed; the error was logged",
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
        match &self.0.path {
            Some(path) if !self.0.names_path => {
                write!(f, "{}: {}", path.display(), self.0.message)
            }
            _ => f.write_str(&self.0.message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

impl serde::Serialize for ErrorKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        let kind = classify(&e);
        let summary = match kind {
            ErrorKind::CannotOpen => {
                "SQLite could not open a file it needs (the database, or the journal or log it keeps beside it)"
            }
            _ => "database error",
        };
        Error::new(kind, summary)
            .caused_by(e)
            .with_detail(Detail::Sqlite)
    }
}

impl From<idstore_domain::SettingsError> for Error {
    fn from(e: idstore_domain::SettingsError) -> Self {
        let kind = match e {
            idstore_domain::SettingsError::Did(_) | idstore_domain::SettingsError::ActiveDid(_) => {
                ErrorKind::InvalidDid
            }
            _ => ErrorKind::InvalidSetting,
        };
        let made = Error::new(kind, e.to_string());
        match e {
            // About the file's content, not the caller's input.
            idstore_domain::SettingsError::StoredSearchBoxes(_) => made,
            _ => made.of_input(&e),
        }
    }
}

impl From<idstore_domain::DidError> for Error {
    fn from(e: idstore_domain::DidError) -> Self {
        Error::new(ErrorKind::InvalidDid, e.to_string()).of_input(&e)
    }
}

impl From<idstore_domain::AccountError> for Error {
    fn from(e: idstore_domain::AccountError) -> Self {
        Error::new(ErrorKind::InvalidAccount, format!("invalid account: {e}")).of_input(&e)
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
            } else if m == "interrupted" {
                // SQLITE_INTERRUPT: only an async call whose future was dropped
                // interrupts a connection of idstore's.
                ErrorKind::Cancelled
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
pub(crate) fn io_cause(e: &io::Error) -> String {
    match io_kind(e) {
        ErrorKind::DiskFull => format!("the disk is full ({e})"),
        _ if e.raw_os_error() == Some(5) => format!("an I/O error ({e})"),
        _ => e.to_string(),
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
            ("interrupted", ErrorKind::Cancelled),
            ("no such table: x", ErrorKind::Database),
        ] {
            let e = Error::from(db(message));
            assert_eq!(e.kind(), kind, "{message}");
            assert!(e.raw_sqlite().is_some());
        }
    }

    #[test]
    fn a_path_put_in_context_comes_first_once() {
        let e =
            Error::new(ErrorKind::NeedsMigration, "needs migrating").in_file(Path::new("/d/a.db"));
        assert_eq!(e.to_string(), "/d/a.db: needs migrating");
        let named = Error::at(
            ErrorKind::NotFound,
            Path::new("/d/a.db"),
            "no database at /d/a.db",
        )
        .in_file(Path::new("/other"));
        assert_eq!(named.to_string(), "no database at /d/a.db");
        assert_eq!(named.path(), Some(Path::new("/d/a.db")));
    }
}
