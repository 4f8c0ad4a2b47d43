//! `check` and `repair`: every problem a file can have (`check.rs`), and the fixes
//! that lose nothing (`repair.rs`): among them the objects a tool may have dropped,
//! the pointer guard's triggers and the quarantine tables and decision log,
//! re-created from the very SQL the steps run (`migrations::steps::definition`).
//!
//! **Rule:** `check` reads only, works on a file in any state, and reports at most
//! [`HealthReport::SAMPLE_PER_KIND`] problems of a kind (the rest counted), so its
//! memory stays flat; `repair` fixes only what it can without losing data, in one
//! transaction, and leaves every quarantined item for a person to decide.

use diesel::connection::SimpleConnection;
use serde::Serialize;

use crate::connection::Handle;
use crate::error::Error;
use idstore_domain::quarantine::QuarantineRef;

mod check;
mod repair;

pub(crate) use check::{check, check_each};

macro_rules! problem_kinds {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, )*) => {
        /// The kinds of problem [`Database::check`](crate::Database::check) finds.
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ProblemKind {
            $( $(#[$doc])* $variant, )*
        }

        impl ProblemKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ProblemKind] = &[$(ProblemKind::$variant,)*];

            /// The kind's name as `check` prints it (`dangling_pointer`), as serde writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ProblemKind::$variant => $name,)*
                }
            }
        }
    };
}

problem_kinds! {
    /// `PRAGMA integrity_check` found damage.
    Integrity = "integrity",
    /// `PRAGMA foreign_key_check` found a row whose parent is missing.
    ForeignKey = "foreign_key",
    /// The active identity names no account.
    DanglingPointer = "dangling_pointer",
    /// The single `active_identity` row is missing.
    MissingPointerRow = "missing_pointer_row",
    /// The master settings row (`id = 1`) is missing.
    MissingMasterRow = "missing_master_row",
    /// Several accounts share a DID.
    DuplicateDid = "duplicate_did",
    /// No UNIQUE index covers `accounts.did`: the foreign key from `active_identity`
    /// cannot work ("foreign key mismatch") and duplicates can creep in.
    MissingDidIndex = "missing_did_index",
    /// The database is not at the latest migration (only `check` on such a file says
    /// this; every other problem listed with it is what `migrate` will handle).
    NeedsMigration = "needs_migration",
    /// An account's DID is not a valid DID.
    InvalidDid = "invalid_did",
    /// An override settings row names no account: what the app leaves when it
    /// deletes an account (it never deletes the account's settings row). A notice,
    /// not a problem: it does not make [`HealthReport::ok`] false.
    OrphanOverride = "orphan_override",
    /// A settings row other than the master has no `accountDid`.
    ExtraNullAccountRow = "extra_null_account_row",
    /// A trigger of the pointer guard is missing: a writer with
    /// foreign keys off could leave the active identity naming no account.
    MissingPointerGuard = "missing_pointer_guard",
    /// The `quarantine_decisions` log is missing, so no decision can be recorded.
    MissingDecisionLog = "missing_decision_log",
    /// A table where idstore keeps what it moved aside (`accounts_quarantine`,
    /// `active_did_quarantine`, `settings_active_did_archive`) is missing: what it
    /// held is gone, and nothing more can be kept there.
    MissingQuarantineTable = "missing_quarantine_table",
    /// At the transition step: the master row's legacy `settings.activeDid` and
    /// `active_identity` disagree (the transition triggers keep them in step).
    LegacyPointerOutOfStep = "legacy_pointer_out_of_step",
    /// A value stored in the file cannot be read (not UTF-8 text, say): the row
    /// and column are named.
    InvalidStoredValue = "invalid_stored_value",
    /// A trigger, view or other object the file carries that idstore did not make
    /// and does not know (named, with what it does).
    ForeignObject = "foreign_object",
    /// A copy a conversion left beside the file when it was interrupted (it may hold
    /// the data unencrypted); the next conversion, or `repair`, removes it.
    LeftoverCopy = "leftover_copy",
    /// A name beside the file where idstore's own files go that is not idstore's: a
    /// link, a FIFO, a file with other links or of another user. Nothing is written
    /// through it; `repair` removes the name unless it is another user's file.
    UntrustedFile = "untrusted_file",
    /// An account row moved aside by the migration, waiting for a decision
    /// ([`Store::restore_quarantined`](crate::Store::restore_quarantined) or
    /// [`Store::discard_quarantined`](crate::Store::discard_quarantined)).
    QuarantinedAccount = "quarantined_account",
    /// A pointer value moved aside, waiting for a decision.
    QuarantinedPointer = "quarantined_pointer",
}

impl ProblemKind {
    /// Whether this kind is a notice: what the app's ordinary use leaves behind (an
    /// override row of a deleted account), reported but harmless, so it does not
    /// make [`HealthReport::ok`] false.
    pub fn is_notice(self) -> bool {
        matches!(self, ProblemKind::OrphanOverride)
    }

