//! `check` and `repair`: every problem a file can have, and the fixes that lose nothing.

use diesel::connection::{DefaultLoadingMode, SimpleConnection};
use diesel::dsl::count_star;
use diesel::prelude::*;
use idstore_domain::Did;
use idstore_schema::{accounts, active_identity, settings};
use serde::Serialize;

use crate::error::RepoError;
use crate::quarantine::{QuarantineKind, QuarantineRef};
use crate::queries::{clear_dangling_pointer, dangling_pointer, ensure_master_row};
use crate::sql;
use crate::store::{Store, read_master};

/// The kinds of problem [`Store::check`] finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// `PRAGMA integrity_check` found damage.
    Integrity,
    /// `PRAGMA foreign_key_check` found a row whose parent is missing.
    ForeignKey,
    /// The active identity names no account.
    DanglingPointer,
    /// The single `active_identity` row is missing.
    MissingPointerRow,
    /// The master settings row (`id = 1`) is missing.
    MissingMasterRow,
    /// Several accounts share a DID.
    DuplicateDid,
    /// No UNIQUE index covers `accounts.did`: the foreign key from `active_identity`
    /// cannot work ("foreign key mismatch") and duplicates can creep in.
    MissingDidIndex,
    /// The database is not at the latest migration (only `check` on such a file says
    /// this; every other problem listed with it is what `migrate` will handle).
    NeedsMigration,
    /// An account's DID is not a valid DID.
    InvalidDid,
    /// An override settings row names no account.
    OrphanOverride,
    /// A settings row other than the master has no `accountDid`.
    ExtraNullAccountRow,
    /// A trigger of the pointer guard is missing (see [`crate::guard`]): a writer with
    /// foreign keys off could leave the active identity naming no account.
    MissingPointerGuard,
    /// The `quarantine_decisions` log is missing, so no decision can be recorded.
    MissingDecisionLog,
    /// At the transition step: the master row's legacy `settings.activeDid` and
    /// `active_identity` disagree (the transition triggers keep them in step).
    LegacyPointerOutOfStep,
    /// An account row moved aside by the migration, waiting for a decision
    /// ([`Store::restore_quarantined`] or [`Store::discard_quarantined`]).
    QuarantinedAccount,
    /// A pointer value moved aside, waiting for a decision.
    QuarantinedPointer,
}

impl ProblemKind {
    /// The kind's name as `check` prints it (`dangling_pointer`), as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Integrity => "integrity",
            ProblemKind::ForeignKey => "foreign_key",
            ProblemKind::DanglingPointer => "dangling_pointer",
            ProblemKind::MissingPointerRow => "missing_pointer_row",
            ProblemKind::MissingMasterRow => "missing_master_row",
            ProblemKind::DuplicateDid => "duplicate_did",
            ProblemKind::MissingDidIndex => "missing_did_index",
            ProblemKind::NeedsMigration => "needs_migration",
            ProblemKind::InvalidDid => "invalid_did",
            ProblemKind::OrphanOverride => "orphan_override",
            ProblemKind::ExtraNullAccountRow => "extra_null_account_row",
            ProblemKind::MissingPointerGuard => "missing_pointer_guard",
            ProblemKind::MissingDecisionLog => "missing_decision_log",
            ProblemKind::LegacyPointerOutOfStep => "legacy_pointer_out_of_step",
            ProblemKind::QuarantinedAccount => "quarantined_account",
            ProblemKind::QuarantinedPointer => "quarantined_pointer",
        }
    }

    /// Whether [`Store::repair`] fixes this kind.
    pub fn repairable(self) -> bool {
        matches!(
            self,
            ProblemKind::DanglingPointer
                | ProblemKind::MissingPointerRow
                | ProblemKind::MissingMasterRow
                | ProblemKind::DuplicateDid
                | ProblemKind::MissingDidIndex
                | ProblemKind::MissingPointerGuard
                | ProblemKind::MissingDecisionLog
                | ProblemKind::LegacyPointerOutOfStep
        )
    }
}

