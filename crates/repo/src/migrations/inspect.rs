//! The read-only inspection: what a file holds, read once, before anything is
//! decided or written. [`status`] is its public summary.

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel::sql_types::Nullable;

use super::{
    ACTIVE_IDENTITY_VERSION, BOOKKEEPING_TABLE, Version, known_versions, preview, runner_sql,
};
use crate::error::{Error, ErrorKind};
use crate::sql::{self, queries};

/// Where a database stands, read without writing anything.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Applied versions this build knows, oldest first.
    pub applied: Vec<Version>,
    /// Versions not yet applied, oldest first.
    pub pending: Vec<Version>,
    /// Applied versions this build does not know (a newer idstore wrote the file).
    pub unknown: Vec<Version>,
    /// Versions a preview build of idstore recorded (its steps of 2026-11-25, which
    /// the current ones replaced before any release): `migrate` brings the file to
    /// the current steps, keeping every row.
    pub preview: Vec<Version>,
    /// The file was made by the legacy app and has not been adopted yet.
    pub legacy: bool,
    /// The file holds the app's own `active_identity` table, to be adopted.
    pub app_active_identity: bool,
    /// The active identity as stored (`''` reads as none).
    pub active_did: Option<String>,
    /// Number of accounts (0 when the table does not exist yet).
    pub accounts: i64,
    /// Triggers, views and acting foreign keys of the file that idstore did not
    /// write, described (filled in by [`Database::status`](crate::Database::status)).
    pub foreign_objects: Vec<String>,
    /// What an interrupted conversion left beside the file (it may hold the data
    /// unencrypted): removed by the next read-write open that can take the file's
    /// write lock, by the next conversion, or by a repair (filled in by
    /// [`Database::status`](crate::Database::status)).
    pub leftover_copies: Vec<std::path::PathBuf>,
    /// Names beside the file where idstore's own files go (a conversion's copy)
    /// that are not idstore's (a link, a FIFO, another user's file), with why:
    /// nothing is written through them (filled in by
    /// [`Database::status`](crate::Database::status)).
    pub untrusted_files: Vec<(std::path::PathBuf, String)>,
    /// Copies of the file and its journal kept aside before this open recovered an
    /// interrupted write: the state before recovery (filled in by
    /// [`Database::status`](crate::Database::status)).
    pub kept_aside: Vec<std::path::PathBuf>,
}

