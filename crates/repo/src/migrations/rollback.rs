//! Rollback: down migrations, newest first, in one transaction, giving back what
//! adoption and the steps' rebuilds took.

use diesel::prelude::*;

use std::path::PathBuf;

use super::Version;
use super::run::{Direction, atomically, step};
use super::{
    ACTIVE_IDENTITY_VERSION, BASELINE_VERSION, CLEANUP_VERSION, check_target, embedded, pinned,
    restore, status,
};
use crate::connection::Handle;
use crate::error::{Error, ErrorKind};
use crate::report::{MigrationReport, RollbackReport};
use crate::sql::{self, queries};
use idstore_domain::quarantine::{QuarantineKind, QuarantineRef};

/// How far [`Database::rollback`](crate::Database::rollback) goes.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RollbackTarget {
    /// Revert everything above the baseline (the default).
    #[default]
    Baseline,
    /// Revert every migration newer than this version.
    Version(Version),
    /// Revert the newest `n` applied migrations.
    Steps(usize),
    /// Revert everything, the baseline included (needs `include_baseline`).
    Everything,
}

/// How [`Database::rollback`](crate::Database::rollback) runs: back to the
/// baseline, no backup, by default.
///
/// ```
/// use idstore_repo::{RollbackOptions, RollbackTarget};
///
/// let options = RollbackOptions::new()
///     .target(RollbackTarget::Steps(1))
///     .dry_run(true);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default)]
pub struct RollbackOptions {
    target: RollbackTarget,
    include_baseline: bool,
    dry_run: bool,
    forget_decisions: bool,
    backup: Option<PathBuf>,
}

impl RollbackOptions {
    /// Back to the baseline, no backup.
    pub fn new() -> Self {
        Self::default()
    }

    /// How far to go.
    pub fn target(mut self, target: RollbackTarget) -> Self {
        self.target = target;
        self
    }

    /// Allow reverting the baseline, which drops `accounts` and `settings` (its
    /// down.sql still refuses while they hold user data).
    pub fn include_baseline(mut self, include: bool) -> Self {
        self.include_baseline = include;
        self
    }

    /// Do everything and validate, then roll back on purpose.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Roll back even when that drops the record of restore decisions a later
    /// `migrate` would undo ([`ErrorKind::DecisionsWouldBeUndone`]).
    pub fn forget_decisions(mut self, forget: bool) -> Self {
        self.forget_decisions = forget;
        self
    }

    /// Write a backup copy to `dest` (a new file) before the first write, once
    /// every refusal has been made and the room checked.
    pub fn backup_to(mut self, dest: impl Into<PathBuf>) -> Self {
        self.backup = Some(dest.into());
        self
    }
}

