//! The embedded migrations and the runner that applies, validates and reverts them.
//!
//! Every run is one `BEGIN IMMEDIATE` transaction: either every step and its
//! validation succeed and the whole run commits, or nothing changes.

use diesel::migration::{Migration, MigrationSource};
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use diesel::sqlite::Sqlite;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use idstore_domain::{MigrationReport, MigrationWarning};
use idstore_schema::{accounts_quarantine, active_did_quarantine, settings_active_did_archive};

use crate::error::MigrateError;
use crate::sql;
use crate::store::account_exists;

/// Every migration, embedded at compile time (`build.rs` reruns when they change).
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// The legacy baseline: `accounts` and `settings` as the app creates them.
pub const BASELINE_VERSION: &str = "00000000000000";
/// Creates `active_identity`, makes `accounts.did` unique, adds the transition triggers.
pub const ACTIVE_IDENTITY_VERSION: &str = "20261125000001";
/// Drops `settings.activeDid` and the transition triggers.
pub const CLEANUP_VERSION: &str = "20261125000002";

const BOOKKEEPING_TABLE: &str = "__diesel_schema_migrations";

/// The columns of the legacy `accounts` table, in order.
const LEGACY_ACCOUNTS_COLUMNS: &[&str] = &[
    "id",
    "dateCreated",
    "derivationPath",
    "did",
    "identityEncrBase64",
    "mnemonicEncrBase64",
    "passkeyCredIdHex",
    "publicKeyHex",
];

/// The columns of the legacy `settings` table, in order: idstore's, with `activeDid`
/// third. The last was appended by a later app migration, so older files lack it.
fn legacy_settings_columns() -> Vec<&'static str> {
    let mut columns = crate::rows::SETTINGS_COLUMNS.to_vec();
    columns.insert(2, "activeDid");
    columns
}
const LATE_LEGACY_COLUMN: &str = "hasBackedUpSeed";

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

/// Where a database stands, read without writing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Applied versions this build knows, oldest first.
    pub applied: Vec<String>,
    /// Versions not yet applied, oldest first.
    pub pending: Vec<String>,
    /// Applied versions this build does not know (a newer idstore wrote the file).
    pub unknown: Vec<String>,
    /// The file was made by the legacy app and has not been adopted yet.
    pub legacy: bool,
    /// The file holds the app's own `active_identity` table, to be adopted.
    pub app_active_identity: bool,
    /// The active identity as stored (`''` reads as none).
    pub active_did: Option<String>,
    /// Number of accounts (0 when the table does not exist yet).
    pub accounts: i64,
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

impl MigrationStatus {
    /// True when `migrate` has work to do.
    pub fn needs_migration(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The pause point the file is stopped at, when it is at one with steps still
    /// pending (see [`PAUSE_POINTS`]).
    pub fn paused_at(&self) -> Option<&str> {
        let last = self.applied.last()?;
        (self.unknown.is_empty()
            && !self.pending.is_empty()
            && PAUSE_POINTS.contains(&last.as_str()))
        .then_some(last.as_str())
    }

    /// True when the repository API can serve the file: fully migrated, or stopped at
    /// a pause point, and written by no newer idstore.
    pub fn servable(&self) -> bool {
        self.unknown.is_empty() && (self.pending.is_empty() || self.paused_at().is_some())
    }
}

/// Reads applied and pending migrations, the legacy flag, the active identity and the
/// account count. Writes nothing (it works on a read-only connection).
pub fn status(conn: &mut SqliteConnection) -> Result<MigrationStatus, MigrateError> {
    let applied_all = applied_versions(conn)?;
    let known = known_versions();
    let unknown: Vec<String> = applied_all
        .iter()
        .filter(|v| !known.contains(v))
        .cloned()
        .collect();
    let applied: Vec<String> = known
        .iter()
        .filter(|v| applied_all.contains(v))
        .cloned()
        .collect();
    let pending: Vec<String> = known
        .iter()
        .filter(|v| !applied_all.contains(v))
        .cloned()
        .collect();
    let has_bookkeeping = sql::table_exists(conn, BOOKKEEPING_TABLE)?;
    let has_accounts = sql::table_exists(conn, "accounts")?;
    let legacy = !has_bookkeeping && (has_accounts || sql::table_exists(conn, "settings")?);
    let app_active_identity = !applied.iter().any(|v| v == ACTIVE_IDENTITY_VERSION)
        && sql::table_exists(conn, "active_identity")?;
    let active_did = stored_active_did(conn)?;
    let accounts = if has_accounts {
        sql::count_rows(conn, "accounts")?
    } else {
        0
    };
    Ok(MigrationStatus {
        applied,
        pending,
        unknown,
        legacy,
        app_active_identity,
        active_did,
        accounts,
    })
}

fn applied_versions(conn: &mut SqliteConnection) -> QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = Text)]
        version: String,
    }
    if !sql::table_exists(conn, BOOKKEEPING_TABLE)? {
        return Ok(Vec::new());
    }
    let rows = diesel::sql_query(format!(
        "SELECT version FROM {BOOKKEEPING_TABLE} ORDER BY version"
    ))
    .load::<Version>(conn)?;
    Ok(rows.into_iter().map(|r| r.version).collect())
}

