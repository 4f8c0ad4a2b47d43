//! The migration steps and the runner that applies, validates and reverts them.
//!
//! The steps are declared once, in [`steps`], and their SQL carries its own
//! guarantees (a preflight that refuses what it cannot take over, the adoption of
//! the app's own objects, the pointer's guard), so the app's migration service,
//! running the exported text, gets what idstore's runner gets. The runner adds
//! what only it can do around them, in four parts, each in its own file:
//! 1. `inspect.rs`: one read-only inspection of the file (versions, legacy shape,
//!    the app's own objects, the pointer, counts, the next step's preflight);
//! 2. `plan.rs` ([`MigrationPlan`]): a pure decision of the steps, with every refusal made there;
//! 3. `run.rs`: the steps' own SQL, with the app's step 003 run first where its
//!    service would have run it (`pinned.rs`), and a preview build's file brought
//!    to the current steps (`preview.rs`);
//! 4. `verify.rs`: one validation at the end.
//!
//! Every run is one `BEGIN IMMEDIATE` transaction: either every step and its
//! validation succeed and the whole run commits, or nothing changes. [`rollback()`]
//! runs the down migrations the same way, putting back what only idstore can
//! (`restore.rs`: the definitions of the app's objects the steps replaced).

use std::path::{Path, PathBuf};

use diesel::prelude::*;

use crate::connection::Handle;
use crate::error::{Error, ErrorKind};
use crate::report::MigrationReport;

mod adopt;
pub(crate) mod foreign;
mod inspect;
mod pinned;
mod plan;
mod preview;
mod restore;
mod rollback;
mod run;
pub mod steps;
mod verify;

pub use crate::version::Version;
pub(crate) use adopt::idstore_definition;
pub use inspect::MigrationStatus;
pub(crate) use inspect::{
    add_file_facts, applied_versions, missing_quarantine_tables, refuse_missing_quarantine_tables,
    status, up_to_date,
};
pub use plan::MigrationPlan;
pub use rollback::{RollbackOptions, RollbackTarget};
pub(crate) use rollback::{rollback, rollback_plan};
pub(crate) use steps::{ACTIVE_IDENTITY_VERSION, BASELINE_VERSION, CLEANUP_VERSION};

/// diesel's record of applied versions.
const BOOKKEEPING_TABLE: &str = "__diesel_schema_migrations";

/// Every version this build knows, oldest first.
pub(crate) fn known_versions() -> &'static [Version] {
    static KNOWN: std::sync::OnceLock<Vec<Version>> = std::sync::OnceLock::new();
    KNOWN.get_or_init(|| {
        steps::all()
            .iter()
            .map(|s| Version::new(s.version()))
            .collect()
    })
}

/// What a step does, as `status` tells an operator about the next one.
pub(crate) fn step_summary(version: &str) -> &'static str {
    steps::step(version).map_or("", steps::Step::summary)
}

/// An additional check run on the migrated data inside the transaction; an `Err`
/// fails the run and rolls everything back.
pub(crate) type ExtraCheck<'a> =
    &'a dyn Fn(&mut SqliteConnection) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Told the version about to run, its position (from 1) and the number of steps
/// (the last is `"validate"`).
pub(crate) type Progress<'a> = &'a dyn Fn(&str, usize, usize);

/// How [`Database::migrate`](crate::Database::migrate) runs: every pending step,
/// validated, no backup, by default.
///
/// ```
/// use idstore_repo::{Integrity, MigrateOptions};
///
/// let options = MigrateOptions::new()
///     .to("20261206000001")
///     .integrity(Integrity::Full)
///     .dry_run(true);
/// # let _ = options;
/// ```
#[derive(Default, Clone)]
pub struct MigrateOptions<'a> {
    to: Option<Version>,
    dry_run: bool,
    extra_check: Option<ExtraCheck<'a>>,
    progress: Option<Progress<'a>>,
    integrity: Integrity,
    backup: Option<PathBuf>,
}

impl<'a> MigrateOptions<'a> {
    /// Every pending step, validated with [`Integrity::Written`], no backup.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stop after this version (refused when no migration has it).
    pub fn to(mut self, version: impl Into<Version>) -> Self {
        self.to = Some(version.into());
        self
    }

    /// Do everything and validate, then roll back on purpose: the report says what
    /// would happen, and the file is left as it was.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// How thoroughly to check the file's structure afterwards.
    pub fn integrity(mut self, integrity: Integrity) -> Self {
        self.integrity = integrity;
        self
    }

    /// A check of your own, run after idstore's validation inside the transaction.
    pub fn extra_check(mut self, check: ExtraCheck<'a>) -> Self {
        self.extra_check = Some(check);
        self
    }

