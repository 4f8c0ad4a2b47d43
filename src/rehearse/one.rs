//! One file rehearsed, and its record. On private copies, never the original:
//! a consistent snapshot of the file, then migrate, `check`, the other engine on a
//! copy of the original, a rollback to the version the file had, and the round
//! trip compared row for row. Every copy is a scratch copy (nothing synced).
//!
//! Outcomes cannot lie: anything but a clean round trip or a clear refusal of the
//! file fires a named trigger, and each failure says whose it is (`whose`): the
//! file's own state, idstore's run on it, the other engine, or the rehearsal's own
//! machinery (its copy, its work folder). Problems `check` finds that the file
//! already had are reported as such (`pre_existing`) and fire nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use idstore_repo::encryption::Key;
use idstore_repo::health::{HealthReport, ProblemKind};
use idstore_repo::migrations::{RollbackOptions, RollbackTarget, Version};
use idstore_repo::{Database, Error, ErrorKind, MigrateOptions, OpenOptions};
use serde::Serialize;

use super::contents::{self, BOOKKEEPING_CLOCKS, CLOCK_COLUMNS, Contents};
use super::engine::Engine;

/// How one file's rehearsal ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Migrated, checked, rolled back, and the round trip gave every row back.
    Migrated,
    /// Nothing to migrate: already at the latest version, and checked.
    UpToDate,
    /// Refused for what the file is (not a database, encrypted without its key, a
    /// link, unreadable, …): nothing would be written; no trigger.
    Refused,
    /// Something failed: see the record's triggers.
    Failed,
}

/// The planning document's rollback triggers, and the rehearsal's own failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The migration's validation failed (it rolled itself back).
    ValidationFailed,
    /// `check` found problems the migration made, or could not run.
    IntegrityCheckFailed,
    /// The round trip lost or changed a row.
    DataLoss,
    /// The rollback failed.
    RollbackFailed,
    /// The migration took longer than the limit.
    PerformanceRegression,
    /// The other engine's file differs from idstore's.
    PlatformInconsistency,
    /// The other engine failed (its exit, its time limit, its output).
    EngineFailed,
    /// The rehearsal could not do its own part (its copy, its work folder): no
    /// verdict on the file.
    RehearsalFailed,
}

/// Whose failure a record's error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Whose {
    /// The file as it was: a refusal of what it is.
    File,
    /// idstore's run on a copy of it.
    Idstore,
    /// The other engine.
    Engine,
    /// The rehearsal's own machinery.
    Rehearsal,
}

/// Milliseconds each part took.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Durations {
    /// The snapshot and opening it (with any recovery).
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

/// One file's record: one line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// The file, relative to the corpus, in the report's form (see `names`).
    pub file: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The first error's kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// The first error, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where it happened: `walk`, `copy`, `open`, `migrate`, `check`, `engine`,
    /// `rollback` or `compare`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<&'static str>,
    /// Whose failure the error is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whose: Option<Whose>,
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
    /// Problems `check` found after the migration that the file did not have.
    pub check_problems: u64,
    /// Problems the file already had, by kind: reported, and no trigger.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pre_existing: BTreeMap<&'static str, u64>,
    /// Whether the round trip gave every row back.
    pub data_intact: Option<bool>,
    /// Whether the other engine gave the same file, where one was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_matches: Option<bool>,
    /// The size of the copy rehearsed (the file with its journal or log).
    pub bytes: u64,
    /// What each part took.
    pub durations: Durations,
    /// The triggers that fired.
    pub triggers: Vec<Trigger>,
}

/// How each file is rehearsed.
pub struct Options<'a> {
    /// The key of encrypted files.
    pub key: Option<Key>,
    /// A migration slower than this fires the performance trigger.
    pub slow: Duration,
    /// The other engine, if any.
    pub engine: Option<&'a Engine>,
    /// The largest file (with its journal and log) copied.
    pub max_bytes: u64,
    /// How long a snapshot waits for a writer to finish.
    pub busy_timeout: Duration,
}

/// A failure at one stage.
struct Failure {
    stage: &'static str,
    whose: Whose,
    kind: String,
    message: String,
    /// The trigger it fires; none for a refusal of the file.
    trigger: Option<Trigger>,
}

