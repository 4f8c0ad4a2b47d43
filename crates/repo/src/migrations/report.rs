//! What a migration or a rollback did: the reports, whose warnings name the tables
//! that keep every value a run moved. Plain data; nothing here reads a file.

use std::fmt;

use idstore_domain::display::Shown;
use idstore_domain::quarantine::QuarantineRef;
use serde::Serialize;

use crate::migrations::version::Version;

/// Something a migration did that a person should know about. Nothing reported here
/// was lost: each names where the value is kept.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MigrationWarning {
    /// A second (or later) account row with an existing DID was moved to
    /// `accounts_quarantine`, every column intact.
    QuarantinedAccount {
        /// The moved row's id (kept in the quarantine table).
        account_id: i32,
        /// Its DID.
        did: String,
        /// The id of the account row that keeps the DID.
        kept_account_id: i32,
        /// Whether the key material differs from the kept row.
        reason: String,
    },
    /// The active identity pointer named no account: it became NULL and the value
    /// was kept in `active_did_quarantine`.
    ClearedPointer {
        /// The value that named no account.
        value: String,
        /// Where it came from.
        reason: String,
    },
    /// A legacy column missing from an older file was added (NULL/default for every row).
    AddedLegacyColumn {
        /// Table.
        table: String,
        /// Column.
        column: String,
    },
    /// The app's own step that adds the column idstore added was recorded as applied
    /// in the app's migration bookkeeping, so that the app's migration service does
    /// not run it again (it would fail: "duplicate column name").
    RecordedAppStep {
        /// The app's bookkeeping table.
        table: String,
        /// The step's name there.
        name: String,
    },
    /// The app's own `active_identity` table was adopted into idstore's.
    AdoptedAppActiveIdentity {
        /// Its pointer.
        value: Option<String>,
        /// Whether the pointer named an account and so became the active identity.
        used: bool,
    },
    /// A `settings.activeDid` value that cannot be derived from the pointer was kept
    /// in `settings_active_did_archive` before the column was dropped.
    ArchivedActiveDid {
        /// The settings row.
        settings_id: i32,
        /// Its value.
        value: String,
    },
    /// The app's migration bookkeeping could not record the steps idstore ran (the
    /// file has no `migrations (name, applied_at)` table, or one of another shape):
    /// the app's migration service will not know they are in, will run them again,
    /// and will meet `idstore:already_applied`; record these names there as applied.
    UnrecordedAppSteps {
        /// The app's bookkeeping table.
        table: String,
        /// What was found instead.
        found: String,
        /// The steps' names, as the app's service records them.
        names: Vec<String>,
    },
    /// The file had been migrated by a preview build of idstore (its steps of
    /// 2026-11-25); it was brought to the current steps, every row kept.
    UpgradedPreview {
        /// The preview's versions it recorded, now replaced by the current ones.
        from: Vec<Version>,
    },
}

impl MigrationWarning {
    /// The warning's kind, as its JSON `kind` spells it (`quarantined_account`).
    pub fn kind(&self) -> &'static str {
        match self {
            MigrationWarning::QuarantinedAccount { .. } => "quarantined_account",
            MigrationWarning::ClearedPointer { .. } => "cleared_pointer",
            MigrationWarning::AddedLegacyColumn { .. } => "added_legacy_column",
            MigrationWarning::RecordedAppStep { .. } => "recorded_app_step",
            MigrationWarning::AdoptedAppActiveIdentity { .. } => "adopted_app_active_identity",
            MigrationWarning::ArchivedActiveDid { .. } => "archived_active_did",
            MigrationWarning::UnrecordedAppSteps { .. } => "unrecorded_app_steps",
            MigrationWarning::UpgradedPreview { .. } => "upgraded_preview",
        }
    }
}

