//! How a run goes, `migrate`'s and `rollback`'s: planned once, reading only, with
//! every refusal and the room checked; then, in one transaction under the write
//! lock, the backup, the plan (made again only if another program committed
//! meanwhile: [`Planned`]), the steps' own SQL, the report of what moved, and the
//! validation. `migrate` itself is here; `rollback.rs` runs its steps through
//! [`step`] the same way.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use std::path::{Path, PathBuf};

use super::inspect::Preflight;
use super::plan::MigrationPlan;
use super::{
    BASELINE_VERSION, BOOKKEEPING_TABLE, Version, inspect, preview, runner_sql, steps, verify,
};
use crate::connection::Handle;
use crate::error::{Error, ErrorKind};
use crate::migrations::report::{MigrationReport, MigrationWarning};
use crate::sql::queries;

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
/// use idstore_repo::MigrateOptions;
/// use idstore_repo::migrations::Integrity;
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

/// A plan made before the write lock is taken, with SQLite's `data_version` as it
/// was before the plan was made. Under the lock the plan holds when no other
/// connection has committed since (the version is the same), and is made again
/// there when one has: one plan for an undisturbed run, never a stale one.
pub(crate) struct Planned<P> {
    plan: P,
    data_version: i64,
}

impl<P: Clone> Planned<P> {
    /// Makes the plan with `make`, reading only.
    pub(crate) fn make(
        conn: &mut SqliteConnection,
        make: impl FnOnce(&mut SqliteConnection) -> Result<P, Error>,
    ) -> Result<Self, Error> {
        let data_version = crate::sql::data_version(conn)?;
        Ok(Planned {
            plan: make(conn)?,
            data_version,
        })
    }

    /// The plan as it was made.
    pub(crate) fn plan(&self) -> &P {
        &self.plan
    }

    /// The plan to run under the write lock the caller holds: this one, or, when
    /// another connection committed since it was made, one made again with `make`.
    pub(crate) fn under_lock(
        &self,
        conn: &mut SqliteConnection,
        make: impl FnOnce(&mut SqliteConnection) -> Result<P, Error>,
    ) -> Result<P, Error> {
        if crate::sql::data_version(conn)? == self.data_version {
            Ok(self.plan.clone())
        } else {
            make(conn)
        }
    }
}

/// Applies every pending migration (or those up to `options.to`) in one immediate
/// transaction, adopting a legacy file first when needed, then validates (see
/// [`Integrity`]): any failure rolls everything back. The plan's refusals and the
/// room the run needs are checked first, reading only; then the backup; then the
/// run, which runs that plan under its write lock, or a plan made again there when
/// another program committed a change since (see [`Planned`]).
pub(crate) fn migrate(
    handle: &mut Handle,
    options: &MigrateOptions<'_>,
) -> Result<MigrationReport, Error> {
    let to = options.to.as_ref().map(Version::as_str);
    if to.is_none() && super::up_to_date(&mut handle.conn)? {
        // The common case of a service's start: a few reads, no write lock.
        return Ok(MigrationReport {
            active_did: crate::sql::queries::stored_active_did(&mut handle.conn)?,
            dry_run: options.dry_run,
            ..Default::default()
        });
    }
    // With no backup to take first, the next step's preflight is left to the
    // step's own SQL, which opens with it: evaluated here as well, it would run
    // twice on every migration. A refusal then rolls the run back, and the plan,
    // made again evaluating the preflight, gives it in the same words and
    // before any other failure, as a plan that evaluated it would have.
    let preflight = if options.backup.is_some() {
        Preflight::Evaluate
    } else {
        Preflight::LeftToTheStep
    };
    let run = run_plan(handle, options, to, preflight);
    match run {
        Err(failure) if preflight == Preflight::LeftToTheStep => {
            match plan_migration(&mut handle.conn, to) {
                Err(refusal) if refusal.token().is_some() => Err(refusal),
                _ => Err(failure),
            }
        }
        run => run,
    }
}