impl Record {
    fn new(file: &str) -> Record {
        Record {
            file: file.to_owned(),
            outcome: Outcome::Migrated,
            error_kind: None,
            error: None,
            stage: None,
            whose: None,
            encrypted: false,
            legacy: false,
            from_version: None,
            applied: Vec::new(),
            quarantined_accounts: 0,
            quarantined_pointers: 0,
            archived_values: 0,
            check_problems: 0,
            pre_existing: BTreeMap::new(),
            data_intact: None,
            engine_matches: None,
            bytes: 0,
            durations: Durations::default(),
            triggers: Vec::new(),
        }
    }

    /// The record of a corpus entry the walk refused (a link, a FIFO, a folder it
    /// cannot read, …).
    pub fn refused_entry(file: &str, kind: &str, message: &str, shown: &str) -> Record {
        let mut r = Record::new(file);
        r.note(Failure {
            stage: "walk",
            whose: Whose::File,
            kind: kind.to_owned(),
            message: format!("{shown}: {message}"),
            trigger: None,
        });
        r.settle();
        r
    }

    /// Records a failure: the first one names the error; each fires its trigger.
    fn note(&mut self, f: Failure) {
        if let Some(t) = f.trigger {
            self.triggers.push(t);
        }
        if self.error.is_none() {
            self.error_kind = Some(f.kind);
            self.error = Some(f.message);
            self.stage = Some(f.stage);
            self.whose = Some(f.whose);
        }
    }

    /// The outcome from what happened: failed when a trigger fired, refused when
    /// the file was refused.
    fn settle(&mut self) {
        self.triggers.sort();
        self.triggers.dedup();
        if !self.triggers.is_empty() {
            self.outcome = Outcome::Failed;
        } else if self.error.is_some() {
            self.outcome = Outcome::Refused;
        }
    }
}

/// What a rehearsal works with for one file.
pub struct Job<'a> {
    /// The file's name in the report.
    pub file: &'a str,
    /// The file as the operator knows it (`corpus/NAME`), for messages.
    pub shown: &'a str,
    /// The path to read it through (see `corpus::Found::File`).
    pub source: &'a Path,
    /// Its size with its journal and log, as the walk saw it.
    pub bytes: u64,
    /// An empty private folder to work in.
    pub work: &'a Path,
}

