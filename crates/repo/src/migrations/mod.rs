//! The migration steps and the runner that applies, validates and reverts them.
//!
//! The steps are declared once, in [`steps`], and their SQL carries its own
//! guarantees (a preflight that refuses what it cannot take over, the adoption of
//! the app's own objects, the pointer's guard), so the app's migration service,
//! running the exported text, gets what idstore's runner gets. The runner adds
//! what only it can do around them, in four parts, each in its own file:
//! 1. `inspect.rs`: one read-only inspection of the file (versions, legacy shape,
//!    the app's own objects, the pointer, counts, the next step's preflight), and
//!    its public summary, [`MigrationStatus`];
//! 2. `plan.rs` ([`MigrationPlan`]): a pure decision of the steps, with every
//!    refusal made there;
//! 3. `run.rs`: `migrate` itself, then the steps' own SQL, with the app's step 003
//!    run first where its service would have run it (`runner_sql.rs`), and a
//!    preview build's file brought to the current steps (`preview.rs`);
//! 4. `verify.rs`: one validation at the end.
//!
//! `rollback.rs` runs the down migrations the same way, putting back what only
//! idstore can (`restore.rs`: the definitions of the app's objects the steps
//! replaced), after refusing to run inside another program's code (`foreign.rs`).
//! Both report what they did ([`MigrationReport`], [`RollbackReport`]) by
//! [`Version`].
//!
//! **Rule:** every run is one `BEGIN IMMEDIATE` transaction, validated before it
//! commits: either every step and its validation succeed and the whole run
//! commits, or nothing changes; every refusal is made, and the room checked, before
//! the first write (a backup included). Code that runs while a file is below the
//! latest version uses no `table!` definition (they describe the latest only): its
//! SQL is pinned to the version it runs on (`runner_sql.rs`).

use diesel::prelude::*;

use crate::error::{Error, ErrorKind};

pub(crate) mod foreign;
mod inspect;
mod plan;
mod preview;
pub(crate) mod report;
mod restore;
mod rollback;
pub(crate) mod run;
mod runner_sql;
pub mod steps;
mod verify;
pub(crate) mod version;

pub use inspect::MigrationStatus;
pub(crate) use inspect::{
    add_file_facts, applied_versions, missing_quarantine_tables, refuse_missing_quarantine_tables,
    status, up_to_date,
};
pub use plan::MigrationPlan;
pub use report::{MigrationReport, MigrationWarning, RollbackReport};
pub use rollback::{RollbackOptions, RollbackTarget};
pub(crate) use rollback::{plan_rollback, rollback};
pub use run::Integrity;
pub(crate) use run::{MigrateOptions, Planned, migrate, plan_migration};
#[cfg(any(test, feature = "testing"))]
pub(crate) use runner_sql::baseline::LEGACY_APP_SCHEMA;
pub(crate) use steps::{ACTIVE_IDENTITY_VERSION, BASELINE_VERSION, CLEANUP_VERSION};
pub use version::Version;

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

/// Refuses a database the repository cannot serve: one from a newer idstore, or one
/// below the latest migration that is not stopped at a pause point (a legacy file
/// not adopted yet, say).
pub(crate) fn ensure_servable(conn: &mut SqliteConnection) -> Result<(), Error> {
    if up_to_date(conn)? {
        return Ok(());
    }
    let st = status(conn)?;
    st.refuse_unknown()?;
    if !st.servable() {
        return Err(needs_migration(&st.pending));
    }
    Ok(())
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