impl fmt::Display for MigrationWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrationWarning::QuarantinedAccount {
                account_id,
                did,
                kept_account_id,
                reason,
            } => write!(
                f,
                "account row {account_id} ({}) moved to accounts_quarantine: {reason} (row {kept_account_id})",
                Shown(did)
            ),
            MigrationWarning::ClearedPointer { value, reason } => write!(
                f,
                "active identity {} cleared ({}); the value is kept in active_did_quarantine",
                Shown::quoted(value),
                Shown(reason)
            ),
            MigrationWarning::AddedLegacyColumn { table, column } => {
                write!(f, "added missing legacy column {table}.{column}")
            }
            MigrationWarning::RecordedAppStep { table, name } => write!(
                f,
                "recorded the app's step {name} as applied in its {table} table (idstore added the column that step adds)"
            ),
            MigrationWarning::AdoptedAppActiveIdentity { value, used: true } => write!(
                f,
                "adopted the app's active_identity table; its pointer {} is the active identity",
                Shown(value.as_deref().unwrap_or("NULL"))
            ),
            MigrationWarning::AdoptedAppActiveIdentity { value, used: false } => write!(
                f,
                "adopted the app's active_identity table; its pointer {} names no account and was not used",
                Shown(value.as_deref().unwrap_or("NULL"))
            ),
            MigrationWarning::ArchivedActiveDid { settings_id, value } => write!(
                f,
                "settings row {settings_id}: activeDid {} kept in settings_active_did_archive",
                Shown::quoted(value)
            ),
            MigrationWarning::UnrecordedAppSteps {
                table,
                found,
                names,
            } => write!(
                f,
                "the app's migration service cannot see these steps ({}): {}; it would run them again and stop at idstore:already_applied, so record {} as applied in its {table} table",
                names.join(", "),
                Shown(found),
                if names.len() == 1 { "it" } else { "them" }
            ),
            MigrationWarning::UpgradedPreview { from } => write!(
                f,
                "the file had been migrated by a preview build of idstore (versions {}); it now has the current steps, every row kept",
                from.iter()
                    .map(Version::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The outcome of a migration run.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct MigrationReport {
    /// Versions applied by this run, oldest first.
    pub applied: Vec<Version>,
    /// What a person should know; each names where moved data is kept. At most
    /// [`MigrationReport::WARNINGS_PER_KIND`] of a kind: the rest are counted in
    /// `omitted_warnings` (every value stays in the table its warning names).
    pub warnings: Vec<MigrationWarning>,
    /// How many warnings of each kind (by [`MigrationWarning::kind`]) were left
    /// out of `warnings`, so a report stays small however large the file.
    pub omitted_warnings: std::collections::BTreeMap<&'static str, u64>,
    /// Validation failures (non-empty only in a report attached to a failed run,
    /// which was rolled back).
    pub errors: Vec<String>,
    /// Number of values moved or copied into new tables (pointer, quarantined and
    /// archived values).
    pub values_migrated: u64,
    /// The active identity after the run, as stored.
    pub active_did: Option<String>,
    /// True when the file was made by the legacy app and adopted by this run.
    pub adopted_legacy: bool,
    /// True when everything was rolled back on purpose (a dry run).
    pub dry_run: bool,
    /// The backup written before the run, when one was asked for and written.
    pub backup: Option<std::path::PathBuf>,
}

impl MigrationReport {
    /// How many warnings of one kind a report lists (the rest are counted).
    pub const WARNINGS_PER_KIND: usize = 10;

    /// Adds a warning, or counts it when its kind has a full sample already.
    pub(crate) fn warn(&mut self, w: MigrationWarning) {
        let kind = w.kind();
        if let Some(n) = self.omitted_warnings.get_mut(kind) {
            *n += 1;
        } else if self.warnings.iter().filter(|x| x.kind() == kind).count()
            < Self::WARNINGS_PER_KIND
        {
            self.warnings.push(w);
        } else {
            self.omitted_warnings.insert(kind, 1);
        }
    }
}

/// What a rollback did.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RollbackReport {
    /// Reverted versions, newest first.
    pub reverted: Vec<Version>,
    /// The active identity afterwards, as stored.
    pub active_did: Option<String>,
    /// True when everything was rolled back on purpose (a dry run).
    pub dry_run: bool,
    /// The versions of a preview build of idstore the file recorded, brought to
    /// the current steps (every row kept) before they were reverted.
    pub upgraded_preview: Vec<Version>,
    /// Restore decisions whose record was dropped on request (`forget_decisions`):
    /// a later `migrate` keeps the lowest id of their DID again.
    pub forgotten_decisions: Vec<QuarantineRef>,
    /// The backup written before the run, when one was asked for and written.
    pub backup: Option<std::path::PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETHR: &str = "did:ethr:0xAbCdEf0123456789aBcDeF0123456789AbCdEf01";

    #[test]
    fn report_warnings_serialize_with_a_kind_and_read_well() {
        let w = MigrationWarning::QuarantinedAccount {
            account_id: 3,
            did: ETHR.into(),
            kept_account_id: 1,
            reason: "duplicate did, different key material from the kept account".into(),
        };
        let json = serde_json::to_value(&w).unwrap();
        assert_eq!(json["kind"], "quarantined_account");
        assert_eq!(json["kind"], w.kind());
        assert_eq!(json["account_id"], 3);
        assert!(w.to_string().contains("accounts_quarantine"));
        let cleared = MigrationWarning::ClearedPointer {
            value: "x".into(),
            reason: "r".into(),
        };
        assert!(cleared.to_string().contains("active_did_quarantine"));
    }

    #[test]
    fn a_report_keeps_a_sample_of_each_kind_and_counts_the_rest() {
        let mut report = MigrationReport::default();
        for i in 0..25 {
            report.warn(MigrationWarning::ArchivedActiveDid {
                settings_id: i,
                value: String::new(),
            });
        }
        report.warn(MigrationWarning::AddedLegacyColumn {
            table: "settings".into(),
            column: "hasBackedUpSeed".into(),
        });
        assert_eq!(
            report.warnings.len(),
            MigrationReport::WARNINGS_PER_KIND + 1
        );
        assert_eq!(
            report.omitted_warnings.get("archived_active_did"),
            Some(&(25 - MigrationReport::WARNINGS_PER_KIND as u64))
        );
        assert_eq!(report.omitted_warnings.get("added_legacy_column"), None);
    }
}