impl MigrationStatus {
    /// True when `migrate` has work to do.
    pub fn needs_migration(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The pause point the file is stopped at, when it is at one with steps still
    /// pending: the transition step, where older app builds still write
    /// `settings.activeDid` and the repository serves the file as a migrated one.
    pub fn paused_at(&self) -> Option<&str> {
        let last = self.applied.last()?;
        (self.unknown.is_empty()
            && self.preview.is_empty()
            && !self.pending.is_empty()
            && super::steps::step(last.as_str()).is_some_and(super::steps::Step::is_pause_point))
        .then_some(last.as_str())
    }

    /// True when the repository API can serve the file: fully migrated, or stopped at
    /// a pause point, and written by no newer idstore.
    pub fn servable(&self) -> bool {
        self.unknown.is_empty()
            && self.preview.is_empty()
            && (self.pending.is_empty() || self.paused_at().is_some())
    }

    /// The next pending step and what it does, as an operator is told about it.
    pub fn next_step(&self) -> Option<(&str, &'static str)> {
        let v = self.pending.first()?;
        Some((v.as_str(), super::step_summary(v.as_str())))
    }

    /// Refuses a file a newer idstore wrote.
    pub(crate) fn refuse_unknown(&self) -> Result<(), Error> {
        if self.unknown.is_empty() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::NewerDatabase,
                format!(
                    "the database has migrations this build of idstore does not know ({}): it was written by a newer idstore; upgrade idstore before touching it",
                    self.unknown
                        .iter()
                        .map(|v| idstore_domain::display::Shown(v.as_str()).to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
        }
    }
}

/// Completes `status` with what is known of the file beside its tables: the
/// objects other programs added, what an interrupted conversion left beside it,
/// names there that are not idstore's own, and the copies this open kept aside.
/// [`Database::status`](crate::Database::status) and
/// [`Database::plan_migration`](crate::Database::plan_migration) both build their
/// status this way.
pub(crate) fn add_file_facts(
    status: &mut MigrationStatus,
    handle: &mut crate::connection::Handle,
) -> Result<(), Error> {
    status.foreign_objects = super::foreign::foreign_objects(&mut handle.conn)?
        .into_iter()
        .map(|f| f.description)
        .collect();
    for leftover in crate::fs::leftovers::leftovers(&handle.file) {
        match leftover.untrusted {
            None => status.leftover_copies.push(leftover.path),
            Some(why) => status.untrusted_files.push((leftover.path, why)),
        }
    }
    status.kept_aside = handle.kept_aside.clone();
    Ok(())
}

/// Reads applied and pending migrations, the legacy flag, the active identity and the
/// account count. Writes nothing (it works on a read-only connection).
pub(crate) fn status(conn: &mut SqliteConnection) -> Result<MigrationStatus, Error> {
    let applied_all = applied_versions(conn)?;
    let known = known_versions();
    let (applied, pending): (Vec<Version>, Vec<Version>) =
        known.iter().cloned().partition(|v| applied_all.contains(v));
    let (preview, unknown): (Vec<Version>, Vec<Version>) = applied_all
        .into_iter()
        .filter(|v| !known.contains(v))
        .partition(|v| preview::is_preview(v.as_str()));
    let has_bookkeeping = sql::table_exists(conn, BOOKKEEPING_TABLE)?;
    let has_accounts = sql::table_exists(conn, "accounts")?;
    let legacy = !has_bookkeeping && (has_accounts || sql::table_exists(conn, "settings")?);
    let app_active_identity = !applied.iter().any(|v| v == ACTIVE_IDENTITY_VERSION)
        && preview.is_empty()
        && sql::table_exists(conn, "active_identity")?;
    let active_did = queries::stored_active_did(conn)?;
    let accounts = if has_accounts {
        sql::count_rows(conn, "accounts")?
    } else {
        0
    };
    Ok(MigrationStatus {
        applied,
        pending,
        unknown,
        preview,
        legacy,
        app_active_identity,
        active_did,
        accounts,
        foreign_objects: Vec::new(),
        leftover_copies: Vec::new(),
        untrusted_files: Vec::new(),
        kept_aside: Vec::new(),
    })
}

/// Whether every migration this build knows is applied, and no other: nothing to
/// plan (two reads).
pub(crate) fn up_to_date(conn: &mut SqliteConnection) -> QueryResult<bool> {
    let applied = applied_versions(conn)?;
    Ok(applied.as_slice() == known_versions())
}

/// The versions the migrations table records, read as bytes: one that is not UTF-8
/// (another program's) is an unknown version, shown escaped, not a decoding error.
pub(crate) fn applied_versions(conn: &mut SqliteConnection) -> QueryResult<Vec<Version>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Binary)]
        version: sql::Lossless,
    }
    if !sql::table_exists(conn, BOOKKEEPING_TABLE)? {
        return Ok(Vec::new());
    }
    let rows = diesel::sql_query(format!(
        "SELECT version FROM {BOOKKEEPING_TABLE} WHERE version IS NOT NULL ORDER BY version"
    ))
    .load::<Row>(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| Version::new(r.version.0))
        .collect())
}

/// The tables where the applied steps keep what they moved aside, when missing.
pub(crate) fn missing_quarantine_tables(
    conn: &mut SqliteConnection,
) -> QueryResult<Vec<&'static str>> {
    let applied = applied_versions(conn)?;
    let mut missing = Vec::new();
    for (table, step) in QUARANTINE_TABLES {
        if applied.iter().any(|v| v == step) && !sql::table_exists(conn, table)? {
            missing.push(table);
        }
    }
    Ok(missing)
}