    /// Whether [`Database::repair`](crate::Database::repair) fixes this kind.
    pub fn repairable(self) -> bool {
        match self {
            ProblemKind::DanglingPointer
            | ProblemKind::MissingPointerRow
            | ProblemKind::MissingMasterRow
            | ProblemKind::DuplicateDid
            | ProblemKind::MissingDidIndex
            | ProblemKind::MissingPointerGuard
            | ProblemKind::MissingDecisionLog
            | ProblemKind::MissingQuarantineTable
            | ProblemKind::LegacyPointerOutOfStep
            | ProblemKind::LeftoverCopy => true,
            ProblemKind::Integrity
            | ProblemKind::ForeignKey
            | ProblemKind::NeedsMigration
            | ProblemKind::InvalidDid
            | ProblemKind::InvalidStoredValue
            | ProblemKind::OrphanOverride
            | ProblemKind::ExtraNullAccountRow
            | ProblemKind::ForeignObject
            | ProblemKind::UntrustedFile
            | ProblemKind::QuarantinedAccount
            | ProblemKind::QuarantinedPointer => false,
        }
    }
}

/// One problem, with what a person needs to find it. In JSON: `kind`, `detail`,
/// `item` for a decision waiting, and `"notice": true` for what the app's ordinary
/// use leaves behind ([`ProblemKind::is_notice`]).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What kind of problem.
    pub kind: ProblemKind,
    /// Where and what, in words (values from the file escaped and shortened).
    pub detail: String,
    /// For a quarantined item waiting for a decision: which one (`account:4`), to
    /// pass to [`Store::restore_quarantined`](crate::Store::restore_quarantined) or
    /// [`Store::discard_quarantined`](crate::Store::discard_quarantined).
    pub item: Option<QuarantineRef>,
}

impl Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let notice = self.kind.is_notice();
        let len = 2 + usize::from(self.item.is_some()) + usize::from(notice);
        let mut map = serializer.serialize_map(Some(len))?;
        map.serialize_entry("kind", &self.kind)?;
        map.serialize_entry("detail", &self.detail)?;
        if let Some(item) = &self.item {
            map.serialize_entry("item", item)?;
        }
        if notice {
            map.serialize_entry("notice", &true)?;
        }
        map.end()
    }
}

impl Problem {
    /// True for a quarantined item waiting for a person's decision (not something
    /// [`Database::repair`](crate::Database::repair) could ever fix).
    pub fn is_decision(&self) -> bool {
        self.item.is_some()
    }
}

/// The result of [`Database::check`](crate::Database::check).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct HealthReport {
    /// The problems found, at most [`HealthReport::SAMPLE_PER_KIND`] of each kind (every one of
    /// them with [`Database::check_each`](crate::Database::check_each)); empty when
    /// the file is healthy.
    pub problems: Vec<Problem>,
    /// How many more of each kind were found than `problems` shows.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub omitted: std::collections::BTreeMap<ProblemKind, u64>,
}

impl HealthReport {
    /// How many problems of one kind a report shows; the rest are counted. A file
    /// with 360,000 override rows naming no account is reported in a few kilobytes,
    /// not in one formatted line per row.
    pub const SAMPLE_PER_KIND: usize = 10;

    /// True when nothing needs attention: no problem was found but notices (see
    /// [`ProblemKind::is_notice`]), and no quarantined item waits for a decision.
    pub fn ok(&self) -> bool {
        self.problems.iter().all(|p| p.kind.is_notice())
    }

    /// How many of the problems found are notices, shown or not.
    pub fn notices(&self) -> u64 {
        ProblemKind::ALL
            .iter()
            .filter(|k| k.is_notice())
            .map(|&k| self.count(k))
            .sum()
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

    /// How many quarantined items wait for a person's decision, shown or not.
    pub fn decisions(&self) -> u64 {
        self.count(ProblemKind::QuarantinedAccount) + self.count(ProblemKind::QuarantinedPointer)
    }

    /// How many problems are neither notices nor decisions waiting: what
    /// [`Database::repair`](crate::Database::repair) is for, shown or not.
    pub fn damage(&self) -> u64 {
        self.total() - self.decisions() - self.notices()
    }

    /// Adds a problem: shown while its kind has fewer than [`Self::SAMPLE_PER_KIND`],
    /// else counted.
    pub(crate) fn add(&mut self, p: Problem) {
        // Once a kind has been counted, its sample is full: no scan per problem.
        if let Some(n) = self.omitted.get_mut(&p.kind) {
            *n += 1;
            return;
        }
        let shown = self.problems.iter().filter(|q| q.kind == p.kind).count();
        if shown < Self::SAMPLE_PER_KIND {
            self.problems.push(p);
        } else {
            *self.omitted.entry(p.kind).or_insert(0) += 1;
        }
    }
}

/// The result of [`Database::repair`](crate::Database::repair).
#[non_exhaustive]
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

/// Fixes what can be fixed without losing data, in one transaction: a missing
/// pointer row or master row is re-created; a dangling pointer is re-pointed to the
/// first account by (`dateCreated`, DID), or cleared, its old value kept in
/// `active_did_quarantine`. Reports what it fixed and what it left.
///
/// Foreign key enforcement is suspended for the repair's transaction only (without
/// a UNIQUE index on `accounts.did`, SQLite refuses every change to `accounts` with
/// "foreign key mismatch"); `foreign_key_check` must be clean before it commits.
pub(crate) fn repair(handle: &mut Handle) -> Result<RepairReport, Error> {
    handle.conn.batch_execute("PRAGMA foreign_keys = OFF;")?;
    let file = &handle.file;
    let result =
        crate::connection::transaction::immediate(&mut handle.conn, &handle.path, |conn| {
            repair::repair_in_transaction(conn, file)
        });
    // Turned back on whatever happened; the repair's own error comes first.
    let restored = handle.conn.batch_execute("PRAGMA foreign_keys = ON;");
    let report = result?;
    restored?;
    Ok(report)
}
