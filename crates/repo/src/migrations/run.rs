//! Executing a plan: the steps, run inside idstore's own transaction, with what
//! adoption does around them, and the report of what moved.

use diesel::migration::Migration;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel::sqlite::Sqlite;

use super::plan::MigrationPlan;
use super::{BOOKKEEPING_TABLE, Progress, embedded, pinned, restore};
use crate::error::{Error, ErrorKind};
use crate::report::{MigrationReport, MigrationWarning};
use crate::sql::queries;

/// Runs `run` in one immediate transaction; a dry run is rolled back on purpose
/// after `mark` notes it in the report. A full disk met mid-run is reported with
/// the space the run needs.
pub(super) fn atomically<T>(
    conn: &mut SqliteConnection,
    path: &std::path::Path,
    dry_run: bool,
    run: impl FnOnce(&mut SqliteConnection) -> Result<T, Error>,
    mark: impl FnOnce(&mut T),
) -> Result<T, Error> {
    let mut rolled_back: Option<T> = None;
    let result = crate::txn::immediate(conn, path, |conn| {
        let mut report = run(conn)?;
        if dry_run {
            mark(&mut report);
            rolled_back = Some(report);
            return Err(Error::new(ErrorKind::Other, "a dry run is rolled back"));
        }
        Ok(report)
    });
    match (result, rolled_back) {
        (_, Some(report)) => Ok(report),
        (Ok(report), None) => Ok(report),
        (Err(e), None) => Err(crate::storage::with_needed(e, conn)),
    }
}

/// Carries out `plan` (inside the caller's transaction): adoption's preparations,
/// each step, then what adoption restores, and the report of every value moved.
/// Validation is the caller's next step.
pub(super) fn execute(
    conn: &mut SqliteConnection,
    plan: &MigrationPlan,
    progress: Option<Progress<'_>>,
) -> Result<MigrationReport, Error> {
    let mut report = MigrationReport {
        adopted_legacy: plan.status.legacy,
        ..Default::default()
    };
    if plan.is_empty() {
        report.active_did = plan.status.active_did.clone();
        return Ok(report);
    }
    if plan.add_late_column {
        diesel::sql_query(pinned::baseline::ADD_LATE_COLUMN).execute(conn)?;
        report.warn(MigrationWarning::AddedLegacyColumn {
            table: "settings".to_owned(),
            column: pinned::baseline::LATE_COLUMN.to_owned(),
        });
        if pinned::app_service::record(conn, pinned::baseline::APP_LATE_COLUMN_STEP)? {
            report.warn(MigrationWarning::RecordedAppStep {
                table: pinned::app_service::TABLE.to_owned(),
                name: pinned::baseline::APP_LATE_COLUMN_STEP.to_owned(),
            });
        }
    }
    let mut adopted: Vec<restore::Kept> = plan
        .set_aside
        .iter()
        .map(|o| restore::Kept::new(o.clone()))
        .collect();
    super::adopt::set_aside(conn, &plan.set_aside)?;
    if plan.app_pointer.is_some() {
        // The legacy pointer the app's own table will override, as it is; the
        // app's table, kept with its rows for a rollback, then dropped for
        // idstore's own.
        restore::keep_legacy_pointer(conn)?;
        adopted.extend(restore::keep_table(conn, "active_identity")?);
        diesel::sql_query("DROP TABLE active_identity").execute(conn)?;
    }

    // The bookkeeping table, as diesel's harness creates it.
    diesel::migration::MigrationConnection::setup(conn)?;
    let migrations = embedded();
    let steps = plan.steps.len() + 1;
    for (i, version) in plan.steps.iter().enumerate() {
        if let Some(progress) = progress {
            progress(version.as_str(), i + 1, steps);
        }
        let migration = migrations
            .iter()
            .find(|m| m.name().version().to_string() == *version)
            .expect("pending versions come from the embedded list");
        step(conn, migration.as_ref(), version.as_str(), Direction::Up)?;
        report.applied.push(version.clone());
    }

    if !adopted.is_empty() {
        // The step that created idstore_original_schema has run.
        restore::record_adopted(conn, &adopted)?;
    }
    if let Some(app) = &plan.app_pointer {
        apply_app_pointer(conn, app, &mut report)?;
        restore::note_pointer_after_adoption(conn)?;
    }
    if plan.creates_active_identity() {
        report_quarantine(conn, &mut report)?;
    }
    if plan.drops_legacy_column() {
        report_archive(conn, &mut report)?;
    }
    report.active_did = queries::stored_active_did(conn)?;
    report.values_migrated +=
        u64::from(plan.creates_active_identity() && report.active_did.is_some());
    if let Some(progress) = progress {
        progress("validate", steps, steps);
    }
    Ok(report)
}

/// Puts the app's pointer into idstore's `active_identity` when it names an
/// account, else keeps its value in the quarantine.
fn apply_app_pointer(
    conn: &mut SqliteConnection,
    app: &super::inspect::AppPointer,
    report: &mut MigrationReport,
) -> QueryResult<()> {
    let used = match &app.active_did {
        Some(did) if app.names_account => {
            pinned::active_identity::set_pointer(conn, did, app.last_updated.as_deref())?;
            true
        }
        Some(did) => {
            pinned::active_identity::quarantine_pointer(
                conn,
                did,
                "the app's active_identity.activeDid names no account",
            )?;
            false
        }
        None => false,
    };
    report.warn(MigrationWarning::AdoptedAppActiveIdentity {
        value: app.active_did.clone(),
        used,
    });
    Ok(())
}

