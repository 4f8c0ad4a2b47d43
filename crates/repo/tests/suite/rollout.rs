//! The rollout window: a file stopped at the transition step (older app builds still
//! write `settings.activeDid`) is served by the whole repository API, and the legacy
//! column stays in step with `active_identity` both ways.

use std::path::PathBuf;

use crate::common::*;
use idstore_domain::{Did, NewAccount, SettingsChange, SettingsField};
use idstore_repo::health::ProblemKind;
use idstore_repo::{Database, ErrorKind, MigrateOptions, SettingsScope, WhenLast};
use tempfile::TempDir;

fn did(s: &str) -> Did {
    Did::parse(s).unwrap()
}

/// A legacy file with accounts A (twice), B and C, B active, migrated to the
/// transition step only.
fn at_transition(dir: &TempDir) -> PathBuf {
    let data = format!(
        "{}{}{}{}
         INSERT INTO settings (id, activeDid, apiServer) VALUES (1, '{DID_B}', 'https://api.endorser.ch');",
        account_sql(1, DID_A, "a1"),
        account_sql(2, DID_B, "b1"),
        account_sql(3, DID_C, "c1"),
        account_sql(4, DID_A, "a2-other"),
    );
    let path = legacy_file(dir.path(), "rollout.sqlite", true, &data);
    migrate(
        &mut open(&path).unwrap(),
        MigrateOptions::new().to(ACTIVE_IDENTITY_VERSION),
    )
    .unwrap();
    path
}

fn legacy_column(conn: &mut impl Raw) -> Option<String> {
    text(conn, "SELECT activeDid AS value FROM settings WHERE id = 1")
}

fn pointer(conn: &mut impl Raw) -> Option<String> {
    text(
        conn,
        "SELECT activeDid AS value FROM active_identity WHERE id = 1",
    )
}

#[test]
fn the_transition_step_is_a_pause_point_the_api_serves() {
    let dir = TempDir::new().unwrap();
    let path = at_transition(&dir);
    let st = status(&mut open(&path).unwrap()).unwrap();
    assert_eq!(st.pending, vec![CLEANUP_VERSION]);
    assert_eq!(st.paused_at(), Some(ACTIVE_IDENTITY_VERSION));
    assert!(st.servable());
    let mut db = Database::open(&path).expect("a paused file is served");
    let mut store = db.store().unwrap();
    assert_eq!(
        store.active_identity().unwrap().active_did,
        Some(did(DID_B))
    );
    // A legacy file not yet adopted is still refused.
    let legacy = legacy_file(dir.path(), "legacy.sqlite", true, "");
    assert_eq!(
        Database::open(&legacy)
            .unwrap()
            .store()
            .map(drop)
            .unwrap_err()
            .kind(),
        ErrorKind::NeedsMigration
    );
}

#[test]
fn every_operation_works_and_the_legacy_column_follows_both_ways() {
    let dir = TempDir::new().unwrap();
    let path = at_transition(&dir);
    let mut conn = open(&path).unwrap();

    // idstore switches: the old column follows.
    conn.store()
        .unwrap()
        .set_active_did(Some(&did(DID_C)))
        .unwrap();
    assert_eq!(legacy_column(&mut conn).as_deref(), Some(DID_C));
    // An old app build switches the old way: the pointer follows.
    exec(
        &mut conn,
        &format!("UPDATE settings SET activeDid = '{DID_A}' WHERE id = 1"),
    );
    assert_eq!(pointer(&mut conn).as_deref(), Some(DID_A));
    let mut store = conn.store().unwrap();
    assert_eq!(
        store.active_identity().unwrap().active_did,
        Some(did(DID_A))
    );

    // Saving, reading, accounts.
    let mut change = SettingsChange::default();
    change
        .set_from_str(SettingsField::FirstName, "Ada")
        .unwrap();
    store.save_settings(&change).unwrap();
    store.save_account_settings(&did(DID_A), &change).unwrap();
    let view = store.settings(SettingsScope::Merged(None)).unwrap();
    assert_eq!(view.settings.first_name.as_deref(), Some("Ada"));
    assert!(view.has_override);
    let unknown = "did:ethr:0x5555555555555555555555555555555555555555";
    store
        .add_account(&NewAccount::new(
            did(unknown),
            "02aa",
            "2025-01-01T00:00:00.000Z",
        ))
        .unwrap();
    let removed = store.delete_account(&did(DID_A), WhenLast::Refuse).unwrap();
    assert!(removed.was_active);
    let now = removed.active_did.map(|d| d.to_string());
    assert_eq!(pointer(&mut conn), now);
    assert_eq!(
        legacy_column(&mut conn),
        now,
        "the old column followed the move"
    );

    // A missing master row comes back without clearing the pointer.
    exec(&mut conn, "DELETE FROM settings WHERE id = 1");
    conn.store().unwrap().save_settings(&change).unwrap();
    assert_eq!(pointer(&mut conn), now);
    assert_eq!(legacy_column(&mut conn), now);

    let report = conn.check().unwrap();
    assert!(
        report.problems.iter().all(|p| p.is_decision()),
        "{:?}",
        report.problems
    );
    assert!(conn.repair().unwrap().fixed.is_empty());
}

#[test]
fn check_and_repair_put_an_out_of_step_legacy_column_back() {
    let dir = TempDir::new().unwrap();
    let path = at_transition(&dir);
    let mut conn = open(&path).unwrap();
    // A tool that dropped the transition trigger, then wrote the old column.
    exec(
        &mut conn,
        &format!(
            "DROP TRIGGER settings_active_did_sync_on_update;
             UPDATE settings SET activeDid = '{DID_C}' WHERE id = 1;"
        ),
    );
    let kinds: Vec<ProblemKind> = conn
        .check()
        .unwrap()
        .problems
        .iter()
        .map(|p| p.kind)
        .collect();
    assert!(
        kinds.contains(&ProblemKind::LegacyPointerOutOfStep),
        "{kinds:?}"
    );
    let fixed: Vec<ProblemKind> = conn
        .repair()
        .unwrap()
        .fixed
        .iter()
        .map(|p| p.kind)
        .collect();
    assert_eq!(fixed, [ProblemKind::LegacyPointerOutOfStep]);
    assert_eq!(legacy_column(&mut conn).as_deref(), Some(DID_B));
    assert_eq!(pointer(&mut conn).as_deref(), Some(DID_B));
}