/// [`migrate`] past its quick check: the plan, the room, the backup, the run.
fn run_plan(
    handle: &mut Handle,
    options: &MigrateOptions<'_>,
    to: Option<&str>,
    preflight: Preflight,
) -> Result<MigrationReport, Error> {
    let make = |conn: &mut SqliteConnection| {
        MigrationPlan::decide(inspect::Inspection::read_with(conn, preflight)?, to)
    };
    let planned = Planned::make(&mut handle.conn, make)?;
    let plan = planned.plan();
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
    crate::fs::storage::ensure_space(&mut handle.conn, &handle.path, "migrate", backup.is_some())?;
    let mut report = handle.durably(|handle| {
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
            options.dry_run,
            |conn| {
                if let Some(dest) = backup {
                    // Under the run's write lock: the copy is exactly what is migrated.
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
                let mut plan = planned.under_lock(conn, make)?;
                if !plan.is_empty() {
                    plan.accounts = Some(inspect::AccountDigest::read(conn)?);
                }
                let mut report = execute(conn, &plan, options.progress)?;
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
    let result = crate::connection::transaction::immediate(conn, path, |conn| {
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
        (Err(e), None) => Err(crate::fs::storage::with_needed(e, conn)),
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
        diesel::sql_query(runner_sql::baseline::ADD_LATE_COLUMN).execute(conn)?;
        report.warn(MigrationWarning::AddedLegacyColumn {
            table: "settings".to_owned(),
            column: runner_sql::baseline::LATE_COLUMN.to_owned(),
        });
        if runner_sql::app_service::record(conn, runner_sql::baseline::APP_LATE_COLUMN_STEP)? {
            report.warn(MigrationWarning::RecordedAppStep {
                table: runner_sql::app_service::TABLE.to_owned(),
                name: runner_sql::baseline::APP_LATE_COLUMN_STEP.to_owned(),
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
        && let Some(found) = runner_sql::app_service::unrecognized(conn)?
    {
        report.warn(MigrationWarning::UnrecordedAppSteps {
            table: runner_sql::app_service::TABLE.to_owned(),
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
    for a in runner_sql::active_identity::quarantined_accounts(conn)? {
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
    for p in runner_sql::active_identity::quarantined_pointers(conn)? {
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
    for a in runner_sql::cleanup::archived(conn)? {
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
            Direction::Up => runner_sql::app_service::record(conn, &name).map(drop),
            Direction::Down => runner_sql::app_service::forget(conn, &name),
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

#[cfg(test)]
mod tests {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;

    use super::*;

    #[test]
    fn a_plan_is_made_again_under_the_lock_only_when_another_connection_committed() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("t.sqlite").to_str().unwrap().to_owned();
        let mut ours = SqliteConnection::establish(&url).unwrap();
        let mut theirs = SqliteConnection::establish(&url).unwrap();
        ours.batch_execute("CREATE TABLE t (x);").unwrap();
        let planned = Planned::make(&mut ours, |_| Ok(1)).unwrap();
        let again = |_: &mut SqliteConnection| -> Result<i32, Error> { panic!("planned again") };
        // Undisturbed, and after a commit of this connection's own: the same plan.
        ours.batch_execute("BEGIN IMMEDIATE;").unwrap();
        assert_eq!(planned.under_lock(&mut ours, again).unwrap(), 1);
        ours.batch_execute("ROLLBACK; INSERT INTO t VALUES (1);")
            .unwrap();
        ours.batch_execute("BEGIN IMMEDIATE;").unwrap();
        assert_eq!(planned.under_lock(&mut ours, again).unwrap(), 1);
        ours.batch_execute("ROLLBACK;").unwrap();
        // Another connection's commit: planned again, under the lock.
        theirs.batch_execute("INSERT INTO t VALUES (2);").unwrap();
        ours.batch_execute("BEGIN IMMEDIATE;").unwrap();
        assert_eq!(planned.under_lock(&mut ours, |_| Ok(2)).unwrap(), 2);
        ours.batch_execute("ROLLBACK;").unwrap();
    }
}