/// Names each row the active-identity step quarantined (its tables are new, so
/// every row in them came from this run): read a row at a time, a sample of each
/// kind kept in the report and the rest counted.
fn report_quarantine(conn: &mut SqliteConnection, report: &mut MigrationReport) -> QueryResult<()> {
    for a in pinned::active_identity::quarantined_accounts(conn)? {
        let a = a?;
        report.values_migrated += 1;
        tracing::warn!(item = %format!("account:{}", a.id), kept_account_id = a.kept_account_id, reason = %a.reason.0, "account quarantined");
        report.warn(MigrationWarning::QuarantinedAccount {
            account_id: a.id,
            did: a.did.0,
            kept_account_id: a.kept_account_id,
            reason: a.reason.0,
        });
    }
    for p in pinned::active_identity::quarantined_pointers(conn)? {
        let p = p?;
        report.values_migrated += 1;
        tracing::warn!(reason = %p.reason.0, "pointer value quarantined");
        report.warn(MigrationWarning::ClearedPointer {
            value: p.value.0,
            reason: p.reason.0,
        });
    }
    Ok(())
}

/// Names each `settings.activeDid` value the cleanup archived (a row at a time).
fn report_archive(conn: &mut SqliteConnection, report: &mut MigrationReport) -> QueryResult<()> {
    for a in pinned::cleanup::archived(conn)? {
        let a = a?;
        report.values_migrated += 1;
        report.warn(MigrationWarning::ArchivedActiveDid {
            settings_id: a.settings_id,
            value: a.value.0,
        });
    }
    Ok(())
}

/// Which way a step runs.
#[derive(Clone, Copy)]
pub(super) enum Direction {
    Up,
    Down,
}

/// Runs one step's up.sql (recording it, in diesel's bookkeeping and in the app's
/// migration service's where the file has it) or down.sql (forgetting it) inside
/// the run's own transaction. (Not diesel's `run_migration`: it wraps each step in a
/// savepoint, and when SQLite has already rolled everything back after a full disk,
/// rolling back to that savepoint fails and diesel reports that failure instead.)
pub(super) fn step(
    conn: &mut SqliteConnection,
    migration: &dyn Migration<Sqlite>,
    version: &str,
    direction: Direction,
) -> Result<(), Error> {
    let (ran, bookkeeping, way) = match direction {
        Direction::Up => (
            migration.run(conn),
            format!("INSERT INTO {BOOKKEEPING_TABLE} (version) VALUES (?)"),
            "up",
        ),
        Direction::Down => (
            migration.revert(conn),
            format!("DELETE FROM {BOOKKEEPING_TABLE} WHERE version = ?"),
            "down",
        ),
    };
    tracing::info!(version, direction = way, "migration step");
    ran.map_err(|e| step_error(version, e))?;
    diesel::sql_query(bookkeeping)
        .bind::<Text, _>(version)
        .execute(conn)
        .map_err(|source| step_failed(version, source))?;
    // The app's migration service keeps its own record, by name, of the same step
    // shipped in its format (`app_steps`). Not the baseline's: it stays applied when
    // a legacy file is rolled back, and the app's file must come back as it was;
    // the service may run it again, since it changes nothing there.
    if version != super::BASELINE_VERSION {
        let name = super::source::step(version)
            .expect("every embedded step has its files")
            .app_name();
        match direction {
            Direction::Up => pinned::app_service::record(conn, &name).map(drop),
            Direction::Down => pinned::app_service::forget(conn, &name),
        }
        .map_err(|source| step_failed(version, source))?;
    }
    Ok(())
}

/// A step's failure as SQLite's own error, so a full disk is reported as such.
/// diesel_migrations wraps SQL errors in a type it does not export; its message ends
/// with SQLite's (`Failed to run <name> with: <message>`), which is kept.
fn step_error(version: &str, e: Box<dyn std::error::Error + Send + Sync>) -> Error {
    let source = match e.downcast::<diesel::result::Error>() {
        Ok(source) => *source,
        Err(e) => {
            let text = e.to_string();
            let message = text
                .rsplit_once(" with: ")
                .map_or(text.as_str(), |(_, m)| m);
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::Unknown,
                Box::new(message.to_owned()),
            )
        }
    };
    step_failed(version, source)
}

/// A step's SQL error: the storage or lock it names, else a failed migration.
fn step_failed(version: &str, source: diesel::result::Error) -> Error {
    let kind = match crate::error::classify(&source) {
        ErrorKind::Database | ErrorKind::InvalidStoredValue => ErrorKind::MigrationFailed,
        other => other,
    };
    Error::new(
        kind,
        format!("migration {version} failed, everything was rolled back"),
    )
    .caused_by(source)
    .with_detail(crate::error::Detail::Sqlite)
}