/// Refuses a file missing one of the tables where idstore keeps moved-aside values
/// (it needs a repair first).
pub(crate) fn refuse_missing_quarantine_tables(conn: &mut SqliteConnection) -> Result<(), Error> {
    let tables = missing_quarantine_tables(conn)?;
    if tables.is_empty() {
        Ok(())
    } else {
        let (them, list) = match tables.as_slice() {
            [one] => ("it", format!("table {one} is")),
            _ => ("them", format!("tables {} are", tables.join(", "))),
        };
        Err(Error::new(
            ErrorKind::NeedsRepair,
            format!(
                "idstore's {list} missing from this file (another program dropped {them}); a repair re-creates {them} (empty)"
            ),
        ))
    }
}

/// The tables idstore keeps moved-aside values in, each with the step that makes it.
const QUARANTINE_TABLES: [(&str, &str); 3] = [
    ("accounts_quarantine", super::ACTIVE_IDENTITY_VERSION),
    ("active_did_quarantine", super::ACTIVE_IDENTITY_VERSION),
    ("settings_active_did_archive", super::CLEANUP_VERSION),
];

/// The app's own `active_identity` row, read before it is replaced by idstore's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppPointer {
    pub active_did: Option<String>,
    pub last_updated: Option<String>,
    /// Whether `active_did` names an account.
    pub names_account: bool,
}

/// Everything the plan decides from, read once.
#[derive(Debug, Clone)]
pub(crate) struct Inspection {
    pub status: MigrationStatus,
    /// The legacy `settings` lacks the column a later app build appended.
    pub lacks_late_column: bool,
    /// The app's own pointer, when the file has its `active_identity`.
    pub app_pointer: Option<AppPointer>,
    /// The master row's `settings.activeDid`, when it names an account.
    pub legacy_pointer_account: Option<String>,
    /// The names of every object the file has.
    pub existing: BTreeSet<String>,
    /// Account rows, kept or quarantined.
    pub account_rows: i64,
    /// What the next step's own preflight refuses, most fundamental first (its
    /// tokens; empty: it runs).
    pub refusals: Vec<String>,
    /// What idstore's inspection finds behind the first refusal, in words: the
    /// columns, the colliding objects, the foreign code, the damage.
    pub detail: Vec<String>,
}

/// Whether an inspection evaluates the next step's preflight itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Preflight {
    /// Evaluated here, reading only: the plan refuses before anything is done.
    Evaluate,
    /// Left to the step, whose SQL opens with it: a refusal then rolls the run's
    /// transaction back, and the caller asks again, evaluating, for its words.
    LeftToTheStep,
}

impl Inspection {
    /// Reads the file, evaluating the next step's preflight. Writes nothing (it
    /// works on a read-only connection).
    pub fn read(conn: &mut SqliteConnection) -> Result<Self, Error> {
        Self::read_with(conn, Preflight::Evaluate)
    }

    /// Reads the file, evaluating the next step's preflight or leaving it to the
    /// step. Writes nothing.
    pub(crate) fn read_with(
        conn: &mut SqliteConnection,
        preflight: Preflight,
    ) -> Result<Self, Error> {
        let status = status(conn)?;
        if status.pending.is_empty() && status.preview.is_empty() {
            // Nothing to plan: opening an up-to-date file stays cheap.
            return Ok(Inspection {
                status,
                lacks_late_column: false,
                app_pointer: None,
                legacy_pointer_account: None,
                existing: BTreeSet::new(),
                account_rows: 0,
                refusals: Vec::new(),
                detail: Vec::new(),
            });
        }
        let legacy_tables =
            sql::table_exists(conn, "accounts")? && sql::table_exists(conn, "settings")?;
        let lacks_late_column = legacy_tables && runner_sql::baseline::lacks_late_column(conn)?;
        let app_pointer = if status.app_active_identity {
            Some(app_pointer(conn)?)
        } else {
            None
        };
        let legacy_pointer_account = match queries::legacy_master_active_did(conn)? {
            Some(did) if !did.is_empty() && names_account(conn, &did)? => Some(did),
            _ => None,
        };
        // The next step's own checks, as it will run them (before a brand-new file
        // has the legacy tables, the step creates them first and checks those).
        let refusals = match status.pending.first() {
            Some(next)
                if legacy_tables
                    && status.preview.is_empty()
                    && preflight == Preflight::Evaluate =>
            {
                let step = super::steps::step(next.as_str()).expect("a known step");
                // The runner adds the app's late column itself, as the app's service
                // runs the app's own step 003 before idstore's.
                let ignore: &[&str] = if lacks_late_column {
                    &[MISSING_APP_STEP]
                } else {
                    &[]
                };
                run_preflight(conn, &step.preflight(), ignore)?
            }
            _ => Vec::new(),
        };
        let detail = match refusals.first() {
            Some(token) => refusal_detail(conn, token)?,
            None => Vec::new(),
        };
        let existing = crate::sql::schema_objects(conn)?.into_keys().collect();
        let account_rows = account_rows(conn)?;
        Ok(Inspection {
            status,
            lacks_late_column,
            app_pointer,
            legacy_pointer_account,
            existing,
            account_rows,
            refusals,
            detail,
        })
    }
}

