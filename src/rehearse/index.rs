//! What the report holds, indexed as it is read: one row per file (the first
//! record of each counts; a later one for the same file is ignored), kept in a
//! private SQLite file in the run's work folder. A report of any size is skipped
//! through and summed up in flat memory: nothing grows with it but that file (its
//! page cache is bounded, and its sorts spill to temporary files, not memory).

use std::path::Path;

use idstore_repo::diesel::connection::SimpleConnection;
use idstore_repo::diesel::prelude::*;
use idstore_repo::diesel::sql_types::{BigInt, Double, Nullable, Text};
use idstore_repo::diesel::{self, QueryableByName};
use idstore_repo::{Error, ErrorKind};
use serde::Deserialize;

/// The fields of a record the summary needs (the rest are ignored).
#[derive(Deserialize)]
struct Seen {
    file: String,
    outcome: Option<String>,
    error_kind: Option<String>,
    #[serde(default)]
    triggers: Vec<String>,
    #[serde(default)]
    durations: Durations,
    quarantined_accounts: Option<u64>,
    quarantined_pointers: Option<u64>,
}

#[derive(Deserialize, Default)]
struct Durations {
    total_ms: Option<f64>,
}

/// The index of a report's records.
pub struct Index {
    conn: SqliteConnection,
    /// Lines that are not records (not JSON, or without a `file`).
    pub not_records: u64,
    /// The first error met while adding lines.
    failed: Option<Error>,
}

/// A name and how many records have it.
#[derive(QueryableByName)]
pub struct Count {
    /// An outcome, an error kind or a trigger.
    #[diesel(sql_type = Text)]
    pub name: String,
    /// How many.
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = Nullable<Double>)]
    value: Option<f64>,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    file: String,
}

/// The summary's figures over every file of the report.
pub struct Totals {
    /// Files with a record.
    pub files: i64,
    /// Records by outcome.
    pub outcomes: Vec<Count>,
    /// Records by error kind.
    pub error_kinds: Vec<Count>,
    /// Accounts and pointer values quarantined, summed.
    pub quarantined: (i64, i64),
    /// Each file's total duration: the median, the 95th percentile, the maximum.
    pub duration_ms: [f64; 3],
    /// Each trigger that fired, how many files it fired on, and the first few.
    pub triggers: Vec<(Count, Vec<String>)>,
}

/// How many files a trigger names in the summary, of all it fired on.
pub const NAMED_PER_TRIGGER: i64 = 10;

impl Index {
    /// A new index in the file `path` (in a private folder).
    pub fn create(path: &Path) -> Result<Index, Error> {
        let url = path
            .to_str()
            .ok_or_else(|| Error::new(ErrorKind::Other, "the work folder's path is not UTF-8"))?;
        let mut conn = SqliteConnection::establish(url).map_err(|e| {
            Error::with_source(
                ErrorKind::CannotOpen,
                format!("could not create the report's index at {}", path.display()),
                e,
            )
        })?;
        conn.batch_execute(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -2048; PRAGMA temp_store = FILE;
             CREATE TABLE records (file TEXT PRIMARY KEY, outcome TEXT NOT NULL, error_kind TEXT,
                 total_ms REAL, accounts INTEGER NOT NULL, pointers INTEGER NOT NULL);
             CREATE INDEX records_by_ms ON records (total_ms);
             CREATE TABLE triggers (trigger TEXT NOT NULL, file TEXT NOT NULL);",
        )
        .map_err(index_error)?;
        Ok(Index {
            conn,
            not_records: 0,
            failed: None,
        })
    }

    /// Runs `f`, which adds lines, in one transaction (adding is many times faster
    /// so), and reports the first error it met.
    pub fn adding<T>(
        &mut self,
        f: impl FnOnce(&mut Index) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.conn.batch_execute("BEGIN").map_err(index_error)?;
        let done = f(self);
        self.conn.batch_execute("COMMIT").map_err(index_error)?;
        match self.failed.take() {
            Some(e) => Err(e),
            None => done,
        }
    }

    /// Adds one line of the report: a record of a file not yet seen is indexed;
    /// anything else is counted as not a record, or ignored (a second record of a
    /// file).
    pub fn add(&mut self, line: &[u8]) {
        let Ok(seen) = serde_json::from_slice::<Seen>(line) else {
            self.not_records += 1;
            return;
        };
        if let Err(e) = self.insert(&seen) {
            self.failed.get_or_insert(e);
        }
    }

