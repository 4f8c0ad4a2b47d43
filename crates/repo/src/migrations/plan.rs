//! The plan: which steps run, decided from one [`Inspection`] without touching the
//! file. Every refusal `migrate` makes up front is made here, so a caller can ask the
//! plan before writing anything (a backup, say): the next step's own preflight
//! (what its SQL would refuse, read without running it), and what only the runner
//! knows (a target no step has, a newer idstore's file).

use std::collections::BTreeSet;

use super::Version;
use super::inspect::{AppPointer, Inspection, MigrationStatus};
use super::steps::tables_created_by;
use super::{
    ACTIVE_IDENTITY_VERSION, BASELINE_VERSION, BOOKKEEPING_TABLE, CLEANUP_VERSION, check_target,
    known_versions, preview, steps,
};
use crate::error::Error;

/// What [`Database::migrate`](crate::Database::migrate) will do to a file: decided from one read of it,
/// with every refusal already made. Get one with
/// [`Database::plan_migration`](crate::Database::plan_migration).
#[derive(Debug, Clone)]
pub struct MigrationPlan {
    pub(super) status: MigrationStatus,
    pub(super) steps: Vec<Version>,
    /// The file a preview build of idstore migrated is brought to the current steps first.
    pub(super) upgrades_preview: bool,
    /// The legacy `settings` gets the column a later app build appended (the app's
    /// own step 003, which its service runs before idstore's steps).
    pub(super) add_late_column: bool,
    /// The app's own `active_identity`, which the active-identity step adopts.
    pub(super) app_pointer: Option<AppPointer>,
    /// The active identity the old data implies the run must end with.
    pub(super) expected_active_did: Option<String>,
    /// Account rows before the run; kept or quarantined, all must be there after.
    pub(super) account_rows: i64,
    /// Tables whose b-trees (the table's or an index's) the steps create or build
    /// over existing rows: checked in full afterwards.
    pub(super) written_tables: BTreeSet<String>,
    /// Existing tables the steps rewrite row by row in place: read back whole.
    pub(super) rewritten_tables: BTreeSet<String>,
    /// Every account row before the run, as a digest the result must match.
    pub(super) accounts: Option<super::inspect::AccountDigest>,
}

impl MigrationPlan {
    /// Decides the plan for migrating up to `to` (default: every pending step).
    pub(crate) fn decide(inspection: Inspection, to: Option<&str>) -> Result<Self, Error> {
        if let Some(to) = to {
            check_target(to)?;
        }
        let Inspection {
            status,
            lacks_late_column,
            app_pointer,
            legacy_pointer_account,
            existing,
            account_rows,
            refusals,
            detail,
        } = inspection;
        status.refuse_unknown()?;
        let upgrades_preview = !status.preview.is_empty();
        // A preview build's file is planned as the current steps it will have.
        let applied = if upgrades_preview {
            preview::current_equivalents(&[status.applied.clone(), status.preview.clone()].concat())
        } else {
            status.applied.clone()
        };
        let steps: Vec<Version> = known_versions()
            .iter()
            .filter(|v| !applied.contains(v))
            .filter(|v| to.is_none_or(|to| v.as_str() <= to))
            .cloned()
            .collect();
        let mut plan = MigrationPlan {
            expected_active_did: status.active_did.clone(),
            status,
            steps,
            upgrades_preview,
            add_late_column: false,
            app_pointer: None,
            account_rows,
            written_tables: BTreeSet::new(),
            rewritten_tables: BTreeSet::new(),
            accounts: None,
        };
        if plan.is_empty() {
            return Ok(plan);
        }
        if let Some(token) = refusals.first() {
            return Err(steps::refused(token, &detail));
        }
        plan.add_late_column = lacks_late_column
            && plan
                .steps
                .iter()
                .any(|v| v == BASELINE_VERSION || v == ACTIVE_IDENTITY_VERSION);
        if plan.creates_active_identity() {
            // The app's pointer is the newer truth when it names an account.
            plan.expected_active_did = app_pointer
                .as_ref()
                .filter(|a| a.names_account)
                .and_then(|a| a.active_did.clone())
                .or(legacy_pointer_account);
        }
        plan.app_pointer = app_pointer;
        plan.decide_checks(&existing);
        Ok(plan)
    }

    /// Which b-trees the validation checks, from what each step creates: a
    /// baseline object the file already had is kept (`IF NOT EXISTS`), anything
    /// else is created now. The cleanup rewrites every `settings` row in place.
    fn decide_checks(&mut self, existing: &BTreeSet<String>) {
        for step in &self.steps {
            for (name, table) in tables_created_by(step.as_str()) {
                if step == BASELINE_VERSION && existing.contains(name) {
                    continue;
                }
                self.written_tables.insert(table.to_owned());
            }
        }
        if self.upgrades_preview {
            // The pointer table is rebuilt in place.
            self.written_tables.insert("active_identity".to_owned());
        }
        self.written_tables.insert(BOOKKEEPING_TABLE.to_owned());
        if self.drops_legacy_column() && !self.written_tables.contains("settings") {
            self.rewritten_tables.insert("settings".to_owned());
        }
    }