/// One problem, with what a person needs to find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What kind of problem.
    pub kind: ProblemKind,
    /// Where and what.
    pub detail: String,
    /// For a quarantined item waiting for a decision: which one (`account:4`), to
    /// pass to [`Store::restore_quarantined`] or [`Store::discard_quarantined`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<QuarantineRef>,
}

impl Problem {
    /// True for a quarantined item waiting for a person's decision (not something
    /// [`Store::repair`] could ever fix).
    pub fn is_decision(&self) -> bool {
        self.item.is_some()
    }
}

/// The result of [`Store::check`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct HealthReport {
    /// The problems found, at most [`SAMPLE_PER_KIND`] of each kind (every one of
    /// them with [`Store::check_each`]); empty when the file is healthy.
    pub problems: Vec<Problem>,
    /// How many more of each kind were found than `problems` shows.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub omitted: std::collections::BTreeMap<ProblemKind, u64>,
}

/// How many problems of one kind a [`HealthReport`] shows; the rest are counted.
/// A file with 360,000 override rows naming no account is reported in a few
/// kilobytes, not in one formatted line per row.
pub const SAMPLE_PER_KIND: usize = 10;

impl HealthReport {
    /// True when no problem was found.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// Every problem found of this kind, shown or not.
    pub fn count(&self, kind: ProblemKind) -> u64 {
        self.problems.iter().filter(|p| p.kind == kind).count() as u64
            + self.omitted.get(&kind).copied().unwrap_or(0)
    }

    /// Every problem found, shown or not.
    pub fn total(&self) -> u64 {
        self.problems.len() as u64 + self.omitted.values().sum::<u64>()
    }

    /// Adds a problem: shown while its kind has fewer than [`SAMPLE_PER_KIND`],
    /// else counted.
    pub(crate) fn add(&mut self, p: Problem) {
        // Once a kind has been counted, its sample is full: no scan per problem.
        if let Some(n) = self.omitted.get_mut(&p.kind) {
            *n += 1;
            return;
        }
        let shown = self.problems.iter().filter(|q| q.kind == p.kind).count();
        if shown < SAMPLE_PER_KIND {
            self.problems.push(p);
        } else {
            *self.omitted.entry(p.kind).or_insert(0) += 1;
        }
    }
}

/// The result of [`Store::repair`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RepairReport {
    /// What was fixed, and how.
    pub fixed: Vec<Problem>,
    /// How many more of each kind are left than `left` shows.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub left_omitted: std::collections::BTreeMap<ProblemKind, u64>,
    /// What is left for a person to decide (nothing here can be fixed without losing data).
    pub left: Vec<Problem>,
}

fn problem(kind: ProblemKind, detail: String) -> Problem {
    Problem {
        kind,
        detail,
        item: None,
    }
}

impl Store<'_> {
    /// Lists every problem in the file, each with a kind and a detail.
    pub fn check(&mut self) -> Result<HealthReport, RepoError> {
        crate::txn::read(self.conn, |conn| {
            let mut report = HealthReport::default();
            find_problems(conn, &mut |p| report.add(p))?;
            Ok(report)
        })
    }

    /// Hands every problem to `visit`, one at a time, however many there are (what
    /// `idstore check --all` prints): memory stays flat as the file grows.
    pub fn check_each(&mut self, mut visit: impl FnMut(Problem)) -> Result<(), RepoError> {
        crate::txn::read(self.conn, |conn| find_problems(conn, &mut visit))
    }

    /// Fixes what can be fixed without losing data, in one transaction: a missing
    /// pointer row or master row is re-created; a dangling pointer is re-pointed to the
    /// first account by (`dateCreated`, DID), or cleared, its old value kept in
    /// `active_did_quarantine`. Reports what it fixed and what it left.
    ///
    /// Foreign key enforcement is suspended for the repair's transaction only (without
    /// a UNIQUE index on `accounts.did`, SQLite refuses every change to `accounts` with
    /// "foreign key mismatch"); `foreign_key_check` must be clean before it commits.
    pub fn repair(&mut self) -> Result<RepairReport, RepoError> {
        self.conn.batch_execute("PRAGMA foreign_keys = OFF;")?;
        let result = crate::txn::immediate(self.conn, repair_in_transaction);
        // Turned back on whatever happened; the repair's own error comes first.
        let restored = self.conn.batch_execute("PRAGMA foreign_keys = ON;");
        let report = result?;
        restored?;
        Ok(report)
    }
}

