//! Executing a plan: the steps' own SQL, run inside idstore's own transaction, and
//! the report of what moved.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::plan::MigrationPlan;
use super::{BASELINE_VERSION, BOOKKEEPING_TABLE, Progress, pinned, preview, steps};
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

/// Carries out `plan` (inside the caller's transaction): a preview build's file
/// brought to the current steps, the app's late column where its service would have
/// added it, each step's own SQL, and the report of every value moved. Validation is
/// the caller's next step.
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
    if plan.upgrades_preview {
        let from = preview::upgrade(conn).map_err(|e| step_failed("preview", e))?;
        report.warn(MigrationWarning::UpgradedPreview { from });
    }
    if plan.add_late_column {
        // As the app's own step 003 does, which its service runs before idstore's.
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

    // The bookkeeping table, as diesel's harness creates it.
    diesel::migration::MigrationConnection::setup(conn)?;
    let steps = plan.steps.len() + 1;
    for (i, version) in plan.steps.iter().enumerate() {
        if let Some(progress) = progress {
            progress(version.as_str(), i + 1, steps);
        }
        step(conn, version.as_str(), Direction::Up)?;
        report.applied.push(version.clone());
    }

    if plan.creates_active_identity() {
        if let Some(app) = &plan.app_pointer {
            let used = app.names_account
                && queries::stored_active_did(conn)?.as_deref() == app.active_did.as_deref();
            report.warn(MigrationWarning::AdoptedAppActiveIdentity {
                value: app.active_did.clone(),
                used,
            });
        }
        report_quarantine(conn, &mut report)?;
    }
    if plan.drops_legacy_column() {
        report_archive(conn, &mut report)?;
    }
    let recorded: Vec<String> = plan
        .steps
        .iter()
        .filter(|v| *v != BASELINE_VERSION)
        .map(|v| steps::step(v.as_str()).expect("a known step").app_name())
        .collect();
    // (A file this run created is no file of the app's: its service never sees it.)
    if !recorded.is_empty()
        && plan.has_user_tables()
        && let Some(found) = pinned::app_service::unrecognized(conn)?
    {
        report.warn(MigrationWarning::UnrecordedAppSteps {
            table: pinned::app_service::TABLE.to_owned(),
            found,
            names: recorded,
        });
    }
    report.active_did = queries::stored_active_did(conn)?;
    report.values_migrated +=
        u64::from(plan.creates_active_identity() && report.active_did.is_some());
    if let Some(progress) = progress {
        progress("validate", steps, steps);
    }
    Ok(report)
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

/// Runs one step's own SQL, its up (recording it, in diesel's bookkeeping and in
/// the app's migration service's where the file has it) or its down (forgetting
/// it), inside the run's own transaction: the very text the app's service runs. A
/// refusal of its preflight comes back by its token.
pub(super) fn step(
    conn: &mut SqliteConnection,
    version: &str,
    direction: Direction,
) -> Result<(), Error> {
    let step = steps::step(version).expect("a known step");
    let (sql, bookkeeping, way) = match direction {
        Direction::Up => (
            step.up_sql(),
            format!("INSERT INTO {BOOKKEEPING_TABLE} (version) VALUES (?)"),
            "up",
        ),
        Direction::Down => (
            step.down_sql(),
            format!("DELETE FROM {BOOKKEEPING_TABLE} WHERE version = ?"),
            "down",
        ),
    };
    tracing::info!(version, direction = way, "migration step");
    conn.batch_execute(sql)
        .map_err(|source| step_failed(version, source))?;
    diesel::sql_query(bookkeeping)
        .bind::<Text, _>(version)
        .execute(conn)
        .map_err(|source| step_failed(version, source))?;
    // The app's migration service keeps its own record, by name, of the same step
    // shipped in its format. Not the baseline's: it stays applied when a legacy file
    // is rolled back, and the app's file must come back as it was; the service may
    // run it again, since it changes nothing there.
    if version != BASELINE_VERSION {
        let name = step.app_name();
        match direction {
            Direction::Up => pinned::app_service::record(conn, &name).map(drop),
            Direction::Down => pinned::app_service::forget(conn, &name),
        }
        .map_err(|source| step_failed(version, source))?;
    }
    Ok(())
}

/// A step's SQL error: its preflight's refusal by token, else the storage or lock
/// it names, else a failed migration.
fn step_failed(version: &str, source: diesel::result::Error) -> Error {
    if let diesel::result::Error::DatabaseError(_, info) = &source
        && let Some((token, _)) = steps::token_of(info.message())
    {
        return steps::refused(token, &[]);
    }
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
