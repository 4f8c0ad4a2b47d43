//! Rollback: down migrations, newest first, in one transaction, giving back what
//! adoption and the steps' rebuilds took.

use std::collections::BTreeSet;
use std::path::PathBuf;

use diesel::prelude::*;

use super::Planned;
use super::Version;
use super::run::{Direction, atomically, step};
use super::{
    ACTIVE_IDENTITY_VERSION, BASELINE_VERSION, CLEANUP_VERSION, check_target, preview, restore,
    runner_sql, status, steps,
};
use crate::connection::Handle;
use crate::error::{Error, ErrorKind};
use crate::migrations::report::{MigrationReport, RollbackReport};
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
/// use idstore_repo::migrations::{RollbackOptions, RollbackTarget};
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

/// Runs down migrations, newest first, in one immediate transaction (a preview
/// build's file brought to the current steps first), then checks what it wrote as
/// `migrate` does: `integrity_check` of every table it rebuilt or wrote rows into,
/// `foreign_key_check`, and every account row there. Stops above the baseline unless
/// `include_baseline` is set. Indexes and triggers that another program created on
/// `settings` survive the rebuild that puts `settings.activeDid` back, and the app's
/// own objects the active-identity step adopted come back with their own
/// definitions. Every refusal (the steps' own preflights, the baseline's guard
/// against dropping user data among them) is made, and the room checked, before
/// the backup and the first write. The plan is made once, and runs under the
/// write lock unless another program committed a change since (see [`Planned`]).
pub(crate) fn rollback(
    handle: &mut Handle,
    options: &RollbackOptions,
) -> Result<RollbackReport, Error> {
    let planned = Planned::make(&mut handle.conn, |conn| plan_rollback(conn, options))?;
    let plan = planned.plan();
    if plan.is_empty() {
        return Ok(RollbackReport {
            active_did: status(&mut handle.conn)?.active_did,
            dry_run: options.dry_run,
            ..Default::default()
        });
    }
    let backup = options.backup.as_deref().filter(|_| !options.dry_run);
    crate::fs::storage::ensure_space(&mut handle.conn, &handle.path, "rollback", backup.is_some())?;
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
                    crate::connection::backup::backup_to(
                        crate::connection::backup::Source {
                            conn,
                            raw: *raw,
                            file,
                            keying: settings.keying.as_ref(),
                            in_write: true,
                        },
                        dest,
                    )?;
                }
                let plan = planned.under_lock(conn, |conn| plan_rollback(conn, options))?;
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
    // The app's own rows go back as the file had them, even one naming no account
    // (written by a program that never turned foreign keys on): the run does not
    // enforce them, and checks them itself, the rows it put back exactly aside.
    let restores_adopted = plan.iter().any(|v| v == ACTIVE_IDENTITY_VERSION)
        && restore::adopted_count(&mut handle.conn)? > 0;
    let report = if restores_adopted {
        without_foreign_keys(handle, |handle| {
            handle.durably(|handle| run(handle, options.dry_run, backup))
        })
    } else {
        handle.durably(|handle| run(handle, options.dry_run, backup))
    };
    let mut report = report?;
    report.backup = backup.map(ToOwned::to_owned);
    Ok(report)
}

/// Runs `f` with the connection's foreign keys off (they cannot change inside a
/// transaction, so around it), and puts them back as they were; a failure to put
/// them back is reported only when `f` itself succeeded.
fn without_foreign_keys<T>(
    handle: &mut Handle,
    f: impl FnOnce(&mut Handle) -> Result<T, Error>,
) -> Result<T, Error> {
    use diesel::connection::SimpleConnection;
    let were_on = sql::foreign_keys_on(&mut handle.conn)?;
    if were_on {
        handle.conn.batch_execute("PRAGMA foreign_keys = OFF;")?;
    }
    let result = f(handle);
    let restored = if were_on {
        handle
            .conn
            .batch_execute("PRAGMA foreign_keys = ON;")
            .map_err(Error::from)
    } else {
        Ok(())
    };
    let value = result?;
    restored?;
    Ok(value)
}