    /// Told each step as it starts.
    pub fn progress(mut self, progress: Progress<'a>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Write a backup copy to `dest` (a new file) before the first write, when there
    /// is something to migrate in a file that holds user tables (see
    /// [`Database::backup_to`](crate::Database::backup_to)). The room for it is
    /// checked with the run's, before anything is written.
    pub fn backup_to(mut self, dest: impl Into<PathBuf>) -> Self {
        self.backup = Some(dest.into());
        self
    }
}

/// Which structure checks validate a migration. Both keep the row-level checks (no
/// account lost or changed, the active identity the old data implied, no dangling
/// foreign key).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Integrity {
    /// The default. Before the first write, the steps' own preflight runs
    /// `quick_check` of the existing table they build new b-trees from (`accounts`),
    /// whichever check is chosen. Afterwards, `integrity_check` of
    /// every table the run wrote (each new table, and each table with a new index,
    /// every index entry compared with its table), and every row of a table the
    /// steps rewrite in place (`settings`, by the cleanup) read back whole. Tables the
    /// run does not write are not read again (see BENCHMARKS.md for the costs).
    #[default]
    Written,
    /// `PRAGMA integrity_check` of the whole file afterwards: every page, every
    /// constraint, every index entry against its table, written by this run or not.
    Full,
}

impl std::fmt::Debug for MigrateOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrateOptions")
            .field("to", &self.to)
            .field("dry_run", &self.dry_run)
            .field("extra_check", &self.extra_check.is_some())
            .field("progress", &self.progress.is_some())
            .field("integrity", &self.integrity)
            .field("backup", &self.backup)
            .finish()
    }
}

/// Applies every pending migration (or those up to `options.to`) in one immediate
/// transaction, adopting a legacy file first when needed, then validates (see
/// [`Integrity`]): any failure rolls everything back. The plan's refusals and the
/// room the run needs are checked first, reading only; then the backup; then the
/// run, which inspects the file again inside its transaction and runs what that
/// read decides.
pub(crate) fn migrate(
    handle: &mut Handle,
    options: &MigrateOptions<'_>,
) -> Result<MigrationReport, Error> {
    let to = options.to.as_ref().map(Version::as_str);
    if to.is_none() && up_to_date(&mut handle.conn)? {
        // The common case of a service's start: a few reads, no write lock.
        return Ok(MigrationReport {
            active_did: crate::sql::queries::stored_active_did(&mut handle.conn)?,
            dry_run: options.dry_run,
            ..Default::default()
        });
    }
    let plan = plan_migration(&mut handle.conn, to)?;
    if plan.is_empty() {
        // Nothing to do: no write lock taken, nothing written, no switch to WAL.
        return Ok(MigrationReport {
            adopted_legacy: plan.status.legacy,
            active_did: plan.status.active_did.clone(),
            dry_run: options.dry_run,
            ..Default::default()
        });
    }
    let backup = options
        .backup
        .as_deref()
        .filter(|_| !options.dry_run && plan.has_user_tables());
    crate::storage::ensure_space(&mut handle.conn, &handle.path, "migrate", backup.is_some())?;
    let mut report = handle.durably(|handle| {
        let Handle {
            conn,
            raw,
            file,
            settings,
            ..
        } = handle;
        let path = file.path.clone();
        run::atomically(
            conn,
            &path,
            options.dry_run,
            |conn| {
                if let Some(dest) = backup {
                    // Under the run's write lock: the copy is exactly what is migrated.
                    crate::backup::backup_to(
                        crate::backup::Source {
                            conn,
                            raw: *raw,
                            file,
                            keying: settings.keying.as_ref(),
                            in_write: true,
                        },
                        dest,
                    )?;
                }
                let mut plan = MigrationPlan::decide(inspect::Inspection::read(conn)?, to)?;
                if !plan.is_empty() {
                    plan.accounts = Some(inspect::AccountDigest::read(conn)?);
                }
                let mut report = run::execute(conn, &plan, options.progress)?;
                if !plan.is_empty() {
                    verify::verify(
                        conn,
                        &plan,
                        &mut report,
                        options.integrity,
                        options.extra_check,
                    )?;
                }
                Ok(report)
            },
            |r: &mut MigrationReport| r.dry_run = true,
        )
    })?;
    report.backup = backup.map(Path::to_owned);
    Ok(report)
}

/// What [`migrate`] would do up to `to`, with every refusal it would make (an
/// unknown target, a newer idstore's database, and whatever the next step's own
/// preflight refuses: a legacy file of the wrong shape, a name collision, foreign
/// code, damaged input). Reads only.
pub(crate) fn plan_migration(
    conn: &mut SqliteConnection,
    to: Option<&str>,
) -> Result<MigrationPlan, Error> {
    MigrationPlan::decide(inspect::Inspection::read(conn)?, to)
}

/// The refusal to serve a file that needs migrating first.
pub(crate) fn needs_migration(pending: &[Version]) -> Error {
    let pending: Vec<&str> = pending.iter().map(Version::as_str).collect();
    Error::new(
        ErrorKind::NeedsMigration,
        format!(
            "the database needs migrating before it is served (pending: {}): migrate it first (Database::migrate)",
            pending.join(", ")
        ),
    )
}

/// Refuses a version this build does not have.
pub(crate) fn check_target(version: &str) -> Result<(), Error> {
    let known = known_versions();
    if known.iter().any(|v| v == version) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::UnknownVersion,
            format!(
                "no migration has version {version}; nothing was changed: give one of the known versions ({})",
                known.join(", ")
            ),
        ))
    }
}