fn repair_in_transaction(conn: &mut SqliteConnection) -> Result<RepairReport, RepoError> {
    let mut fixed = Vec::new();
    if read_master(conn)?.is_none() {
        ensure_master_row(conn)?;
        fixed.push(problem(
            ProblemKind::MissingMasterRow,
            "re-created the master settings row with the default API server".into(),
        ));
    }
    let moved = quarantine_duplicates(conn)?;
    if moved > 0 {
        fixed.push(problem(ProblemKind::DuplicateDid, format!("moved {moved} duplicate account rows (all but the lowest id of each DID) to accounts_quarantine")));
    }
    if !has_unique_did_index(conn)? {
        diesel::sql_query("CREATE UNIQUE INDEX idx_accounts_did_unique ON accounts(did)")
            .execute(conn)?;
        fixed.push(problem(
            ProblemKind::MissingDidIndex,
            "re-created the UNIQUE index idx_accounts_did_unique".into(),
        ));
    }
    let first = first_valid_account(conn)?;
    let pointer_rows: i64 = active_identity::table
        .select(count_star())
        .get_result(conn)?;
    if pointer_rows == 0 {
        diesel::insert_into(active_identity::table)
            .values((
                active_identity::id.eq(1),
                active_identity::activeDid.eq(None::<String>),
            ))
            .execute(conn)?;
        fixed.push(problem(
            ProblemKind::MissingPointerRow,
            "re-created the active_identity row (no active identity)".into(),
        ));
    }
    if let Some(old) = clear_dangling_pointer(conn, first.as_ref())? {
        let now = first
            .as_ref()
            .map_or("cleared it".to_owned(), |d| format!("re-pointed it to {d}"));
        fixed.push(problem(
            ProblemKind::DanglingPointer,
            format!("active identity {old:?} named no account: {now}; the old value is kept in active_did_quarantine"),
        ));
    }
    // Last, once the pointer is valid: the guard only checks later writes.
    let missing = missing_guards(conn)?;
    if !missing.is_empty() {
        for name in &missing {
            diesel::sql_query(crate::guard::create_sql(name)).execute(conn)?;
        }
        fixed.push(problem(
            ProblemKind::MissingPointerGuard,
            format!(
                "re-created the pointer guard triggers {}",
                missing.join(", ")
            ),
        ));
    }
    if let Some((legacy, pointer)) = legacy_pointer_out_of_step(conn)? {
        // The transition trigger on settings then finds the pointer already in place.
        diesel::sql_query(
            "UPDATE settings SET activeDid = (SELECT activeDid FROM active_identity WHERE id = 1) WHERE id = 1",
        )
        .execute(conn)?;
        fixed.push(problem(
            ProblemKind::LegacyPointerOutOfStep,
            format!("settings.activeDid was {legacy:?}; set it to the active identity {pointer:?}"),
        ));
    }
    if !sql::table_exists(conn, crate::guard::DECISION_LOG)? {
        diesel::sql_query(crate::guard::create_decision_log_sql()).execute(conn)?;
        fixed.push(problem(
            ProblemKind::MissingDecisionLog,
            "re-created the quarantine_decisions log (empty)".into(),
        ));
    }
    let mut left = HealthReport::default();
    find_problems(conn, &mut |p| left.add(p))?;
    if let Some(p) = left.problems.iter().find(|p| p.kind.repairable()) {
        // Nothing may be committed half-repaired.
        return Err(RepoError::RepairIncomplete(Box::new(p.clone())));
    }
    Ok(RepairReport {
        fixed,
        left: left.problems,
        left_omitted: left.omitted,
    })
}