/// The versions [`rollback`] would revert, newest first, after its refusals (a newer
/// idstore's database, the baseline without `include_baseline`). Reads only; the
/// baseline's own guard against dropping user data is checked only by running it.
pub(crate) fn plan_rollback(
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
    // A preview build's file is reverted as the current steps it is brought to first.
    let applied = if before.preview.is_empty() {
        before.applied.clone()
    } else {
        preview::current_equivalents(&[before.applied.clone(), before.preview.clone()].concat())
    };
    let newest_first = applied.into_iter().rev();
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
    // The newest step's own down preflight, read as it will run, but for what this
    // rollback takes care of itself (the app's adopted objects and other programs'
    // objects on settings, put back by their definitions; the decisions above).
    if before.preview.is_empty()
        && let Some(newest) = to_revert.first()
    {
        let down = steps::step(newest.as_str())
            .expect("a known step")
            .down_preflight();
        let ignore = [NEEDS_IDSTORE_ROLLBACK, "decisions_would_be_undone"];
        if let Some(token) = super::inspect::run_preflight(conn, &down, &ignore)?.first() {
            return Err(steps::refused(token, &[]));
        }
    }
    let mut foreign = super::foreign::foreign_objects(conn)?;
    if !before.preview.is_empty() {
        // A preview build's triggers, under idstore's names, are replaced by the
        // current ones before anything is reverted.
        let ours = super::steps::names_created_by_steps();
        foreign.retain(|f| !ours.contains(f.name.as_str()));
    }
    let acting = super::foreign::acting_on(&foreign, &rollback_writes(&to_revert));
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

/// The writes reverting `to_revert` makes to tables that hold the file's rows: what
/// another program's trigger or foreign key must not act on (idstore runs no
/// program's code but its own).
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

/// The token of a down preflight's refusal of what only `idstore rollback` can put
/// back: this rollback does it, so it clears the way first.
const NEEDS_IDSTORE_ROLLBACK: &str = "needs_idstore_rollback";

fn revert(
    conn: &mut SqliteConnection,
    to_revert: &[Version],
    options: &RollbackOptions,
) -> Result<RollbackReport, Error> {
    let mut report = RollbackReport::default();
    if !status(conn)?.preview.is_empty() {
        report.upgraded_preview =
            preview::upgrade(conn).map_err(|e| revert_failed("preview", e.into()))?;
    }
    let accounts_before = super::inspect::AccountDigest::read(conn)?;
    // The tables this rollback writes, checked afterwards (and only those, as
    // `migrate` checks what it writes: damage elsewhere is not this run's).
    let mut written: BTreeSet<&str> = BTreeSet::new();
    let mut restored_app_rows = false;
    for version in to_revert {
        match version.as_str() {
            CLEANUP_VERSION => {
                // Other programs' indexes and triggers on settings, and the text
                // the file's own settings had: kept here, the objects set aside so
                // the step's SQL rebuilds settings, then all put back.
                let foreign = runner_sql::cleanup::foreign_settings_objects(conn)?;
                let rebuilt = restore::recorded(conn, "rebuilt")?;
                restore::drop_objects(conn, &foreign)?;
                step(conn, version.as_str(), Direction::Down)?;
                restore::recreate_on_settings(conn, &foreign)
                    .and_then(|()| restore::restore_rebuilt_settings(conn, &rebuilt))
                    .map_err(|e| revert_failed(version.as_str(), e))?;
                written.insert("settings");
            }
            ACTIVE_IDENTITY_VERSION => {
                // The app's own objects the step adopted: their definitions, its
                // rows and the value its pointer overrode, read before the step's
                // SQL drops the tables that keep them.
                let adopted = restore::recorded(conn, "adopted")?;
                let overridden = restore::overridden(conn)?;
                if !adopted.is_empty() {
                    restore::keep_adopted_rows(conn)?;
                }
                restore::forget_adopted(conn)?;
                if options.forget_decisions {
                    // The step's own preflight refuses while these log rows exist.
                    for (decision, id) in queries::restores_a_migrate_would_undo(conn)? {
                        runner_sql::active_identity::forget_decision(conn, decision)?;
                        report.forgotten_decisions.push(account_item(id));
                    }
                }
                step(conn, version.as_str(), Direction::Down)?;
                restore::restore_adopted(conn, &adopted, overridden)
                    .map_err(|e| revert_failed(version.as_str(), e))?;
                written.insert("accounts");
                if !adopted.is_empty() {
                    written.extend(["active_identity", "settings"]);
                    restored_app_rows = adopted
                        .iter()
                        .any(|k| k.object.kind == "table" && k.object.name == "active_identity");
                }
            }
            _ => step(conn, version.as_str(), Direction::Down)?,
        }
        report.reverted.push(version.clone());
    }
    let mut errors = Vec::new();
    for table in &written {
        if sql::table_exists(conn, table)? {
            errors.extend(sql::table_integrity_problems(conn, table)?);
        }
    }
    errors.extend(
        sql::foreign_key_violations_of(conn, written.iter().copied())?
            .iter()
            // The app's own rows, put back as the file had them.
            .filter(|v| !(restored_app_rows && v.table == "active_identity"))
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

/// A failure putting back what a step kept, once its SQL ran: a storage fault or a
/// lock keeps its own kind and report.
fn revert_failed(version: &str, e: Error) -> Error {
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
}
