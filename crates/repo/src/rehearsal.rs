//! A rehearsal of the rollout on one file: on a private copy, migrate, check, roll
//! back to where the file was, and compare with the original, timing each part and
//! naming which of the planning document's rollback triggers fired. The original is
//! only ever read.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use serde::Serialize;

use crate::database::{Database, OpenOptions};
use crate::error::{Error, ErrorKind};
use crate::key::Key;
use crate::migrations::{MigrateOptions, RollbackOptions, RollbackTarget, Version};

/// How one file's rehearsal ended.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RehearsalOutcome {
    /// Migrated, checked, rolled back, and the round trip gave every row back.
    Migrated,
    /// Nothing to migrate: already at the latest version, and checked.
    UpToDate,
    /// idstore refused the file with a clear error (not a database, encrypted
    /// without its key, another program's objects, …): nothing would be written.
    Refused,
    /// A step failed that must not: one of [`Rehearsal::triggers`] fired.
    Failed,
}

/// The planning document's rollback triggers, as a rehearsal can see them.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutTrigger {
    /// The migration's validation failed (it rolled itself back).
    ValidationFailed,
    /// `check` found problems after the migration (not notices or decisions).
    IntegrityCheckFailed,
    /// The round trip lost or changed a row ("a user reporting data loss").
    DataLoss,
    /// The rollback itself failed.
    RollbackFailed,
    /// The migration took longer than the limit given.
    PerformanceRegression,
    /// Another engine, applying the same steps, gave another file.
    PlatformInconsistency,
}

impl RolloutTrigger {
    /// Its name in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutTrigger::ValidationFailed => "validation_failed",
            RolloutTrigger::IntegrityCheckFailed => "integrity_check_failed",
            RolloutTrigger::DataLoss => "data_loss",
            RolloutTrigger::RollbackFailed => "rollback_failed",
            RolloutTrigger::PerformanceRegression => "performance_regression",
            RolloutTrigger::PlatformInconsistency => "platform_inconsistency",
        }
    }
}

/// Milliseconds each part took.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RehearsalDurations {
    /// Copying and opening (with any recovery).
    pub open_ms: f64,
    /// `migrate`.
    pub migrate_ms: f64,
    /// `check` after it.
    pub check_ms: f64,
    /// The rollback to where the file was.
    pub rollback_ms: f64,
    /// Everything, comparisons included.
    pub total_ms: f64,
}

/// One file's rehearsal: one JSON Lines record of `idstore rehearse`.
#[non_exhaustive]
#[derive(Debug, Clone, Serialize)]
pub struct Rehearsal {
    /// How it ended.
    pub outcome: RehearsalOutcome,
    /// The error's kind, when a step failed or refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    /// The error's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The part that failed or refused: `open`, `migrate`, `check`, `rollback`,
    /// `compare` or `engine`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<&'static str>,
    /// Whether the file was encrypted.
    pub encrypted: bool,
    /// Whether it was a legacy file, not yet adopted.
    pub legacy: bool,
    /// The newest version it had, if any.
    pub from_version: Option<Version>,
    /// The versions the migration applied.
    pub applied: Vec<Version>,
    /// Accounts quarantined (duplicate DIDs).
    pub quarantined_accounts: u64,
    /// Pointer values quarantined (naming no account).
    pub quarantined_pointers: u64,
    /// `settings.activeDid` values archived by the cleanup.
    pub archived_values: u64,
    /// Problems `check` found after the migration, notices and decisions aside.
    pub check_problems: u64,
    /// Whether the round trip gave every row back.
    pub data_intact: Option<bool>,
    /// Whether the other engine gave the same file, where one was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_matches: Option<bool>,
    /// What each part took.
    pub durations: RehearsalDurations,
    /// The rollback triggers that fired, if any.
    pub triggers: Vec<RolloutTrigger>,
}

/// Another engine for [`RehearsalOptions::engine`]: given a copy of the original
/// and a path, it writes there the file its own run of idstore's steps gives.
pub type RehearsalEngine<'a> = &'a dyn Fn(&Path, &Path) -> Result<(), String>;

/// How [`rehearse`] runs.
#[derive(Default)]
#[non_exhaustive]
pub struct RehearsalOptions<'a> {
    key: Option<Key>,
    slow: Option<Duration>,
    engine: Option<RehearsalEngine<'a>>,
}

impl<'a> RehearsalOptions<'a> {
    /// No key, no time limit, no other engine.
    pub fn new() -> Self {
        Self::default()
    }

    /// The key of encrypted files (a plain file is opened without it).
    pub fn key(mut self, key: Option<Key>) -> Self {
        self.key = key;
        self
    }

    /// A migration slower than this fires [`RolloutTrigger::PerformanceRegression`].
    pub fn slow(mut self, limit: Option<Duration>) -> Self {
        self.slow = limit;
        self
    }

    /// Another engine whose migrated file is compared with idstore's.
    pub fn engine(mut self, engine: Option<RehearsalEngine<'a>>) -> Self {
        self.engine = engine;
        self
    }
}

