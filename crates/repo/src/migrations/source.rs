//! The SQL of idstore's own steps, read as data: every object each step creates,
//! with its definition as `sqlite_master` will hold it, parsed from the step's
//! up.sql without running anything (a test checks the list of steps against the
//! embedded migrations, and the parse against a run of them).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::{ACTIVE_IDENTITY_VERSION, BASELINE_VERSION, CLEANUP_VERSION, EMPTY_MEANS_NONE_VERSION};
use crate::sql::text::{Created, created_objects};

/// One of idstore's steps as its files hold it.
pub(crate) struct Step {
    /// Its version, as diesel records it.
    pub version: &'static str,
    /// Its folder under `migrations/`.
    pub dir: &'static str,
    /// Its up.sql.
    pub up: &'static str,
    /// Its down.sql.
    pub down: &'static str,
}

macro_rules! step {
    ($version:expr, $dir:literal) => {
        Step {
            version: $version,
            dir: $dir,
            up: include_str!(concat!("../../../../migrations/", $dir, "/up.sql")),
            down: include_str!(concat!("../../../../migrations/", $dir, "/down.sql")),
        }
    };
}

/// Every step, oldest first.
pub(crate) const STEPS: &[Step] = &[
    step!(BASELINE_VERSION, "00000000000000_legacy_baseline"),
    step!(ACTIVE_IDENTITY_VERSION, "2026-11-25-000001_active_identity"),
    step!(
        EMPTY_MEANS_NONE_VERSION,
        "2026-11-25-000001-1_empty_active_did_means_none"
    ),
    step!(
        CLEANUP_VERSION,
        "2026-11-25-000002_drop_settings_active_did"
    ),
];

/// The step of that version.
pub(crate) fn step(version: &str) -> Option<&'static Step> {
    STEPS.iter().find(|s| s.version == version)
}

impl Step {
    /// Its name in the app's migration service: the folder's, prefixed so it can
    /// never meet one of the app's own names.
    pub fn app_name(&self) -> String {
        format!("idstore_{}", self.dir)
    }
}

/// One of idstore's migrations in the app's own format, for its migration service
/// (an ordered list of `{ name, sql }` steps, each run in one transaction and
/// recorded by name). Each carries diesel's record of itself, so idstore sees a file
/// the service migrated as migrated; and idstore records these names in the app's
/// `migrations` table when it runs the same steps, so the service sees it too.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct AppStep {
    /// The name the app's service records it under (`idstore_` and its folder).
    pub name: String,
    /// idstore's version of the step.
    pub version: String,
    /// What to run, in one transaction: the step's up.sql, then its record in
    /// `__diesel_schema_migrations` (kept if there: the baseline, which changes
    /// nothing on the app's files, may run again on a file idstore adopted).
    pub sql: String,
    /// What reverts it, in one transaction: its down.sql, then its record removed.
    pub down: String,
}

/// diesel's bookkeeping table, exactly as diesel creates it.
const BOOKKEEPING_DDL: &str = "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (\n       version VARCHAR(50) PRIMARY KEY NOT NULL,\n       run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP\n);";

/// idstore's migrations in the app's own format, oldest first (`idstore generate
/// app-migrations` prints them as JSON).
///
/// ```
/// let steps = idstore_repo::app_steps();
/// assert_eq!(steps[0].name, "idstore_00000000000000_legacy_baseline");
/// assert!(steps[1].sql.contains("CREATE TABLE active_identity"));
/// ```
pub fn app_steps() -> Vec<AppStep> {
    STEPS
        .iter()
        .map(|s| AppStep {
            name: s.app_name(),
            version: s.version.to_owned(),
            sql: format!(
                "{}\n-- idstore's record of this step, as diesel keeps it.\n{BOOKKEEPING_DDL}\nINSERT OR IGNORE INTO __diesel_schema_migrations (version) VALUES ('{}');\n",
                s.up.trim_end(),
                s.version
            ),
            down: format!(
                "{}\n-- idstore's record of this step, as diesel keeps it.\nDELETE FROM __diesel_schema_migrations WHERE version = '{}';\n",
                s.down.trim_end(),
                s.version
            ),
        })
        .collect()
}

/// Every object each step creates, by version.
pub(crate) fn created() -> &'static BTreeMap<&'static str, Vec<Created>> {
    static CREATED: OnceLock<BTreeMap<&'static str, Vec<Created>>> = OnceLock::new();
    CREATED.get_or_init(|| {
        STEPS
            .iter()
            .map(|s| {
                let objects = created_objects(s.up)
                    .unwrap_or_else(|e| panic!("migration {} parses: {}", s.version, e.0));
                (s.version, objects)
            })
            .collect()
    })
}

/// The object of that name one of idstore's steps creates, when one does.
pub(crate) fn object(name: &str) -> Option<&'static Created> {
    created().values().flatten().find(|o| o.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_step_is_listed_in_order() {
        let listed: Vec<String> = STEPS.iter().map(|s| s.version.to_string()).collect();
        assert_eq!(listed, super::super::known_versions());
    }
}
