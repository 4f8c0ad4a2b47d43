//! Files a preview build of idstore migrated, with its steps of 2026-11-25
//! (`20261125000001`, `202611250000011`, `20261125000002`), which the current
//! steps replaced before any release. `migrate` (and `rollback`, before it reverts)
//! brings such a file to the current steps in place, inside the run's own
//! transaction: every row of idstore's tables stays as it is (quarantined accounts,
//! pointer values, decisions, archived values, kept definitions); the pointer table
//! takes the current definition and guard; the records of the old versions become
//! records of the current ones, in diesel's table and in the app's. The app never
//! shipped those steps, so the exported steps refuse such a file instead
//! (`idstore:preview_build`) and say to run `idstore migrate` on it.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::steps::{ACTIVE_IDENTITY_VERSION, CLEANUP_VERSION, created, step};
use super::{BOOKKEEPING_TABLE, Version, runner_sql};
use crate::sql::{self, quote_ident};

/// The preview's active-identity step.
const ACTIVE_IDENTITY: &str = "20261125000001";
/// The preview's step that made `''` mean none (folded into the current
/// active-identity step).
const EMPTY_MEANS_NONE: &str = "202611250000011";
/// The preview's cleanup.
const CLEANUP: &str = "20261125000002";

/// Every version a preview build recorded, each with the current step that
/// replaces it (`None`: folded into another) and its name in the app's bookkeeping.
const VERSIONS: [(&str, Option<&str>, &str); 3] = [
    (
        ACTIVE_IDENTITY,
        Some(ACTIVE_IDENTITY_VERSION),
        "idstore_2026-11-25-000001_active_identity",
    ),
    (
        EMPTY_MEANS_NONE,
        None,
        "idstore_2026-11-25-000001-1_empty_active_did_means_none",
    ),
    (
        CLEANUP,
        Some(CLEANUP_VERSION),
        "idstore_2026-11-25-000002_drop_settings_active_did",
    ),
];

/// Whether `version` is one a preview build recorded.
pub(crate) fn is_preview(version: &str) -> bool {
    VERSIONS.iter().any(|(v, _, _)| *v == version)
}

/// The current versions a file that recorded the preview's `versions` has once
/// brought up to date (`versions` without the preview's, with their replacements).
pub(crate) fn current_equivalents(versions: &[Version]) -> Vec<Version> {
    let mut out: Vec<Version> = versions
        .iter()
        .filter_map(|v| match VERSIONS.iter().find(|(p, _, _)| v == *p) {
            None => Some(v.clone()),
            Some((_, now, _)) => now.map(Version::new),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Brings a file a preview build migrated to the current steps (inside the
/// caller's transaction). Returns the preview versions it replaced.
pub(crate) fn upgrade(conn: &mut SqliteConnection) -> QueryResult<Vec<Version>> {
    let applied = super::applied_versions(conn)?;
    let found: Vec<Version> = applied
        .iter()
        .filter(|v| is_preview(v.as_str()))
        .cloned()
        .collect();
    if !found.iter().any(|v| v == ACTIVE_IDENTITY) {
        return Ok(found);
    }
    let cleanup_applied = found.iter().any(|v| v == CLEANUP);
    let ours = &created()[ACTIVE_IDENTITY_VERSION];
    let definition = |name: &str| {
        ours.iter()
            .find(|o| o.name == name)
            .map(|o| o.sql.as_str())
            .unwrap_or_else(|| panic!("the active-identity step creates {name}"))
    };
    // The preview's triggers (all under names the current step uses) go first, so
    // none fires on what follows.
    for o in ours.iter().filter(|o| o.kind == "trigger") {
        conn.batch_execute(&format!("DROP TRIGGER IF EXISTS {};", quote_ident(&o.name)))?;
    }
    // The pointer table takes the current definition (the foreign key checked at
    // the end of each statement, no CHECK against ''), its row kept. A value naming
    // no account (possible only after a tool dropped the preview's guard) is kept in
    // the quarantine, as migrating a legacy file keeps one.
    conn.batch_execute(
        "CREATE TEMP TABLE idstore_preview_pointer AS
             SELECT id, activeDid, lastUpdated FROM main.active_identity;
         INSERT INTO active_did_quarantine (activeDid, reason)
         SELECT activeDid, 'the pointer named no account when idstore brought the file from a preview build'
           FROM temp.idstore_preview_pointer AS p
          WHERE p.activeDid IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM accounts AS a WHERE a.did = p.activeDid);
         UPDATE temp.idstore_preview_pointer SET activeDid = NULL
          WHERE activeDid IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM accounts AS a WHERE a.did = activeDid);
         DROP TABLE main.active_identity;",
    )?;
    conn.batch_execute(&format!("{};", definition("active_identity")))?;
    conn.batch_execute(&format!(
        "INSERT INTO active_identity (id, activeDid, lastUpdated)
         SELECT id, activeDid, lastUpdated FROM temp.idstore_preview_pointer ORDER BY id;
         DROP TABLE temp.idstore_preview_pointer;
         {};",
        definition("idx_active_identity_activeDid")
    ))?;
    // What the current step keeps of an adoption, where the preview kept none.
    for table in ["idstore_adopted_active_identity", "idstore_adoption"] {
        if !sql::table_exists(conn, table)? {
            conn.batch_execute(&format!("{};", definition(table)))?;
        }
    }
    // The current guard, and the transition triggers while settings.activeDid stands.
    let transition = [
        "active_identity_sync_to_settings_on_insert",
        "active_identity_sync_to_settings_on_update",
        "settings_active_did_sync_on_insert",
        "settings_active_did_sync_on_update",
    ];
    for o in ours.iter().filter(|o| o.kind == "trigger") {
        if cleanup_applied && transition.contains(&o.name.as_str()) {
            continue;
        }
        conn.batch_execute(&format!("{};", o.sql))?;
    }
    // The records: the preview's versions become the current ones.
    for (old, now, app_name) in VERSIONS {
        if !found.iter().any(|v| v == old) {
            continue;
        }
        diesel::sql_query(format!("DELETE FROM {BOOKKEEPING_TABLE} WHERE version = ?"))
            .bind::<Text, _>(old)
            .execute(conn)?;
        runner_sql::app_service::forget(conn, app_name)?;
        if let Some(now) = now {
            diesel::sql_query(format!(
                "INSERT OR IGNORE INTO {BOOKKEEPING_TABLE} (version) VALUES (?)"
            ))
            .bind::<Text, _>(now)
            .execute(conn)?;
            let name = step(now).expect("a current step").app_name();
            runner_sql::app_service::record(conn, &name)?;
        }
    }
    Ok(found)
}