/// The active identity wherever the current schema keeps it: `active_identity` once
/// it exists, else the master row's `settings.activeDid`. `''` reads as none.
fn stored_active_did(conn: &mut SqliteConnection) -> QueryResult<Option<String>> {
    let raw = if sql::table_exists(conn, "active_identity")?
        && sql::columns(conn, "active_identity")?
            .iter()
            .any(|c| c == "activeDid")
    {
        optional_text(
            conn,
            "SELECT activeDid AS value FROM active_identity WHERE id = 1",
        )?
    } else if sql::columns(conn, "settings")?
        .iter()
        .any(|c| c == "activeDid")
    {
        optional_text(conn, "SELECT activeDid AS value FROM settings WHERE id = 1")?
    } else {
        None
    };
    Ok(raw.filter(|s| !s.is_empty()))
}

#[derive(QueryableByName)]
struct OptionalText {
    #[diesel(sql_type = Nullable<Text>)]
    value: Option<String>,
}

/// First row's `value` of a query, NULL and "no row" both reading as `None`.
fn optional_text(conn: &mut SqliteConnection, query: &str) -> QueryResult<Option<String>> {
    Ok(diesel::sql_query(query)
        .get_result::<OptionalText>(conn)
        .optional()?
        .and_then(|r| r.value))
}

/// An additional check run on the migrated data inside the transaction; an `Err`
/// message fails the run and rolls everything back.
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
    /// How thoroughly to check the file's structure after migrating.
    pub integrity: Integrity,
}

/// Which SQLite structure check validates a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Integrity {
    /// `PRAGMA integrity_check`: every page, every constraint, and every index entry
    /// against its table. The default.
    #[default]
    Full,
    /// `PRAGMA quick_check`: the same but for the index-against-table comparison,
    /// which dominates on large files (about 2.5x faster at a million settings rows;
    /// see BENCHMARKS.md). The migration creates or rewrites no index over existing rows
    /// except the UNIQUE index on `accounts.did`, which is still checked in full.
    Quick,
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

/// How a transaction ended early: an error, or a dry run rolled back on purpose.
enum Abort<T> {
    Error(MigrateError),
    DryRun(T),
}

impl<T> From<diesel::result::Error> for Abort<T> {
    fn from(e: diesel::result::Error) -> Self {
        Abort::Error(e.into())
    }
}

impl<T> crate::txn::CarriesFault for Abort<T> {
    fn with_fault(self, conn: &mut SqliteConnection) -> Self {
        match self {
            Abort::Error(e) => Abort::Error(e.with_fault(conn)),
            done => done,
        }
    }
}