/// What the inspection finds behind a preflight's refusal, in words, where it can
/// say more than the step's message: which columns, objects, code or damage.
fn refusal_detail(conn: &mut SqliteConnection, token: &str) -> QueryResult<Vec<String>> {
    Ok(match token {
        "legacy_shape" | "unknown_columns" => runner_sql::baseline::shape_problems(conn)?,
        "damaged_input" => sql::table_quick_check_problems(conn, "accounts")?,
        "name_collision" => {
            let objects = crate::sql::schema_objects(conn)?;
            super::steps::created()[super::ACTIVE_IDENTITY_VERSION]
                .iter()
                .filter_map(|ours| objects.get(&ours.name))
                .filter(|theirs| {
                    !(theirs.kind == "table" && theirs.name == "active_identity")
                        && theirs.tbl_name != "active_identity"
                })
                .map(|theirs| {
                    let an = if theirs.kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                        "an"
                    } else {
                        "a"
                    };
                    format!(
                        "the file has {an} {} named {}",
                        idstore_domain::display::Shown(&theirs.kind),
                        idstore_domain::display::Shown(&theirs.name)
                    )
                })
                .collect()
        }
        "foreign_objects" => {
            use super::foreign::{Write, acting_on, foreign_objects};
            acting_on(
                &foreign_objects(conn)?,
                &[
                    Write::delete("accounts"),
                    Write::insert("settings"),
                    Write::update("settings", &["activeDid"]),
                    Write::insert(BOOKKEEPING_TABLE),
                ],
            )
        }
        _ => Vec::new(),
    })
}

/// The token of the refusal of a file that lacks the app's late column.
pub(super) const MISSING_APP_STEP: &str = "missing_app_step";

/// The tokens a preflight's queries refuse the file with, as it stands (read only):
/// those of the first query that finds any but the `ignore`d, most fundamental
/// first, as the step would run them.
pub(super) fn run_preflight(
    conn: &mut SqliteConnection,
    queries: &[&str],
    ignore: &[&str],
) -> QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        token: String,
    }
    for query in queries {
        let found: Vec<String> = diesel::sql_query(*query)
            .load::<Row>(conn)?
            .into_iter()
            .map(|r| r.token)
            .filter(|t| !ignore.contains(&t.as_str()))
            .collect();
        if !found.is_empty() {
            return Ok(found);
        }
    }
    Ok(Vec::new())
}

fn names_account(conn: &mut SqliteConnection, did: &str) -> QueryResult<bool> {
    Ok(sql::table_exists(conn, "accounts")? && queries::account_exists(conn, did)?)
}