/// At the transition step (the legacy column still there), the master row's
/// `settings.activeDid` and the pointer when they disagree (`''` and NULL agree).
fn legacy_pointer_out_of_step(
    conn: &mut SqliteConnection,
) -> QueryResult<Option<(Option<String>, Option<String>)>> {
    #[derive(QueryableByName)]
    struct Pair {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        legacy: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        pointer: Option<String>,
    }
    if !sql::columns(conn, "settings")?
        .iter()
        .any(|c| c == "activeDid")
    {
        return Ok(None);
    }
    let pair = diesel::sql_query(
        "SELECT s.activeDid AS legacy, p.activeDid AS pointer
           FROM settings AS s LEFT JOIN active_identity AS p ON p.id = 1
          WHERE s.id = 1 AND nullif(s.activeDid, '') IS NOT p.activeDid",
    )
    .get_result::<Pair>(conn)
    .optional()?;
    Ok(pair.map(|p| (p.legacy, p.pointer)))
}

/// The pointer guard's triggers that the file lacks.
fn missing_guards(conn: &mut SqliteConnection) -> QueryResult<Vec<&'static str>> {
    let mut missing = Vec::new();
    for name in crate::guard::GUARD_TRIGGERS {
        if !sql::object_exists(conn, "trigger", name)? {
            missing.push(name);
        }
    }
    Ok(missing)
}

/// The first account by (`dateCreated`, DID) whose DID is valid.
fn first_valid_account(conn: &mut SqliteConnection) -> QueryResult<Option<Did>> {
    let dids: Vec<String> = accounts::table
        .order((accounts::dateCreated, accounts::did))
        .select(accounts::did)
        .load(conn)?;
    Ok(dids.into_iter().find_map(|d| Did::try_from(d).ok()))
}

/// Whether a UNIQUE index covers exactly `accounts(did)`.
fn has_unique_did_index(conn: &mut SqliteConnection) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(
        "SELECT count(*) AS n FROM pragma_index_list('accounts') AS il
          WHERE il.\"unique\" = 1
            AND (SELECT group_concat(name) FROM pragma_index_info(il.name)) = 'did'",
    )
    .get_result::<N>(conn)
    .map(|r| r.n > 0)
}

/// Moves every account row beyond the first (lowest id) of its DID, every column
/// intact, to `accounts_quarantine`, as the migration does. Returns how many.
fn quarantine_duplicates(conn: &mut SqliteConnection) -> QueryResult<usize> {
    let moved = diesel::sql_query(
        "INSERT INTO accounts_quarantine (id, dateCreated, derivationPath, did, identityEncrBase64,
                                          mnemonicEncrBase64, passkeyCredIdHex, publicKeyHex,
                                          keptAccountId, reason)
         SELECT dup.id, dup.dateCreated, dup.derivationPath, dup.did, dup.identityEncrBase64,
                dup.mnemonicEncrBase64, dup.passkeyCredIdHex, dup.publicKeyHex,
                (SELECT min(id) FROM accounts WHERE did = dup.did), 'duplicate did found by repair'
           FROM accounts AS dup
          WHERE dup.id > (SELECT min(id) FROM accounts WHERE did = dup.did)",
    )
    .execute(conn)?;
    if moved > 0 {
        diesel::sql_query("DELETE FROM accounts WHERE id IN (SELECT id FROM accounts_quarantine)")
            .execute(conn)?;
    }
    Ok(moved)
}