impl<T> From<MigrateError> for Abort<T> {
    fn from(e: MigrateError) -> Self {
        Abort::Error(e)
    }
}

fn finish<T>(result: Result<T, Abort<T>>) -> Result<T, MigrateError> {
    match result {
        Ok(done) | Err(Abort::DryRun(done)) => Ok(done),
        Err(Abort::Error(e)) => Err(e),
    }
}

/// The app's own `active_identity`, read before it is replaced by idstore's.
struct AppPointer {
    active_did: Option<String>,
    last_updated: Option<String>,
}

/// Applies every pending migration (or those up to `options.to`) in one immediate
/// transaction, adopting a legacy file first when needed, then validates:
/// `integrity_check` ok, `foreign_key_check` empty, no account row lost, and the
/// active identity equal to what a pre-flight read of the old data predicted. Any
/// failure rolls everything back.
pub fn migrate(
    conn: &mut SqliteConnection,
    options: MigrateOptions<'_>,
) -> Result<MigrationReport, MigrateError> {
    if let Some(to) = options.to {
        check_target(to)?;
    }
    let st = status(conn)?;
    if st
        .pending
        .iter()
        .any(|v| options.to.is_none_or(|to| v.as_str() <= to))
    {
        crate::fault::ensure_space(conn, "migrate", false)?;
    }
    atomically(
        conn,
        options.dry_run,
        |conn| run_pending(conn, options),
        |r| r.dry_run = true,
    )
}

/// Runs `run` in one immediate transaction; a dry run is rolled back on purpose
/// after `mark` notes it in the report. A full disk met mid-run is reported with
/// the space the run needs.
fn atomically<T>(
    conn: &mut SqliteConnection,
    dry_run: bool,
    run: impl FnOnce(&mut SqliteConnection) -> Result<T, MigrateError>,
    mark: impl FnOnce(&mut T),
) -> Result<T, MigrateError> {
    let result = finish(crate::txn::immediate(conn, |conn| {
        let mut report = run(conn)?;
        if dry_run {
            mark(&mut report);
            return Err(Abort::DryRun(report));
        }
        Ok(report)
    }));
    with_space_needed(conn, result)
}

/// A full disk met mid-run is reported with the space the run needs.
fn with_space_needed<T>(
    conn: &mut SqliteConnection,
    result: Result<T, MigrateError>,
) -> Result<T, MigrateError> {
    result.map_err(|e| match e {
        MigrateError::Storage(mut fault) if fault.needed_bytes.is_none() => {
            fault.needed_bytes = crate::fault::space_needed(conn, false).ok();
            MigrateError::Storage(fault)
        }
        other => other,
    })
}

