//! Rollback: down migrations, newest first, in one transaction, giving back what
//! adoption and the steps' rebuilds took.

use diesel::prelude::*;

use super::MigrateError;
use super::MigrationReport;
use super::run::{Direction, atomically, step};
use super::{
    ACTIVE_IDENTITY_VERSION, BASELINE_VERSION, CLEANUP_VERSION, check_target, embedded, pinned,
    restore, status,
};
use crate::{queries, sql};
use idstore_domain::quarantine::{QuarantineKind, QuarantineRef};

/// How far [`rollback`] goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RollbackTarget {
    /// Revert everything above the baseline (the default).
    #[default]
    Baseline,
    /// Revert every migration newer than this version.
    Version(String),
    /// Revert the newest `n` applied migrations.
    Steps(usize),
    /// Revert everything, the baseline included (needs `include_baseline`).
    Everything,
}

/// Options of [`rollback`].
#[derive(Debug, Clone, Default)]
pub struct RollbackOptions {
    /// How far to go.
    pub target: RollbackTarget,
    /// Allow reverting the baseline, which drops `accounts` and `settings` (its
    /// down.sql still refuses while they hold user data).
    pub include_baseline: bool,
    /// Do everything, validate, report, then roll back.
    pub dry_run: bool,
    /// Roll back even when that drops the record of restore decisions a later
    /// `migrate` would undo (see [`MigrateError::DecisionsWouldBeUndone`]).
    pub forget_decisions: bool,
}

/// What a rollback did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RollbackReport {
    /// Reverted versions, newest first.
    pub reverted: Vec<String>,
    /// The active identity afterwards, as stored.
    pub active_did: Option<String>,
    /// True when everything was rolled back on purpose.
    pub dry_run: bool,
    /// Restore decisions whose record was dropped on request (`forget_decisions`):
    /// a later `migrate` keeps the lowest id of their DID again.
    pub forgotten_decisions: Vec<QuarantineRef>,
}

/// Runs down migrations, newest first, in one immediate transaction, then checks
/// `integrity_check` and `foreign_key_check`. Stops above the baseline unless
/// `include_baseline` is set. Indexes and triggers that another program created on
/// `settings` survive the rebuild that puts `settings.activeDid` back.
pub fn rollback(
    conn: &mut SqliteConnection,
    options: &RollbackOptions,
) -> Result<RollbackReport, MigrateError> {
    atomically(
        conn,
        options.dry_run,
        |conn| {
            let plan = rollback_plan(conn, options)?;
            if !plan.is_empty() {
                crate::fault::ensure_space(conn, "rollback", false)?;
            }
            revert(conn, &plan, options)
        },
        |r| r.dry_run = true,
    )
}

/// The versions [`rollback`] would revert, newest first, after its refusals (a newer
/// idstore's database, the baseline without `include_baseline`). Reads only; the
/// baseline's own guard against dropping user data is checked only by running it.
pub fn rollback_plan(
    conn: &mut SqliteConnection,
    options: &RollbackOptions,
) -> Result<Vec<String>, MigrateError> {
    if let RollbackTarget::Version(v) = &options.target {
        check_target(v)?;
    }
    let before = status(conn)?;
    before.refuse_unknown()?;
    let newest_first = before.applied.into_iter().rev();
    let to_revert: Vec<String> = match &options.target {
        RollbackTarget::Baseline => newest_first.filter(|v| v != BASELINE_VERSION).collect(),
        RollbackTarget::Version(target) => newest_first
            .filter(|v| v.as_str() > target.as_str())
            .collect(),
        RollbackTarget::Steps(n) => newest_first.take(*n).collect(),
        RollbackTarget::Everything => newest_first.collect(),
    };
    if to_revert.iter().any(|v| v == BASELINE_VERSION) && !options.include_baseline {
        return Err(MigrateError::BaselineNeedsFlag);
    }
    if to_revert.iter().any(|v| v == ACTIVE_IDENTITY_VERSION) && !options.forget_decisions {
        let undone = queries::restores_a_migrate_would_undo(conn)?;
        if !undone.is_empty() {
            return Err(MigrateError::DecisionsWouldBeUndone {
                items: undone
                    .into_iter()
                    .map(|(_, id)| account_item(id).to_string())
                    .collect(),
            });
        }
    }
    Ok(to_revert)
}

fn account_item(id: i32) -> QuarantineRef {
    QuarantineRef {
        kind: QuarantineKind::Account,
        id,
    }
}

fn revert(
    conn: &mut SqliteConnection,
    to_revert: &[String],
    options: &RollbackOptions,
) -> Result<RollbackReport, MigrateError> {
    let migrations = embedded();
    let mut report = RollbackReport::default();
    for version in to_revert {
        let migration = migrations
            .iter()
            .find(|m| m.name().version().to_string() == *version)
            .expect("applied versions were checked against the embedded list");
        let cleanup = version == CLEANUP_VERSION;
        let active_identity = version == ACTIVE_IDENTITY_VERSION;
        let foreign = if cleanup {
            pinned::cleanup::foreign_settings_objects(conn)?
        } else {
            vec![]
        };
        // Objects to put back with the text the file had, read before the step's
        // down.sql drops the table that keeps them.
        let rebuilt = if cleanup {
            restore::recorded(conn, "rebuilt")?
        } else {
            vec![]
        };
        let adopted = if active_identity {
            let kept = restore::recorded(conn, "adopted")?;
            restore::forget_adopted(conn)?;
            kept
        } else {
            vec![]
        };
        if active_identity && options.forget_decisions {
            // The down.sql's own guard would refuse while these log rows exist.
            for (decision, id) in queries::restores_a_migrate_would_undo(conn)? {
                pinned::active_identity::forget_decision(conn, decision)?;
                report.forgotten_decisions.push(account_item(id));
            }
        }
        step(conn, migration.as_ref(), version, Direction::Down)?;
        for sql in foreign {
            diesel::sql_query(sql).execute(conn)?;
        }
        restore::restore_rebuilt_settings(conn, &rebuilt)?;
        restore::restore_adopted(conn, &adopted)?;
        report.reverted.push(version.clone());
    }
    let mut errors = sql::integrity_problems(conn)?;
    errors.extend(
        sql::foreign_key_violations(conn)?
            .iter()
            .map(ToString::to_string),
    );
    if !errors.is_empty() {
        return Err(MigrateError::ValidationFailed {
            report: Box::new(MigrationReport {
                errors,
                ..Default::default()
            }),
        });
    }
    report.active_did = queries::stored_active_did(conn)?;
    Ok(report)
}