/// Rehearses the rollout on `source`, working in `work` (an empty, private folder
/// the caller removes after): never writes `source` or anything beside it.
pub fn rehearse(source: &Path, work: &Path, options: &RehearsalOptions<'_>) -> Rehearsal {
    let started = Instant::now();
    let mut r = Rehearsal {
        outcome: RehearsalOutcome::Migrated,
        error_kind: None,
        error: None,
        stage: None,
        encrypted: false,
        legacy: false,
        from_version: None,
        applied: Vec::new(),
        quarantined_accounts: 0,
        quarantined_pointers: 0,
        archived_values: 0,
        check_problems: 0,
        data_intact: None,
        engine_matches: None,
        durations: RehearsalDurations::default(),
        triggers: Vec::new(),
    };
    if let Err((stage, e)) = run(source, work, options, &mut r) {
        r.outcome = match (stage, e.kind()) {
            ("migrate", ErrorKind::ValidationFailed | ErrorKind::MigrationFailed) => {
                r.triggers.push(RolloutTrigger::ValidationFailed);
                RehearsalOutcome::Failed
            }
            ("rollback", _) => {
                r.triggers.push(RolloutTrigger::RollbackFailed);
                RehearsalOutcome::Failed
            }
            ("open" | "migrate", _) => RehearsalOutcome::Refused,
            _ => RehearsalOutcome::Failed,
        };
        r.stage = Some(stage);
        r.error_kind = Some(e.kind());
        // Named by the file rehearsed, not the private copy it was read through.
        let mut message = e.to_string();
        for copy in ["original.sqlite", "migrated.sqlite", "engine.sqlite"] {
            message = message.replace(
                &work.join(copy).display().to_string(),
                &source.display().to_string(),
            );
        }
        r.error = Some(message);
    }
    if !r.triggers.is_empty() {
        r.outcome = RehearsalOutcome::Failed;
    }
    r.triggers.sort();
    r.triggers.dedup();
    r.durations.total_ms = ms(started.elapsed());
    r
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

type Staged<T> = Result<T, (&'static str, Error)>;

fn at(stage: &'static str) -> impl FnOnce(Error) -> (&'static str, Error) {
    move |e| (stage, e)
}

fn run(
    source: &Path,
    work: &Path,
    options: &RehearsalOptions<'_>,
    r: &mut Rehearsal,
) -> Staged<()> {
    let t = Instant::now();
    let copy = work.join("original.sqlite");
    copy_regular(source, &copy).map_err(at("open"))?;
    // The side files that hold part of its state, copied so the copy recovers as
    // the original would.
    let file_name = source.file_name().unwrap_or_default();
    for side in ["-journal", "-wal"] {
        let name = source.with_file_name(crate::files::suffixed(file_name, side));
        if std::fs::symlink_metadata(&name).is_ok_and(|m| m.is_file()) {
            let to = copy.with_file_name(crate::files::suffixed(
                copy.file_name().unwrap_or_default(),
                side,
            ));
            copy_regular(&name, &to).map_err(at("open"))?;
        }
    }
    r.encrypted = Database::is_encrypted(&copy).map_err(at("open"))?;
    let open = |path: &Path| {
        OpenOptions::new()
            .create(false)
            .key(if r.encrypted {
                options.key.clone()
            } else {
                None
            })
            .open(path)
    };
    let mut db = open(&copy).map_err(at("open"))?;
    let status = db.status().map_err(at("open"))?;
    r.legacy = status.legacy;
    r.from_version = status.applied.last().cloned();
    let before = contents(db.conn(), BOOKKEEPING_CLOCKS).map_err(|e| ("open", e.into()))?;
    let migrated = work.join("migrated.sqlite");
    db.backup_to(&migrated).map_err(at("open"))?;
    drop(db);
    r.durations.open_ms = ms(t.elapsed());

    let mut db = open(&migrated).map_err(at("open"))?;
    let t = Instant::now();
    let report = db.migrate(&MigrateOptions::new()).map_err(at("migrate"))?;
    let took = t.elapsed();
    r.durations.migrate_ms = ms(took);
    if options.slow.is_some_and(|limit| took > limit) {
        r.triggers.push(RolloutTrigger::PerformanceRegression);
    }
    r.applied = report.applied.clone();
    let count = |kind: &str| {
        report.warnings.iter().filter(|w| w.kind() == kind).count() as u64
            + report.omitted_warnings.get(kind).copied().unwrap_or(0)
    };
    r.quarantined_accounts = count("quarantined_account");
    r.quarantined_pointers = count("cleared_pointer");
    r.archived_values = count("archived_active_did");

    let t = Instant::now();
    let health = db.check().map_err(at("check"))?;
    r.durations.check_ms = ms(t.elapsed());
    r.check_problems = health.damage();
    if r.check_problems > 0 {
        r.triggers.push(RolloutTrigger::IntegrityCheckFailed);
    }

    if let Some(engine) = options.engine {
        let theirs = work.join("engine.sqlite");
        let same = match engine(&copy, &theirs) {
            Ok(()) => {
                let mut other = open(&theirs).map_err(at("engine"))?;
                let ours = migrated_contents(db.conn()).map_err(|e| ("engine", e.into()))?;
                let theirs = migrated_contents(other.conn()).map_err(|e| ("engine", e.into()))?;
                ours == theirs
            }
            Err(message) => {
                r.error = Some(format!("the other engine failed: {message}"));
                false
            }
        };
        r.engine_matches = Some(same);
        if !same {
            r.triggers.push(RolloutTrigger::PlatformInconsistency);
        }
    }

    if report.applied.is_empty() {
        r.outcome = RehearsalOutcome::UpToDate;
        return Ok(());
    }
    let t = Instant::now();
    let target = match &r.from_version {
        Some(v) => RollbackTarget::Version(v.clone()),
        None => RollbackTarget::Baseline,
    };
    db.rollback(&RollbackOptions::new().target(target))
        .map_err(at("rollback"))?;
    r.durations.rollback_ms = ms(t.elapsed());
    let after = contents(db.conn(), BOOKKEEPING_CLOCKS).map_err(|e| ("compare", e.into()))?;
    let intact = round_trip_intact(&before, &after);
    r.data_intact = Some(intact);
    if !intact {
        r.triggers.push(RolloutTrigger::DataLoss);
    }
    Ok(())
}

/// Copies `from` to the new file `to`, reading through a descriptor opened without
/// following a link or waiting on a FIFO, and only from a regular file.
fn copy_regular(from: &Path, to: &Path) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut src = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(from)
        .map_err(|e| Error::io(from, e))?;
    if !src.metadata().map_err(|e| Error::io(from, e))?.is_file() {
        return Err(Error::new(
            ErrorKind::NotAFile,
            format!("{} is not a regular file: not rehearsed", from.display()),
        ));
    }
    let mut dst = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| Error::io(to, e))?;
    io::copy(&mut src, &mut dst).map_err(|e| Error::io(to, e))?;
    Ok(())
}