/// Runs down migrations, newest first, in one immediate transaction, then checks
/// `integrity_check` and `foreign_key_check`. Stops above the baseline unless
/// `include_baseline` is set. Indexes and triggers that another program created on
/// `settings` survive the rebuild that puts `settings.activeDid` back. Every refusal
/// (the baseline's own guard against dropping user data among them) is made, and
/// the room checked, before the backup and the first write.
pub(crate) fn rollback(
    handle: &mut Handle,
    options: &RollbackOptions,
) -> Result<RollbackReport, Error> {
    let plan = rollback_plan(&mut handle.conn, options)?;
    if plan.is_empty() {
        return Ok(RollbackReport {
            active_did: status(&mut handle.conn)?.active_did,
            dry_run: options.dry_run,
            ..Default::default()
        });
    }
    let backup = options.backup.as_deref().filter(|_| !options.dry_run);
    crate::storage::ensure_space(&mut handle.conn, &handle.path, "rollback", backup.is_some())?;
    let run = |handle: &mut Handle, dry_run: bool, backup: Option<&std::path::Path>| {
        let Handle {
            conn,
            raw,
            file,
            settings,
            ..
        } = handle;
        let path = file.path.clone();
        atomically(
            conn,
            &path,
            dry_run,
            |conn| {
                if let Some(dest) = backup {
                    // Under the run's write lock: the copy is exactly what is reverted.
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
                let plan = rollback_plan(conn, options)?;
                revert(conn, &plan, options)
            },
            |r: &mut RollbackReport| r.dry_run = true,
        )
    };
    if plan.iter().any(|v| v == BASELINE_VERSION) && !options.dry_run {
        // The baseline's down.sql refuses while user data exists: found out before
        // anything is written.
        run(handle, true, None)?;
    }
    let mut report = handle.durably(|handle| run(handle, options.dry_run, backup))?;
    report.backup = backup.map(ToOwned::to_owned);
    Ok(report)
}

/// The versions [`rollback`] would revert, newest first, after its refusals (a newer
/// idstore's database, the baseline without `include_baseline`). Reads only; the
/// baseline's own guard against dropping user data is checked only by running it.
pub(crate) fn rollback_plan(
    conn: &mut SqliteConnection,
    options: &RollbackOptions,
) -> Result<Vec<Version>, Error> {
    if let RollbackTarget::Version(v) = &options.target {
        check_target(v.as_str())?;
    }
    let before = status(conn)?;
    before.refuse_unknown()?;
    // What the steps moved aside goes back from these tables.
    super::refuse_missing_quarantine_tables(conn)?;
    let newest_first = before.applied.into_iter().rev();
    let to_revert: Vec<Version> = match &options.target {
        RollbackTarget::Baseline => newest_first.filter(|v| v != BASELINE_VERSION).collect(),
        RollbackTarget::Version(target) => newest_first
            .filter(|v| v.as_str() > target.as_str())
            .collect(),
        RollbackTarget::Steps(n) => newest_first.take(*n).collect(),
        RollbackTarget::Everything => newest_first.collect(),
    };
    if to_revert.iter().any(|v| v == BASELINE_VERSION) && !options.include_baseline {
        return Err(Error::new(
            ErrorKind::BaselineNotIncluded,
            "rolling back the baseline drops the accounts and settings tables; it must be asked for explicitly (include_baseline)",
        ));
    }
    if to_revert.iter().any(|v| v == ACTIVE_IDENTITY_VERSION) && !options.forget_decisions {
        let undone = queries::restores_a_migrate_would_undo(conn)?;
        if !undone.is_empty() {
            let items: Vec<String> = undone
                .into_iter()
                .map(|(_, id)| account_item(id).to_string())
                .collect();
            return Err(Error::new(
                ErrorKind::DecisionsWouldBeUndone,
                format!(
                    "rolling back drops the record of restore decisions ({}) that a later migrate would undo, keeping the replaced accounts instead; discard the replaced accounts first, or roll back forgetting those decisions (forget_decisions)",
                    items.join(", ")
                ),
            ));
        }
    }
    let acting = super::foreign::acting_on(
        &super::foreign::foreign_objects(conn)?,
        &rollback_writes(&to_revert),
    );
    if !acting.is_empty() {
        return Err(super::foreign::refusal("rollback", &acting));
    }
    // What the rollback will take from the file is checked before it writes anything.
    restore::check_for_rollback(
        conn,
        to_revert.iter().any(|v| v == CLEANUP_VERSION),
        to_revert.iter().any(|v| v == ACTIVE_IDENTITY_VERSION),
    )?;
    Ok(to_revert)
}

/// The writes reverting `to_revert` makes to tables that hold the file's rows (see
/// [`MigrationPlan::writes`](super::MigrationPlan)).
fn rollback_writes(to_revert: &[Version]) -> Vec<super::foreign::Write> {
    use super::foreign::Write;
    let mut writes = vec![Write::delete(super::BOOKKEEPING_TABLE)];
    for version in to_revert {
        match version.as_str() {
            CLEANUP_VERSION => writes.push(Write::delete("idstore_original_schema")),
            ACTIVE_IDENTITY_VERSION => writes.extend([
                // Quarantined accounts come back; forgotten decisions and adopted
                // records go; the legacy column gets an overridden value back.
                Write::insert("accounts"),
                Write::delete("quarantine_decisions"),
                Write::delete("idstore_original_schema"),
                Write::update("settings", &["activeDid"]),
            ]),
            // Dropping the tables deletes their rows for foreign keys' sake.
            BASELINE_VERSION => {
                writes.extend([Write::delete("accounts"), Write::delete("settings")])
            }
            _ => {}
        }
    }
    writes
}

fn account_item(id: i32) -> QuarantineRef {
    QuarantineRef {
        kind: QuarantineKind::Account,
        id,
    }
}

fn revert(
    conn: &mut SqliteConnection,
    to_revert: &[Version],
    options: &RollbackOptions,
) -> Result<RollbackReport, Error> {
    let migrations = embedded();
    let mut report = RollbackReport::default();
    let accounts_before = super::inspect::AccountDigest::read(conn)?;
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
        let (adopted, overridden) = if active_identity {
            let kept = restore::recorded(conn, "adopted")?;
            let overridden = restore::overridden(conn)?;
            restore::forget_adopted(conn)?;
            (kept, overridden)
        } else {
            (vec![], restore::Overridden::default())
        };
        if active_identity && options.forget_decisions {
            // The down.sql's own guard would refuse while these log rows exist.
            for (decision, id) in queries::restores_a_migrate_would_undo(conn)? {
                pinned::active_identity::forget_decision(conn, decision)?;
                report.forgotten_decisions.push(account_item(id));
            }
        }
        step(conn, migration.as_ref(), version.as_str(), Direction::Down)?;
        restore::recreate_on_settings(conn, &foreign)
            .and_then(|()| restore::restore_rebuilt_settings(conn, &rebuilt))
            .and_then(|()| restore::restore_adopted(conn, &adopted, overridden))
            .map_err(|e| {
                // (A storage fault or a lock keeps its own kind and report.)
                if e.kind() != ErrorKind::Database {
                    return e;
                }
                Error::with_source(
                    ErrorKind::Database,
                    format!(
                        "migration {version} was reverted, but what it kept of the file's own objects could not be put back, so everything was rolled back"
                    ),
                    e,
                )
            })?;
        report.reverted.push(version.clone());
    }
    let mut errors = sql::integrity_problems(conn)?;
    errors.extend(
        sql::foreign_key_violations(conn)?
            .iter()
            .map(ToString::to_string),
    );
    if accounts_before.again(conn)? != accounts_before {
        errors.push(
            "an account row changed or went missing; nothing of the rollback explains it"
                .to_owned(),
        );
    }
    if !errors.is_empty() {
        return Err(super::verify::validation_failed(MigrationReport {
            errors,
            ..Default::default()
        }));
    }
    report.active_did = queries::stored_active_did(conn)?;
    Ok(report)
}