/// Rehearses the rollout on one file (see the module's description).
pub fn rehearse(job: &Job<'_>, options: &Options<'_>) -> Record {
    let started = Instant::now();
    let mut r = Record::new(job.file);
    if let Err(f) = run(job, options, &mut r) {
        r.note(f);
    }
    r.settle();
    r.durations.total_ms = ms(started.elapsed());
    r
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The copies a rehearsal makes in its work folder.
struct Copies {
    original: PathBuf,
    migrated: PathBuf,
    engine: PathBuf,
}

fn run(job: &Job<'_>, options: &Options<'_>, r: &mut Record) -> Result<(), Failure> {
    let t = Instant::now();
    let copies = Copies {
        original: job.work.join("original.sqlite"),
        migrated: job.work.join("migrated.sqlite"),
        engine: job.work.join("engine.sqlite"),
    };
    let say = Say {
        job,
        copies: &copies,
    };
    if job.bytes > options.max_bytes {
        return Err(too_large(job, job.bytes, options.max_bytes));
    }
    snapshot(job, options, &copies.original).map_err(|e| say.copy_failed(e))?;
    r.bytes = copy_size(&copies.original);
    if r.bytes > options.max_bytes {
        return Err(too_large(job, r.bytes, options.max_bytes));
    }
    r.encrypted = Database::is_encrypted(&copies.original).map_err(|e| say.open_failed(e))?;
    let key = if r.encrypted {
        options.key.clone()
    } else {
        None
    };
    let open = |path: &Path| {
        OpenOptions::new()
            .create(false)
            .scratch(true)
            .key(key.clone())
            .open(path)
    };
    // The snapshot stays as it was taken (the other engine's input, and what the
    // file had before); the run works on a copy of it, whose first open recovers
    // an interrupted write as the device would.
    copy_file(&copies.original, &copies.migrated).map_err(|e| say.rehearsal("copy", e))?;
    let mut db = open(&copies.migrated).map_err(|e| say.open_failed(e))?;
    let before = db.read_only(read_before).map_err(|e| say.open_failed(e))?;
    r.legacy = before.legacy;
    r.from_version = before.from_version.clone();
    r.durations.open_ms = ms(t.elapsed());

    let t = Instant::now();
    let report = db
        .migrate(&MigrateOptions::new())
        .map_err(|e| say.migrate_failed(e))?;
    let took = t.elapsed();
    r.durations.migrate_ms = ms(took);
    if took > options.slow {
        r.triggers.push(Trigger::PerformanceRegression);
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
    let health = db
        .check()
        .map_err(|e| say.idstore("check", e, Trigger::IntegrityCheckFailed))?;
    r.durations.check_ms = ms(t.elapsed());
    let after = damage(&health);
    if !after.is_empty() {
        let before = problems_before(&open, &copies.original, !report.applied.is_empty());
        pre_existing(r, &after, before);
        if r.check_problems > 0 {
            r.note(Failure {
                stage: "check",
                whose: Whose::Idstore,
                kind: "integrity".into(),
                message: format!(
                    "check found {} problem(s) on the migrated copy of {} that the file did not have: {}",
                    r.check_problems,
                    job.shown,
                    health
                        .problems
                        .iter()
                        .filter(|p| after.contains_key(p.kind.as_str()))
                        .map(|p| format!("{}: {}", p.kind.as_str(), p.detail))
                        .take(3)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                trigger: Some(Trigger::IntegrityCheckFailed),
            });
        }
    }

    if let Some(engine) = options.engine {
        match compare_engine(engine, &mut db, &copies, &open, options.max_bytes) {
            Ok(()) => r.engine_matches = Some(true),
            Err((trigger, message)) => {
                r.engine_matches = (trigger == Trigger::PlatformInconsistency).then_some(false);
                r.note(Failure {
                    stage: "engine",
                    whose: Whose::Engine,
                    kind: trigger_kind(trigger).into(),
                    message: format!(
                        "the other engine (`{}`) on a copy of {}: {message}",
                        engine.command, job.shown
                    ),
                    trigger: Some(trigger),
                });
            }
        }
    }

    if report.applied.is_empty() {
        r.outcome = Outcome::UpToDate;
        return Ok(());
    }
    let t = Instant::now();
    let target = match &r.from_version {
        Some(v) => RollbackTarget::Version(v.clone()),
        None => RollbackTarget::Baseline,
    };
    db.rollback(&RollbackOptions::new().target(target))
        .map_err(|e| say.idstore("rollback", e, Trigger::RollbackFailed))?;
    r.durations.rollback_ms = ms(t.elapsed());
    let lost = db
        .read_only(|c| round_trip_losses(c, &before))
        .map_err(|e| say.rehearsal("compare", e))?;
    r.data_intact = Some(lost.is_empty());
    if !lost.is_empty() {
        r.note(Failure {
            stage: "compare",
            whose: Whose::Idstore,
            kind: "data_loss".into(),
            message: format!(
                "the round trip (migrate, then roll back) did not give every row of {} back: {}",
                job.shown,
                lost.join(", ")
            ),
            trigger: Some(Trigger::DataLoss),
        });
    }
    Ok(())
}

/// Takes the snapshot of the file, with the key when the file turns out to need it
/// (only a write-ahead log in use is read through SQLite).
fn snapshot(job: &Job<'_>, options: &Options<'_>, to: &Path) -> Result<(), Error> {
    let reading = OpenOptions::new().busy_timeout(options.busy_timeout);
    let plain = reading.clone().snapshot(job.source, to);
    match (plain, &options.key) {
        (Err(e), Some(key))
            if matches!(
                e.kind(),
                ErrorKind::Encrypted | ErrorKind::NotADatabase | ErrorKind::WrongKey
            ) =>
        {
            OpenOptions::new()
                .key(Some(key.clone()))
                .snapshot(job.source, to)
        }
        (done, _) => done,
    }
}

/// The copy's size, with the journal or log beside it.
fn copy_size(path: &Path) -> u64 {
    ["", "-journal", "-wal"]
        .iter()
        .filter_map(|s| {
            let mut p = path.as_os_str().to_owned();
            p.push(s);
            std::fs::symlink_metadata(p).ok()
        })
        .map(|m| m.len())
        .sum()
}

/// Copies the snapshot `from`, with the journal or log taken with it, to `to`.
fn copy_file(from: &Path, to: &Path) -> Result<(), Error> {
    for suffix in ["", "-journal", "-wal"] {
        let (mut f, mut t) = (from.as_os_str().to_owned(), to.as_os_str().to_owned());
        f.push(suffix);
        t.push(suffix);
        match std::fs::copy(&f, &t) {
            Ok(_) => {}
            Err(e) if !suffix.is_empty() && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(Path::new(&t), e)),
        }
    }
    Ok(())
}

fn too_large(job: &Job<'_>, bytes: u64, max: u64) -> Failure {
    Failure {
        stage: "copy",
        whose: Whose::File,
        kind: "too_large".into(),
        message: format!(
            "{} is {bytes} bytes with its journal and log, more than the limit of {max} (--max-mib): not rehearsed",
            job.shown
        ),
        trigger: None,
    }
}

/// Problems a check found that are neither notices nor decisions waiting, by kind.
fn damage(health: &HealthReport) -> BTreeMap<&'static str, u64> {
    ProblemKind::ALL
        .iter()
        .filter(|k| {
            !k.is_notice()
                && !matches!(
                    k,
                    ProblemKind::QuarantinedAccount
                        | ProblemKind::QuarantinedPointer
                        | ProblemKind::NeedsMigration
                )
        })
        .map(|&k| (k.as_str(), health.count(k)))
        .filter(|&(_, n)| n > 0)
        .collect()
}

/// The problems the original copy has, by kind, as [`damage`] counts them. `check`
/// on a file that still needs migrating does not look for settings rows without
/// an account or rows breaking a foreign key; they are counted here by hand, as
/// the check of a migrated file counts them. `None` when the original cannot be
/// checked.
fn problems_before(
    open: &dyn Fn(&Path) -> Result<Database, Error>,
    original: &Path,
    unmigrated: bool,
) -> Option<BTreeMap<&'static str, u64>> {
    use idstore_repo::diesel::{self, QueryableByName, RunQueryDsl};
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut db = open(original).ok()?;
    let mut counts = damage(&db.check().ok()?);
    if unmigrated {
        for (kind, sql) in [
            (
                ProblemKind::ExtraNullAccountRow,
                "SELECT count(*) AS n FROM settings WHERE id <> 1 AND accountDid IS NULL",
            ),
            (
                ProblemKind::ForeignKey,
                "SELECT count(*) AS n FROM pragma_foreign_key_check WHERE \"table\" <> 'active_identity'",
            ),
        ] {
            // A file without the table (or the column) has none of these.
            let n = db
                .read_only(|c| idstore_repo::diesel::sql_query(sql).get_result::<Count>(c))
                .map_or(0, |c| u64::try_from(c.n).unwrap_or(0));
            if n > 0 {
                counts.insert(kind.as_str(), n);
            }
        }
    }
    Some(counts)
}

