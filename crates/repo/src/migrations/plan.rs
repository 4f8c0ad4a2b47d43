//! The plan: which steps run and what adoption does, decided from one
//! [`Inspection`] without touching the file. Every refusal `migrate` makes is made
//! here, so a caller can ask the plan before writing anything (a backup, say).

use std::collections::BTreeSet;

use super::Version;
use super::adopt::{SchemaObject, tables_created_by};
use super::foreign::{Write, acting_on};
use super::inspect::{AppPointer, Inspection, MigrationStatus};
use super::{
    ACTIVE_IDENTITY_VERSION, BASELINE_VERSION, BOOKKEEPING_TABLE, CLEANUP_VERSION, check_target,
};
use crate::error::{Error, ErrorKind};

/// What [`Database::migrate`](crate::Database::migrate) will do to a file: decided from one read of it,
/// with every refusal already made. Get one with
/// [`Database::plan_migration`](crate::Database::plan_migration).
#[derive(Debug, Clone)]
pub struct MigrationPlan {
    pub(super) status: MigrationStatus,
    pub(super) steps: Vec<Version>,
    /// The legacy `settings` gets the column a later app build appended.
    pub(super) add_late_column: bool,
    /// Equivalent objects of the file, dropped for idstore's own and recorded.
    pub(super) set_aside: Vec<SchemaObject>,
    /// The app's own `active_identity`, adopted.
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
    /// Existing tables the steps build new b-trees from: checked before the run.
    pub(super) read_tables: BTreeSet<String>,
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
            legacy_shape,
            lacks_late_column,
            app_pointer,
            legacy_pointer_account,
            collisions,
            existing,
            account_rows,
            foreign,
        } = inspection;
        status.refuse_unknown()?;
        let steps: Vec<Version> = status
            .pending
            .iter()
            .filter(|v| to.is_none_or(|to| v.as_str() <= to))
            .cloned()
            .collect();
        let mut plan = MigrationPlan {
            expected_active_did: status.active_did.clone(),
            status,
            steps,
            add_late_column: false,
            set_aside: Vec::new(),
            app_pointer: None,
            account_rows,
            written_tables: BTreeSet::new(),
            rewritten_tables: BTreeSet::new(),
            read_tables: BTreeSet::new(),
            accounts: None,
        };
        if plan.steps.is_empty() {
            return Ok(plan);
        }
        if plan.status.legacy {
            if !legacy_shape.is_empty() {
                return Err(Error::new(
                    ErrorKind::LegacyShape,
                    format!(
                        "this file does not have the legacy shape idstore can adopt without loss: {}",
                        legacy_shape.join("; ")
                    ),
                ));
            }
            plan.add_late_column = lacks_late_column;
        }
        let creates_active_identity = plan.creates_active_identity();
        if app_pointer.is_some() && !creates_active_identity {
            return Err(Error::new(
                ErrorKind::TargetTooLow,
                format!(
                    "the file holds the app's own active_identity table; migrate at least to version {ACTIVE_IDENTITY_VERSION} to adopt it"
                ),
            ));
        }
        for c in &collisions {
            if !plan.steps.contains(&c.step)
                || (app_pointer.is_some() && c.theirs.tbl_name == "active_identity")
            {
                continue; // not run, or adopted with the app's table
            }
            match &c.refusal {
                Some(why) => return Err(c.refuse(why)),
                None => plan.set_aside.push(c.theirs.clone()),
            }
        }
        if creates_active_identity {
            // The app's pointer is the newer truth when it names an account.
            plan.expected_active_did = app_pointer
                .as_ref()
                .filter(|a| a.names_account)
                .and_then(|a| a.active_did.clone())
                .or(legacy_pointer_account);
        }
        plan.app_pointer = app_pointer;
        plan.decide_checks(&existing);
        let acting = acting_on(&foreign, &plan.writes());
        if !acting.is_empty() {
            return Err(super::foreign::refusal("migration", &acting));
        }
        Ok(plan)
    }

    /// The writes the steps make to tables that already hold the file's rows (new
    /// tables can carry no one else's trigger): what a foreign trigger or foreign
    /// key must not act on.
    pub(super) fn writes(&self) -> Vec<Write> {
        let mut writes = vec![Write::insert(BOOKKEEPING_TABLE)];
        for step in &self.steps {
            match step.as_str() {
                // The master row, when the file has none.
                BASELINE_VERSION => writes.push(Write::insert("settings")),
                ACTIVE_IDENTITY_VERSION => {
                    // Duplicates move out of accounts; the transition triggers write
                    // the legacy column when the pointer is set.
                    writes.push(Write::delete("accounts"));
                    writes.push(Write::update("settings", &["activeDid"]));
                }
                CLEANUP_VERSION => writes.push(Write::insert("idstore_original_schema")),
                _ => {}
            }
        }
        writes
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
        self.written_tables.insert(BOOKKEEPING_TABLE.to_owned());
        if self.drops_legacy_column() && !self.written_tables.contains("settings") {
            self.rewritten_tables.insert("settings".to_owned());
        }
        self.read_tables = self
            .written_tables
            .iter()
            .filter(|t| existing.contains(*t))
            .cloned()
            .collect();
    }

    /// The versions to apply, oldest first.
    pub fn steps(&self) -> &[Version] {
        &self.steps
    }

    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
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
        st.legacy || !st.applied.is_empty() || st.app_active_identity
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
    use crate::migrations::adopt::Collision;
    use crate::migrations::known_versions;

    fn legacy_file() -> Inspection {
        Inspection {
            status: MigrationStatus {
                applied: vec![],
                pending: known_versions().to_vec(),
                unknown: vec![],
                legacy: true,
                app_active_identity: false,
                active_did: Some("did:example:a".into()),
                accounts: 1,
                foreign_objects: vec![],
                leftover_copies: vec![],
                untrusted_files: vec![],
                kept_aside: vec![],
            },
            legacy_shape: vec![],
            lacks_late_column: true,
            app_pointer: None,
            legacy_pointer_account: Some("did:example:a".into()),
            collisions: vec![],
            existing: [
                "accounts",
                "settings",
                "idx_accounts_did",
                "idx_settings_accountDid",
            ]
            .map(String::from)
            .into(),
            account_rows: 1,
            foreign: vec![],
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
        assert_eq!(plan.read_tables, ["accounts".to_owned()].into());
        let mut new_file = legacy_file();
        new_file.existing.clear();
        let plan = MigrationPlan::decide(new_file, None).unwrap();
        assert!(plan.written_tables.contains("settings") && plan.rewritten_tables.is_empty());
        assert!(plan.read_tables.is_empty());
    }

    #[test]
    fn the_target_limits_the_steps_and_an_unknown_one_is_refused() {
        let plan = MigrationPlan::decide(legacy_file(), Some(BASELINE_VERSION)).unwrap();
        assert_eq!(plan.steps(), [BASELINE_VERSION]);
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
    fn a_legacy_file_of_the_wrong_shape_is_refused() {
        let mut file = legacy_file();
        file.legacy_shape = vec!["accounts lacks columns did".into()];
        let err = MigrationPlan::decide(file, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LegacyShape, "{err}");
    }

    #[test]
    fn the_apps_pointer_wins_when_it_names_an_account() {
        let mut file = legacy_file();
        file.status.app_active_identity = true;
        file.app_pointer = Some(app_pointer("did:example:b", true));
        let plan = MigrationPlan::decide(file.clone(), None).unwrap();
        assert_eq!(plan.expected_active_did.as_deref(), Some("did:example:b"));
        file.app_pointer = Some(app_pointer("did:example:gone", false));
        let plan = MigrationPlan::decide(file.clone(), None).unwrap();
        assert_eq!(plan.expected_active_did.as_deref(), Some("did:example:a"));
        let err = MigrationPlan::decide(file, Some(BASELINE_VERSION)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TargetTooLow, "{err}");
    }

    #[test]
    fn collisions_are_adopted_or_refused_only_for_steps_that_run() {
        let object = SchemaObject {
            kind: "index".into(),
            name: "accounts_did_unique".into(),
            tbl_name: "accounts".into(),
            sql: Some("CREATE UNIQUE INDEX accounts_did_unique ON accounts(did)".into()),
        };
        let mut file = legacy_file();
        file.collisions = vec![Collision {
            step: ACTIVE_IDENTITY_VERSION.into(),
            theirs: object.clone(),
            refusal: None,
        }];
        let plan = MigrationPlan::decide(file.clone(), None).unwrap();
        assert_eq!(plan.set_aside, std::slice::from_ref(&object));
        let plan = MigrationPlan::decide(file.clone(), Some(BASELINE_VERSION)).unwrap();
        assert!(plan.set_aside.is_empty());
        file.collisions[0].refusal = Some("it differs".into());
        let err = MigrationPlan::decide(file, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NameCollision, "{err}");
    }
}
