//! The front door: [`OpenOptions`] opens a [`Database`], which covers a service's
//! whole life with one file: create or open, migrate (or refuse), serve through its
//! [`Store`], status, check, repair, back up, roll back.

use std::path::Path;
use std::time::Duration;

use crate::connection::{Handle, JournalMode, Settings, Synchronous};
use crate::encryption::key::{CipherFormat, Key};
use crate::encryption::{ConvertOptions, Converted};
use crate::error::Error;
use crate::health::{HealthReport, Problem, RepairReport};
use crate::migrations::Version;
use crate::migrations::report::{MigrationReport, RollbackReport};
use crate::migrations::{MigrateOptions, MigrationPlan, MigrationStatus, RollbackOptions};
use crate::store::Store;

/// How to open a database: read-write and creating by default. [`Database::open`]
/// is `OpenOptions::new().open(path)`.
///
/// ```
/// # fn main() -> Result<(), idstore_repo::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("app.sqlite");
/// # idstore_repo::Database::open(&path)?.migrate(&Default::default())?;
/// use std::time::Duration;
/// use idstore_repo::OpenOptions;
///
/// // An existing file, read-only: nothing is written, not even a journal.
/// let mut db = OpenOptions::new()
///     .read_only(true)
///     .busy_timeout(Duration::from_secs(1))
///     .open(&path)?;
/// assert!(db.status()?.servable());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    settings: Settings,
    /// The SQLCipher format asked for, kept apart from the key so that the builder's
    /// calls work in any order.
    compatibility: Option<u8>,
}

impl OpenOptions {
    /// Read-write, creating the file (owner-only permissions) when it is missing,
    /// waiting up to 5 s for another program's lock, no key.
    pub fn new() -> Self {
        OpenOptions::default()
    }

    /// Whether a missing file may be created (default: yes). A file the open
    /// creates is an empty database at once (its first page written, under the key
    /// when there is one): left unmigrated, the next open serves it. Nothing of a
    /// create that fails is left behind.
    pub fn create(mut self, create: bool) -> Self {
        self.settings.create = create;
        self
    }