    fn insert(&mut self, seen: &Seen) -> Result<(), Error> {
        let added = diesel::sql_query(
            "INSERT OR IGNORE INTO records (file, outcome, error_kind, total_ms, accounts, pointers) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind::<Text, _>(&seen.file)
        .bind::<Text, _>(seen.outcome.as_deref().unwrap_or("unknown"))
        .bind::<Nullable<Text>, _>(seen.error_kind.as_deref())
        .bind::<Nullable<Double>, _>(seen.durations.total_ms)
        .bind::<BigInt, _>(clamp(seen.quarantined_accounts))
        .bind::<BigInt, _>(clamp(seen.quarantined_pointers))
        .execute(&mut self.conn)
        .map_err(index_error)?;
        if added == 1 {
            for trigger in &seen.triggers {
                diesel::sql_query("INSERT INTO triggers (trigger, file) VALUES (?, ?)")
                    .bind::<Text, _>(trigger)
                    .bind::<Text, _>(&seen.file)
                    .execute(&mut self.conn)
                    .map_err(index_error)?;
            }
        }
        Ok(())
    }

    /// Whether the report holds a record of `file`.
    pub fn has(&mut self, file: &str) -> Result<bool, Error> {
        let found = diesel::sql_query("SELECT file FROM records WHERE file = ?")
            .bind::<Text, _>(file)
            .get_result::<Name>(&mut self.conn)
            .optional()
            .map_err(index_error)?;
        Ok(found.is_some())
    }

    /// The summary's figures.
    pub fn totals(&mut self) -> Result<Totals, Error> {
        let conn = &mut self.conn;
        let counts = |conn: &mut SqliteConnection, sql: &str| {
            diesel::sql_query(sql)
                .load::<Count>(conn)
                .map_err(index_error)
        };
        let files = counts(conn, "SELECT 'files' AS name, count(*) AS n FROM records")?
            .first()
            .map_or(0, |c| c.n);
        let outcomes = counts(
            conn,
            "SELECT outcome AS name, count(*) AS n FROM records GROUP BY outcome ORDER BY outcome",
        )?;
        let error_kinds = counts(
            conn,
            "SELECT error_kind AS name, count(*) AS n FROM records WHERE error_kind IS NOT NULL GROUP BY error_kind ORDER BY error_kind",
        )?;
        let accounts = counts(
            conn,
            "SELECT 'a' AS name, coalesce(sum(accounts), 0) AS n FROM records",
        )?;
        let pointers = counts(
            conn,
            "SELECT 'p' AS name, coalesce(sum(pointers), 0) AS n FROM records",
        )?;
        let timed = counts(
            conn,
            "SELECT 't' AS name, count(*) AS n FROM records WHERE total_ms IS NOT NULL",
        )?
        .first()
        .map_or(0, |c| c.n);
        let mut duration_ms = [0.0; 3];
        for (slot, q) in duration_ms.iter_mut().zip([0.5, 0.95, 1.0]) {
            if timed == 0 {
                break;
            }
            // The nearest-rank percentile: the ceil(q * n)-th smallest.
            let rank = ((q * timed as f64).ceil() as i64).clamp(1, timed);
            *slot = diesel::sql_query(
                "SELECT total_ms AS value FROM records WHERE total_ms IS NOT NULL ORDER BY total_ms LIMIT 1 OFFSET ?",
            )
            .bind::<BigInt, _>(rank - 1)
            .get_result::<Number>(conn)
            .map_err(index_error)?
            .value
            .unwrap_or(0.0);
        }
        let mut triggers = Vec::new();
        for fired in counts(
            conn,
            "SELECT trigger AS name, count(*) AS n FROM triggers GROUP BY trigger ORDER BY trigger",
        )? {
            let first = diesel::sql_query(
                "SELECT file FROM triggers WHERE trigger = ? ORDER BY rowid LIMIT ?",
            )
            .bind::<Text, _>(&fired.name)
            .bind::<BigInt, _>(NAMED_PER_TRIGGER)
            .load::<Name>(conn)
            .map_err(index_error)?
            .into_iter()
            .map(|n| n.file)
            .collect();
            triggers.push((fired, first));
        }
        Ok(Totals {
            files,
            outcomes,
            error_kinds,
            quarantined: (
                accounts.first().map_or(0, |c| c.n),
                pointers.first().map_or(0, |c| c.n),
            ),
            duration_ms,
            triggers,
        })
    }
}

fn clamp(n: Option<u64>) -> i64 {
    n.map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

fn index_error(e: diesel::result::Error) -> Error {
    Error::with_source(
        ErrorKind::IoError,
        "the report's index in the work folder failed (is the temporary folder full?)",
        e,
    )
}