/// Reads the app's `active_identity` row (its first, as the app does).
fn app_pointer(conn: &mut SqliteConnection) -> QueryResult<AppPointer> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Nullable<diesel::sql_types::Binary>)]
        active_did: Option<sql::Lossless>,
        #[diesel(sql_type = Nullable<diesel::sql_types::Binary>)]
        last_updated: Option<sql::Lossless>,
    }
    let columns = sql::columns(conn, "active_identity")?;
    if !columns.iter().any(|c| c == "activeDid") {
        // The plan refuses this shape; nothing to read.
        return Ok(AppPointer {
            active_did: None,
            last_updated: None,
            names_account: false,
        });
    }
    let query = if columns.iter().any(|c| c == "lastUpdated") {
        "SELECT activeDid AS active_did, CAST(lastUpdated AS TEXT) AS last_updated FROM active_identity ORDER BY id LIMIT 1"
    } else {
        "SELECT activeDid AS active_did, NULL AS last_updated FROM active_identity ORDER BY id LIMIT 1"
    };
    let row = diesel::sql_query(query)
        .get_result::<Row>(conn)
        .optional()?;
    let (active_did, last_updated) = row
        .map(|r| {
            (
                r.active_did.map(|l| l.0).filter(|s| !s.is_empty()),
                r.last_updated.map(|l| l.0),
            )
        })
        .unwrap_or_default();
    let names_account = match &active_did {
        Some(did) => names_account(conn, did)?,
        None => false,
    };
    Ok(AppPointer {
        active_did,
        last_updated,
        names_account,
    })
}

/// Every account row, kept or quarantined, summed up as a multiset of whole rows
/// (id and every column, typed): a migration or rollback may move rows between
/// `accounts` and `accounts_quarantine`, never change one. Each row is hashed with
/// keys chosen at random for the run, so no file can be made to collide with it.
#[derive(Debug, Clone)]
pub(crate) struct AccountDigest {
    keys: std::hash::RandomState,
    rows: u64,
    sum: u64,
    xor: u64,
}

impl PartialEq for AccountDigest {
    fn eq(&self, other: &Self) -> bool {
        (self.rows, self.sum, self.xor) == (other.rows, other.sum, other.xor)
    }
}

impl AccountDigest {
    /// The digest of the file's account rows now, with fresh keys (the quarantine's
    /// only when the file is idstore's from the active-identity step on).
    pub fn read(conn: &mut SqliteConnection) -> Result<Self, Error> {
        Self::read_with(conn, std::hash::RandomState::new())
    }

    /// The digest of the account rows now, with the keys of `self` (to compare).
    pub fn again(&self, conn: &mut SqliteConnection) -> Result<Self, Error> {
        Self::read_with(conn, self.keys.clone())
    }

    fn read_with(conn: &mut SqliteConnection, keys: std::hash::RandomState) -> Result<Self, Error> {
        use diesel::connection::DefaultLoadingMode;
        use std::hash::{BuildHasher, Hasher};
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Binary)]
            row: Vec<u8>,
        }
        let mut digest = AccountDigest {
            keys,
            rows: 0,
            sum: 0,
            xor: 0,
        };
        let st = status(conn)?;
        let quarantine_is_ours =
            !st.preview.is_empty() || st.applied.iter().any(|v| v == ACTIVE_IDENTITY_VERSION);
        for table in ["accounts", "accounts_quarantine"] {
            if !sql::table_exists(conn, table)? || (table != "accounts" && !quarantine_is_ours) {
                continue;
            }
            let query = diesel::sql_query(format!(
                "SELECT CAST(quote(id) || ',' || quote(dateCreated) || ',' || quote(derivationPath)
                        || ',' || quote(did) || ',' || quote(identityEncrBase64) || ','
                        || quote(mnemonicEncrBase64) || ',' || quote(passkeyCredIdHex) || ','
                        || quote(publicKeyHex) AS BLOB) AS row FROM {table}"
            ));
            for row in query.load_iter::<Row, DefaultLoadingMode>(conn)? {
                let mut h = digest.keys.build_hasher();
                h.write(&row?.row);
                let v = h.finish();
                digest.rows += 1;
                digest.sum = digest.sum.wrapping_add(v);
                digest.xor ^= v.rotate_left(17);
            }
        }
        Ok(digest)
    }
}

/// Account rows, kept or quarantined: a migration may move them, never lose them.
pub(super) fn account_rows(conn: &mut SqliteConnection) -> QueryResult<i64> {
    let mut n = 0;
    for table in ["accounts", "accounts_quarantine"] {
        if sql::table_exists(conn, table)? {
            n += sql::count_rows(conn, table)?;
        }
    }
    Ok(n)
}
