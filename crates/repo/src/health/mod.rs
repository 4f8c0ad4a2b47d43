//! `check` and `repair`: every problem a file can have, and the fixes that lose nothing.

use diesel::connection::SimpleConnection;
use serde::Serialize;

use crate::error::RepoError;
use crate::quarantine::QuarantineRef;
use crate::store::Store;

mod check;
mod repair;

pub use check::check_database;

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

pub(super) fn problem(kind: ProblemKind, detail: String) -> Problem {
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
            check::find_problems(conn, &mut |p| report.add(p))?;
            Ok(report)
        })
    }

    /// Hands every problem to `visit`, one at a time, however many there are (what
    /// `idstore check --all` prints): memory stays flat as the file grows.
    pub fn check_each(&mut self, mut visit: impl FnMut(Problem)) -> Result<(), RepoError> {
        crate::txn::read(self.conn, |conn| check::find_problems(conn, &mut visit))
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
        let result = crate::txn::immediate(self.conn, repair::repair_in_transaction);
        // Turned back on whatever happened; the repair's own error comes first.
        let restored = self.conn.batch_execute("PRAGMA foreign_keys = ON;");
        let report = result?;
        restored?;
        Ok(report)
    }
}