/// Splits the problems `after` the migration into those the file already had (by
/// kind, as many as `before` counted) and new ones. Without `before` every
/// problem counts as new.
fn pre_existing(
    r: &mut Record,
    after: &BTreeMap<&'static str, u64>,
    before: Option<BTreeMap<&'static str, u64>>,
) {
    let before = before.unwrap_or_default();
    for (&kind, &n) in after {
        let had = before.get(kind).copied().unwrap_or(0).min(n);
        if had > 0 {
            r.pre_existing.insert(kind, had);
        }
        r.check_problems += n - had;
    }
}

/// What every message names: the file, never the private copy it was read through.
struct Say<'a> {
    job: &'a Job<'a>,
    copies: &'a Copies,
}

impl Say<'_> {
    /// The error's words, with each path of a copy (or of the file's descriptor
    /// path) replaced by the file's own name.
    fn words(&self, e: &Error) -> String {
        let mut message = crate::error::chain(e);
        for copy in [
            &self.copies.original,
            &self.copies.migrated,
            &self.copies.engine,
        ] {
            message = message.replace(&copy.display().to_string(), self.job.shown);
        }
        message.replace(&self.job.source.display().to_string(), self.job.shown)
    }

    /// A failure of the rehearsal's own (its work folder, its copy).
    fn rehearsal(&self, stage: &'static str, e: Error) -> Failure {
        Failure {
            stage,
            whose: Whose::Rehearsal,
            kind: e.kind().as_str().into(),
            message: format!(
                "the rehearsal's own work on a copy of {} failed, not the file: {}; rerun it once that is fixed",
                self.job.shown,
                crate::error::chain(&e)
            ),
            trigger: Some(Trigger::RehearsalFailed),
        }
    }

    /// Whether `e` is about the work folder: a storage fault of the rehearsal's.
    fn in_work_folder(&self, e: &Error) -> bool {
        e.path().is_some_and(|p| p.starts_with(self.job.work))
            && matches!(
                e.kind(),
                ErrorKind::DiskFull | ErrorKind::IoError | ErrorKind::ReadOnly | ErrorKind::Exists
            )
    }

    /// The snapshot failed: the file refused as it is (unreadable, changed, locked
    /// by a writer), or the rehearsal's copy could not be written.
    fn copy_failed(&self, e: Error) -> Failure {
        if self.in_work_folder(&e) {
            return self.rehearsal("copy", e);
        }
        let denied = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied);
        Failure {
            stage: "copy",
            whose: Whose::File,
            kind: if denied {
                "unreadable_file".into()
            } else {
                e.kind().as_str().into()
            },
            message: self.words(&e),
            trigger: None,
        }
    }

    /// Opening the copy failed: the file refused as it is, or a storage fault of
    /// the work folder.
    fn open_failed(&self, e: Error) -> Failure {
        if self.in_work_folder(&e) {
            return self.rehearsal("open", e);
        }
        Failure {
            stage: "open",
            whose: Whose::File,
            kind: e.kind().as_str().into(),
            message: self.words(&e),
            trigger: None,
        }
    }

    /// `migrate` failed: its validation (a trigger), a clear refusal of the file
    /// (none), or the work folder.
    fn migrate_failed(&self, e: Error) -> Failure {
        if self.in_work_folder(&e) {
            return self.rehearsal("migrate", e);
        }
        let refusal = matches!(
            e.kind(),
            ErrorKind::NotADatabase
                | ErrorKind::Encrypted
                | ErrorKind::WrongKey
                | ErrorKind::Damaged
                | ErrorKind::DamagedInput
                | ErrorKind::NewerDatabase
                | ErrorKind::UnknownVersion
                | ErrorKind::LegacyShape
                | ErrorKind::NameCollision
                | ErrorKind::ForeignObjects
                | ErrorKind::UntrustedSchema
                | ErrorKind::InvalidStoredValue
        );
        if refusal {
            return Failure {
                stage: "migrate",
                whose: Whose::File,
                kind: e.kind().as_str().into(),
                message: self.words(&e),
                trigger: None,
            };
        }
        self.idstore("migrate", e, Trigger::ValidationFailed)
    }

    /// A step of idstore's run failed on the copy: `trigger` fires.
    fn idstore(&self, stage: &'static str, e: Error, trigger: Trigger) -> Failure {
        if self.in_work_folder(&e) {
            return self.rehearsal(stage, e);
        }
        Failure {
            stage,
            whose: Whose::Idstore,
            kind: e.kind().as_str().into(),
            message: format!(
                "idstore's {stage} on a copy of {} failed: {}",
                self.job.shown,
                self.words(&e)
            ),
            trigger: Some(trigger),
        }
    }
}