    /// Open read-only (default: no). Nothing is written, not even the journal mode;
    /// a file on read-only storage is read as it is.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.settings.read_only = read_only;
        self
    }

    /// How long to wait for a lock held by another connection (default 5 s).
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.settings.busy_timeout = timeout;
        self
    }

    /// How commits are made durable (default [`Synchronous::Extra`]: every commit
    /// survives a power cut, in both journal modes). A lower level makes ordinary
    /// writes cheaper and lets a power cut undo the last ones (see [`Synchronous`]);
    /// migrations, rollbacks, repairs and quarantine decisions always commit at
    /// `Extra` (a decision made inside a unit of work, [`Database::transaction`],
    /// commits with the unit, at this level).
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.settings.synchronous = synchronous;
        self
    }

    /// Marks the file as a private scratch copy, thrown away after use (default:
    /// no): nothing on it is ever synced (`synchronous = OFF`), migrations,
    /// rollbacks and repairs included, and a rollback-journal file keeps its
    /// journal in memory and its lock for the connection's life
    /// (`journal_mode = MEMORY`, `locking_mode = EXCLUSIVE`), so a crash or a power
    /// cut can lose or damage what was written, and no other connection can use
    /// the file meanwhile. For copies no one else opens or keeps, such as a
    /// rehearsal's; never for a file that matters.
    pub fn scratch(mut self, scratch: bool) -> Self {
        self.settings.scratch = scratch;
        if scratch {
            self.settings.synchronous = Synchronous::Off;
        }
        self
    }

    /// Sets the file's journal mode as it opens (default: none, the file keeps its
    /// own). The mode stays with the file: once in WAL, every program that opens it
    /// uses WAL, and the app's web build (absurd-sql) cannot open it. A switch needs
    /// the file to itself, and waits up to the busy timeout for other connections.
    pub fn journal_mode(mut self, mode: JournalMode) -> Self {
        self.settings.journal_mode = Some(mode);
        self
    }

    /// The key of an encrypted file (none: a plain file); a new file created with a
    /// key is encrypted with it. Needs the `encryption` feature: without it, opening
    /// with a key is refused ([`ErrorKind::Encrypted`](crate::ErrorKind::Encrypted)).
    ///
    /// A file written by SQLCipher 4's defaults or by SQLCipher 3 opens with its key
    /// alone (the format is found by trying both);
    /// [`sqlcipher_compatibility`](Self::sqlcipher_compatibility) fixes it instead.
    pub fn key(mut self, key: Option<Key>) -> Self {
        let compatibility = self.compatibility;
        self.settings.keying = key.map(|key| crate::connection::ffi::Keying { key, compatibility });
        self
    }

    /// Opens the encrypted file in `format` instead of finding it. Only applies
    /// with a key, given before or after this call.
    pub fn sqlcipher_compatibility(mut self, format: CipherFormat) -> Self {
        self.compatibility = Some(format.version());
        if let Some(k) = &mut self.settings.keying {
            k.compatibility = self.compatibility;
        }
        self
    }

    /// Opens `path`. Refuses, without writing anything: a directory, an empty file,
    /// a file that is not SQLite, a missing file when not creating, a key that does
    /// not open it (or a key for a plain file), and for a read-write open, read-only
    /// storage or a file without write permission. An interrupted write left by
    /// another program (a hot journal) is rolled back first, as SQLite does; where
    /// the storage is read-only and it cannot be, the open is refused
    /// ([`ErrorKind::NeedsRecovery`](crate::ErrorKind::NeedsRecovery)).
    ///
    /// `:memory:` opens a private database of this `Database`'s own, as SQLite's
    /// `:memory:` does: a new file in a new owner-only temporary folder, removed
    /// with everything in it when the `Database` is dropped (so backups, recovery
    /// and every check work on it as on any file, and nothing is left behind).
    pub fn open(&self, path: &Path) -> Result<Database, Error> {
        if path == Path::new(":memory:") {
            let scratch = crate::fs::WorkFolder::new(&std::env::temp_dir())?;
            let file = scratch.path().join("memory.sqlite");
            let handle = Handle::open(&file, &self.settings.clone_creating())?;
            return Ok(Database {
                handle,
                _scratch: Some(scratch),
            });
        }
        let handle = Handle::open(path, &self.settings)?;
        remove_interrupted_conversion(&handle);
        Ok(Database {
            handle,
            _scratch: None,
        })
    }

    /// Copies the database at `path` into `dest` (a new file, owner-only, in a
    /// folder private to the caller) as one consistent state, whatever other
    /// programs are doing with the file: a private copy to work on, opened with
    /// [`scratch`](Self::scratch). Nothing is created at or beside `path`, nothing
    /// is written there (but a log in use's shared index, as any reader writes it),
    /// and nothing is synced.
    ///
    /// `path` is taken as given: a link in its folder part is followed (a
    /// `/proc/self/fd/N/NAME` path pins a folder the caller holds open), but a link,
    /// FIFO, device or socket at its name, or at a side file's name beside it, is
    /// refused without being opened. The copy is taken under SQLite's reader lock
    /// (waiting up to the busy timeout for a writer to finish), with the file's
    /// interrupted write (a hot `-journal`) or a write-ahead log no program has open
    /// copied beside it, so the copy's first open recovers them as the device
    /// would; a log in use is read through SQLite's backup API in one read
    /// transaction, which needs the key of an encrypted file.
    ///
    /// ```
    /// # fn main() -> Result<(), idstore_repo::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("app.sqlite");
    /// # let private = tempfile::tempdir().unwrap();
    /// use idstore_repo::{Database, MigrateOptions, OpenOptions};
    ///
    /// Database::open(&path)?.migrate(&MigrateOptions::new())?; // a file some app uses
    /// let copy = private.path().join("copy.sqlite");
    /// OpenOptions::new().snapshot(&path, &copy)?;
    /// let mut scratch = OpenOptions::new().create(false).scratch(true).open(&copy)?;
    /// assert!(scratch.check()?.ok());
    /// # Ok(()) }
    /// ```
    pub fn snapshot(&self, path: &Path, dest: &Path) -> Result<(), Error> {
        crate::connection::snapshot::snapshot(path, &self.settings, dest)
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// Removes what an interrupted conversion left beside the file (a copy that may
/// hold the data unencrypted, or a name planted in its place), when there is
/// anything and the file's write lock can be had at once: a running conversion
/// holds that lock until its copy is gone. Where it cannot (read-only storage, no
/// key, another user's file, another writer), it stays, and [`Database::status`]
/// and [`Database::check`] report it.
fn remove_interrupted_conversion(handle: &Handle) {
    if crate::fs::leftovers::leftovers(&handle.file).is_empty() {
        return;
    }
    let writer = Settings {
        create: false,
        read_only: false,
        busy_timeout: Duration::ZERO,
        ..handle.settings.clone()
    };
    let Ok(mut lock) = Handle::open(&handle.path, &writer) else {
        return;
    };
    use diesel::connection::SimpleConnection;
    if lock.conn.batch_execute("BEGIN IMMEDIATE").is_ok() {
        crate::fs::leftovers::remove_leftovers(&lock.file);
        let _ = lock.conn.batch_execute("ROLLBACK");
    }
}

/// One open database file: every operation on it goes through here.
///
/// A service's life with one:
///
/// ```
/// # fn main() -> Result<(), idstore_repo::Error> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("app.sqlite");
/// use idstore_repo::domain::{Did, NewAccount};
/// use idstore_repo::{Database, ErrorKind, MigrateOptions};
///
/// let mut db = Database::open(&path)?; // created when missing
/// assert_eq!(db.store().unwrap_err().kind(), ErrorKind::NeedsMigration);
/// let report = db.migrate(&MigrateOptions::new())?;
/// assert_eq!(report.applied.len(), 3);
///
/// let alice = Did::parse("did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01")?;
/// let mut store = db.store()?;
/// store.add_account(&NewAccount::new(alice.clone(), "02ab", "2024-03-01T12:00:00.000Z"))?;
/// store.set_active_did(Some(&alice))?;
/// assert!(db.check()?.ok());
/// # Ok(()) }
/// ```
pub struct Database {
    handle: Handle,
    /// The temporary folder of a `:memory:` database, removed after the
    /// connection closes (fields drop in order).
    _scratch: Option<crate::fs::WorkFolder>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.handle.path)
            .field("read_only", &self.handle.read_only())
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Opens `path` read-write, creating it when it is missing: the same as
    /// `OpenOptions::new().open(path)` (see [`OpenOptions::open`] for what is refused).
    pub fn open(path: &Path) -> Result<Database, Error> {
        OpenOptions::new().open(path)
    }

    /// Copies of the file and its journal kept aside before this open recovered an
    /// interrupted write (owner-only, beside the file); empty when nothing was
    /// recovered. They are the file as it was found: delete them once the
    /// recovered file is known to be good.
    pub fn kept_aside(&self) -> &[std::path::PathBuf] {
        &self.handle.kept_aside
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.handle.path
    }

    /// Whether this open created the file.
    pub fn created(&self) -> bool {
        self.handle.created
    }

    /// The SQLCipher format of an encrypted file (`None` for a plain one).
    pub fn cipher_format(&self) -> Option<CipherFormat> {
        self.handle
            .settings
            .keying
            .as_ref()
            .and_then(|k| k.compatibility)
            .and_then(CipherFormat::from_version)
    }

    /// The repository API over this database: settings, accounts, the active
    /// identity, quarantine decisions. Refused
    /// ([`ErrorKind::NeedsMigration`](crate::ErrorKind::NeedsMigration),
    /// [`NewerDatabase`](crate::ErrorKind::NewerDatabase)) while the file cannot be
    /// served: not migrated (a legacy file not adopted yet, say) and not stopped at a
    /// pause point, or written by a newer idstore. (Checked on the first call; later
    /// calls on this `Database` are free.)
    ///
    /// ```
    /// # fn main() -> Result<(), idstore_repo::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let mut db = idstore_repo::Database::open(&dir.path().join("a.sqlite"))?;
    /// # db.migrate(&Default::default())?;
    /// let mut store = db.store()?;
    /// assert_eq!(store.active_identity()?.active_did, None);
    /// # Ok(()) }
    /// ```
    pub fn store(&mut self) -> Result<Store<'_>, Error> {
        if !self.handle.servable {
            crate::migrations::ensure_servable(&mut self.handle.conn)
                .map_err(|e| self.handle.context(e))?;
            self.handle.servable = true;
        }
        Ok(Store::over(&mut self.handle))
    }

    /// Runs `work` as one unit of work: every read and write it makes through the
    /// [`Store`] it is given is one `BEGIN IMMEDIATE` transaction, committed when
    /// `work` returns `Ok`, rolled back whole when it returns an error or panics (a
    /// panic comes back as [`ErrorKind::Panicked`](crate::ErrorKind::Panicked), and
    /// this `Database` can be used again). Inside it, each store call is still
    /// all-or-nothing on its own (a savepoint): one that fails leaves the unit as it
    /// was before the call, so `work` may handle the error and go on. Refused, like
    /// [`Database::store`], while the file cannot be served.
    ///
    /// ```
    /// # fn main() -> Result<(), idstore_repo::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let mut db = idstore_repo::Database::open(&dir.path().join("a.sqlite"))?;
    /// # db.migrate(&Default::default())?;
    /// use idstore_repo::domain::{Did, NewAccount};
    /// use idstore_repo::ErrorKind;
    ///
    /// let alice = Did::parse("did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01")?;
    /// let unknown = Did::parse("did:ethr:0x00000000000000000000000000000000DeadBeef")?;
    /// let err = db
    ///     .transaction(|store| {
    ///         store.add_account(&NewAccount::new(alice.clone(), "02ab", "2024-03-01T12:00:00.000Z"))?;
    ///         store.set_active_did(Some(&unknown)) // fails: the account above goes too
    ///     })
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::UnknownAccount);
    /// assert_eq!(db.store()?.account(&alice).unwrap_err().kind(), ErrorKind::UnknownAccount);
    /// # Ok(()) }
    /// ```
    pub fn transaction<T>(
        &mut self,
        work: impl FnOnce(&mut Store<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.store()?;
        let path = self.handle.path.clone();
        let handle = &mut self.handle;
        handle.unit_exports = Some(Vec::new());
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crate::connection::transaction::immediate(handle, &path, |handle| {
                work(&mut Store::over(handle))
            })
        }));
        let exports = self.handle.unit_exports.take().unwrap_or_default();
        let done = match done {
            Ok(done) => done.map_err(|e| self.handle.context(e)),
            Err(panic) => Err(Error::panicked("the transaction's closure", panic)),
        };
        if done.is_err() {
            // What the unit discarded is back: its exports would be stray copies.
            exports
                .iter()
                .for_each(|p| crate::quarantine::remove_export(p));
        }
        done
    }

    /// Where the file stands: applied and pending migrations, legacy or not, the
    /// active identity and the account count. Reads only.
    ///
    /// ```
    /// # fn main() -> Result<(), idstore_repo::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let mut db = idstore_repo::Database::open(&dir.path().join("new.sqlite"))?;
    /// let status = db.status()?;
    /// assert_eq!(status.pending.len(), 3);
    /// assert!(!status.legacy && !status.servable());
    /// # Ok(()) }
    /// ```
    pub fn status(&mut self) -> Result<MigrationStatus, Error> {
        let handle = &mut self.handle;
        let status = crate::migrations::status(&mut handle.conn).and_then(|mut status| {
            crate::migrations::add_file_facts(&mut status, handle)?;
            Ok(status)
        });
        status.map_err(|e| self.handle.context(e))
    }

    /// What [`Database::migrate`] would do up to `to` (every pending step when
    /// `None`), with every refusal it would make. Reads only.
    pub fn plan_migration(&mut self, to: Option<&Version>) -> Result<MigrationPlan, Error> {
        let handle = &mut self.handle;
        let plan = crate::migrations::plan_migration(&mut handle.conn, to.map(Version::as_str))
            .and_then(|mut plan| {
                crate::migrations::add_file_facts(plan.status_mut(), handle)?;
                Ok(plan)
            });
        plan.map_err(|e| self.handle.context(e))
    }

    /// Adopts a legacy file when needed and applies pending migrations (all, or up to
    /// [`MigrateOptions::to`]) in one transaction, validated: any failure rolls
    /// everything back. Every refusal is made, and the room the run needs checked,
    /// before anything is written (a [backup](MigrateOptions::backup_to) included).
    ///
    /// **No backup is taken unless asked for**: [`MigrateOptions::new`] writes none
    /// (the `idstore migrate` command does, by default); give
    /// [`MigrateOptions::backup_to`] a new file's path for one.
    ///
    /// ```
    /// # fn main() -> Result<(), idstore_repo::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// use idstore_repo::{Database, MigrateOptions};
    ///
    /// let mut db = Database::open(&dir.path().join("app.sqlite"))?;
    /// let dry = db.migrate(&MigrateOptions::new().dry_run(true))?;
    /// assert!(dry.dry_run && db.status()?.needs_migration());
    /// db.migrate(&MigrateOptions::new())?;
    /// assert!(db.migrate(&MigrateOptions::new())?.applied.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn migrate(&mut self, options: &MigrateOptions<'_>) -> Result<MigrationReport, Error> {
        self.handle.servable = false;
        crate::migrations::migrate(&mut self.handle, options).map_err(|e| self.handle.context(e))
    }

    /// The versions [`Database::rollback`] would revert, newest first, after its
    /// refusals. Reads only.
    pub fn plan_rollback(&mut self, options: &RollbackOptions) -> Result<Vec<Version>, Error> {
        crate::migrations::plan_rollback(&mut self.handle.conn, options)
            .map_err(|e| self.handle.context(e))
    }

    /// Reverts migrations, newest first, in one validated transaction; by default
    /// every one above the baseline. Refused, before anything is written, when it
    /// would revert the baseline without
    /// [`include_baseline`](RollbackOptions::include_baseline) or undo recorded
    /// quarantine decisions.
    ///
    /// ```
    /// # fn main() -> Result<(), idstore_repo::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// use idstore_repo::{Database, MigrateOptions};
    /// use idstore_repo::migrations::{RollbackOptions, RollbackTarget};
    ///
    /// let mut db = Database::open(&dir.path().join("app.sqlite"))?;
    /// db.migrate(&MigrateOptions::new())?;
    /// let report = db.rollback(&RollbackOptions::new().target(RollbackTarget::Steps(1)))?;
    /// assert_eq!(report.reverted.len(), 1);
    /// assert!(db.status()?.paused_at().is_some(), "back at the transition step");
    /// # Ok(()) }
    /// ```
    pub fn rollback(&mut self, options: &RollbackOptions) -> Result<RollbackReport, Error> {
        self.handle.servable = false;
        crate::migrations::rollback(&mut self.handle, options).map_err(|e| self.handle.context(e))
    }

    /// Every problem of the file, up to ten of a kind (the rest counted), and each
    /// quarantined item waiting for a decision. Works on any file: one that still
    /// needs migrating gets an integrity check, a
    /// [`ProblemKind::NeedsMigration`](crate::health::ProblemKind::NeedsMigration) problem and
    /// what `migrate` will have to quarantine. Reads only.
    ///
    /// ```
    /// # fn main() -> Result<(), idstore_repo::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let mut db = idstore_repo::Database::open(&dir.path().join("app.sqlite"))?;
    /// db.migrate(&Default::default())?;
    /// let report = db.check()?;
    /// assert!(report.ok(), "{:?}", report.problems);
    /// # Ok(()) }
    /// ```
    pub fn check(&mut self) -> Result<HealthReport, Error> {
        crate::health::check(&mut self.handle.conn, &self.handle.file)
            .map_err(|e| self.handle.context(e))
    }

    /// Hands every problem [`Database::check`] finds to `visit`, one at a time,
    /// however many there are: memory stays flat as the file grows.
    pub fn check_each(&mut self, visit: impl FnMut(Problem)) -> Result<(), Error> {
        crate::health::check_each(&mut self.handle.conn, &self.handle.file, visit)
            .map_err(|e| self.handle.context(e))
    }

    /// Fixes what can be fixed without losing data, in one transaction, and reports
    /// what it fixed and what is left (see [`crate::health::ProblemKind::repairable`]).
    ///
    /// ```
    /// # fn main() -> Result<(), idstore_repo::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let mut db = idstore_repo::Database::open(&dir.path().join("app.sqlite"))?;
    /// db.migrate(&Default::default())?;
    /// let repaired = db.repair()?;
    /// assert!(repaired.fixed.is_empty() && repaired.left.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn repair(&mut self) -> Result<RepairReport, Error> {
        self.store()?;
        let done = self.handle.durably(crate::health::repair);
        done.map_err(|e| self.handle.context(e))
    }

    /// Runs a read of your own, `f`, on the file whatever state it is in (a legacy
    /// file, one that needs migrating or has problems): in one read transaction
    /// with `PRAGMA query_only` on, so a write it attempts fails. For a migrated
    /// file a service reads through [`Store::read_only`] instead.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("app.sqlite");
    /// use idstore_repo::diesel::prelude::*;
    /// use idstore_repo::diesel::sql_types::Integer;
    ///
    /// let mut db = idstore_repo::Database::open(&path)?; // a new file: not migrated yet
    /// let version: i32 = db.read_only(|conn| {
    ///     diesel::select(diesel::dsl::sql::<Integer>("1 + 1")).get_result(conn)
    /// })?;
    /// assert_eq!(version, 2);
    /// # Ok(()) }
    /// ```
    pub fn read_only<T>(
        &mut self,
        f: impl FnOnce(&mut diesel::SqliteConnection) -> diesel::QueryResult<T>,
    ) -> Result<T, Error> {
        self.handle.read_query_only(f)
    }

    /// Writes a consistent copy of the database to `dest`, which must not exist:
    /// owner-only, a valid database on its own, under the same key and SQLCipher
    /// settings when the file is encrypted. Refused before anything is created when
    /// the disk has no room for it; a failed copy leaves nothing behind.
    pub fn backup_to(&mut self, dest: &Path) -> Result<(), Error> {
        let handle = &mut self.handle;
        let taken = crate::connection::transaction::read(&mut handle.conn, &handle.path, |conn| {
            crate::connection::backup::backup_to(
                crate::connection::backup::Source {
                    conn,
                    raw: handle.raw,
                    file: &handle.file,
                    keying: handle.settings.keying.as_ref(),
                    in_write: false,
                },
                dest,
            )
        });
        taken.map_err(|e| self.handle.context(e))
    }

    /// Whether the file at `path` looks encrypted, as far as can be told without its
    /// key: it exists, does not start with the SQLite header, and is made of whole
    /// pages of random-looking bytes (random noise passes too). A path that names
    /// anything but a regular file (a FIFO, a device, a folder) is refused unopened.
    pub fn is_encrypted(path: &Path) -> Result<bool, Error> {
        crate::connection::is_encrypted(path)
    }

    /// What an interrupted conversion left beside the file at `path` (a copy that
    /// may hold the data unencrypted, and its journal), found without opening it.
    /// The next read-write open that can take the file's write lock removes it.
    pub fn leftover_copies(path: &Path) -> Vec<std::path::PathBuf> {
        crate::fs::DbFile::locate(path)
            .map(|file| {
                crate::fs::leftovers::leftovers(&file)
                    .into_iter()
                    .map(|l| l.path)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Rewrites the file at `path`, opened with `current` (its key, or none), in
    /// place as `options` say (a new key or none, the SQLCipher format, a backup):
    /// every table, idstore's and the app's, is copied into a new file beside it,
    /// checked against the original row for row, given the original's owner, group
    /// and mode, made durable and renamed over it, so a crash leaves the old file or
    /// the new one. A symlink is followed: the file it names is converted. Other
    /// programs must have the file closed (refused otherwise, naming them where the
    /// system tells). Needs the `encryption` feature.
    ///
    /// ```
    /// # #[cfg(not(feature = "encryption"))] fn main() {}
    /// # #[cfg(feature = "encryption")]
    /// # fn main() -> Result<(), idstore_repo::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("app.sqlite");
    /// use idstore_repo::{Database, OpenOptions};
    /// use idstore_repo::encryption::{ConvertOptions, Key};
    ///
    /// Database::open(&path)?.migrate(&Default::default())?;
    /// let key = Key::new("the passphrase")?;
    /// let done = Database::convert(&path, &OpenOptions::new(), &ConvertOptions::new(Some(key.clone())))?;
    /// assert!(done.encrypted && done.plaintext_copies.is_empty());
    /// let mut db = OpenOptions::new().key(Some(key)).open(&path)?;
    /// assert_eq!(db.cipher_format(), Some(idstore_repo::encryption::CipherFormat::Sqlcipher4));
    /// # Ok(()) }
    /// ```
    pub fn convert(
        path: &Path,
        current: &OpenOptions,
        options: &ConvertOptions,
    ) -> Result<Converted, Error> {
        crate::encryption::convert::convert(path, current.settings(), options)
    }

    /// The connection, for the fixtures' reads beside the public API.
    #[cfg(feature = "fixtures")]
    pub(crate) fn conn(&mut self) -> &mut diesel::SqliteConnection {
        &mut self.handle.conn
    }

    /// The connection's own SQLite handle.
    #[cfg(any(feature = "tokio", feature = "pool"))]
    pub(crate) fn raw(&self) -> crate::connection::ffi::RawDb {
        self.handle.raw
    }

    /// After a call of a caller's: rolls back a transaction it left open (by
    /// misusing the connection it was lent, or a rollback that failed), and says
    /// whether the connection is fit for the next call.
    #[cfg(feature = "tokio")]
    pub(crate) fn settle_after_call(&mut self) -> bool {
        use diesel::connection::{AnsiTransactionManager, TransactionManager};
        while self.handle.raw.in_transaction()
            && AnsiTransactionManager::rollback_transaction(&mut self.handle.conn).is_ok()
        {}
        !self.handle.raw.in_transaction()
    }

    /// Opens the file again in place of a connection a call broke, as it was
    /// opened (the SQLCipher format found kept).
    #[cfg(feature = "tokio")]
    pub(crate) fn reopen(&mut self) -> Result<(), Error> {
        let settings = crate::connection::Settings {
            create: false,
            ..self.handle.settings.clone()
        };
        self.handle = Handle::open(&self.handle.path, &settings)?;
        Ok(())
    }
}