/// Duplicate and invalid DIDs among the accounts (the same on a legacy file).
fn account_problems(conn: &mut SqliteConnection, emit: &mut dyn FnMut(Problem)) -> QueryResult<()> {
    let dups: Vec<(String, i64)> = accounts::table
        .group_by(accounts::did)
        .having(count_star().gt(1))
        .select((accounts::did, count_star()))
        .load(conn)?;
    for (did, n) in dups {
        emit(problem(
            ProblemKind::DuplicateDid,
            format!("{n} accounts have DID {did}"),
        ));
    }
    let all = accounts::table
        .select((accounts::id, accounts::did))
        .order(accounts::id)
        .load_iter::<(i32, String), DefaultLoadingMode>(conn)?;
    for row in all {
        let (id, did) = row?;
        if let Err(e) = Did::parse(&did) {
            emit(problem(
                ProblemKind::InvalidDid,
                format!(
                    "account {id} has DID {:?}: {e}",
                    did.chars().take(80).collect::<String>()
                ),
            ));
        }
    }
    Ok(())
}

/// The health of any database: a migrated one (or one stopped at a pause point) gets
/// [`Store::check`]; one that still needs migrating gets `integrity_check`, a [`ProblemKind::NeedsMigration`] problem,
/// and what `migrate` will have to quarantine (duplicate DIDs, a pointer naming no
/// account). Reads only.
pub fn check_database(conn: &mut SqliteConnection) -> Result<HealthReport, RepoError> {
    let st = crate::migrations::status(conn)?;
    if !st.unknown.is_empty() {
        return Err(crate::MigrateError::UnknownVersions {
            versions: st.unknown,
        }
        .into());
    }
    if st.servable() {
        return Store::new(conn).check();
    }
    let mut report = HealthReport::default();
    let mut emit = |p: Problem| report.add(p);
    for d in sql::integrity_problems(conn)? {
        emit(problem(ProblemKind::Integrity, d));
    }
    emit(problem(
        ProblemKind::NeedsMigration,
        format!(
            "pending migrations {}; run `idstore migrate`",
            st.pending.join(", ")
        ),
    ));
    if sql::table_exists(conn, "accounts")? {
        account_problems(conn, &mut emit)?;
        let dangling = match &st.active_did {
            Some(did) if !crate::queries::account_exists(conn, did)? => Some(did),
            _ => None,
        };
        if let Some(did) = dangling {
            emit(problem(
                ProblemKind::DanglingPointer,
                format!(
                    "the active identity {did:?} names no account; migrate will clear it and keep it in active_did_quarantine"
                ),
            ));
        }
    }
    Ok(report)
}