/// Every table's columns and rows (as SQL literals, sorted), with the schema's
/// objects under `(schema)`; the columns named in `skip` left out.
type Contents = crate::sql::TableRows;

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Nullable<Text>)]
    row: Option<String>,
}

/// The bookkeeping's clock columns.
const BOOKKEEPING_CLOCKS: &[&str] = &["run_on", "applied_at"];

/// What another engine's run of idstore's steps should equal: every clock left out,
/// and the baseline's name, which the app's service records and idstore does not.
fn migrated_contents(conn: &mut SqliteConnection) -> QueryResult<Contents> {
    let mut c = contents(conn, crate::sql::CLOCK_COLUMNS)?;
    if let Some((_, rows)) = c.get_mut(crate::migrations::APP_MIGRATIONS_TABLE) {
        let baseline = crate::steps::all()[0].app_name();
        rows.retain(|r| !r.contains(&baseline));
    }
    Ok(c)
}

fn contents(conn: &mut SqliteConnection, skip: &[&str]) -> QueryResult<Contents> {
    let mut out = crate::sql::table_rows(conn, skip)?;
    let schema = diesel::sql_query(
        "SELECT json_array(type, name, tbl_name, sql) AS row FROM sqlite_master ORDER BY type, name",
    )
    .load::<Row>(conn)?;
    out.insert(
        "(schema)".into(),
        (
            Vec::new(),
            schema.into_iter().filter_map(|r| r.row).collect(),
        ),
    );
    Ok(out)
}

/// Whether rolling back gave every row of every table the file had back, in the
/// columns it had. A column idstore added for the app (`hasBackedUpSeed`) may stay,
/// and the bookkeeping may record more (the baseline stays applied).
fn round_trip_intact(before: &Contents, after: &Contents) -> bool {
    before.iter().all(|(table, (columns, rows))| {
        if table == "(schema)" || table == "__diesel_schema_migrations" {
            return true;
        }
        let Some((after_columns, after_rows)) = after.get(table) else {
            return false;
        };
        if after_columns == columns {
            if table == crate::migrations::APP_MIGRATIONS_TABLE {
                return rows.iter().all(|r| after_rows.contains(r));
            }
            return rows == after_rows;
        }
        // Columns were added: compare the ones the file had, in their order.
        let positions: Option<Vec<usize>> = columns
            .iter()
            .map(|c| after_columns.iter().position(|a| a == c))
            .collect();
        let Some(positions) = positions else {
            return false;
        };
        let mut projected: Vec<String> = after_rows
            .iter()
            .map(|row| {
                let values: Vec<serde_json::Value> = serde_json::from_str(row).unwrap_or_default();
                let kept: Vec<&serde_json::Value> =
                    positions.iter().filter_map(|&i| values.get(i)).collect();
                serde_json::to_string(&kept).unwrap_or_default()
            })
            .collect();
        projected.sort();
        &projected == rows
    })
}