    /// The versions to apply, oldest first.
    pub fn steps(&self) -> &[Version] {
        &self.steps
    }

    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && !self.upgrades_preview
    }

    /// True when the file was migrated by a preview build of idstore (its steps of
    /// 2026-11-25), which the run first brings to the current steps, every row kept.
    pub fn upgrades_preview(&self) -> bool {
        self.upgrades_preview
    }

    /// The file as it was read.
    pub fn status(&self) -> &MigrationStatus {
        &self.status
    }

    /// The status, to complete with what is known of the file.
    pub(crate) fn status_mut(&mut self) -> &mut MigrationStatus {
        &mut self.status
    }

    /// True when the run adopts a file the legacy app made.
    pub fn adopts_legacy(&self) -> bool {
        self.status.legacy && !self.steps.is_empty()
    }

    /// True when the file already holds user tables (a backup has something to keep).
    pub fn has_user_tables(&self) -> bool {
        let st = &self.status;
        st.legacy || !st.applied.is_empty() || !st.preview.is_empty() || st.app_active_identity
    }

    pub(super) fn creates_active_identity(&self) -> bool {
        self.steps.iter().any(|v| v == ACTIVE_IDENTITY_VERSION)
    }

    pub(super) fn drops_legacy_column(&self) -> bool {
        self.steps.iter().any(|v| v == CLEANUP_VERSION)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::migrations::known_versions;

    fn legacy_file() -> Inspection {
        Inspection {
            status: MigrationStatus {
                applied: vec![],
                pending: known_versions().to_vec(),
                unknown: vec![],
                preview: vec![],
                legacy: true,
                app_active_identity: false,
                active_did: Some("did:example:a".into()),
                accounts: 1,
                foreign_objects: vec![],
                leftover_copies: vec![],
                untrusted_files: vec![],
                kept_aside: vec![],
            },
            lacks_late_column: true,
            app_pointer: None,
            legacy_pointer_account: Some("did:example:a".into()),
            existing: [
                "accounts",
                "settings",
                "idx_accounts_did",
                "idx_settings_accountDid",
            ]
            .map(String::from)
            .into(),
            account_rows: 1,
            refusals: vec![],
            detail: vec![],
        }
    }

    fn app_pointer(did: &str, names_account: bool) -> AppPointer {
        AppPointer {
            active_did: Some(did.into()),
            last_updated: None,
            names_account,
        }
    }

    #[test]
    fn a_legacy_file_gets_every_step_and_its_late_column() {
        let plan = MigrationPlan::decide(legacy_file(), None).unwrap();
        assert_eq!(plan.steps(), known_versions());
        assert!(plan.add_late_column && plan.adopts_legacy());
        assert_eq!(plan.expected_active_did.as_deref(), Some("did:example:a"));
    }

    #[test]
    fn validation_checks_what_the_steps_write_and_reads_back_what_they_rewrite() {
        let plan = MigrationPlan::decide(legacy_file(), None).unwrap();
        // The legacy tables are kept by the baseline; accounts gets a UNIQUE index.
        assert!(plan.written_tables.contains("accounts"));
        assert!(plan.written_tables.contains("active_identity"));
        assert!(!plan.written_tables.contains("settings"));
        assert_eq!(plan.rewritten_tables, ["settings".to_owned()].into());
        let mut new_file = legacy_file();
        new_file.existing.clear();
        let plan = MigrationPlan::decide(new_file, None).unwrap();
        assert!(plan.written_tables.contains("settings") && plan.rewritten_tables.is_empty());
    }

    #[test]
    fn the_target_limits_the_steps_and_an_unknown_one_is_refused() {
        let plan = MigrationPlan::decide(legacy_file(), Some(BASELINE_VERSION)).unwrap();
        assert_eq!(plan.steps(), [BASELINE_VERSION]);
        assert!(
            plan.add_late_column,
            "the baseline checks the legacy tables as the next step does"
        );
        let err = MigrationPlan::decide(legacy_file(), Some("1999")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownVersion, "{err}");
    }

    #[test]
    fn a_newer_idstores_file_is_refused() {
        let mut file = legacy_file();
        file.status.unknown = vec!["29990101000000".into()];
        let err = MigrationPlan::decide(file, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NewerDatabase, "{err}");
    }

    #[test]
    fn the_next_steps_preflight_refuses_with_its_token_and_the_detail() {
        let mut file = legacy_file();
        file.refusals = vec!["unknown_columns".into(), "legacy_shape".into()];
        file.detail = vec!["accounts has columns idstore does not know (label)".into()];
        let err = MigrationPlan::decide(file, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownColumns, "{err}");
        assert_eq!(err.token(), Some("unknown_columns"));
        let text = err.to_string();
        assert!(text.starts_with("idstore:unknown_columns: "), "{text}");
        assert!(text.contains("(label)"), "{text}");
    }

    #[test]
    fn the_apps_pointer_wins_when_it_names_an_account() {
        let mut file = legacy_file();
        file.status.app_active_identity = true;
        file.app_pointer = Some(app_pointer("did:example:b", true));
        let plan = MigrationPlan::decide(file.clone(), None).unwrap();
        assert_eq!(plan.expected_active_did.as_deref(), Some("did:example:b"));
        file.app_pointer = Some(app_pointer("did:example:gone", false));
        let plan = MigrationPlan::decide(file, None).unwrap();
        assert_eq!(plan.expected_active_did.as_deref(), Some("did:example:a"));
    }

    #[test]
    fn a_preview_builds_file_is_planned_as_the_current_steps_it_will_have() {
        let mut file = legacy_file();
        file.status.legacy = false;
        file.status.applied = vec![BASELINE_VERSION.into()];
        file.status.pending = known_versions()[1..].to_vec();
        file.status.preview = vec!["20261125000001".into(), "202611250000011".into()];
        let plan = MigrationPlan::decide(file.clone(), None).unwrap();
        assert!(plan.upgrades_preview());
        assert_eq!(plan.steps(), [CLEANUP_VERSION]);
        file.status.preview.push("20261125000002".into());
        let plan = MigrationPlan::decide(file, None).unwrap();
        assert!(plan.upgrades_preview() && plan.steps().is_empty() && !plan.is_empty());
    }
}