/// The kind a record names for an engine's failure.
fn trigger_kind(t: Trigger) -> &'static str {
    match t {
        Trigger::PlatformInconsistency => "platform_inconsistency",
        _ => "engine_failed",
    }
}

/// Runs the other engine on the original's copy and compares its file with ours
/// (`db`, just migrated): every table but the clocks, the schema, and
/// `user_version`. The baseline's record, which the app's service keeps and idstore
/// does not, is left out.
fn compare_engine(
    engine: &Engine,
    db: &mut Database,
    copies: &Copies,
    open: &dyn Fn(&Path) -> Result<Database, Error>,
    max_bytes: u64,
) -> Result<(), (Trigger, String)> {
    let failed = |m: String| (Trigger::EngineFailed, m);
    // Its input is the file as idstore's run saw it: an interrupted write in the
    // snapshot recovered first (an engine reads the file alone).
    drop(open(&copies.original).map_err(|e| {
        failed(format!(
            "the snapshot could not be prepared for it: {}",
            crate::error::chain(&e)
        ))
    })?);
    engine
        .run(&copies.original, &copies.engine)
        .map_err(|m| failed(format!("{m}; the engine's failure, not the file's")))?;
    let written = std::fs::symlink_metadata(&copies.engine)
        .ok()
        .filter(|m| m.is_file() && m.len() > 0);
    let Some(written) = written else {
        return Err(failed(
            "it exited 0 but wrote no database at its output path; the engine's failure, not the file's".into(),
        ));
    };
    if written.len() > max_bytes {
        return Err(failed(format!(
            "its output is {} bytes, more than the limit of {max_bytes}; the engine's failure, not the file's",
            written.len()
        )));
    }
    let mut theirs_db = open(&copies.engine).map_err(|e| {
        failed(format!(
            "its output is not a database idstore can open ({}); the engine's failure, not the file's",
            crate::error::chain(&e)
        ))
    })?;
    let baseline = format!("'{}'", idstore_repo::migrations::steps::all()[0].app_name());
    let read = |d: &mut Database| {
        d.read_only(|c| {
            let contents = contents::read_leaving_out(c, CLOCK_COLUMNS, true, |table, row| {
                table == idstore_repo::migrations::steps::APP_RECORDS
                    && contains(row, baseline.as_bytes())
            })?;
            Ok((contents, contents::user_version(c)?))
        })
    };
    let (ours, our_version) = read(db).map_err(|e| {
        failed(format!(
            "idstore's migrated copy could not be read to compare: {}",
            crate::error::chain(&e)
        ))
    })?;
    let (theirs, their_version) = read(&mut theirs_db).map_err(|e| {
        failed(format!(
            "its output could not be read ({}); the engine's failure, not the file's",
            crate::error::chain(&e)
        ))
    })?;
    let mut differ = contents::differences(&ours, &theirs);
    if our_version != their_version {
        differ.insert(
            0,
            format!("user_version {their_version} against idstore's {our_version}"),
        );
    }
    if differ.is_empty() {
        return Ok(());
    }
    Err((
        Trigger::PlatformInconsistency,
        format!("its file differs from idstore's: {}", differ.join(", ")),
    ))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The original's contents before the round trip: every table summed (the
/// bookkeeping's clocks left out), but the app's own migration records, kept apart
/// (hashed) since a run may add to them.
pub struct Before {
    contents: Contents,
    app_records: BTreeMap<u128, u64>,
    /// The app's file, not yet adopted: its tables without idstore's bookkeeping.
    legacy: bool,
    /// The newest version the bookkeeping records.
    from_version: Option<Version>,
}

/// idstore's (diesel's) migration bookkeeping.
const BOOKKEEPING: &str = "__diesel_schema_migrations";

/// Reads [`Before`].
fn read_before(
    conn: &mut idstore_repo::diesel::SqliteConnection,
) -> idstore_repo::diesel::QueryResult<Before> {
    use idstore_repo::diesel::{self, RunQueryDsl};
    let mut app_records = BTreeMap::new();
    let contents = contents::read_leaving_out(conn, BOOKKEEPING_CLOCKS, false, |table, row| {
        let app = table == idstore_repo::migrations::steps::APP_RECORDS;
        if app {
            *app_records.entry(contents::hash(row)).or_insert(0) += 1;
        }
        app
    })?;
    let bookkept = contents.contains_key(BOOKKEEPING);
    let from_version = if bookkept {
        #[derive(diesel::QueryableByName)]
        struct Newest {
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
            version: Option<String>,
        }
        diesel::sql_query(format!("SELECT max(version) AS version FROM {BOOKKEEPING}"))
            .get_result::<Newest>(conn)?
            .version
            .map(Version::new)
    } else {
        None
    };
    Ok(Before {
        legacy: !bookkept && contents.contains_key("accounts"),
        from_version,
        contents,
        app_records,
    })
}

/// What the round trip did not give back, table by table: every table the file
/// had (idstore's bookkeeping aside) must be there with its columns (a column
/// idstore added for the app may stay) and exactly its rows; the app's own
/// migration records must all be there, and may have gained the steps idstore ran
/// for the app.
fn round_trip_losses(
    conn: &mut idstore_repo::diesel::SqliteConnection,
    before: &Before,
) -> idstore_repo::diesel::QueryResult<Vec<String>> {
    let tables = contents::tables(conn)?;
    let mut app_records: BTreeMap<u128, u64> = BTreeMap::new();
    let mut lost = Vec::new();
    for (table, was) in &before.contents {
        if table == BOOKKEEPING {
            continue;
        }
        let Some(now) = tables.get(table) else {
            lost.push(format!("{table} (gone)"));
            continue;
        };
        if let Some(c) = was.columns.iter().find(|c| !now.contains(c)) {
            lost.push(format!("{table} (column {c} gone)"));
            continue;
        }
        let after = contents::sum_rows(conn, table, &was.columns, |row| {
            let app = table == idstore_repo::migrations::steps::APP_RECORDS;
            if app {
                *app_records.entry(contents::hash(row)).or_insert(0) += 1;
            }
            app
        })?;
        if &after != was {
            lost.push(format!("{table} (rows differ)"));
        }
    }
    let kept = before
        .app_records
        .iter()
        .all(|(h, n)| app_records.get(h).is_some_and(|m| m >= n));
    if !kept {
        lost.push(format!(
            "{} (a record is gone)",
            idstore_repo::migrations::steps::APP_RECORDS
        ));
    }
    Ok(lost)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every failure but a clear refusal of the file fires a named trigger, fails
    /// the file, and says whose it is: a stage of idstore's run, or the
    /// rehearsal's own work folder.
    #[test]
    fn a_failed_stage_fires_a_named_trigger_and_says_whose_it_is() {
        let work = Path::new("/work/run/1");
        let copies = Copies {
            original: work.join("original.sqlite"),
            migrated: work.join("migrated.sqlite"),
            engine: work.join("engine.sqlite"),
        };
        let job = Job {
            file: "a.sqlite",
            shown: "corpus/a.sqlite",
            source: Path::new("/proc/self/fd/9/a.sqlite"),
            bytes: 1,
            work,
        };
        let say = Say {
            job: &job,
            copies: &copies,
        };
        let broken = || {
            Error::new(
                ErrorKind::Database,
                format!("{} is broken", copies.migrated.display()),
            )
        };
        let full = || Error::io(&copies.migrated, std::io::ErrorKind::StorageFull.into());
        let cases = [
            (
                say.idstore("check", broken(), Trigger::IntegrityCheckFailed),
                Some(Trigger::IntegrityCheckFailed),
                Whose::Idstore,
            ),
            (
                say.idstore("rollback", broken(), Trigger::RollbackFailed),
                Some(Trigger::RollbackFailed),
                Whose::Idstore,
            ),
            (
                say.migrate_failed(Error::new(ErrorKind::ValidationFailed, "no")),
                Some(Trigger::ValidationFailed),
                Whose::Idstore,
            ),
            (
                say.migrate_failed(Error::new(ErrorKind::ForeignObjects, "a trigger")),
                None,
                Whose::File,
            ),
            (
                say.open_failed(full()),
                Some(Trigger::RehearsalFailed),
                Whose::Rehearsal,
            ),
            (
                say.idstore("check", full(), Trigger::IntegrityCheckFailed),
                Some(Trigger::RehearsalFailed),
                Whose::Rehearsal,
            ),
        ];
        for (failure, trigger, whose) in cases {
            let mut r = Record::new("a.sqlite");
            let stage = failure.stage;
            r.note(failure);
            r.settle();
            assert_eq!(
                r.triggers,
                trigger.into_iter().collect::<Vec<_>>(),
                "{stage}"
            );
            let outcome = if trigger.is_some() {
                Outcome::Failed
            } else {
                Outcome::Refused
            };
            assert_eq!(r.outcome, outcome, "{stage}");
            assert_eq!(r.whose, Some(whose), "{stage}");
            let error = r.error.unwrap();
            assert!(
                !error.contains("migrated.sqlite") || whose == Whose::Rehearsal,
                "{error}"
            );
        }
    }
}