/// The refusals [`migrate`] makes before writing anything (an unknown target, a
/// newer idstore's database, a legacy file of the wrong shape, the app's own
/// `active_identity` with a target too low to adopt it), on a connection that may be
/// read-only. Run it first to refuse a file without even switching it to WAL.
pub fn migrate_preflight(
    conn: &mut SqliteConnection,
    options: MigrateOptions<'_>,
) -> Result<(), MigrateError> {
    if let Some(to) = options.to {
        check_target(to)?;
    }
    let st = status(conn)?;
    if !st.unknown.is_empty() {
        return Err(MigrateError::UnknownVersions {
            versions: st.unknown,
        });
    }
    if st.legacy {
        check_legacy_shape(conn)?;
    }
    let creates_active_identity = st
        .pending
        .iter()
        .any(|v| v == ACTIVE_IDENTITY_VERSION && options.to.is_none_or(|to| v.as_str() <= to));
    if st.app_active_identity && !creates_active_identity {
        return Err(MigrateError::TargetTooLowForAdoption {
            needed: ACTIVE_IDENTITY_VERSION.to_owned(),
        });
    }
    let steps: Vec<String> = st
        .pending
        .iter()
        .filter(|v| options.to.is_none_or(|to| v.as_str() <= to))
        .cloned()
        .collect();
    crate::adopt::collisions(conn, &steps, st.app_active_identity)?;
    Ok(())
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

fn run_pending(
    conn: &mut SqliteConnection,
    options: MigrateOptions<'_>,
) -> Result<MigrationReport, MigrateError> {
    let before = status(conn)?;
    if !before.unknown.is_empty() {
        return Err(MigrateError::UnknownVersions {
            versions: before.unknown,
        });
    }
    let to_apply: Vec<String> = before
        .pending
        .iter()
        .filter(|v| options.to.is_none_or(|to| v.as_str() <= to))
        .cloned()
        .collect();
    let mut report = MigrationReport {
        adopted_legacy: before.legacy,
        ..Default::default()
    };
    if to_apply.is_empty() {
        report.active_did = before.active_did;
        return Ok(report);
    }
    let creates_active_identity = to_apply.iter().any(|v| v == ACTIVE_IDENTITY_VERSION);
    let drops_legacy_column = to_apply.iter().any(|v| v == CLEANUP_VERSION);

    if before.legacy {
        check_legacy_shape(conn)?;
        add_missing_legacy_columns(conn, &mut report)?;
    }
    let collisions = crate::adopt::collisions(conn, &to_apply, before.app_active_identity)?;
    let mut adopted: Vec<crate::adopt::Kept> = collisions
        .iter()
        .map(|o| crate::adopt::Kept {
            object: o.clone(),
            rows_sql: None,
        })
        .collect();
    crate::adopt::set_aside(conn, &collisions)?;
    let app_pointer = if before.app_active_identity {
        if !creates_active_identity {
            return Err(MigrateError::TargetTooLowForAdoption {
                needed: ACTIVE_IDENTITY_VERSION.to_owned(),
            });
        }
        adopted.extend(crate::adopt::keep_table(conn, "active_identity")?);
        Some(take_app_active_identity(conn)?)
    } else {
        None
    };

    // Pre-flight: what the old data says the result must be.
    let predicted_active = if creates_active_identity {
        predict_active_did(conn, app_pointer.as_ref())?
    } else {
        before.active_did.clone()
    };
    let accounts_before = account_rows(conn)?;

    let migrations = embedded();
    conn.applied_migrations()
        .map_err(|e| MigrateError::Migration(e.to_string()))?;
    let steps = to_apply.len() + 1;
    for (i, version) in to_apply.iter().enumerate() {
        if let Some(progress) = options.progress {
            progress(version, i + 1, steps);
        }
        let migration = migrations
            .iter()
            .find(|m| m.name().version().to_string() == *version)
            .expect("pending versions come from the embedded list");
        step(conn, migration.as_ref(), version, Direction::Up)?;
        report.applied.push(version.clone());
    }

    if !adopted.is_empty() {
        // The step that created idstore_original_schema has run.
        crate::adopt::record_adopted(conn, &adopted)?;
    }
    if let Some(app) = app_pointer {
        apply_app_pointer(conn, app, &mut report)?;
    }
    if creates_active_identity {
        report_quarantine(conn, &mut report)?;
    }
    if drops_legacy_column {
        report_archive(conn, &mut report)?;
    }
    report.active_did = stored_active_did(conn)?;
    report.values_migrated += u64::from(creates_active_identity && report.active_did.is_some());

    if let Some(progress) = options.progress {
        progress("validate", steps, steps);
    }
    let mut errors = Vec::new();
    match options.integrity {
        Integrity::Full => errors.extend(sql::integrity_problems(conn)?),
        Integrity::Quick => {
            errors.extend(sql::quick_check_problems(conn)?);
            errors.extend(sql::table_integrity_problems(conn, "accounts")?);
        }
    }
    errors.extend(
        sql::foreign_key_violations(conn)?
            .iter()
            .map(ToString::to_string),
    );
    if report.active_did != predicted_active {
        errors.push(format!(
            "the active identity is {:?} but the old data predicted {:?}",
            report.active_did, predicted_active
        ));
    }
    let accounts_after = account_rows(conn)?;
    if accounts_after != accounts_before {
        errors.push(format!(
            "{accounts_before} account rows before, {accounts_after} kept or quarantined after"
        ));
    }
    if let Some(Err(e)) = options.extra_check.map(|check| check(conn)) {
        errors.push(e.to_string());
    }
    if !errors.is_empty() {
        report.errors = errors;
        return Err(MigrateError::ValidationFailed {
            report: Box::new(report),
        });
    }
    Ok(report)
}

/// A legacy file is adopted only when every column it holds has a place to go back
/// to: unknown columns would be lost by quarantine or by the cleanup's rollback.
fn check_legacy_shape(conn: &mut SqliteConnection) -> Result<(), MigrateError> {
    let mut problems = Vec::new();
    let settings_columns = legacy_settings_columns();
    for (table, expected) in [
        ("accounts", LEGACY_ACCOUNTS_COLUMNS),
        ("settings", settings_columns.as_slice()),
    ] {
        let present = sql::columns(conn, table)?;
        if present.is_empty() {
            continue; // the baseline creates it
        }
        let unknown: Vec<&str> = present
            .iter()
            .map(String::as_str)
            .filter(|c| !expected.contains(c))
            .collect();
        if !unknown.is_empty() {
            problems.push(format!(
                "{table} has columns idstore does not know ({})",
                unknown.join(", ")
            ));
            continue;
        }
        let wanted: Vec<&str> = expected
            .iter()
            .copied()
            .filter(|c| *c != LATE_LEGACY_COLUMN || present.iter().any(|p| p == c))
            .collect();
        if present
            .iter()
            .map(String::as_str)
            .ne(wanted.iter().copied())
        {
            let missing: Vec<&str> = wanted
                .iter()
                .copied()
                .filter(|c| !present.iter().any(|p| p == c))
                .collect();
            if missing.is_empty() {
                problems.push(format!("{table} has its columns in an unexpected order"));
            } else {
                problems.push(format!("{table} lacks columns {}", missing.join(", ")));
            }
        }
    }
    if sql::table_exists(conn, "active_identity")?
        && !sql::columns(conn, "active_identity")?
            .iter()
            .any(|c| c == "activeDid")
    {
        problems.push("the app's active_identity table has no activeDid column".to_owned());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(MigrateError::LegacyShape { problems })
    }
}

fn add_missing_legacy_columns(
    conn: &mut SqliteConnection,
    report: &mut MigrationReport,
) -> QueryResult<()> {
    let present = sql::columns(conn, "settings")?;
    if !present.is_empty() && !present.iter().any(|c| c == LATE_LEGACY_COLUMN) {
        diesel::sql_query("ALTER TABLE settings ADD COLUMN hasBackedUpSeed BOOLEAN DEFAULT FALSE")
            .execute(conn)?;
        report.warnings.push(MigrationWarning::AddedLegacyColumn {
            table: "settings".to_owned(),
            column: LATE_LEGACY_COLUMN.to_owned(),
        });
    }
    Ok(())
}

/// Reads the app's `active_identity` row and drops the table (with its indexes and
/// triggers) so the migration can create idstore's. The read value is re-applied by
/// [`apply_app_pointer`] in the same transaction.
fn take_app_active_identity(conn: &mut SqliteConnection) -> QueryResult<AppPointer> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Nullable<Text>)]
        active_did: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        last_updated: Option<String>,
    }
    let has_last_updated = sql::columns(conn, "active_identity")?
        .iter()
        .any(|c| c == "lastUpdated");
    let query = if has_last_updated {
        "SELECT activeDid AS active_did, CAST(lastUpdated AS TEXT) AS last_updated FROM active_identity ORDER BY id LIMIT 1"
    } else {
        "SELECT activeDid AS active_did, NULL AS last_updated FROM active_identity ORDER BY id LIMIT 1"
    };
    let row = diesel::sql_query(query)
        .get_result::<Row>(conn)
        .optional()?;
    diesel::sql_query("DROP TABLE active_identity").execute(conn)?;
    Ok(match row {
        Some(r) => AppPointer {
            active_did: r.active_did.filter(|s| !s.is_empty()),
            last_updated: r.last_updated,
        },
        None => AppPointer {
            active_did: None,
            last_updated: None,
        },
    })
}

