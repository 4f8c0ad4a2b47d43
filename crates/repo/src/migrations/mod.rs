//! The embedded migrations and the runner that applies, validates and reverts them.
//!
//! A run goes in four parts, each in its own file:
//! 1. `inspect.rs`: one read-only inspection of the file (versions, legacy shape,
//!    the app's own objects, the pointer, counts);
//! 2. `plan.rs` ([`MigrationPlan`]): a pure decision of the steps, with every refusal made there;
//! 3. `run.rs`: the steps, with what adoption does around them (`adopt.rs`,
//!    `restore.rs`); the SQL the runner issues itself is pinned to the version it
//!    runs on (`pinned.rs`);
//! 4. `verify.rs`: one validation at the end.
//!
//! Every run is one `BEGIN IMMEDIATE` transaction: either every step and its
//! validation succeed and the whole run commits, or nothing changes. [`rollback`]
//! runs the down migrations the same way.

use diesel::migration::{Migration, MigrationSource};
use diesel::prelude::*;
use diesel::sqlite::Sqlite;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};

mod adopt;
mod error;
mod inspect;
mod pinned;
mod plan;
mod report;
mod restore;
mod rollback;
mod run;
mod verify;

pub use error::MigrateError;
pub use inspect::{MigrationStatus, status};
pub use plan::MigrationPlan;
pub use report::{MigrationReport, MigrationWarning};
pub use rollback::{RollbackOptions, RollbackReport, RollbackTarget, rollback, rollback_plan};

/// Every migration, embedded at compile time (`build.rs` reruns when they change).
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// The legacy baseline: `accounts` and `settings` as the app creates them.
pub const BASELINE_VERSION: &str = "00000000000000";
/// Creates `active_identity`, makes `accounts.did` unique, adds the transition triggers.
pub const ACTIVE_IDENTITY_VERSION: &str = "20261125000001";
/// Drops `settings.activeDid` and the transition triggers.
pub const CLEANUP_VERSION: &str = "20261125000002";

/// diesel's record of applied versions.
const BOOKKEEPING_TABLE: &str = "__diesel_schema_migrations";

/// Every version this build knows, oldest first.
pub fn known_versions() -> Vec<String> {
    embedded()
        .iter()
        .map(|m| m.name().version().to_string())
        .collect()
}

fn embedded() -> Vec<Box<dyn Migration<Sqlite>>> {
    let mut all = MigrationSource::<Sqlite>::migrations(&MIGRATIONS)
        .expect("embedded migrations are readable");
    all.sort_by_key(|m| m.name().version().to_string());
    all
}

/// Steps a file may be left at while a phased rollout is under way: the repository
/// API and every command serve a file stopped at one of these as well as a fully
/// migrated one. At the transition step, older app builds still write
/// `settings.activeDid`, and the transition triggers keep it and `active_identity`
/// in step both ways.
pub const PAUSE_POINTS: &[&str] = &[ACTIVE_IDENTITY_VERSION];

/// What a step does, as `status` tells an operator about the next one.
pub fn step_summary(version: &str) -> &'static str {
    match version {
        BASELINE_VERSION => "creates the legacy accounts and settings tables if missing",
        ACTIVE_IDENTITY_VERSION => {
            "moves the active identity to active_identity (duplicates quarantined, the pointer guarded) and keeps settings.activeDid in step for older app builds"
        }
        CLEANUP_VERSION => {
            "removes settings.activeDid and the transition triggers: app builds that still write settings.activeDid stop seeing the active identity"
        }
        _ => "",
    }
}

/// An additional check run on the migrated data inside the transaction; an `Err`
/// fails the run and rolls everything back.
pub type ExtraCheck<'a> =
    &'a dyn Fn(&mut SqliteConnection) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Told the version about to run, its position (from 1) and the number of steps.
pub type Progress<'a> = &'a dyn Fn(&str, usize, usize);

/// Options of [`migrate`].
#[derive(Default, Clone, Copy)]
pub struct MigrateOptions<'a> {
    /// Stop after this version (default: apply everything).
    pub to: Option<&'a str>,
    /// Do everything, validate, report, then roll back.
    pub dry_run: bool,
    /// A caller's own validation, run after idstore's.
    pub extra_check: Option<ExtraCheck<'a>>,
    /// Called before each step, and with the step `"validate"` before validation.
    pub progress: Option<Progress<'a>>,
    /// How thoroughly to check the file's structure.
    pub integrity: Integrity,
}

/// Which structure checks validate a migration. Both keep the row-level checks (no
/// account lost, the active identity the old data implied, no dangling foreign key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Integrity {
    /// The default. Before the first write, `quick_check` of the existing tables the
    /// steps build new b-trees from (`accounts`). Afterwards, `integrity_check` of
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
            .finish()
    }
}

/// Applies every pending migration (or those up to `options.to`) in one immediate
/// transaction, adopting a legacy file first when needed, then validates (see
/// [`Integrity`]): any failure rolls everything back. The file is inspected once,
/// inside the transaction, and the [`MigrationPlan`] made from that read is what
/// runs.
pub fn migrate(
    conn: &mut SqliteConnection,
    options: MigrateOptions<'_>,
) -> Result<MigrationReport, MigrateError> {
    run::atomically(
        conn,
        options.dry_run,
        |conn| {
            let plan = MigrationPlan::decide(inspect::Inspection::read(conn)?, options.to)?;
            if !plan.is_empty() {
                crate::fault::ensure_space(conn, "migrate", false)?;
                if options.integrity == Integrity::Written {
                    verify::check_input(conn, &plan)?;
                }
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
        |r| r.dry_run = true,
    )
}

/// What [`migrate`] would do up to `to`, with every refusal it would make (an
/// unknown target, a newer idstore's database, a legacy file of the wrong shape, the
/// app's own `active_identity` with a target too low to adopt it, a name collision).
/// Reads only, so it works on a read-only connection: ask it before writing a
/// backup, or even switching the file to WAL.
pub fn plan_migration(
    conn: &mut SqliteConnection,
    to: Option<&str>,
) -> Result<MigrationPlan, MigrateError> {
    MigrationPlan::decide(inspect::Inspection::read(conn)?, to)
}

/// Refuses a version this build does not have.
pub fn check_target(version: &str) -> Result<(), MigrateError> {
    let known = known_versions();
    if known.iter().any(|v| v == version) {
        Ok(())
    } else {
        Err(MigrateError::UnknownTarget {
            version: version.to_owned(),
            known,
        })
    }
}