/// Every problem of a migrated file, handed to `emit` one at a time: nothing here
/// holds more than one row of a large table at once.
fn find_problems(
    conn: &mut SqliteConnection,
    emit: &mut dyn FnMut(Problem),
) -> Result<(), RepoError> {
    for d in sql::integrity_problems(conn)? {
        emit(problem(ProblemKind::Integrity, d));
    }
    if has_unique_did_index(conn)? {
        // A dangling pointer is reported once, as such, not also as a foreign key row.
        for v in sql::foreign_key_violations(conn)? {
            if v.table != "active_identity" {
                emit(problem(ProblemKind::ForeignKey, v.to_string()));
            }
        }
    } else {
        // foreign_key_check itself fails ("foreign key mismatch") without the index.
        emit(problem(
            ProblemKind::MissingDidIndex,
            "no UNIQUE index on accounts(did): the active_identity foreign key cannot be checked or enforced".into(),
        ));
    }
    if let Some(value) = dangling_pointer(conn)? {
        emit(problem(
            ProblemKind::DanglingPointer,
            format!("active_identity.activeDid {value:?} names no account"),
        ));
    }
    let missing = missing_guards(conn)?;
    if !missing.is_empty() {
        emit(problem(
            ProblemKind::MissingPointerGuard,
            format!(
                "the pointer guard triggers {} are missing: a writer with foreign keys off could leave the active identity naming no account",
                missing.join(", ")
            ),
        ));
    }
    if let Some((legacy, pointer)) = legacy_pointer_out_of_step(conn)? {
        emit(problem(
            ProblemKind::LegacyPointerOutOfStep,
            format!(
                "settings.activeDid is {legacy:?} but the active identity is {pointer:?}: older app builds see another identity"
            ),
        ));
    }
    if !sql::table_exists(conn, crate::guard::DECISION_LOG)? {
        emit(problem(
            ProblemKind::MissingDecisionLog,
            "the quarantine_decisions log is missing: no quarantine decision can be recorded"
                .into(),
        ));
    }
    let pointer_rows: i64 = active_identity::table
        .select(count_star())
        .get_result(conn)?;
    if pointer_rows == 0 {
        emit(problem(
            ProblemKind::MissingPointerRow,
            "active_identity has no row".into(),
        ));
    }
    if read_master(conn)?.is_none() {
        emit(problem(
            ProblemKind::MissingMasterRow,
            "settings has no master row (id = 1)".into(),
        ));
    }
    account_problems(conn, emit)?;
    let orphans = settings::table
        .filter(settings::id.ne(1))
        .filter(settings::accountDid.is_not_null())
        .filter(diesel::dsl::not(diesel::dsl::exists(
            accounts::table.filter(accounts::did.nullable().eq(settings::accountDid)),
        )))
        .select((settings::id, settings::accountDid))
        .order(settings::id)
        .load_iter::<(i32, Option<String>), DefaultLoadingMode>(conn)?;
    for row in orphans {
        let (id, did) = row?;
        emit(problem(
            ProblemKind::OrphanOverride,
            format!(
                "settings row {id} overrides {} which is no account",
                did.unwrap_or_default()
            ),
        ));
    }
    let extra = settings::table
        .filter(settings::id.ne(1))
        .filter(settings::accountDid.is_null())
        .select(settings::id)
        .order(settings::id)
        .load_iter::<i32, DefaultLoadingMode>(conn)?;
    for row in extra {
        let id = row?;
        emit(problem(
            ProblemKind::ExtraNullAccountRow,
            format!("settings row {id} has no accountDid and is not the master row"),
        ));
    }
    // Quarantined items wait for a person's decision (`quarantine restore/discard`);
    // an account a restore decision replaced and kept aside no longer waits.
    for item in Store::new(conn).quarantine()? {
        if !item.waiting {
            continue;
        }
        let kind = match item.item.kind {
            QuarantineKind::Account => ProblemKind::QuarantinedAccount,
            QuarantineKind::Pointer => ProblemKind::QuarantinedPointer,
        };
        let mut detail = format!("{} ({}): {}", item.item, item.value, item.reason);
        if !item.differs_from_kept.is_empty() {
            detail.push_str(&format!(
                "; differs from the kept account in {}",
                item.differs_from_kept.join(", ")
            ));
        }
        emit(Problem {
            kind,
            detail,
            item: Some(item.item),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::ProblemKind;

    #[test]
    fn kind_names_are_what_serde_writes() {
        for kind in [
            ProblemKind::Integrity,
            ProblemKind::ForeignKey,
            ProblemKind::DanglingPointer,
            ProblemKind::MissingPointerRow,
            ProblemKind::MissingMasterRow,
            ProblemKind::DuplicateDid,
            ProblemKind::MissingDidIndex,
            ProblemKind::NeedsMigration,
            ProblemKind::InvalidDid,
            ProblemKind::OrphanOverride,
            ProblemKind::ExtraNullAccountRow,
            ProblemKind::MissingPointerGuard,
            ProblemKind::MissingDecisionLog,
            ProblemKind::LegacyPointerOutOfStep,
            ProblemKind::QuarantinedAccount,
            ProblemKind::QuarantinedPointer,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }
}