/// Account rows, kept or quarantined: a migration may move them, never lose them.
fn account_rows(conn: &mut SqliteConnection) -> QueryResult<i64> {
    let mut n = 0;
    for table in ["accounts", "accounts_quarantine"] {
        if sql::table_exists(conn, table)? {
            n += sql::count_rows(conn, table)?;
        }
    }
    Ok(n)
}

/// The active identity the old data implies, before the active-identity migration
/// runs: the app's pointer when it names an account, else the master row's value
/// when it names one, else none.
fn predict_active_did(
    conn: &mut SqliteConnection,
    app: Option<&AppPointer>,
) -> QueryResult<Option<String>> {
    if !sql::table_exists(conn, "accounts")? {
        return Ok(None);
    }
    // The app's pointer is the newer truth when it names an account.
    let settings_value = if sql::table_exists(conn, "settings")? {
        optional_text(conn, "SELECT activeDid AS value FROM settings WHERE id = 1")?
    } else {
        None
    };
    for candidate in [app.and_then(|a| a.active_did.clone()), settings_value]
        .into_iter()
        .flatten()
    {
        if !candidate.is_empty() && account_exists(conn, &candidate)? {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

fn apply_app_pointer(
    conn: &mut SqliteConnection,
    app: AppPointer,
    report: &mut MigrationReport,
) -> QueryResult<()> {
    let Some(did) = app.active_did else {
        report
            .warnings
            .push(MigrationWarning::AdoptedAppActiveIdentity {
                value: None,
                used: false,
            });
        return Ok(());
    };
    if account_exists(conn, &did)? {
        diesel::sql_query(
            "UPDATE active_identity SET activeDid = ?1, \
             lastUpdated = coalesce(?2, strftime('%Y-%m-%d %H:%M:%f', 'now')) WHERE id = 1",
        )
        .bind::<Text, _>(&did)
        .bind::<Nullable<Text>, _>(&app.last_updated)
        .execute(conn)?;
        report
            .warnings
            .push(MigrationWarning::AdoptedAppActiveIdentity {
                value: Some(did),
                used: true,
            });
    } else {
        let reason = "the app's active_identity.activeDid names no account";
        diesel::insert_into(active_did_quarantine::table)
            .values((
                active_did_quarantine::activeDid.eq(&did),
                active_did_quarantine::reason.eq(reason),
            ))
            .execute(conn)?;
        report
            .warnings
            .push(MigrationWarning::AdoptedAppActiveIdentity {
                value: Some(did.clone()),
                used: false,
            });
    }
    Ok(())
}

/// Names each row the active-identity migration quarantined (its tables are new, so
/// every row in them came from this run).
fn report_quarantine(conn: &mut SqliteConnection, report: &mut MigrationReport) -> QueryResult<()> {
    let moved: Vec<(i32, String, i32, String)> = accounts_quarantine::table
        .select((
            accounts_quarantine::id,
            accounts_quarantine::did,
            accounts_quarantine::keptAccountId,
            accounts_quarantine::reason,
        ))
        .order(accounts_quarantine::id)
        .load(conn)?;
    let cleared: Vec<(String, String)> = active_did_quarantine::table
        .select((
            active_did_quarantine::activeDid,
            active_did_quarantine::reason,
        ))
        .order(active_did_quarantine::id)
        .load(conn)?;
    report.values_migrated += (moved.len() + cleared.len()) as u64;
    for (account_id, _, kept, reason) in &moved {
        tracing::warn!(item = %format!("account:{account_id}"), kept_account_id = kept, reason = %reason, "account quarantined");
    }
    for (_, reason) in &cleared {
        tracing::warn!(reason = %reason, "pointer value quarantined");
    }
    report.warnings.extend(
        moved
            .into_iter()
            .map(|(account_id, did, kept_account_id, reason)| {
                MigrationWarning::QuarantinedAccount {
                    account_id,
                    did,
                    kept_account_id,
                    reason,
                }
            }),
    );
    report.warnings.extend(
        cleared
            .into_iter()
            .map(|(value, reason)| MigrationWarning::ClearedPointer { value, reason }),
    );
    Ok(())
}

fn report_archive(conn: &mut SqliteConnection, report: &mut MigrationReport) -> QueryResult<()> {
    let archived: Vec<(i32, String)> = settings_active_did_archive::table
        .select((
            settings_active_did_archive::settingsId,
            settings_active_did_archive::activeDid,
        ))
        .order(settings_active_did_archive::settingsId)
        .load(conn)?;
    report.values_migrated += archived.len() as u64;
    report.warnings.extend(
        archived
            .into_iter()
            .map(|(settings_id, value)| MigrationWarning::ArchivedActiveDid { settings_id, value }),
    );
    Ok(())
}

/// Which way a step runs.
#[derive(Clone, Copy)]
enum Direction {
    Up,
    Down,
}

/// Runs one step's up.sql (recording it) or down.sql (forgetting it) inside the
/// run's own transaction. (Not diesel's `run_migration`: it wraps each step in a
/// savepoint, and when SQLite has already rolled everything back after a full disk,
/// rolling back to that savepoint fails and diesel reports that failure instead.)
fn step(
    conn: &mut SqliteConnection,
    migration: &dyn Migration<Sqlite>,
    version: &str,
    direction: Direction,
) -> Result<(), MigrateError> {
    let (ran, bookkeeping) = match direction {
        Direction::Up => (
            migration.run(conn),
            format!("INSERT INTO {BOOKKEEPING_TABLE} (version) VALUES (?)"),
        ),
        Direction::Down => (
            migration.revert(conn),
            format!("DELETE FROM {BOOKKEEPING_TABLE} WHERE version = ?"),
        ),
    };
    tracing::info!(
        version,
        direction = match direction {
            Direction::Up => "up",
            Direction::Down => "down",
        },
        "migration step"
    );
    ran.map_err(|e| step_error(version, e))?;
    diesel::sql_query(bookkeeping)
        .bind::<Text, _>(version)
        .execute(conn)
        .map_err(|source| MigrateError::Step {
            version: version.to_owned(),
            source,
        })?;
    Ok(())
}

/// A step's failure as SQLite's own error, so a full disk is reported as such.
/// diesel_migrations wraps SQL errors in a type it does not export; its message ends
/// with SQLite's (`Failed to run <name> with: <message>`), which is kept.
fn step_error(version: &str, e: Box<dyn std::error::Error + Send + Sync>) -> MigrateError {
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
    MigrateError::Step {
        version: version.to_owned(),
        source,
    }
}

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
    pub forgotten_decisions: Vec<crate::QuarantineRef>,
}

/// Runs down migrations, newest first, in one immediate transaction, then checks
/// `integrity_check` and `foreign_key_check`. Stops above the baseline unless
/// `include_baseline` is set. Indexes and triggers that another program created on
/// `settings` survive the rebuild that puts `settings.activeDid` back.
pub fn rollback(
    conn: &mut SqliteConnection,
    options: &RollbackOptions,
) -> Result<RollbackReport, MigrateError> {
    if !rollback_plan(conn, options)?.is_empty() {
        crate::fault::ensure_space(conn, "rollback", false)?;
    }
    atomically(
        conn,
        options.dry_run,
        |conn| revert(conn, options),
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
    if !before.unknown.is_empty() {
        return Err(MigrateError::UnknownVersions {
            versions: before.unknown,
        });
    }
    let newest_first: Vec<String> = before.applied.iter().rev().cloned().collect();
    let to_revert: Vec<String> = match &options.target {
        RollbackTarget::Baseline => newest_first
            .into_iter()
            .filter(|v| v != BASELINE_VERSION)
            .collect(),
        RollbackTarget::Version(target) => newest_first
            .into_iter()
            .filter(|v| v.as_str() > target.as_str())
            .collect(),
        RollbackTarget::Steps(n) => newest_first.into_iter().take(*n).collect(),
        RollbackTarget::Everything => newest_first,
    };
    if to_revert.iter().any(|v| v == BASELINE_VERSION) && !options.include_baseline {
        return Err(MigrateError::BaselineNeedsFlag);
    }
    if to_revert.iter().any(|v| v == ACTIVE_IDENTITY_VERSION) && !options.forget_decisions {
        let undone = crate::quarantine::restores_a_migrate_would_undo(conn)?;
        if !undone.is_empty() {
            return Err(MigrateError::DecisionsWouldBeUndone {
                items: undone.iter().map(|(_, item)| item.to_string()).collect(),
            });
        }
    }
    Ok(to_revert)
}

fn revert(
    conn: &mut SqliteConnection,
    options: &RollbackOptions,
) -> Result<RollbackReport, MigrateError> {
    let to_revert = rollback_plan(conn, options)?;
    let migrations = embedded();
    let mut report = RollbackReport::default();
    for version in &to_revert {
        let migration = migrations
            .iter()
            .find(|m| m.name().version().to_string() == *version)
            .expect("applied versions were checked against the embedded list");
        let foreign = if version == CLEANUP_VERSION {
            foreign_settings_objects(conn)?
        } else {
            vec![]
        };
        // Objects to put back with the text the file had, read before the step's
        // down.sql drops the table that keeps them.
        let rebuilt = if version == CLEANUP_VERSION {
            crate::adopt::recorded(conn, "rebuilt")?
        } else {
            vec![]
        };
        let adopted = if version == ACTIVE_IDENTITY_VERSION {
            let kept = crate::adopt::recorded(conn, "adopted")?;
            crate::adopt::forget_adopted(conn)?;
            kept
        } else {
            vec![]
        };
        if version == ACTIVE_IDENTITY_VERSION {
            // Only reached with forget_decisions (rollback_plan refuses otherwise):
            // the down.sql's own guard would refuse while these log rows exist.
            for (decision, item) in crate::quarantine::restores_a_migrate_would_undo(conn)? {
                diesel::delete(idstore_schema::quarantine_decisions::table.find(decision))
                    .execute(conn)?;
                report.forgotten_decisions.push(item);
            }
        }
        step(conn, migration.as_ref(), version, Direction::Down)?;
        for sql in foreign {
            diesel::sql_query(sql).execute(conn)?;
        }
        crate::adopt::restore_rebuilt_settings(conn, &rebuilt)?;
        crate::adopt::restore_adopted(conn, &adopted)?;
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
    report.active_did = stored_active_did(conn)?;
    Ok(report)
}

/// Indexes and triggers on `settings` that idstore's migrations do not create: the
/// cleanup's down.sql rebuilds the table, which would drop them.
fn foreign_settings_objects(conn: &mut SqliteConnection) -> QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Object {
        #[diesel(sql_type = Text)]
        sql: String,
    }
    let rows = diesel::sql_query(
        "SELECT sql FROM sqlite_master
          WHERE tbl_name = 'settings' AND type IN ('index', 'trigger') AND sql IS NOT NULL
            AND name NOT IN ('idx_settings_accountDid',
                             'settings_active_did_sync_on_insert',
                             'settings_active_did_sync_on_update')
          ORDER BY type, name",
    )
    .load::<Object>(conn)?;
    Ok(rows.into_iter().map(|o| o.sql).collect())
}
