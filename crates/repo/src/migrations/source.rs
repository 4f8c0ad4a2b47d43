//! The SQL of idstore's own steps, read as data: every object each step creates,
//! with its definition as `sqlite_master` will hold it, parsed from the step's
//! up.sql without running anything (a test checks the list of steps against the
//! embedded migrations, and the parse against a run of them).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::{ACTIVE_IDENTITY_VERSION, BASELINE_VERSION, CLEANUP_VERSION, EMPTY_MEANS_NONE_VERSION};
use crate::sqltext::{Created, created_objects};

/// Each step's up.sql, by version, oldest first.
pub(crate) const UP_SQL: &[(&str, &str)] = &[
    (
        BASELINE_VERSION,
        include_str!("../../../../migrations/00000000000000_legacy_baseline/up.sql"),
    ),
    (
        ACTIVE_IDENTITY_VERSION,
        include_str!("../../../../migrations/2026-11-25-000001_active_identity/up.sql"),
    ),
    (
        EMPTY_MEANS_NONE_VERSION,
        include_str!(
            "../../../../migrations/2026-11-25-000001-1_empty_active_did_means_none/up.sql"
        ),
    ),
    (
        CLEANUP_VERSION,
        include_str!("../../../../migrations/2026-11-25-000002_drop_settings_active_did/up.sql"),
    ),
];

/// Every object each step creates, by version.
pub(crate) fn created() -> &'static BTreeMap<&'static str, Vec<Created>> {
    static CREATED: OnceLock<BTreeMap<&'static str, Vec<Created>>> = OnceLock::new();
    CREATED.get_or_init(|| {
        UP_SQL
            .iter()
            .map(|(version, sql)| {
                let objects = created_objects(sql)
                    .unwrap_or_else(|e| panic!("migration {version} parses: {}", e.0));
                (*version, objects)
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
        let listed: Vec<String> = UP_SQL.iter().map(|(v, _)| v.to_string()).collect();
        assert_eq!(listed, super::super::known_versions());
    }
}
